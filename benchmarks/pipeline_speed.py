"""Speed of the generate / edit pipeline on the CPU: batch 1, 196 frames (49 token steps).

    python benchmarks/pipeline_speed.py [--model DIR] [--precision auto|float32|bfloat16|int8]
                                        [--threads 2] [--repeats 20] [--json out.json]
    python benchmarks/pipeline_speed.py --paper [--precision ...] [--repeats 5] [--skip-nocache]
    python benchmarks/pipeline_speed.py --both ...      (the trained model, then --paper)

Trained model (default; the built-in one unless --model): Pipeline(folder, "cpu", precision=...).
Times the text encoding of one prompt (MiniLM, uncached) apart from the rest; `generate` from a
precomputed condition, split into Base sampling, Refine (all stages) and decode (pose + residual
latents, conv decoder, denormalise + recover_joints) by calling the modules in Pipeline's order;
the whole Pipeline.generate / Pipeline.edit calls; the Base without the key/value cache; and
`edit` of one pose-code group over 10 steps in the middle of the motion: prepared (the motion's
Refine keys and values computed beforehand by Pipeline.prepare_edit, as the app does while the
user looks at a motion) and cold (computed within the edit).

--paper: the paper-size Base (~228 M), Refine (~80 M) and tokenizer with random weights (speed
does not depend on training). Generate-equivalent (Base + Refine + decode) with the float32 Base
without the kv cache (the published code's way; left out with --skip-nocache), float32 with the
cache, and the chosen precision with the cache (the Pipeline's rule: auto = Base int4 at this
size on the CPU, Refine bf16); edit-equivalent (Refine over the edited steps + decode, prepared
and cold); beside the figures of the issue.

Every figure is the median and the 90th percentile over --repeats runs after --warmup runs.
Prints figures, never asserts: targets are marked "met" or "MISSED". A precision that cannot
run here is reported as an error text.
"""

import argparse
import itertools
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from core import posecodes as pc  # noqa: E402
from core.features import denormalize, recover_joints  # noqa: E402
from core.model.precision import PRECISIONS, int8_available, set_precision  # noqa: E402

FRAMES = 196
STEPS = FRAMES // 4             # 49 token steps
EDIT_STEPS = 10
PROMPT = "a person walks forward, turns around and waves the right hand"

# figures from the issue (published code at paper size on a 2-core CPU like this one)
REF_PUBLISHED_GENERATE = 6.2
REF_PUBLISHED_EDIT = 0.33
REF_MOMASK_GENERATE = 0.33
TARGET_SMALL_GENERATE = 0.15
TARGET_SMALL_EDIT = 0.03
TARGET_PAPER_GENERATE = REF_PUBLISHED_GENERATE / 5      # 1.24 s
TARGET_PAPER_EDIT = 0.1
DECODE_PARTS = (("latents", "latents (pose codebook + RVQ values)"), ("convs", "conv decoder"),
                ("recover_joints", "denormalise + recover_joints"))

now = time.perf_counter


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def precisions(choice: str, base_params: int = 0) -> dict[str, str]:
    """The pipeline's own rule (core.model.precision.auto_precision) on the CPU for auto: Base int8
    (one step at a time: memory-bound), Refine bf16 where the CPU has native bf16."""
    if choice == "auto":
        from core.model.precision import auto_precision

        base, refine = auto_precision(torch.device("cpu"), base_params)
        return {"base": base, "refine": refine}
    return {"base": choice, "refine": choice}


# --------------------------------------------------------------------------
# timing and printing

