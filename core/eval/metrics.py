"""Text-to-motion and reconstruction metrics (numpy, float64).

Definitions follow the HumanML3D / T2M protocol as used by CoMo and PGR²M
(method-facts §1.10, §5.3). Generation metrics take evaluator embeddings
(N, D); reconstruction metrics take joint positions in metres; codebook
metrics take code indices or the pose codebook.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg

from core.posecodes import GROUP_START

__all__ = [
    "activation_statistics", "frechet_distance", "fid", "euclidean_distance_matrix",
    "r_precision", "matching_score", "diversity", "multimodality",
    "mpjpe", "pa_mpjpe", "procrustes_align", "accel_error",
    "perplexity", "code_usage", "orthogonality", "mean_ci",
]


def _emb(x, name: str, ndim: int = 2) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a


# --------------------------------------------------------------------------
# FID


def activation_statistics(emb) -> tuple[np.ndarray, np.ndarray]:
    """Mean μ = (1/N) Σ xᵢ and unbiased covariance Σ = (1/(N−1)) Σ (xᵢ−μ)(xᵢ−μ)ᵀ of rows (N, D)."""
    a = _emb(emb, "emb")
    if a.shape[0] < 2:
        raise ValueError("activation_statistics needs at least 2 samples")
    return a.mean(axis=0), np.atleast_2d(np.cov(a, rowvar=False))


def frechet_distance(mu1, cov1, mu2, cov2, eps: float = 1e-6) -> float:
    """Fréchet distance of two Gaussians: ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½).

    If the matrix square root is not finite (singular product), eps·I is added to
    both covariances and it is recomputed; the real part of the root is used
    (tiny imaginary parts come from numerical error).
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    if mu1.shape != mu2.shape or cov1.shape != cov2.shape or cov1.shape != (mu1.size, mu1.size):
        raise ValueError("mean and covariance shapes do not match")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")       # sqrtm warns on singular input; handled below
        covmean = linalg.sqrtm(cov1 @ cov2)
    if not np.all(np.isfinite(covmean)):
        off = np.eye(cov1.shape[0]) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            covmean = linalg.sqrtm((cov1 + off) @ (cov2 + off))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2.0 * np.trace(covmean))


def fid(emb_a, emb_b) -> float:
    """FID between two embedding sets (Na, D) and (Nb, D): frechet_distance of their statistics."""
    return frechet_distance(*activation_statistics(emb_a), *activation_statistics(emb_b))


# --------------------------------------------------------------------------
# retrieval


