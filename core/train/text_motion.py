"""Captioned token-rate samples for the Base and Refine stages: every caption segment of a
split as token-aligned pose codes, with the prompt conditions computed once per run folder."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as st_save

from core import atomic
from core.data.humanml3d import HumanML3DFolder
from core.model.conditioning import encode_conditions
from core.text.encoders import load_text_encoder
from core.train.checkpoint import read_cache

UNIT = 4              # frames per token step
MIN_STEPS = 4         # shorter segments (< 16 frames) are left out


@dataclass
class Sample:
    record: int       # index into the folder's records
    text: int         # index into the shared text list
    start: int        # first token step (frame start / 4, rounded up)
    end: int          # one past the last token step


def segments(folder: HumanML3DFolder, text_index: dict[str, int]) -> list[Sample]:
    out = []
    for s in folder.segments():
        start = -(-s.start // UNIT)
        end = min(s.end, folder[s.record].n_frames) // UNIT
        if end - start >= MIN_STEPS:
            out.append(Sample(s.record, text_index[s.caption.text], start, end))
    return out


def all_texts(*folders: HumanML3DFolder) -> list[str]:
    return sorted({s.caption.text for f in folders for s in f.segments()})


def token_codes(folder: HumanML3DFolder) -> list[np.ndarray]:
    """Per record, the pose codes of frames 0, 4, 8, ... (the tokenizer's latent steps)."""
    return [r.codes[: r.n_frames // UNIT * UNIT: UNIT] for r in folder.records]


def crop(sample: Sample, max_steps: int, rng: np.random.Generator, edge_drop: bool) -> tuple[int, int]:
    """A window of at most max_steps inside the segment; with probability 1/3 (edge_drop) one
    step fewer at the head or the tail, as the reference's augmentation."""
    start, end = sample.start, sample.end
    n = end - start
    if n > max_steps:
        start += int(rng.integers(0, n - max_steps + 1))
        end = start + max_steps
    if edge_drop and end - start > MIN_STEPS and rng.random() < 1 / 3:
        if rng.random() < 0.5:
            start += 1
        else:
            end -= 1
    return start, end


def text_conditions(texts: list[str], encoder_spec: str, run_folder: str | Path) -> torch.Tensor:
    """(N, 12, dim) conditions of every text, cached in the run folder under a content key."""
    key = hashlib.sha1(json.dumps([encoder_spec, texts]).encode()).hexdigest()
    path = Path(run_folder) / "text_conditions.safetensors"
    data = read_cache(path) or {}
    if "key" in data and "cond" in data and bytes(data["key"].tolist()) == key.encode():
        return data["cond"].float()
    cond = encode_conditions(load_text_encoder(encoder_spec), texts)
    atomic.write_bytes(path, st_save({"cond": cond.half(),
                                      "key": torch.tensor(list(key.encode()), dtype=torch.uint8)}))
    return cond.half().float()      # the same values whether computed now or read back


def drop_keywords(cond: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """Zero each keyword slot (not the sentence) with probability p, so prompts without clear
    keywords still work."""
    if p <= 0:
        return cond
    drop = torch.rand(cond.shape[0], cond.shape[1], generator=generator) < p
    drop[:, 0] = False
    return cond.masked_fill(drop[..., None].to(cond.device), 0.0)