class Figures:
    """Named lists of seconds, printed as median / p90 in milliseconds."""

    def __init__(self):
        self.runs: dict[str, list[float]] = {}
        self.errors: dict[str, str] = {}
        self.notes: dict[str, str] = {}

    def measure(self, name: str, fn, repeats: int, warmup: int) -> None:
        """Time fn under `name`; if it returns {part: seconds}, also each part as name_part.
        An exception is recorded under `name` (printed as FAILED), not raised."""
        try:
            for _ in range(warmup):
                fn()
            for _ in range(repeats):
                t0 = now()
                parts = fn()
                self.runs.setdefault(name, []).append(now() - t0)
                for k, v in (parts.items() if isinstance(parts, dict) else ()):
                    self.runs.setdefault(f"{name}_{k}", []).append(v)
        except Exception as exc:  # noqa: BLE001 - printed, the rest still runs
            self.errors[name] = error_text(exc)

    def median(self, key: str) -> float:
        return float(np.median(self.runs[key]))

    def line(self, key: str, label: str, target_s: float | None = None, ref: str = "") -> None:
        if key in self.errors:
            print(f"  {label:<46} FAILED: {self.errors[key]}")
            return
        if key not in self.runs:
            return
        med, p90 = self.median(key), float(np.percentile(self.runs[key], 90))
        tail = "" if target_s is None else \
            f"  target <= {target_s * 1000:.0f} ms: {'met' if med <= target_s else 'MISSED'}"
        tail += f"  [{ref}]" if ref else ""
        print(f"  {label:<46} median {med * 1000:9.1f} ms   p90 {p90 * 1000:9.1f} ms{tail}")

    def parts(self, key: str, n_stages: int, total: str = "total", target_s=None, ref="", decode=True,
              cache=True) -> None:
        """The lines of one generate / edit figure and its parts (those measured)."""
        self.line(key, total, target_s, ref)
        self.line(f"{key}_prepare", "  prepare (Refine keys, values of the motion)")
        self.line(f"{key}_base", f"  Base sampling, {STEPS} steps ({'kv cache' if cache else 'no cache'})")
        self.line(f"{key}_refine", f"  Refine, {n_stages} stages")
        self.line(f"{key}_decode", "  decode")
        for part, label in DECODE_PARTS if decode else ():
            self.line(f"{key}_decode_{part}", "    " + label)

    def speedup(self, label: str, slow: str, fast: str) -> None:
        if slow in self.runs and fast in self.runs:
            x = self.median(slow) / self.median(fast)
            self.notes[f"speedup_{fast}_over_{slow}"] = f"{x:.2f}"
            print(f"  {label:<46} x{x:.2f}")

    def to_json(self) -> dict:
        res = {k: {"median_ms": self.median(k) * 1000, "p90_ms": float(np.percentile(v, 90)) * 1000,
                   "n": len(v), "runs_ms": [x * 1000 for x in v]} for k, v in self.runs.items()}
        return {"results": res, "errors": dict(self.errors), "notes": dict(self.notes)}


