"""Text condition of the transformers: the prompt's sentence vector followed by the vectors of
its keyword phrases (core.text.keywords), one (12, text_dim) block per prompt."""

from __future__ import annotations

import torch
from torch import Tensor

from core.text.cleaning import clean_text
from core.text.encoders import TextEncoder
from core.text.keywords import N_KEYWORDS, keywords

N_TEXT_TOKENS = 1 + N_KEYWORDS


def phrases(prompt: str) -> list[str]:
    """The 12 texts encoded for a prompt: the cleaned sentence, then 11 keyword slots ("" = empty)."""
    return [clean_text(prompt)] + keywords(prompt)


def encode_conditions(encoder: TextEncoder, prompts: list[str], batch: int = 256) -> Tensor:
    """(B, 12, dim) sentence vectors of every prompt and its keywords; empty slots are zero.
    Each distinct phrase is encoded once."""
    rows = [phrases(p) for p in prompts]
    unique = sorted({t for r in rows for t in r if t})
    vectors: dict[str, Tensor] = {}
    for i in range(0, len(unique), batch):
        chunk = unique[i:i + batch]
        sent = encoder.encode(chunk).sentence.float().cpu()
        vectors.update(zip(chunk, sent))
    dim = next(iter(vectors.values())).shape[-1] if vectors else encoder.encode([""]).sentence.shape[-1]
    out = torch.zeros(len(prompts), N_TEXT_TOKENS, dim)
    for b, r in enumerate(rows):
        for k, t in enumerate(r):
            if t:
                out[b, k] = vectors[t]
    return out
