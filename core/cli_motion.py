"""`pgr2m generate`, `pgr2m edit` and `pgr2m codes`: the pipeline from the command line."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path


def _pipeline(args):
    from core.pipeline import Pipeline

    kw = {}
    if getattr(args, "temperature", None) is not None:
        kw["temperature"] = args.temperature
    if getattr(args, "top_k", None):
        kw["top_k"] = args.top_k
    return Pipeline(args.model, device=args.device or "cpu", **kw)


def _check_numbers(args) -> None:
    """Refuse absurd requests before loading the model (and before they can exhaust memory)."""
    from core.pipeline import Pipeline

    samples = getattr(args, "samples", 1)
    if not 1 <= samples <= Pipeline.MAX_SAMPLES:
        raise ValueError(f"--samples must be 1..{Pipeline.MAX_SAMPLES}, got {samples}")
    seconds = getattr(args, "seconds", None)
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"--seconds must be a positive number, got {seconds}")
    # resampling to a huge frame rate would allocate that many frames
    if args.fps is not None and not 0 < args.fps <= 1000:
        raise ValueError(f"--fps must be a frame rate in (0, 1000], got {args.fps}")
    if args.temperature is not None and not (math.isfinite(args.temperature) and args.temperature >= 0):
        raise ValueError(f"--temperature must be 0 or more, got {args.temperature}")
    top_k = getattr(args, "top_k", None)
    if top_k is not None and top_k < 1:
        raise ValueError(f"--top-k must be 1 or more, got {top_k}")


def _outputs(path: str, n: int) -> list[Path]:
    p = Path(path)
    if n == 1:
        return [p]
    return [p.with_name(f"{p.stem}_{i}{p.suffix}") for i in range(n)]


def _check_output(path: str) -> None:
    from core.formats.motion_files import WRITABLE

    ext = Path(path).suffix.lower()
    if ext not in WRITABLE:
        raise ValueError(f"{path}: cannot write {ext or 'a file without extension'}; use one of {', '.join(WRITABLE)}")
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise ValueError(f"{path}: folder {parent} does not exist")


def cmd_generate(args) -> int:
    from core.formats.motion_files import save_motion

    _check_numbers(args)
    if args.output:
        _check_output(args.output)
    length = None
    if args.seconds is not None:
        length = round(args.seconds * 20)
    elif args.length is not None:
        length = args.length
    pipe = _pipeline(args)
    t0 = time.perf_counter()
    motions = pipe.generate(args.prompt, n_samples=args.samples, seed=args.seed, length=length)
    took = time.perf_counter() - t0
    paths = _outputs(args.output, len(motions)) if args.output else [None] * len(motions)
    for m, path in zip(motions, paths):
        where = ""
        if path is not None:
            save_motion(path, m, fps=args.fps)
            where = f" -> {path}"
        print(f"{m.n_frames} frames ({m.n_frames / m.fps:.1f} s at {m.fps:g} fps), seed {m.seed}{where}")
    print(f"generated {len(motions)} motion(s) in {took:.2f} s (text encoding included)", file=sys.stderr)
    return 0


def parse_edit(spec: str):
    """'CODE[@START:END]' with START/END token steps (4 frames each); END may be empty."""
    from core.motion import Edit

    code, at, rng = spec.rpartition("@") if "@" in spec else (spec, "", "")
    if not at:
        return Edit(code.strip())
    a, sep, b = rng.partition(":")
    try:
        start = int(a) if a.strip() else 0
        end = int(b) if b.strip() else None
        if not sep:
            end = start + 1
    except ValueError:
        raise ValueError(f"{spec!r}: the range after @ must be START:END in token steps, e.g. @10:20") from None
    return Edit(code.strip(), start, end)


def cmd_edit(args) -> int:
    from core.formats.motion_files import load_motion, save_motion
    from core.pipeline_eval import edit_effect

    _check_numbers(args)
    _check_output(args.output)
    edits = [parse_edit(s) for s in args.set]
    pipe = _pipeline(args)
    motion = load_motion(args.input, pipe, prompt=args.prompt)
    t0 = time.perf_counter()
    out = pipe.edit(motion, edits, keep_residuals_outside=not args.all_residuals, seed=args.seed,
                    guided=not args.no_guidance)
    took = time.perf_counter() - t0
    save_motion(args.output, out, fps=args.fps)
    r = edit_effect(motion, out, edits)
    print(f"edited {r['steps']} step(s) in {took * 1000:.0f} ms -> {args.output}")
    print(f"the new code shows in {100 * r['shown']:.0f} % of the edited steps (re-parsed from the joints); "
          f"outside the edit the pose moved {r['outside_mean_mm']:.1f} mm on average (max "
          f"{r['outside_max_mm']:.1f}) relative to the pelvis, the path {r['root_drift_mm']:.0f} mm")
    return 0


def cmd_codes(args) -> int:
    from core import posecodes as pc

    text = " ".join(args.search or [])
    codes = pc.find_codes(text) if text else pc.CODES
    for c in codes:
        print(f"{c.index:3d}  {pc.GROUPS[c.group].name:45s}  {c.name}")
    if not codes:
        print(f"no pose code matches {text!r}", file=sys.stderr)
        return 1
    return 0


def register(sub) -> None:
    s = sub.add_parser("generate", help="text -> motion (.npy joints, .bvh or .json pose codes)")
    s.add_argument("prompt")
    s.add_argument("-o", "--output", help="file to write; the extension picks the format")
    s.add_argument("--model", help="model folder (default: the built-in model)")
    s.add_argument("--samples", type=int, default=1, help="motions to generate (files get _0, _1, ...)")
    s.add_argument("--seed", type=int, help="same seed, same motion (default: random, printed)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--length", type=int, help="frames at 20 fps (default: the model decides)")
    g.add_argument("--seconds", type=float, help="length in seconds")
    s.add_argument("--temperature", type=float, help="pose-code sampling temperature (default 1; 0 = greedy)")
    s.add_argument("--top-k", type=int, help="sample among the k likeliest codes of each group")
    s.add_argument("--fps", type=float, help="frame rate of a .bvh output (default 20)")
    s.add_argument("--device", help="cpu | cuda")
    s.set_defaults(func=cmd_generate)

    s = sub.add_parser("edit", help="change pose codes of a motion and re-predict its residual detail")
    s.add_argument("input", help="a .json written by generate, or joints .npy, or a .bvh")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("--set", action="append", required=True, metavar="CODE[@START:END]",
                   help="make CODE (a name from `pgr2m codes`, or its id) active on token steps "
                        "START..END-1 (4 frames each); repeatable")
    s.add_argument("--prompt", help="text condition for the residual detail (default: the saved prompt)")
    s.add_argument("--no-guidance", action="store_true",
                   help="only re-predict residual codes with the Refine Transformer; faster, but the "
                        "asked code often does not show (see docs/generation.md)")
    s.add_argument("--all-residuals", action="store_true",
                   help="re-predict residual codes everywhere, not only inside the edited steps")
    s.add_argument("--model")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--temperature", type=float)
    s.add_argument("--fps", type=float)
    s.add_argument("--device")
    s.set_defaults(func=cmd_edit)

    s = sub.add_parser("codes", help="list the 392 pose codes (optionally those matching a text)")
    s.add_argument("search", nargs="*")
    s.set_defaults(func=cmd_codes)