def machine() -> dict:
    info = {"cpu": platform.processor() or "?", "logical_cpus": os.cpu_count(), "flags": [],
            "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()}
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        info["cpu"] = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("model name")), info["cpu"])
        flags = next((l.split(":", 1)[1].split() for l in lines if l.startswith("flags")), [])
        info["flags"] = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    except OSError:
        pass
    try:
        info["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        info["loadavg"] = None
    info.update(python=platform.python_version(), torch=torch.__version__, torch_threads=torch.get_num_threads(),
                torch_interop_threads=torch.get_num_interop_threads(),
                mkldnn=bool(torch.backends.mkldnn.is_available()), int8=int8_available())
    return info


def print_header(info: dict, args, mode: str) -> None:
    print(f"pipeline speed: {mode}; batch 1, {FRAMES} frames ({STEPS} token steps), CPU")
    print(f"  cpu     {info['cpu']}; {info['logical_cpus']} logical CPUs, {info['usable_cpus']} usable; "
          f"flags: {' '.join(info['flags']) or '-'}")
    print(f"  torch   {info['torch']} (python {info['python']}); threads {info['torch_threads']}, "
          f"interop {info['torch_interop_threads']}, oneDNN {'yes' if info['mkldnn'] else 'no'}, "
          f"int8 weights {'yes' if info['int8'] else 'no'}")
    load = info.get("loadavg")
    if load is not None:
        busy = "  (the machine is busy: figures are pessimistic)" if load[0] > 0.5 else ""
        print(f"  load    {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (1/5/15 min){busy}")
    reps = args.repeats or "20 (paper size: 5)"
    warm = "3 (paper size: 1)" if args.warmup is None else args.warmup
    print(f"  runs    {reps} timed after {warm} warm-up; median and p90 per figure; --precision {args.precision}")


# --------------------------------------------------------------------------
# the pipeline's steps, called as Pipeline.generate / Pipeline.edit / Pipeline.decode do

class Steps:
    """Base -> Refine -> decode on one condition, timing each part."""

    def __init__(self, base, refine, tokenizer, mean, std, *, temperature=1.0, top_k=None, min_steps=4,
                 refine_temperature=0.0):
        self.base, self.refine, self.tokenizer, self.mean, self.std = base, refine, tokenizer, mean, std
        self.temperature, self.top_k, self.min_steps = temperature, top_k, min_steps
        self.refine_temperature = refine_temperature

    @torch.no_grad()
    def decode(self, pose: np.ndarray, residual: np.ndarray) -> dict[str, float]:
        """tokenizer.decode's calls one by one (pose + residual latents, conv decoder), then
        denormalise + recover_joints (numpy)."""
        t0 = now()
        p = torch.from_numpy(np.asarray(pose, dtype=np.float32))[None]
        idx = torch.from_numpy(np.asarray(residual, dtype=np.int64))[None]
        latent = self.tokenizer.pose_latents(p) + self.tokenizer.residual_latents(idx, None)
        t1 = now()
        feats = self.tokenizer.decoder(latent)[0].float().cpu().numpy()
        t2 = now()
        joints = recover_joints(denormalize(feats, self.mean, self.std)).astype(np.float32)
        t3 = now()
        if joints.shape != (FRAMES, 22, 3):
            raise RuntimeError(f"decoded {joints.shape}, expected ({FRAMES}, 22, 3)")
        return {"decode": t3 - t0, "decode_latents": t1 - t0, "decode_convs": t2 - t1,
                "decode_recover_joints": t3 - t2}

    @torch.no_grad()
    def base_sample(self, cond, seed, use_cache=True):
        gen = torch.Generator().manual_seed(seed)
        lengths = torch.full((cond.shape[0],), STEPS, dtype=torch.long)
        return self.base.sample(cond, lengths, temperature=self.temperature, top_k=self.top_k,
                                min_steps=self.min_steps, generator=gen, use_cache=use_cache), gen

    @torch.no_grad()
    def generate(self, cond, seed, use_cache=True) -> dict[str, float]:
        t0 = now()
        s, gen = self.base_sample(cond, seed, use_cache)
        pose = s.tokens[..., :pc.N_CODES] > 0.5
        t1 = now()
        idx = self.refine.sample(cond, pose, s.lengths, temperature=self.refine_temperature, generator=gen)
        t2 = now()
        n = int(s.lengths[0])
        return {"base": t1 - t0, "refine": t2 - t1,
                **self.decode(pose[0, :n].cpu().numpy(), idx[0, :, :n].cpu().numpy())}

    @torch.no_grad()
    def prepare(self, cond, pose: np.ndarray, residual: np.ndarray) :
        """Pipeline.prepare_edit: the unedited motion's Refine keys and values."""
        return self.refine.context(cond, torch.from_numpy(np.asarray(pose, dtype=bool))[None],
                                   torch.from_numpy(np.asarray(residual, np.int64))[None])

    @torch.no_grad()
    def edit(self, cond, pose: np.ndarray, residual: np.ndarray, code: int, start: int, end: int,
             context=None):
        """Pipeline.edit with keep_residuals_outside=True and seed 0. Without a context (a motion
        not prepared beforehand) it is computed first, timed as "prepare"."""
        t0 = now()
        if context is None:
            context = self.prepare(cond, pose, residual)
        t1 = now()
        pose = np.array(pose, dtype=bool, copy=True)
        g = pc.GROUPS[pc.CODES[code].group]
        pose[start:end, g.first_code:g.first_code + g.n_codes] = False
        pose[start:end, code] = True
        idx = self.refine.sample_steps(cond, torch.from_numpy(pose)[None],
                                       torch.from_numpy(np.asarray(residual, np.int64))[None],
                                       torch.arange(start, end), context, temperature=self.refine_temperature,
                                       generator=torch.Generator().manual_seed(0))
        out = {"refine": now() - t1, **self.decode(pose, idx[0].cpu().numpy())}
        if t1 - t0 > 1e-4:
            out["prepare"] = t1 - t0
        return out


def edit_target(pose: np.ndarray, fig: Figures) -> tuple[int, int, int]:
    """Group 0, code 8 of it (another one if the motion already has code 8 there), 10 middle steps."""
    g = pc.GROUPS[0]
    start = (len(pose) - EDIT_STEPS) // 2
    end = start + EDIT_STEPS
    code = g.first_code + min(8, g.n_codes - 1)
    if pose[start:end, code].all():
        code = g.first_code + (code - g.first_code + 1) % g.n_codes
    fig.notes["edit"] = f"code {code} ({pc.CODES[code].name}), steps {start}..{end - 1} of {len(pose)}"
    return code, start, end


def text_encoding(fig: Figures, repeats: int, warmup: int) -> torch.Tensor | None:
    """Time the MiniLM encoding of one prompt (encode_conditions, no cache); its condition."""
    from core.model.conditioning import encode_conditions
    from core.text.encoders import load_text_encoder

    try:
        enc = load_text_encoder("minilm").load()
    except Exception as exc:  # noqa: BLE001 - printed, the rest still runs
        fig.errors["text"] = error_text(exc)
        return None
    fig.measure("text", lambda: encode_conditions(enc, [PROMPT]), repeats, warmup)
    return encode_conditions(enc, [PROMPT])


def nparams(m) -> float:
    return sum(p.numel() for p in m.parameters()) / 1e6


def counts(args, paper: bool) -> tuple[int, int]:
    return (args.repeats or (5 if paper else 20),
            args.warmup if args.warmup is not None else (1 if paper else 3))


# --------------------------------------------------------------------------
# the trained model

def run_model(args, fig: Figures) -> int:
    from core.motion import Edit
    from core.pipeline import DEFAULT_MODEL, Pipeline, PipelineError

    folder = Path(args.model) if args.model else DEFAULT_MODEL
    reps, warm = counts(args, paper=False)
    print(f"\nmodel: {folder}")
    t0 = now()
    try:
        pipe = Pipeline(folder, "cpu", precision=args.precision)
    except (PipelineError, OSError) as exc:
        print(f"  cannot load the model: {exc}")
        print("  (pass a complete folder with tokenizer/, base/ and refine/ via --model, or use --paper)")
        fig.errors["load"] = str(exc)
        return 2
    except ValueError as exc:              # a precision this machine cannot run
        print(f"  cannot load the model with --precision {args.precision}: {error_text(exc)}")
        fig.errors["load"] = error_text(exc)
        return 2
    fig.notes.update(load_s=f"{now() - t0:.2f}", repeats=str(reps), warmup=str(warm),
                     precision_base=pipe.precision["base"], precision_refine=pipe.precision["refine"])
    n_stages = pipe.refine.config.n_stages
    print(f"  loaded in {now() - t0:.2f} s; Base {nparams(pipe.base):.2f} M, Refine {nparams(pipe.refine):.2f} M "
          f"({n_stages} stages), tokenizer {nparams(pipe.tokenizer):.2f} M parameters")
    print(f"  precision: Base {pipe.precision['base']}, Refine {pipe.precision['refine']} "
          f"(--precision {args.precision}); tokenizer float32")
    if pipe.max_frames < FRAMES:
        print(f"  this model makes at most {pipe.max_frames} frames; {FRAMES} wanted")
        return 2

    text_encoding(fig, reps, warm)
    cond = pipe.encode_text([PROMPT])
    steps = Steps(pipe.base, pipe.refine, pipe.tokenizer, pipe.mean, pipe.std, temperature=pipe.temperature,
                  top_k=pipe.top_k, min_steps=pipe.min_steps, refine_temperature=pipe.refine_temperature)
    seed = itertools.count(1000).__next__
    fig.measure("gen", lambda: steps.generate(cond, seed()), reps, warm)
    fig.measure("pipeline_generate", lambda: pipe.generate(PROMPT, seed=seed(), length=FRAMES, cond=cond),
                reps, warm)
    if not args.skip_nocache:
        fig.measure("base_nocache", lambda: steps.base_sample(cond, seed(), use_cache=False), reps, warm)

    motion = pipe.generate(PROMPT, seed=0, length=FRAMES, cond=cond)[0]
    code, start, end = edit_target(motion.pose_codes, fig)
    econd = torch.from_numpy(motion.cond)[None]
    context = steps.prepare(econd, motion.pose_codes, motion.residual_codes)
    fig.measure("edit", lambda: steps.edit(econd, motion.pose_codes, motion.residual_codes, code, start, end,
                                           context), reps, warm)
    fig.measure("edit_cold", lambda: steps.edit(econd, motion.pose_codes, motion.residual_codes, code, start, end),
                reps, warm)
    pipe.prepare_edit(motion)
    fig.measure("pipeline_edit", lambda: pipe.edit(motion, [Edit(code, start, end)], seed=0, guided=False),
                reps, warm)

    def cold_edit():
        pipe._edit_contexts.clear()         # as for a motion not prepared beforehand
        return pipe.edit(motion, [Edit(code, start, end)], seed=0, guided=False)
    fig.measure("pipeline_edit_cold", cold_edit, reps, warm)
    fig.measure("pipeline_edit_guided", lambda: pipe.edit(motion, [Edit(code, start, end)], seed=0), reps, warm)

    print(f"  prompt: {PROMPT!r}; generated {motion.n_frames} frames ({motion.n_steps} steps)")
    print(f"  edit: {fig.notes['edit']}")
    print("\ntext")
    fig.line("text", "text encoding, 1 prompt (MiniLM, uncached)")
    print("\ngenerate (from a precomputed condition, no text encoding)")
    fig.line("pipeline_generate", "Pipeline.generate(cond=..., length=196)", TARGET_SMALL_GENERATE)
    fig.parts("gen", n_stages, "  same steps timed one by one: total")
    fig.line("base_nocache", "Base sampling without the kv cache")
    fig.speedup("kv cache speed-up (Base)", "base_nocache", "gen_base")
    print("\nedit (1 group, 10 steps, residuals kept outside)")
    fig.line("pipeline_edit", "Pipeline.edit(guided=False): refine only", TARGET_SMALL_EDIT)
    fig.line("pipeline_edit_cold", "  the same, motion not prepared (prepare_edit)")
    fig.line("pipeline_edit_guided", f"Pipeline.edit: refine + guidance ({pipe.edit_guidance} iterations)")
    fig.parts("edit", n_stages, "  same steps timed one by one: total", decode=False)
    fig.parts("edit_cold", n_stages, "  same, not prepared: total", decode=False)
    return 0


# --------------------------------------------------------------------------
# the paper-size configuration, random weights

def run_paper(args, fig: Figures) -> int:
    from core.model.base_transformer import BaseTransformer
    from core.model.configs import named_config
    from core.model.refine_transformer import RefineTransformer
    from core.model.tokenizer import PoseGuidedTokenizer

    reps, warm = counts(args, paper=True)
    print("\npaper-size configuration, random weights")
    torch.manual_seed(0)
    t0 = now()
    base = BaseTransformer(named_config("base", "paper")).eval()
    chosen = precisions(args.precision, sum(w.numel() for w in base.parameters()))
    refine = RefineTransformer(named_config("refine", "paper")).eval()
    tokenizer = PoseGuidedTokenizer(named_config("tokenizer", "paper")).eval()
    n_stages = refine.config.n_stages
    print(f"  built in {now() - t0:.1f} s; Base {nparams(base):.1f} M, Refine {nparams(refine):.1f} M "
          f"({n_stages} stages), tokenizer {nparams(tokenizer):.1f} M parameters")
    print(f"  chosen precision: Base {chosen['base']}, Refine {chosen['refine']} (--precision {args.precision}); "
          "float32 measured too")
    fig.notes.update(repeats=str(reps), warmup=str(warm), precision_base=chosen["base"],
                     precision_refine=chosen["refine"])
    mean = np.zeros(tokenizer.config.motion_dim, np.float32)
    std = np.ones(tokenizer.config.motion_dim, np.float32)

    cond = text_encoding(fig, reps, warm)
    if cond is None or cond.shape[-1] != base.config.text_dim:
        cond = torch.nn.functional.normalize(torch.randn(1, base.config.n_text_tokens, base.config.text_dim), dim=-1)
    steps = Steps(base, refine, tokenizer, mean, std)
    seed = itertools.count(1000).__next__

    # the motion to edit, in float32
    s, _ = steps.base_sample(cond, 0)
    pose = (s.tokens[0, :, :pc.N_CODES] > 0.5).numpy()
    with torch.no_grad():
        residual = refine.sample(cond, torch.from_numpy(pose)[None], temperature=0.0)[0].numpy()
    code, start, end = edit_target(pose, fig)
    context = {}

    def edit():
        # the motion prepared once per precision (Pipeline.prepare_edit), as the app does
        if "ctx" not in context:
            context["ctx"] = steps.prepare(cond, pose, residual)
        return steps.edit(cond, pose, residual, code, start, end, context["ctx"])

    def edit_cold():
        context.clear()
        return steps.edit(cond, pose, residual, code, start, end)

    # float32 (the models as built), then the chosen precision (converted in place)
    fig.measure("f32_gen", lambda: steps.generate(cond, seed()), reps, warm)
    fig.measure("f32_edit", edit, reps, warm)
    if not args.skip_nocache:
        fig.measure("f32_nocache_gen", lambda: steps.generate(cond, seed(), use_cache=False),
                    args.nocache_repeats or reps, min(warm, 1))
    same = chosen == {"base": "float32", "refine": "float32"}
    if not same:
        try:
            set_precision(base, chosen["base"])
            set_precision(refine, chosen["refine"])
        except Exception as exc:  # noqa: BLE001 - e.g. int8 weights unavailable in this torch
            fig.errors["chosen_gen"] = error_text(exc)
            if chosen["refine"] != "float32":
                fig.errors["chosen_edit"] = error_text(exc)
        else:
            fig.measure("chosen_gen", lambda: steps.generate(cond, seed()), reps, warm)
            if chosen["refine"] != "float32":
                context.clear()
                fig.measure("chosen_edit", edit, reps, warm)
                fig.measure("chosen_edit_cold", edit_cold, reps, warm)

    pub = f"published {REF_PUBLISHED_GENERATE:.1f} s, MoMask {REF_MOMASK_GENERATE:.2f} s"
    label = f"Base {chosen['base']}, Refine {chosen['refine']}"
    print("\nreference (from the issue; published code at paper size on a 2-core CPU like this):")
    print(f"  published code: generate ~{REF_PUBLISHED_GENERATE} s, edit ~{REF_PUBLISHED_EDIT} s; "
          f"MoMask: generate ~{REF_MOMASK_GENERATE} s")
    print(f"  targets: paper generate <= {REF_PUBLISHED_GENERATE} / 5 = {TARGET_PAPER_GENERATE:.2f} s, "
          f"edit <= {TARGET_PAPER_EDIT} s")
    print(f"  edit: {fig.notes['edit']}")
    print("\ntext")
    fig.line("text", "text encoding, 1 prompt (MiniLM, uncached)")
    print("\ngenerate-equivalent (Base + Refine + decode, no text encoding)")
    print("  -- float32, no kv cache (the published code's way)" + (": left out (--skip-nocache)"
                                                                       if args.skip_nocache else ""))
    if not args.skip_nocache:
        fig.parts("f32_nocache_gen", n_stages, target_s=TARGET_PAPER_GENERATE, ref=pub, decode=False,
                  cache=False)
    print("  -- float32 + kv cache")
    fig.parts("f32_gen", n_stages, target_s=TARGET_PAPER_GENERATE, ref=pub)
    if not same:
        print(f"  -- chosen precision + kv cache: {label}")
        fig.parts("chosen_gen", n_stages, target_s=TARGET_PAPER_GENERATE, ref=pub, decode=False)
    fig.speedup("kv cache speed-up (float32 Base)", "f32_nocache_gen_base", "f32_gen_base")
    fig.speedup(f"{chosen['base']} Base over float32 Base (cache)", "f32_gen_base", "chosen_gen_base")
    fig.speedup("generate: chosen over float32 (cache)", "f32_gen", "chosen_gen")
    fig.speedup("generate: chosen + cache over published way", "f32_nocache_gen", "chosen_gen")
    print("\nedit-equivalent (1 group, 10 steps: Refine over those steps + decode; the motion prepared)")
    print("  -- float32" + (" (the chosen Refine precision)" if chosen["refine"] == "float32" else ""))
    fig.parts("f32_edit", n_stages, target_s=TARGET_PAPER_EDIT, ref=f"published {REF_PUBLISHED_EDIT:.2f} s",
              decode=False)
    if "chosen_edit" in fig.runs or "chosen_edit" in fig.errors:
        print(f"  -- chosen precision: Refine {chosen['refine']}")
        fig.parts("chosen_edit", n_stages, target_s=TARGET_PAPER_EDIT, ref=f"published {REF_PUBLISHED_EDIT:.2f} s",
                  decode=False)
        fig.speedup("edit: chosen over float32", "f32_edit", "chosen_edit")
        print("  -- chosen precision, motion not prepared beforehand")
        fig.parts("chosen_edit_cold", n_stages, ref=f"published {REF_PUBLISHED_EDIT:.2f} s", decode=False)
    return 0


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description="CPU speed of generate / edit (batch 1, 196 frames); prints figures.")
    ap.add_argument("--model", help="model folder with tokenizer/, base/, refine/ (default: the built-in one)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--paper", action="store_true", help="the paper-size configuration with random weights instead")
    mode.add_argument("--both", action="store_true", help="the trained model, then the paper-size configuration")
    ap.add_argument("--precision", choices=("auto",) + PRECISIONS, default="auto",
                    help="transformer weights (default auto: Base int8 on the CPU, Refine float32)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("--repeats", type=int, help="timed runs per figure (default 20; 5 for the paper size)")
    ap.add_argument("--warmup", type=int, help="untimed runs first (default 3; 1 for the paper size)")
    ap.add_argument("--nocache-repeats", type=int,
                    help="timed runs of the paper-size generate without kv cache (default: --repeats)")
    ap.add_argument("--skip-nocache", action="store_true", help="leave out the (slow) Base without kv cache")
    ap.add_argument("--json", metavar="PATH", help="also write the figures (and each run) to this file")
    args = ap.parse_args()
    if any(v is not None and v < 1 for v in (args.repeats, args.nocache_repeats)) or args.threads < 1 \
            or (args.warmup is not None and args.warmup < 0):
        ap.error("--repeats, --nocache-repeats and --threads must be >= 1, --warmup >= 0")

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    info = machine()
    sections = ["model", "paper"] if args.both else ["paper"] if args.paper else ["model"]
    print_header(info, args, " + ".join({"model": "trained model", "paper": "paper-size, random weights"}[s]
                                        for s in sections))
    figs, rc, t0 = {}, 0, now()
    for s in sections:
        figs[s] = Figures()
        rc = max(rc, (run_paper if s == "paper" else run_model)(args, figs[s]))
    print(f"\n(benchmark took {now() - t0:.1f} s)")
    if args.json:
        out = {"mode": "both" if args.both else sections[0], "machine": info,
               "settings": {"threads": args.threads, "repeats": args.repeats, "warmup": args.warmup,
                            "precision": args.precision, "frames": FRAMES, "steps": STEPS, "batch": 1,
                            "prompt": PROMPT, "model": str(args.model or "built-in")},
               "references_s": {k.lower(): v for k, v in globals().items() if k.startswith(("REF_", "TARGET_"))},
               "sections": {s: f.to_json() for s, f in figs.items()}}
        Path(args.json).write_text(json.dumps(out, indent=1), encoding="utf-8")
        print(f"figures written to {args.json}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
