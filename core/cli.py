"""The headless command line: ``pgr2m <command> ...``.

Known problems (bad files, missing folders) print one clear line and exit with status 2;
``--debug`` shows the traceback of anything unexpected.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path


class _Bar:
    """tqdm progress for callbacks of the form (done, total, message)."""

    def __init__(self, desc: str):
        from tqdm import tqdm

        self._tqdm = tqdm
        self.bar = None
        self.desc = desc

    def __call__(self, done: int, total: int, message: str = "") -> None:
        if total <= 0:
            print(f"{self.desc}: {message}", file=sys.stderr)
            return
        if self.bar is None or self.bar.total != total:
            if self.bar:
                self.bar.close()
            self.bar = self._tqdm(total=total, desc=self.desc, unit="clip", file=sys.stderr, dynamic_ncols=True)
            self.bar.update(done)
        else:
            self.bar.update(done - self.bar.n)

    def close(self):
        if self.bar:
            self.bar.close()


def _joint_map_arg(value: str | None):
    if value is None or value in ("auto",):
        return None
    from core.formats.retarget import BUILTIN_MAPS, load_joint_map

    if value in BUILTIN_MAPS:
        return value
    return load_joint_map(value)


def cmd_import_bvh(args) -> int:
    from core.data.captions import CaptionError, Templates
    from core.data.importer import import_bvh_folder

    labels = None
    if args.labels:
        try:
            labels = json.loads(Path(args.labels).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CaptionError(f"{args.labels}: labels file not found") from None
        except ValueError as exc:
            raise CaptionError(f"{args.labels}: not valid JSON ({exc})") from None
        if not isinstance(labels, dict) or not all(isinstance(v, dict) for v in labels.values()):
            raise CaptionError(f"{args.labels}: expected {{clip id: {{label: value}}}}")
    templates = Templates.load(args.templates) if args.templates else None
    bar = _Bar("importing")
    try:
        report = import_bvh_folder(args.source, args.out, labels=labels, templates=templates,
                                   joint_map=_joint_map_arg(args.joint_map), scale=args.scale,
                                   fps=args.fps, group_by=args.group_by, workers=args.workers, progress=bar)
    finally:
        bar.close()
    print(report.summary())
    return 0 if report.converted or report.skipped_existing else 2


def cmd_import_bandai_namco(args) -> int:
    from core.data import bandai_namco

    bar = _Bar("Bandai Namco")
    try:
        report = bandai_namco.prepare(args.out, args.archives, workers=args.workers, progress=bar)
    finally:
        bar.close()
    print(report.summary())
    print(f"licence: {bandai_namco.ATTRIBUTION}")
    return 0


def cmd_dataset_info(args) -> int:
    from core.data.humanml3d import HumanML3DFolder
    from core.data.stats import format_stats, posecode_stats

    bar = _Bar("loading")
    try:
        ds = HumanML3DFolder(args.folder, args.split, progress=bar)
    finally:
        bar.close()
    stats = posecode_stats([r.codes for r in ds.records], fps=ds.fps)
    frames = sum(r.n_frames for r in ds.records)
    print(f"{args.folder} [{args.split}]: {len(ds)} clips, {frames} frames ({frames / ds.fps / 60:.1f} min at "
          f"{ds.fps:g} fps), {sum(len(r.captions) for r in ds.records)} captions, skeleton {ds.skeleton.name}")
    if ds.problems:
        print(f"{len(ds.problems)} problem(s):")
        for p in ds.problems[:20]:
            print(f"  {p}")
    print(format_stats(stats, top=args.top))
    if args.json:
        from core import atomic

        atomic.write_text(args.json, json.dumps(stats, indent=1))
    return 0


def _train_config(args):
    from core.train.config import TrainConfig
    from core.train.stages import STAGE_ORDER, default_config

    if args.config and Path(args.config).suffix == ".json":
        cfg = TrainConfig.load(args.config)
    else:
        preset = args.config or "small"
        cfg = TrainConfig(stage=args.stage, preset=preset, **default_config(args.stage, preset))
    d = cfg.to_dict()
    d["stage"] = args.stage
    for key in ("data", "out", "device"):
        if getattr(args, key):
            d[key] = getattr(args, key)
    if args.max_steps is not None:
        d["max_steps"] = args.max_steps
    cfg = TrainConfig.from_dict(d).override(args.set or [])
    if not cfg.out:
        raise ValueError("--out is required: the folder for checkpoints, logs and the finished model")
    if not cfg.data and args.stage in STAGE_ORDER:
        raise ValueError("--data is required: a HumanML3D-format dataset folder")
    return cfg


class _StopOnSigterm:
    """SIGTERM (the app's Cancel) ends training cleanly with a checkpoint at the current step;
    before the loop first polls (data loading), it interrupts at once."""

    requested = False

    def __init__(self):
        self.polling = False

    def __enter__(self):
        import signal

        self._installed = False
        try:
            self._old = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True
        except ValueError:                      # not the main thread
            pass
        return self

    def __exit__(self, *exc):
        import signal

        if self._installed:
            signal.signal(signal.SIGTERM, self._old if self._old is not None else signal.SIG_DFL)

    def _handle(self, signum, frame):
        if not self.polling:
            raise KeyboardInterrupt
        _StopOnSigterm.requested = True

    def __call__(self) -> bool:
        self.polling = True
        return _StopOnSigterm.requested


def cmd_train(args) -> int:
    import os

    if args.stage == "all":
        return cmd_train_all(args)
    if getattr(args, "tokenizer", None):
        args.set = list(args.set or []) + [f"extra.tokenizer={args.tokenizer}"]

    from core.train.loop import train
    from core.train.stages import get_stage

    cfg = _train_config(args)
    stage = get_stage(args.stage)
    rank0 = int(os.environ.get("RANK", "0")) == 0
    bar = None
    if rank0 and not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=cfg.max_steps, desc=f"train {args.stage}", unit="step", file=sys.stderr, dynamic_ncols=True)

    def progress(event):
        if bar is None:
            return
        if event["kind"] == "log":
            bar.update(event["step"] - bar.n)
            bar.set_postfix(loss=f"{event['loss']:.4f}", lr=f"{event['lr']:.2e}")
        elif event["kind"] == "val":
            shown = {k: v for k, v in event.items() if k not in ("kind", "step") and isinstance(v, (int, float))}
            bar.write(f"step {event['step']}: " + ", ".join(f"{k} {v:.4g}" for k, v in shown.items()))

    try:
        with _StopOnSigterm() as stop:
            result = train(stage, cfg, progress=progress, should_stop=stop, resume=args.resume)
    finally:
        if bar is not None:
            bar.close()
    if result.status == "cancelled":
        print(f"cancelled at step {result.step}; run the same command again to resume", flush=True)
        return 130
    if rank0:
        print(f"{result.status} at step {result.step}; best {get_stage(args.stage).best_metric} "
              f"{result.best if result.best is not None else '-'}; run folder {result.out}")
    return 0


def cmd_train_all(args) -> int:
    """Every stage in order into OUT/<stage> (core.train.all_stages); OUT is then a model folder."""
    import argparse as _ap

    from core.train.all_stages import plan, stage_done, stage_list

    stages = stage_list(args.stages)
    if not args.out or not args.data:
        raise ValueError("train all needs --data and --out")
    for run in plan(args.out, stages, args.set):
        sub = _ap.Namespace(**{**vars(args), "stage": run.stage, "out": str(run.folder), "set": run.overrides,
                               "tokenizer": None, "resume": run.resume})
        cfg = _train_config(sub)
        if stage_done(run.folder, cfg.max_steps):
            print(f"{run.stage}: already trained ({run.folder}); skipped")
            continue
        if _StopOnSigterm.requested:              # cancelled while the last stage exported
            return 130
        print(f"== {run.stage} ==", flush=True)
        if cmd_train(sub) != 0:
            return 130
    print(f"model folder: {args.out} (use --model {args.out})")
    return 0


def cmd_evaluate(args) -> int:
    if args.what in ("generation", "edits"):
        return _evaluate_model(args)
    from core.eval.tokenizer_eval import evaluate_tokenizer, format_table

    if not args.model:
        raise ValueError("evaluate tokenizer needs --model DIR")
    bar = _Bar("evaluating")
    try:
        result = evaluate_tokenizer(args.model, args.data, split=args.split, evaluator_dir=args.evaluator,
                                    device=args.device or "cpu", progress=bar, t2m_dir=args.t2m_evaluator,
                                    glove_dir=args.glove)
    finally:
        bar.close()
    print(f"{args.model} on {args.data} [{args.split}], {result['clips']} clips")
    print(format_table(result))
    if args.json:
        from core import atomic

        atomic.write_text(args.json, json.dumps(result, indent=1))
    return 0


def _evaluate_model(args) -> int:
    from core.pipeline_eval import evaluate_edits, evaluate_generation, format_generation

    bar = _Bar("evaluating")
    try:
        if args.what == "generation":
            result = evaluate_generation(args.model, args.data, split=args.split, evaluator_dir=args.evaluator,
                                         repeats=args.repeats, mm_captions=args.mm_captions,
                                         device=args.device or "cpu", progress=bar, max_clips=args.max_clips)
        else:
            result = evaluate_edits(args.model, args.data, split=args.split, n_edits=args.edits,
                                    device=args.device or "cpu", progress=bar)
    finally:
        bar.close()
    print(f"{args.model or 'built-in model'} on {args.data} [{args.split}]")
    if args.what == "generation":
        print(f"{result['clips']} clips, {result['repeats']} repeats (mean ± 95 % interval)")
        print(format_generation(result))
    else:
        s = result["summary"]
        print(f"{result['edits']} random one-group edits of 4-10 steps on generated motions:")
        print("  share of edited steps that show the new code (exactly; or it or a neighbouring bin), that")
        print("  moved toward it, and how far the pose outside the edit moved:")
        for key, name in (("guided", "guided edit (default)"), ("refine", "refine only (--no-guidance)"),
                          ("pose_only", "pose codes only, no residuals")):
            print(f"    {name:31s} {100 * s[key + '_shown']:5.1f} % shown, {100 * s[key + '_near']:5.1f} % within a bin, "
                  f"{100 * s[key + '_toward']:5.1f} % toward, {s[key + '_outside_mm']:5.1f} mm outside")
        print(f"    {'before the edit (chance)':31s} {100 * s['before_shown']:5.1f} % shown, "
              f"{100 * s['before_near']:5.1f} % within a bin")
        print("  guided edit, by kind of code:")
        for kind, (v, n) in s["by_kind"].items():
            print(f"  {kind:9s} {100 * v:5.1f} % shown ({n} edits)")
    if args.json:
        from core import atomic

        atomic.write_text(args.json, json.dumps(result, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pgr2m", description="PGR²M Studio headless tools")
    p.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("import-bvh", help="turn a BVH folder plus labels into a HumanML3D-format folder")
    s.add_argument("source", help="folder searched recursively for .bvh files")
    s.add_argument("out", help="output dataset folder (resumes if it exists)")
    s.add_argument("--labels", help="JSON {clip id: {label: value}}; default: a .json beside each BVH")
    s.add_argument("--templates", help="label-to-sentence template JSON (see docs/datasets.md)")
    s.add_argument("--joint-map", default="auto", help="bandai-namco, cmu, a JSON map file, or auto (default)")
    s.add_argument("--scale", type=float, default=0.01, help="file units to metres (default 0.01: centimetres)")
    s.add_argument("--fps", type=float, default=20.0, help="output frame rate (default 20)")
    s.add_argument("--group-by", help="label that stratifies the train/val/test split")
    s.add_argument("--workers", type=int, help="processes (default: all cores)")
    s.set_defaults(func=cmd_import_bvh)

    s = sub.add_parser("import-bandai-namco", help="convert the Bandai Namco corpus (both archives)")
    s.add_argument("out", help="output dataset folder")
    s.add_argument("--archives", help="folder with bandai-namco-motion-{1,2}.tar.xz (default: ../shared/data/bandai-namco)")
    s.add_argument("--workers", type=int)
    s.set_defaults(func=cmd_import_bandai_namco)

    s = sub.add_parser("train", help="train a model stage (resumable; multi-GPU with torchrun)")
    s.add_argument("stage", help="tokenizer | evaluator | base | refine | all (or module:Class)")
    s.add_argument("--data", help="HumanML3D-format dataset folder")
    s.add_argument("--config", help="small | paper | a training config JSON (default small)")
    s.add_argument("--out", help="run folder for checkpoints, logs and the finished model")
    s.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    s.add_argument("--max-steps", type=int)
    s.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    s.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a setting, e.g. --set lr=2e-4")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--tokenizer", help="refine: the trained tokenizer folder whose codes it learns")
    s.add_argument("--stages", help="all: comma-separated subset of tokenizer,evaluator,base,refine")
    s.set_defaults(func=cmd_train)

    s = sub.add_parser("evaluate", help="evaluate a trained model on a dataset split")
    s.add_argument("what", choices=["tokenizer", "generation", "edits"])
    s.add_argument("--model", help="exported model folder or run folder (generation/edits: default built-in)")
    s.add_argument("--repeats", type=int, default=5, help="generation: repeats with new seeds (protocol: 20)")
    s.add_argument("--mm-captions", type=int, default=100, help="generation: captions for MultiModality")
    s.add_argument("--max-clips", type=int, help="generation: evaluate only the first N clips")
    s.add_argument("--edits", type=int, default=200, help="edits: how many random edits")
    s.add_argument("--data", required=True, help="HumanML3D-format dataset folder")
    s.add_argument("--split", default="test")
    s.add_argument("--evaluator", help="trained evaluator folder: adds FID and R-precision")
    s.add_argument("--t2m-evaluator", help="the original HumanML3D evaluator folder (checkpoints/t2m), "
                                           "for numbers comparable with published tables; needs --glove")
    s.add_argument("--glove", help="folder with our_vab_data.npy, our_vab_words.pkl, our_vab_idx.pkl")
    s.add_argument("--device", help="cpu | cuda")
    s.add_argument("--json", help="also write the results to this JSON file")
    s.set_defaults(func=cmd_evaluate)

    from core.cli_export import register as register_export
    from core.cli_motion import register

    register(sub)
    register_export(sub)

    s = sub.add_parser("dataset-info", help="clip counts and pose-code statistics of a dataset folder")
    s.add_argument("folder")
    s.add_argument("--split", default="all")
    s.add_argument("--top", type=int, default=10)
    s.add_argument("--json", help="also write the statistics to this JSON file")
    s.set_defaults(func=cmd_dataset_info)
    return p


def _user_errors() -> tuple[type, ...]:
    """The error classes whose message is meant for the user; imported only once something has
    failed (they live beside torch code, which the CLI does not load to start)."""
    from core.eval.t2m_original import T2MEvaluatorError
    from core.text.encoders import TextEncoderError

    return ValueError, OSError, TextEncoderError, T2MEvaluatorError


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s: %(message)s")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:                # noqa: BLE001 - ours get one line, the rest a traceback
        if args.debug or not isinstance(exc, _user_errors()):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
