"""Make an edited pose code show in the decoded motion.

Setting one group's code leaves the other 69 codes, and the residual codes, describing the
old pose; the decoder follows that majority and the edit barely shows (measured: the asked
code appears no more often than by chance). Guidance searches the residual codes of the
edited steps for ones whose decoding a differentiable twin of the pose-code parser measures
in the asked bins, while the rest of the motion holds still. Nudging the continuous latent
instead reaches the bins but falls off the codebooks: re-quantized, the edit is lost. The
motion stays a set of codes, so saving, undo and later edits work as before.
"""

from __future__ import annotations

import math
import weakref

import numpy as np
import torch
from torch import Tensor

from core import posecodes as pc
from core.features import layout
from core.skeleton import T2M

_BLOCKS = layout(T2M).blocks
# one bin of each kind, so every constraint is measured in "bins"
_UNIT = {"angle": 10.0, "distance": 0.1, "relX": 0.15, "relY": 0.15, "relZ": 0.15, "relV": 10.0, "ground": 0.1}
_MARGIN = 0.3   # of a bin: aim inside the asked bin, not on its edge
_IDX = {k: [torch.as_tensor(i) for i in v] for k, v in pc._IDX.items()}


def code_bounds(code: int) -> tuple[float, float]:
    """The measured-value interval (lo, hi] a code stands for (infinite at the ends)."""
    c = pc.CODES[code]
    g = pc.GROUPS[c.group]
    thr = pc.THRESHOLDS[g.kind]
    local = code - g.first_code
    lo = -math.inf if local == 0 else float(thr[local - 1])
    hi = math.inf if local == len(thr) else float(thr[local])
    return lo, hi


def facing_positions(features: Tensor) -> Tensor:
    """Denormalised features (T, 263) -> joints (T, 22, 3) in the body's facing frame,
    pelvis over the origin: the frame the parser measures in."""
    root_y = features[:, _BLOCKS["root_y"]]
    root = torch.cat([torch.zeros_like(root_y), root_y, torch.zeros_like(root_y)], dim=-1)
    ric = features[:, _BLOCKS["ric"]].reshape(len(features), -1, 3)
    return torch.cat([root[:, None], ric], dim=1)


def _unit(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-6)


def measure(p: Tensor) -> Tensor:
    """Torch twin of posecodes.measure for joints already in the facing frame: (T, 22, 3) -> (T, 70)."""
    lw, rw = p[:, 20], p[:, 21]
    lm = lw + pc._MIDDLE2_OFFSET * _unit(lw - p[:, 18])
    rm = rw + pc._MIDDLE2_OFFSET * _unit(rw - p[:, 19])
    torso = (p[:, 0] + p[:, 12] + p[:, 9]) / 3.0
    p = torch.cat([p, torch.stack([lm, rm, 0.5 * (lw + lm), 0.5 * (rw + rm), torso], dim=1)], dim=1)
    cols = []
    a, m, b = (p[:, i] for i in _IDX["angle"])
    u, v = a - m, b - m
    cross = torch.linalg.cross(u, v).norm(dim=-1)
    cols.append(torch.rad2deg(torch.atan2(cross, (u * v).sum(-1))))
    da, db = _IDX["distance"]
    cols.append((p[:, da] - p[:, db]).norm(dim=-1))
    for axis, kind in enumerate(("relX", "relY", "relZ")):
        ia, ib = _IDX[kind]
        cols.append(p[:, ia, axis] - p[:, ib, axis])
    ia, ib = _IDX["relV"]
    d = p[:, ib] - p[:, ia]
    horiz = torch.sqrt(d[..., 0] ** 2 + d[..., 2] ** 2 + 1e-12)
    cols.append(torch.rad2deg(torch.atan2(horiz, d[..., 1].abs() + 1e-12)))
    floor = p[:, :22, 1].min(dim=1, keepdim=True).values
    cols.append(p[:, _IDX["ground"][0], 1] - floor)
    return torch.cat(cols, dim=1)


def _targets(edits: list[tuple[int, int, int]], frames: tuple[int, int], unit: int):
    """(mask (F, 70), lo, hi, scale) of the asked codes' intervals over frames [first, stop)."""
    first, stop = frames
    n_frames = stop - first
    mask = torch.zeros(n_frames, pc.N_GROUPS, dtype=torch.bool)
    lo = torch.full((n_frames, pc.N_GROUPS), -math.inf)
    hi = torch.full((n_frames, pc.N_GROUPS), math.inf)
    scale = torch.tensor([_UNIT[g.kind] for g in pc.GROUPS])
    for code, start, end in edits:
        g = pc.CODES[code].group
        a, b = max(0, start * unit - first), min(end * unit, stop) - first
        low, high = code_bounds(code)
        width = (high - low) if math.isfinite(high - low) else 2 * _UNIT[pc.GROUPS[g].kind]
        margin = min(_MARGIN * _UNIT[pc.GROUPS[g].kind], 0.25 * width)
        mask[a:b, g] = True
        lo[a:b, g] = low + margin
        hi[a:b, g] = high - margin
    return mask, lo, hi, scale


_REACH: "weakref.WeakKeyDictionary[torch.nn.Module, int]" = weakref.WeakKeyDictionary()


