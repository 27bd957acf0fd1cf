"""Pre-LayerNorm transformer blocks shared by the Base and Refine Transformers, with an
optional key/value cache so autoregressive sampling computes each position once."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sinusoidal(n: int, dim: int) -> Tensor:
    """(n, dim) fixed sine/cosine position table (not learned, as in the reference)."""
    pos = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(n, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


class KVCache:
    """Preallocated keys and values of every layer for a batch, filled left to right; or, with
    ``rows``, the keys and values of a whole sequence in which only those positions are run
    again (their queries see every position)."""

    def __init__(self, layers: int, batch: int, heads: int, length: int, head_dim: int, like: Tensor):
        shape = (layers, batch, heads, length, head_dim)
        self.k = like.new_zeros(shape)
        self.v = like.new_zeros(shape)
        self.length = 0                 # positions filled so far
        self.rows: Tensor | None = None

    @classmethod
    def of_rows(cls, k: Tensor, v: Tensor, rows: Tensor) -> "KVCache":
        """Keys and values (layers, batch, heads, length, head_dim) of a whole sequence, used in
        place; the positions ``rows`` get the keys and values of the inputs run."""
        cache = cls.__new__(cls)
        cache.k, cache.v, cache.length, cache.rows = k, v, k.shape[3], rows
        return cache

    def select(self, rows: Tensor) -> None:
        """Keep only some batch rows (finished samples leave the batch)."""
        self.k, self.v = self.k[:, rows], self.v[:, rows]


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.dropout = dropout
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, *, causal: bool = False, key_mask: Tensor | None = None,
                cache: KVCache | None = None, layer: int = 0) -> Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        mask = None if key_mask is None else key_mask[:, None, None, :]
        is_causal = causal
        if cache is not None and cache.rows is not None:
            cache.k[layer, :, :, cache.rows] = k
            cache.v[layer, :, :, cache.rows] = v
            k, v = cache.k[layer], cache.v[layer]
        elif cache is not None:
            start = cache.length
            cache.k[layer, :, :, start:start + T] = k
            cache.v[layer, :, :, start:start + T] = v
            k, v = cache.k[layer, :, :, :start + T], cache.v[layer, :, :, :start + T]
            if start > 0:
                # new queries see every cached key and the new ones causally
                is_causal = False
                if T > 1:
                    mask = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(start)
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop, is_causal=is_causal)
        return self.resid_drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))


class Block(nn.Module):
    """x + Attn(LN(x)), then x + MLP(LN(x)); GELU MLP of mlp_ratio x width."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, dropout: float):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, dropout)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(),
                                 nn.Linear(mlp_ratio * dim, dim), nn.Dropout(dropout))

    def forward(self, x: Tensor, **kw) -> Tensor:
        x = x + self.attn(self.ln1(x), **kw)
        return x + self.mlp(self.ln2(x))


def init_weights(module: nn.Module) -> None:
    """N(0, 0.02) for linear and embedding weights, zero biases, LayerNorm (1, 0)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
