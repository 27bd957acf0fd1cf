"""Corpus statistics of pose codes: how often each group changes state, which codes never occur."""

from __future__ import annotations

import numpy as np

from core import posecodes


def posecode_stats(codes: list[np.ndarray], fps: float = 20.0, unit: int = 4) -> dict:
    """codes: per clip (T, 392) bool. Returns usage per code and change rates per group,
    per frame and per token step (every ``unit``-th frame, as the tokenizer sees them)."""
    n_groups = posecodes.N_GROUPS
    usage = np.zeros(posecodes.N_CODES, dtype=np.int64)
    changes = np.zeros(n_groups, dtype=np.int64)
    token_changes = np.zeros(n_groups, dtype=np.int64)
    transitions = token_transitions = frames = 0
    for c in codes:
        usage += c.sum(axis=0)
        frames += len(c)
        idx = posecodes.to_indices(c)                     # (T, 70) global ids
        changes += (idx[1:] != idx[:-1]).sum(axis=0)
        transitions += max(len(idx) - 1, 0)
        tok = idx[::unit]
        token_changes += (tok[1:] != tok[:-1]).sum(axis=0)
        token_transitions += max(len(tok) - 1, 0)
    groups = []
    for g in posecodes.GROUPS:
        span = slice(g.first_code, g.first_code + g.n_codes)
        groups.append({
            "group": g.index, "name": g.name, "body_part": g.body_part,
            "change_per_frame": changes[g.index] / max(transitions, 1),
            "change_per_token": token_changes[g.index] / max(token_transitions, 1),
            "changes_per_second": changes[g.index] / max(transitions, 1) * fps,
            "codes_used": int((usage[span] > 0).sum()), "n_codes": g.n_codes,
            "dominant_share": float(usage[span].max() / max(frames, 1)),
        })
    never = [int(i) for i in np.flatnonzero(usage == 0)]
    return {"clips": len(codes), "frames": int(frames), "usage": usage.tolist(), "groups": groups,
            "never_used": never, "never_used_names": [posecodes.CODES[i].name for i in never]}


def format_stats(stats: dict, top: int = 10) -> str:
    lines = [f"{stats['clips']} clips, {stats['frames']} frames; "
             f"{posecodes.N_CODES - len(stats['never_used'])} of {posecodes.N_CODES} codes occur, "
             f"{len(stats['never_used'])} never"]
    by_rate = sorted(stats["groups"], key=lambda g: -g["change_per_frame"])
    lines.append("groups that change most often (share of frame steps / of token steps):")
    lines += [f"  {g['name']:<48} {g['change_per_frame']:.3f} / {g['change_per_token']:.3f}" for g in by_rate[:top]]
    lines.append("groups that change least often:")
    lines += [f"  {g['name']:<48} {g['change_per_frame']:.4f} / {g['change_per_token']:.4f}"
              f"  (one state {g['dominant_share']:.0%} of frames)" for g in by_rate[-top:]]
    if stats["never_used"]:
        lines.append("codes never used:")
        lines += [f"  {i:3d} {n}" for i, n in zip(stats["never_used"], stats["never_used_names"])]
    return "\n".join(lines)