def euclidean_distance_matrix(a, b) -> np.ndarray:
    """D[i, j] = ‖aᵢ − bⱼ‖₂ for (N, D) and (M, D) (computed as a sqrt of clipped squared norms)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d2 = (a * a).sum(1)[:, None] - 2.0 * a @ b.T + (b * b).sum(1)[None, :]
    return np.sqrt(np.maximum(d2, 0.0))


def _batches(text_emb, motion_emb, batch_size: int):
    t, m = _emb(text_emb, "text_emb"), _emb(motion_emb, "motion_emb")
    if t.shape != m.shape:
        raise ValueError(f"text and motion embeddings differ in shape: {t.shape} vs {m.shape}")
    n = (t.shape[0] // batch_size) * batch_size    # drop_last, as the eval loaders do
    if n == 0:
        raise ValueError(f"need at least batch_size={batch_size} pairs, got {t.shape[0]}")
    for s in range(0, n, batch_size):
        yield t[s:s + batch_size], m[s:s + batch_size]


def r_precision(text_emb, motion_emb, top_k: int = 3, batch_size: int = 32) -> tuple[float, ...]:
    """R-precision top-1..top-k.

    Pairs (textᵢ, motionᵢ) are split into consecutive batches of ``batch_size``
    (the remainder is dropped). In each batch, D[i, j] = ‖tᵢ − mⱼ‖; text i scores a
    hit at k when its own motion i is among the k nearest motions (stable sort, so
    ties favour the lower index). Returns (hits@1, …, hits@k) / number of pairs
    evaluated. Shuffle beforehand if the order is not random.
    """
    if top_k < 1:
        raise ValueError("top_k must be >= 1")
    hits = np.zeros(top_k)
    count = 0
    for t, m in _batches(text_emb, motion_emb, batch_size):
        order = np.argsort(euclidean_distance_matrix(t, m), axis=1, kind="stable")
        rank = np.argmax(order == np.arange(len(t))[:, None], axis=1)   # 0 = nearest
        hits += (rank[:, None] < np.arange(1, top_k + 1)[None, :]).sum(0)
        count += len(t)
    return tuple(float(h / count) for h in hits)


def matching_score(text_emb, motion_emb, batch_size: int = 32) -> float:
    """MM-Dist: mean ‖tᵢ − mᵢ‖ over the pairs kept by the same batching as ``r_precision``."""
    total, count = 0.0, 0
    for t, m in _batches(text_emb, motion_emb, batch_size):
        total += float(np.linalg.norm(t - m, axis=1).sum())
        count += len(t)
    return total / count


# --------------------------------------------------------------------------
# diversity


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def diversity(emb, n_pairs: int = 300, rng=None, fallback_pairs: int = 100) -> float:
    """Diversity: (1/S) Σ ‖x_{aᵢ} − x_{bᵢ}‖ over S random pairs.

    a and b are two independent draws of S indices without replacement (so aᵢ = bᵢ
    can happen). S = ``n_pairs`` when N > n_pairs, else ``fallback_pairs`` (the eval
    scripts use 100 when there are ≤ 300 samples); fewer samples raise ValueError.
    Draw order (a then b, ``rng.choice``) is part of the contract for reproducibility.
    """
    a = _emb(emb, "emb")
    n = a.shape[0]
    s = n_pairs if n > n_pairs else fallback_pairs
    if n <= s:
        raise ValueError(f"diversity needs more than {s} samples, got {n}")
    g = _rng(rng)
    first = g.choice(n, s, replace=False)
    second = g.choice(n, s, replace=False)
    return float(np.linalg.norm(a[first] - a[second], axis=1).mean())


def multimodality(emb, n_pairs: int = 5, rng=None) -> float:
    """MultiModality of (n_texts, n_gen, D) embeddings (n_gen generations per text).

    One pair of index draws a, b (each n_pairs without replacement from n_gen,
    shared by all texts) gives (1/(n_texts·n_pairs)) Σₜ Σᵢ ‖x_{t,aᵢ} − x_{t,bᵢ}‖.
    PGR²M/CoMo use n_pairs = 5 over 30 generations; T2M/MoMask use 10.
    """
    a = _emb(emb, "emb", ndim=3)
    if a.shape[1] <= n_pairs:
        raise ValueError(f"multimodality needs more than n_pairs={n_pairs} generations per text, "
                         f"got {a.shape[1]}")
    g = _rng(rng)
    first = g.choice(a.shape[1], n_pairs, replace=False)
    second = g.choice(a.shape[1], n_pairs, replace=False)
    return float(np.linalg.norm(a[:, first] - a[:, second], axis=2).mean())


# --------------------------------------------------------------------------
# reconstruction (joints in metres)


def _joints(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    p, g = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    if p.shape != g.shape:
        raise ValueError(f"pred and gt shapes differ: {p.shape} vs {g.shape}")
    if p.ndim not in (3, 4) or p.shape[-1] != 3:
        raise ValueError(f"joints must be (T, J, 3) or (N, T, J, 3), got {p.shape}")
    return (p[None], g[None]) if p.ndim == 3 else (p, g)


def mpjpe(pred, gt, root: int = 0) -> float:
    """MPJPE: mean over sequences, frames and joints of ‖(p − p_root) − (g − g_root)‖₂."""
    p, g = _joints(pred, gt)
    p = p - p[..., root:root + 1, :]
    g = g - g[..., root:root + 1, :]
    return float(np.linalg.norm(p - g, axis=-1).mean())


def procrustes_align(pred, gt) -> np.ndarray:
    """Align each frame of pred (..., J, 3) to gt by a similarity transform (s, R, t).

    Minimises Σⱼ ‖s R xⱼ + t − yⱼ‖² (Umeyama): with centred X, Y and
    H = Xᵀ Y = U S Vᵀ, R = V diag(1, 1, d) Uᵀ where d = sign det(V Uᵀ) prevents a
    reflection, s = tr(diag(1, 1, d) S) / ‖X‖², t = ȳ − s R x̄.
    """
    p, g = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    mx, my = p.mean(axis=-2, keepdims=True), g.mean(axis=-2, keepdims=True)
    x, y = p - mx, g - my
    h = np.swapaxes(x, -1, -2) @ y                      # (..., 3, 3)
    u, s, vt = np.linalg.svd(h)
    v = np.swapaxes(vt, -1, -2)
    d = np.sign(np.linalg.det(v @ np.swapaxes(u, -1, -2)))
    d = np.where(d == 0, 1.0, d)
    fix = np.ones(s.shape)
    fix[..., -1] = d
    r = v @ (fix[..., :, None] * np.swapaxes(u, -1, -2))   # V diag(fix) Uᵀ
    var = (x * x).sum(axis=(-1, -2))
    scale = (s * fix).sum(-1) / np.where(var > 1e-12, var, 1.0)
    scale = np.where(var > 1e-12, scale, 0.0)            # all joints coincide: collapse to ȳ
    aligned = scale[..., None, None] * (x @ np.swapaxes(r, -1, -2)) + my
    return aligned


def pa_mpjpe(pred, gt) -> float:
    """PA-MPJPE: per-frame Procrustes similarity alignment of pred to gt, then mean ‖·‖₂."""
    p, g = _joints(pred, gt)
    return float(np.linalg.norm(procrustes_align(p, g) - g, axis=-1).mean())


def accel_error(pred, gt, lengths=None) -> float:
    """ACCEL: mean over frames and joints of ‖a_pred − a_gt‖₂ with aₜ = p_{t−1} − 2pₜ + p_{t+1}.

    Positions are used as given (no root alignment); units are metres/frame².
    With ``lengths`` (N,) only the first lengths[n] frames of each sequence count,
    so the total is divided by Σ (lengthsₙ − 2)·J.
    """
    p, g = _joints(pred, gt)
    if p.shape[1] < 3:
        raise ValueError("accel_error needs at least 3 frames")
    acc = lambda x: x[:, :-2] - 2.0 * x[:, 1:-1] + x[:, 2:]   # noqa: E731
    err = np.linalg.norm(acc(p) - acc(g), axis=-1)             # (N, T-2, J)
    if lengths is None:
        return float(err.mean())
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if lengths.shape[0] != p.shape[0] or lengths.min() < 3 or lengths.max() > p.shape[1]:
        raise ValueError("lengths must give 3..T valid frames for each sequence")
    valid = np.arange(p.shape[1] - 2)[None, :] < (lengths - 2)[:, None]
    return float((err * valid[..., None]).sum() / (valid.sum() * p.shape[2]))


# --------------------------------------------------------------------------
# codebooks


def _counts(indices, n_codes: int) -> np.ndarray:
    idx = np.asarray(indices).reshape(-1)
    if idx.size and not np.issubdtype(idx.dtype, np.integer):
        if not np.all(idx == np.round(idx)):
            raise ValueError("code indices must be integers")
        idx = idx.astype(np.int64)
    idx = idx[idx != -1]                                   # -1 marks padding / no code
    if idx.size and (idx.min() < 0 or idx.max() >= n_codes):
        raise ValueError(f"code indices must lie in [0, {n_codes}) or be -1")
    return np.bincount(idx.astype(np.int64), minlength=n_codes)


def perplexity(indices, n_codes: int) -> float:
    """Codebook perplexity exp(−Σ pₖ ln pₖ), pₖ = share of code k among valid indices (−1 ignored).

    Equals k when k codes are used equally often; 0 when there are no valid indices.
    """
    c = _counts(indices, n_codes).astype(np.float64)
    total = c.sum()
    if total == 0:
        return 0.0
    p = c[c > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


def code_usage(indices, n_codes: int) -> float:
    """Fraction of the n_codes codes that occur at least once (−1 ignored)."""
    return float((_counts(indices, n_codes) > 0).sum() / n_codes)


def orthogonality(pose_codebook, group_start=None) -> float:
    """Group-centroid orthogonality ‖Ĉ Ĉᵀ − I‖²_F (lower = more disentangled groups).

    For group g with rows [start_g, start_{g+1}) of the (392, D) pose codebook,
    c_g is the mean row and ĉ_g = c_g / ‖c_g‖; Ĉ stacks the 70 ĉ_g. ``group_start``
    lists group starts, optionally with the end sentinel (core.posecodes.GROUP_START
    by default). Identical centroids give G·(G−1) = 4830, orthogonal ones 0.
    """
    cb = _emb(pose_codebook, "pose_codebook")
    if group_start is None:
        group_start = GROUP_START
    gs = np.asarray(group_start, dtype=np.int64).reshape(-1)
    if gs[-1] != cb.shape[0]:
        gs = np.append(gs, cb.shape[0])
    if gs[0] != 0 or np.any(np.diff(gs) <= 0):
        raise ValueError("group_start must start at 0 and increase strictly")
    cent = np.stack([cb[a:b].mean(axis=0) for a, b in zip(gs[:-1], gs[1:])])
    norm = np.linalg.norm(cent, axis=1, keepdims=True)
    c = cent / np.maximum(norm, 1e-12)
    gram = c @ c.T
    return float(((gram - np.eye(len(c))) ** 2).sum())


# --------------------------------------------------------------------------
# repeats


def mean_ci(values) -> tuple[float, float]:
    """(mean, 1.96·σ/√n) over repeated runs; σ is the population std (ddof=0) as in the eval scripts."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise ValueError("mean_ci needs at least one value")
    return float(v.mean()), float(1.96 * v.std() / np.sqrt(v.size))
