"""Evaluate text-to-motion generation and pose-code edits on a dataset split.

Generation (method-facts §1.10): one caption per test clip, lengths from the Base
Transformer's END, batches of 32; FID, R-precision, matching score (MM-Dist) and Diversity
against the real test motions, for the Base Transformer alone (pose codes decoded without
residuals) and the full pipeline, repeated with different seeds (mean ± 95 % interval);
MultiModality from several generations of the same caption.

Edits: on generated motions, one group's code set over a range of steps; how often the
re-parsed output shows the new code inside the range, and how far the pose moves outside.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core import posecodes as pc
from core.data.humanml3d import HumanML3DFolder
from core.eval import metrics
from core.eval.tokenizer_eval import OurEvaluator
from core.model.edit_guidance import code_bounds
from core.motion import UNIT, Edit, parsed_steps, steps_showing
from core.pipeline import Pipeline

BATCH = 32


def _diversity(emb, rng) -> float:
    try:
        return metrics.diversity(emb, rng=rng)
    except ValueError:              # too few motions for 100 pairs (tiny test sets)
        return float("nan")


def _evaluator(model_dir, evaluator_dir, device):
    folder = Path(evaluator_dir) if evaluator_dir else Path(model_dir) / "evaluator"
    if not (folder / "config.json").is_file() and not (folder / "model" / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: no trained evaluator; pass --evaluator DIR")
    if (folder / "model" / "config.json").is_file():
        folder = folder / "model"
    return OurEvaluator(folder, device)


@torch.no_grad()
def _generate(pipe: Pipeline, cond: torch.Tensor, gen: torch.Generator):
    """(pose-only features, full features) per caption, from one Base sample."""
    base = pipe.base.sample(cond, temperature=pipe.temperature, top_k=pipe.top_k,
                            min_steps=pipe.min_steps, generator=gen)
    pose = base.tokens[..., :pc.N_CODES] > 0.5
    idx = pipe.refine.sample(cond, pose, base.lengths, temperature=pipe.refine_temperature, generator=gen)
    pose_only, full = [], []
    for b in range(len(cond)):
        n = int(base.lengths[b])
        p = pose[b, :n].cpu().numpy()
        pose_only.append(pipe.decode(p, None)[0])
        full.append(pipe.decode(p, idx[b, :, :n].cpu().numpy())[0])
    return pose_only, full


@torch.no_grad()
def evaluate_generation(model_dir=None, data_dir="", split="test", evaluator_dir=None, repeats=5,
                        mm_captions=100, mm_samples=30, device="cpu", seed=0, progress=None,
                        max_clips=None, **pipe_kw) -> dict:
    pipe = Pipeline(model_dir, device, **pipe_kw)
    ev = _evaluator(pipe.model_dir, evaluator_dir, device)
    data = HumanML3DFolder(data_dir, split)
    records = [r for r in data.records if r.n_frames >= 4 * UNIT][:max_clips]
    rng = np.random.default_rng(seed)
    bs = min(BATCH, len(records))
    real = np.concatenate([ev.motion(r.features[:pipe.max_frames]) for r in records])
    total = repeats * len(records) + mm_captions * mm_samples
    done = 0
    runs = {"base": [], "full": []}
    for rep in range(repeats):
        captions = [r.captions[int(rng.integers(len(r.captions)))] for r in records]
        texts = ev.texts(captions)
        cond = pipe.encode_text([c.text for c in captions])
        gen = torch.Generator().manual_seed(seed * 1000 + rep)
        emb = {"base": [], "full": []}
        for i in range(0, len(records), bs):
            pose_only, full = _generate(pipe, cond[i:i + bs], gen)
            emb["base"] += [ev.motion(f) for f in pose_only]
            emb["full"] += [ev.motion(f) for f in full]
            done += len(pose_only)
            if progress:
                progress(done, total, f"repeat {rep + 1}/{repeats}")
        for k in runs:
            e = np.concatenate(emb[k])
            top = metrics.r_precision(texts, e, top_k=3, batch_size=bs)
            runs[k].append({"fid": metrics.fid(real, e), "top1": top[0], "top2": top[1], "top3": top[2],
                            "matching": metrics.matching_score(texts, e, batch_size=bs),
                            "diversity": _diversity(e, rng)})
        if rep == 0:
            real_texts = texts
    result = {"split": split, "clips": len(records), "repeats": repeats, "r_precision_batch": bs}
    for k in runs:
        result[k] = {m: metrics.mean_ci([r[m] for r in runs[k]]) for m in runs[k][0]}
    top = metrics.r_precision(real_texts, real, top_k=3, batch_size=bs)
    result["real"] = {"top1": top[0], "top2": top[1], "top3": top[2],
                      "matching": metrics.matching_score(real_texts, real, batch_size=bs),
                      "diversity": _diversity(real, np.random.default_rng(seed))}
    if mm_captions and mm_samples > 5:
        pick = rng.choice(len(records), min(mm_captions, len(records)), replace=False)
        mm = {"base": [], "full": []}
        gen = torch.Generator().manual_seed(seed + 7)
        for i in pick:
            cond = pipe.encode_text([records[i].captions[0].text]).repeat(mm_samples, 1, 1)
            pose_only, full = _generate(pipe, cond, gen)
            mm["base"].append(np.concatenate([ev.motion(f) for f in pose_only]))
            mm["full"].append(np.concatenate([ev.motion(f) for f in full]))
            done += mm_samples
            if progress:
                progress(done, total, "multimodality")
        for k in mm:
            result[k]["multimodality"] = (metrics.multimodality(np.stack(mm[k]), n_pairs=5, rng=rng), 0.0)
    return result


def edit_effect(before, after, edits: list[Edit]) -> dict:
    """Share of edited steps whose re-parsed pose shows the new code ("shown"), shows it or a
    neighbouring bin of its group ("near"), and whose measured value moved toward the asked bin
    ("toward"); how far the joints of unedited frames moved relative to the pelvis (mm); the path
    itself can shift after an edit that changes the gait, reported apart as root drift."""
    parsed = parsed_steps(after)
    was, now = (pc.measure(m.joints)[::UNIT][: after.n_steps] for m in (before, after))
    hits = near = toward = total = 0
    edited = np.zeros(after.n_steps, bool)
    for e in edits:
        shown, n = steps_showing(after, e, parsed)
        code, start, end = e.resolve(after.n_steps)
        g = pc.GROUPS[pc.CODES[code].group]
        ids = parsed[start:end, g.first_code:g.first_code + g.n_codes].argmax(1) + g.first_code
        lo, hi = code_bounds(code)
        miss = lambda v: np.maximum(lo - v, 0.0) + np.maximum(v - hi, 0.0)       # noqa: E731
        hits, total = hits + shown, total + n
        near += int((np.abs(ids - code) <= 1).sum())
        toward += int((miss(now[start:end, g.index]) < miss(was[start:end, g.index])).sum())
        edited[start:end] = True
    outside = np.repeat(~edited, UNIT)[: after.n_frames]
    local = lambda j: j - j[:, :1]          # noqa: E731
    moved = np.linalg.norm(local(after.joints) - local(before.joints), axis=-1)[outside]
    drift = np.linalg.norm(after.joints[:, 0] - before.joints[:, 0], axis=-1)[outside]
    n = max(total, 1)
    return {"shown": hits / n, "near": near / n, "toward": toward / n, "steps": total,
            "outside_mean_mm": 1000 * float(moved.mean()) if moved.size else 0.0,
            "outside_max_mm": 1000 * float(moved.max()) if moved.size else 0.0,
            "root_drift_mm": 1000 * float(drift.mean()) if drift.size else 0.0}


@torch.no_grad()
def evaluate_edits(model_dir=None, data_dir="", split="test", n_edits=200, span=(4, 10), device="cpu",
                   seed=0, progress=None, **pipe_kw) -> dict:
    """Random one-group edits on motions generated from test captions."""
    pipe = Pipeline(model_dir, device, **pipe_kw)
    data = HumanML3DFolder(data_dir, split)
    rng = np.random.default_rng(seed)
    captions = [c.text for r in data.records for c in r.captions[:1]]
    by_kind: dict[str, list[float]] = {}
    rows = []
    for i in range(n_edits):
        m = pipe.generate(captions[int(rng.integers(len(captions)))], seed=int(rng.integers(2**31)), length=160)[0]
        g = pc.GROUPS[int(rng.integers(pc.N_GROUPS))]
        n = int(rng.integers(span[0], span[1] + 1))
        start = int(rng.integers(0, m.n_steps - n + 1))
        current = m.code_ids()[start:start + n, g.index]
        choices = [c for c in g.code_ids if c not in set(current.tolist())] or [c for c in g.code_ids if c != current[0]]
        code = int(rng.choice(choices))
        edit = Edit(code, start, start + n)
        variants = {"refine": pipe.edit(m, [edit], guided=False), "guided": pipe.edit(m, [edit])}
        # the released notebook decodes the edited pose codes without residuals
        pose = variants["refine"].pose_codes
        feats, joints = pipe.decode(pose, None)
        variants["pose_only"] = type(m)(joints=joints, features=feats, pose_codes=pose,
                                        residual_codes=m.residual_codes)
        row = {"group": g.name, "kind": g.kind}
        for name, out in variants.items():
            effect = edit_effect(m, out, [edit])
            for k in ("shown", "near", "toward"):
                row[f"{name}_{k}"] = effect[k]
            row[f"{name}_outside_mm"] = effect["outside_mean_mm"]
        # how often the unedited motion already parsed to the new code there (chance level)
        unedited = edit_effect(m, m, [edit])
        row["before_shown"], row["before_near"] = unedited["shown"], unedited["near"]
        rows.append(row)
        by_kind.setdefault(g.kind, []).append(row["guided_shown"])
        if progress:
            progress(i + 1, n_edits, g.name)
    keys = [k for k in rows[0] if k not in ("group", "kind")]
    summary = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    summary["by_kind"] = {k: (float(np.mean(v)), len(v)) for k, v in sorted(by_kind.items())}
    return {"split": split, "edits": n_edits, "summary": summary, "rows": rows}


def format_generation(result: dict) -> str:
    def cell(v):
        return f"{v[0]:.3f} ± {v[1]:.3f}" if isinstance(v, (tuple, list)) else f"{v:.3f}"

    cols = ["fid", "top1", "top2", "top3", "matching", "diversity", "multimodality"]
    lines = ["| | " + " | ".join(["FID", "top-1", "top-2", "top-3", "MM-Dist", "Diversity", "MModality"]) + " |",
             "|" + "---|" * (len(cols) + 1)]
    real = result["real"]
    lines.append("| real test motions | - | " + " | ".join(cell(real[c]) for c in cols[1:6]) + " | - |")
    for key, name in (("base", "Base only (pose codes)"), ("full", "Base + Refine")):
        r = result[key]
        lines.append(f"| {name} | " + " | ".join(cell(r[c]) if c in r else "-" for c in cols) + " |")
    return "\n".join(lines)