def decoder_reach(decoder, dim: int) -> int:
    """How many token steps either side one latent step changes the decoded frames (cached)."""
    if decoder not in _REACH:
        with torch.no_grad():
            param = next(decoder.parameters())
            z = torch.zeros(1, 64, dim, dtype=param.dtype, device=param.device)
            bump = z.clone()
            bump[0, 32] = 1.0
            changed = (decoder(bump) - decoder(z)).abs().amax(dim=-1)[0] > 0
            frames = torch.nonzero(changed).flatten().float()
            unit = changed.shape[0] / 64
            _REACH[decoder] = int(torch.ceil((frames / unit - 32).abs().max()).item()) + 1 if len(frames) else 1
    return _REACH[decoder]


@torch.enable_grad()
def guide_residuals(tokenizer, mean: Tensor, std: Tensor, pose: Tensor, residuals: Tensor,
                    edits: list[tuple[int, int, int]], *, iterations: int = 20, lr: float = 0.5,
                    keep_weight: float = 4.0, turn_weight: float = 100.0, context: int = 1,
                    unit: int = 4, init: float = 2.0) -> Tensor:
    """New residual codes (n_stages, S) whose decoding shows ``edits`` (code, start, end steps).

    pose (S, 392) bool holds the edited codes, residuals (n_stages, S) the refined ones. Only the
    residual codes of edited steps (and ``context`` steps each side) change: each is a choice
    among the stage's codes, relaxed to a softmax with the hard choice in the forward pass
    (straight-through), so every step of the search decodes real codes. The loss asks the
    measured values into the asked codes' bins, holds the decoded features of other frames
    (keep_weight) and the body's heading (turn_weight: a small change of turning speed would
    otherwise rotate the whole rest of the motion). Only the stretch of motion the changed
    steps can reach is decoded, exactly, so the cost does not grow with the motion's length.
    ``init``: how far the refined codes' logits start above the others; 2 let 20 steps leave them
    more often than 4 (37.3 against 34.8 % of edited steps shown, docs/generation.md).
    """
    n_steps = pose.shape[0]
    edited = np.zeros(n_steps, bool)
    for _, start, end in edits:
        edited[max(0, start - context):min(n_steps, end + context)] = True
    changed = np.flatnonzero(edited)
    if not len(changed) or iterations <= 0:
        return residuals
    dec = tokenizer.decoder
    dtype = tokenizer.pose_codebook.dtype
    reach = decoder_reach(dec, tokenizer.pose_codebook.shape[1])
    # frames that can change (out) and the latent steps that decide them exactly (inp)
    o0, o1 = max(0, changed[0] - reach), min(n_steps, changed[-1] + 1 + reach)
    i0, i1 = max(0, o0 - reach), min(n_steps, o1 + reach)
    f0, f1 = (o0 - i0) * unit, (o1 - i0) * unit
    steps = torch.from_numpy(changed - i0)
    with torch.no_grad():
        values = tokenizer.codebook_values().float()               # (L, K, D)
        p = tokenizer.pose_latents(pose[None, i0:i1].to(dtype))[0].float()
        base = p + tokenizer.residual_latents(residuals[None, :, i0:i1])[0].float()
        ref = dec(base[None].to(dtype))[0, f0:f1].float()
    n_frames = n_steps * unit
    n_after = n_frames - o1 * unit            # frames after the crop inherit its last heading change
    n_codes = values.shape[1]
    mask, lo, hi, scale = _targets(edits, (o0 * unit, o1 * unit), unit)
    held = ~mask.any(dim=1)
    n_held = int(held.sum()) + (n_frames - (o1 - o0) * unit)
    mean, std = mean.to(ref), std.to(ref)
    logits = (init * torch.nn.functional.one_hot(residuals[:, changed], n_codes).float()).requires_grad_(True)
    opt = torch.optim.Adam([logits], lr=lr)
    frozen = [w for w in dec.parameters() if w.requires_grad]
    for w in frozen:                          # gradients for the codes only, not the decoder
        w.requires_grad_(False)
    try:
        for _ in range(iterations):
            soft = torch.softmax(logits, dim=-1)
            hard = torch.nn.functional.one_hot(soft.argmax(-1), n_codes).to(soft)
            choice = hard - soft.detach() + soft                   # hard forward, soft gradient
            z = base.index_put((steps,), p[steps] + torch.einsum("lsk,lkd->sd", choice, values))
            f = dec(z[None].to(dtype))[0, f0:f1].float()
            vals = measure(facing_positions(f * std + mean))
            miss = (torch.relu(lo - vals) + torch.relu(vals - hi)) / scale
            loss_code = (miss * mask).sum() / mask.sum().clamp_min(1)
            if loss_code.item() == 0.0:
                break           # the codes decoded this round already show the edit: keep them
            loss_keep = ((f - ref) ** 2)[held].sum() / (n_held * f.shape[1])
            turn = torch.cumsum((f[:, 0] - ref[:, 0]) * std[0], dim=0)  # heading change, radians
            loss_turn = ((turn ** 2).sum() + n_after * turn[-1] ** 2) / n_frames
            loss = loss_code + keep_weight * loss_keep + turn_weight * loss_turn
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        for w in frozen:
            w.requires_grad_(True)
    out = residuals.clone()
    out[:, changed] = logits.detach().argmax(-1).to(out)
    return out
