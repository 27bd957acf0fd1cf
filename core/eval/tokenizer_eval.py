"""Evaluate a trained tokenizer on a dataset split: reconstruction with 0..n residual stages.

For every clip (cropped to at most 196 frames, a multiple of 4) the motion is encoded to pose
codes + residual indices and decoded with k = 0 (pose codes only) .. n_stages residual stages.
Reported per k: MPJPE, PA-MPJPE, acceleration error (mm), and with an evaluator FID, R-precision
and matching score of the reconstructions; plus per-stage perplexity and code usage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core import atomic
from core.data.batches import eval_clips
from core.data.humanml3d import HumanML3DFolder
from core.eval import metrics
from core.eval.evaluator import TextMotionEvaluator
from core.eval.t2m_original import WordVectorizer, load_t2m_evaluator, load_t2m_meta
from core.features import denormalize, recover_joints
from core.model.io import load_tokenizer


@torch.no_grad()
def evaluate_tokenizer(model_dir, data_dir, split="test", evaluator_dir=None, device="cpu",
                       max_frames=196, progress=None, t2m_dir=None, glove_dir=None) -> dict:
    """evaluator_dir: our trained evaluator; or t2m_dir + glove_dir: the original HumanML3D
    evaluator (checkpoints/t2m) and GloVe files, for numbers comparable with published tables."""
    model, mean, std = load_tokenizer(model_dir, device)
    data = HumanML3DFolder(data_dir, split)
    if data.mean.shape != mean.shape:
        raise ValueError(f"{data_dir}: features are {data.mean.shape[0]}-d, the tokenizer expects {mean.shape[0]}-d")
    clips = eval_clips(data, max_frames)
    n_stages = model.config.n_stages
    evaluator = None
    if evaluator_dir:
        evaluator = OurEvaluator(evaluator_dir, device)
    elif t2m_dir:
        if not glove_dir:
            raise ValueError("the original T2M evaluator needs its GloVe files: pass glove_dir too")
        evaluator = OriginalEvaluator(t2m_dir, glove_dir, device)
    captions = {r.id: r.captions[0] for r in data.records}

    per_k = {k: {"mpjpe": [], "pa_mpjpe": [], "accel": [], "emb": []} for k in range(n_stages + 1)}
    gt_emb, all_idx = [], []
    for i, (cid, feats, codes) in enumerate(clips):
        if progress:
            progress(i, len(clips), cid)
        # tokenizer space: normalised with the tokenizer's own statistics
        raw = denormalize(feats, data.mean, data.std)
        m = torch.from_numpy(((raw - mean) / std).astype(np.float32))[None].to(device)
        c = torch.from_numpy(codes.astype(np.float32))[None].to(device)
        pose, idx = model.encode(m, c)
        all_idx.append(idx[0].cpu().numpy())
        gt = recover_joints(raw)
        if evaluator is not None:
            gt_emb.append(evaluator.motion(raw))
        for k in range(n_stages + 1):
            out = denormalize(model.decode(pose, idx, n_stages=k)[0].cpu().numpy(), mean, std)
            joints = recover_joints(out)
            per_k[k]["mpjpe"].append(metrics.mpjpe(joints, gt))
            per_k[k]["pa_mpjpe"].append(metrics.pa_mpjpe(joints, gt))
            per_k[k]["accel"].append(metrics.accel_error(joints, gt))
            if evaluator is not None:
                per_k[k]["emb"].append(evaluator.motion(out))

    rows = []
    texts = None
    bs = min(32, len(clips))      # the protocol's batches of 32; fewer only for tiny test sets
    if evaluator is not None:
        texts = evaluator.texts([captions[cid] for cid, _, _ in clips])
        gt_e = np.concatenate(gt_emb)
    for k in range(n_stages + 1):
        row = {"stages": k, "mpjpe_mm": 1000 * float(np.mean(per_k[k]["mpjpe"])),
               "pa_mpjpe_mm": 1000 * float(np.mean(per_k[k]["pa_mpjpe"])),
               "accel_mm": 1000 * float(np.mean(per_k[k]["accel"]))}
        if evaluator is not None:
            e = np.concatenate(per_k[k]["emb"])
            top = metrics.r_precision(texts, e, top_k=3, batch_size=bs)
            row.update(fid=float(metrics.fid(gt_e, e)), top1=float(top[0]), top3=float(top[2]),
                       matching=float(metrics.matching_score(texts, e, batch_size=bs)))
        rows.append(row)
    idx = np.concatenate(all_idx, axis=1)
    stage_stats = [{"stage": s, "perplexity": float(metrics.perplexity(idx[s], model.config.n_codes)),
                    "usage": float(metrics.code_usage(idx[s], model.config.n_codes))} for s in range(n_stages)]
    result = {"split": split, "clips": len(clips), "rows": rows, "stages": stage_stats, "r_precision_batch": bs,
              "orthogonality": float(metrics.orthogonality(model.pose_codebook.detach().cpu().numpy()))}
    if evaluator is not None:
        top = metrics.r_precision(texts, gt_e, top_k=3, batch_size=bs)
        result["real"] = {"top1": float(top[0]), "top3": float(top[2]),
                          "matching": float(metrics.matching_score(texts, gt_e, batch_size=bs))}
    return result


class OurEvaluator:
    """Our text-motion evaluator: (raw features) -> embedding, (captions) -> embeddings."""

    def __init__(self, folder, device="cpu"):
        self.net = TextMotionEvaluator.load(folder, device=device).eval()
        self.mean = atomic.load_npy(Path(folder) / "mean.npy")
        self.std = atomic.load_npy(Path(folder) / "std.npy")
        self.device = device

    def motion(self, raw: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(((raw - self.mean) / self.std).astype(np.float32))[None].to(self.device)
        return self.net.embed_motion(x, torch.tensor([len(raw)])).cpu().numpy()

    def texts(self, captions) -> np.ndarray:
        return self.net.encode_texts([c.text for c in captions]).cpu().numpy()


class OriginalEvaluator(OurEvaluator):
    """The original HumanML3D evaluator (GloVe + POS text side), loaded without unpickling code."""

    def __init__(self, t2m_dir, glove_dir, device="cpu"):
        self.net = load_t2m_evaluator(t2m_dir, device=device)
        self.mean, self.std = load_t2m_meta(t2m_dir)
        self.words = WordVectorizer(glove_dir)
        self.device = device

    def texts(self, captions) -> np.ndarray:
        batch = self.words.encode_batch([list(c.tokens) for c in captions])
        return self.net.embed_text(batch.word_embs, batch.pos_onehot, batch.cap_lens).cpu().numpy()


def format_table(result: dict) -> str:
    has_fid = "fid" in result["rows"][0]
    head = "| residual stages | MPJPE (mm) | PA-MPJPE (mm) | accel (mm) |" + (" FID | top-1 | top-3 |" if has_fid else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in result["rows"]:
        name = "pose codes only" if r["stages"] == 0 else str(r["stages"])
        line = f"| {name} | {r['mpjpe_mm']:.1f} | {r['pa_mpjpe_mm']:.1f} | {r['accel_mm']:.2f} |"
        if has_fid:
            line += f" {r['fid']:.3f} | {r['top1']:.3f} | {r['top3']:.3f} |"
        lines.append(line)
    lines.append("")
    lines.append("per-stage perplexity (code usage): " + ", ".join(
        f"{s['stage']}: {s['perplexity']:.1f} ({s['usage']:.0%})" for s in result["stages"]))
    lines.append(f"pose-code orthogonality (group centroids, lower is more disentangled): {result['orthogonality']:.2f}")
    if result.get("real"):
        lines.append(f"real test motions: top-1 {result['real']['top1']:.3f}, top-3 {result['real']['top3']:.3f}, "
                     f"matching {result['real']['matching']:.3f}")
    return "\n".join(lines)
