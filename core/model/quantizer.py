"""Attention ("soft") residual vector quantizer of the PGR²M tokenizer (method-facts §1.4).

A stage scores its codebook with RMS-normalised query/key attention, picks the
best code, and returns the code's *value* projection.  The code choice is
hard; gradients reach the stage's parameters only through its loss terms, and
the input receives an identity (straight-through) gradient.

    rvq = ResidualAttentionVQ(dim=512, n_stages=6, codebook_size=512)
    out = rvq(residual)                 # (B, S, 512)
    out.quantized, out.indices          # (B, S, 512), (B, 6, S)
    rvq.decode(out.indices)             # the same latents from the indices alone
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "entropy_loss", "perplexity",
    "StageOutput", "AttentionQuantizer", "RVQOutput", "ResidualAttentionVQ",
]


def entropy_loss(logits: Tensor, temperature: float = 0.01, eps: float = 1e-5) -> Tensor:
    """Mean per-token entropy minus the entropy of the mean assignment (logits (N, K)).

    Low per-token entropy asks for confident choices; high usage entropy asks
    for the whole codebook to be used.
    """
    # the reference adds 1e-5 inside log_softmax, which shifts nothing
    log_probs = (logits.float() / temperature).log_softmax(dim=-1)
    probs = log_probs.exp()
    sample = -(probs * log_probs).sum(dim=-1).mean()
    avg = probs.mean(dim=0)
    usage = -(avg * torch.log(avg + eps)).sum()
    return sample - usage


def perplexity(indices: Tensor, n_codes: int) -> Tensor:
    """exp(entropy) of the code histogram of `indices` (any shape, values in 0..n_codes-1)."""
    counts = torch.bincount(indices.reshape(-1), minlength=n_codes).float()
    p = counts / counts.sum().clamp(min=1.0)
    return torch.exp(-torch.special.xlogy(p, p).sum())


@dataclass
class StageOutput:
    quantized: Tensor    # (..., D) the code's value; gradient passes straight to the input
    indices: Tensor      # (...,) long
    loss: Tensor         # scalar stage loss (three squared-error terms)
    entropy: Tensor      # scalar entropy loss
    perplexity: Tensor   # scalar, from the hard indices


class AttentionQuantizer(nn.Module):
    """One stage: attention scores pick a code; its value projection is the output."""

    def __init__(
        self,
        *,
        dim: int = 512,                     # width of inputs, codes and values
        codebook_size: int = 512,           # number of codes
        beta: float = 0.25,                 # weight of the codebook-side (input-detached) term
        entropy_temperature: float = 0.01,  # softmax temperature of the entropy loss
        norm_eps: float = 1e-5,             # RMSNorm epsilon of query and key
        init: str = "enc",                  # "enc": first training input seeds the codebook
    ):
        super().__init__()
        self.dim = dim
        self.codebook_size = codebook_size
        self.beta = beta
        self.entropy_temperature = entropy_temperature
        self.scale = dim ** -0.5

        self.codebook = nn.Parameter(torch.randn(codebook_size, dim))
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(dim, dim)
        self.to_v = nn.Linear(dim, dim)
        self.q_norm = nn.RMSNorm(dim, eps=norm_eps)
        self.k_norm = nn.RMSNorm(dim, eps=norm_eps)
        # a buffer, so loaded weights are never re-seeded
        self.register_buffer("initialized", torch.tensor(init != "enc"))
        # host-side copy: reading the buffer every step would sync with the GPU
        self._seeded = init != "enc"

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._seeded = bool(self.initialized)

    # -- codebook views --------------------------------------------------

    def keys(self) -> Tensor:
        return self.k_norm(self.to_k(self.codebook))

    def values(self) -> Tensor:
        """(codebook_size, dim) value embeddings: what a chosen code contributes."""
        if self.training or torch.is_grad_enabled():
            return self.to_v(self.codebook)
        # inference decodes often: reuse the table until a weight changes (versions bump in place)
        key = (self.codebook._version, self.to_v.weight._version, self.codebook.device, self.codebook.dtype)
        if getattr(self, "_values_key", None) != key:
            self._values_cache = self.to_v(self.codebook)
            self._values_key = key
        return self._values_cache

    def logits(self, x: Tensor) -> Tensor:
        """(..., dim) -> (..., codebook_size) attention scores."""
        return self.q_norm(self.to_q(x)) @ self.keys().t() * self.scale

    def lookup(self, indices: Tensor) -> Tensor:
        """Value embeddings of `indices` (...,) -> (..., dim); index -1 gives zeros."""
        keep = indices >= 0
        out = F.embedding(indices.clamp(min=0), self.values())
        return out * keep.unsqueeze(-1).to(out.dtype)

    @torch.no_grad()
    def init_codebook(self, x: Tensor) -> None:
        """Seed the codebook with input vectors x (N, dim), tiled with small noise if N < size."""
        n, k = x.shape[0], self.codebook_size
        if n >= k:
            # a random subset rather than the first k: neighbouring time steps are near-duplicates
            seeds = x[torch.randperm(n, device=x.device)[:k]]
        else:
            seeds = x.repeat(math.ceil(k / n), 1)[:k]
            seeds = seeds + torch.randn_like(seeds) * (0.01 / math.sqrt(self.dim))
        self.codebook.copy_(seeds)
        self.initialized.fill_(True)
        self._seeded = True

    # -- quantization ----------------------------------------------------

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """(..., dim) -> (...,) indices of the best codes."""
        return self.logits(x).argmax(dim=-1)

    def forward(self, x: Tensor) -> StageOutput:
        lead = x.shape[:-1]
        x = x.reshape(-1, self.dim)
        if self.training and not self._seeded:
            self.init_codebook(x.detach())

        logits = self.logits(x)
        probs = logits.softmax(dim=-1)
        indices = logits.argmax(dim=-1)

        values = self.values()
        z_hard = F.embedding(indices, values)
        # (onehot - sg(probs) + probs) @ values without the one-hot: the value of z_hard,
        # the gradient of the softmax; values get onehot^T g, as through the one-hot
        soft = probs @ values.detach()
        z_soft = z_hard + soft - soft.detach()

        loss = (F.mse_loss(z_soft, x)
                + F.mse_loss(z_hard.detach(), x)
                + self.beta * F.mse_loss(z_hard, x.detach()))
        ent = entropy_loss(logits, self.entropy_temperature)

        # value of z_soft, identity gradient to x: the codebook learns from the losses only
        quantized = x + (z_soft - x).detach()
        return StageOutput(
            quantized=quantized.reshape(*lead, self.dim),
            indices=indices.reshape(lead),
            loss=loss,
            entropy=ent,
            perplexity=perplexity(indices.detach(), self.codebook_size),
        )


@dataclass
class RVQOutput:
    quantized: Tensor    # (B, S, D) sum of the active stages' outputs
    indices: Tensor      # (B, n_stages, S) long, -1 for stages not run
    loss: Tensor         # stage loss averaged over active stages
    entropy: Tensor      # entropy loss averaged over active stages
    perplexity: Tensor   # (n_stages,), 0 for stages not run
    n_active: int        # stages 0..n_active-1 ran


class ResidualAttentionVQ(nn.Module):
    """Stages quantize what the previous ones left over; dropout keeps a random prefix of stages."""

    def __init__(
        self,
        *,
        dim: int = 512,                     # latent width
        n_stages: int = 6,                  # number of residual stages
        codebook_size: int = 512,           # codes per stage
        beta: float = 0.25,                 # codebook-side weight in each stage loss
        entropy_temperature: float = 0.01,  # entropy-loss temperature
        quantizer_dropout: float = 0.2,     # training chance to keep only stages 0..k, k ~ U{0..n-1}
        norm_eps: float = 1e-5,             # RMSNorm epsilon
        init: str = "enc",                  # codebook initialisation, see AttentionQuantizer
    ):
        super().__init__()
        self.dim = dim
        self.n_stages = n_stages
        self.codebook_size = codebook_size
        self.quantizer_dropout = quantizer_dropout
        self.stages = nn.ModuleList(
            AttentionQuantizer(dim=dim, codebook_size=codebook_size, beta=beta,
                               entropy_temperature=entropy_temperature, norm_eps=norm_eps, init=init)
            for _ in range(n_stages))

    @property
    def initialized(self) -> bool:
        return all(bool(s.initialized) for s in self.stages)

    def sample_active(self) -> int:
        """How many stages this forward runs: all, or in training sometimes a random prefix."""
        # CPU draws, so CPU and CUDA runs make the same choices for the same seed
        if self.training and torch.rand(()).item() < self.quantizer_dropout:
            return int(torch.randint(1, self.n_stages + 1, ()).item())
        return self.n_stages

    def forward(self, x: Tensor, *, n_active: int | None = None) -> RVQOutput:
        """x (B, S, D); n_active None samples quantizer dropout (training) or runs all stages."""
        n = self.sample_active() if n_active is None else int(n_active)
        if not 1 <= n <= self.n_stages:
            raise ValueError(f"n_active must be in 1..{self.n_stages}, got {n}")

        residual = x
        quantized = torch.zeros_like(x)
        indices = x.new_full((x.shape[0], self.n_stages, x.shape[1]), -1, dtype=torch.long)
        ppl = x.new_zeros(self.n_stages)
        losses, ents = [], []
        for l, stage in enumerate(self.stages[:n]):
            out = stage(residual)
            residual = residual - out.quantized.detach()
            quantized = quantized + out.quantized
            indices[:, l] = out.indices
            ppl[l] = out.perplexity
            losses.append(out.loss)
            ents.append(out.entropy)
        return RVQOutput(
            quantized=quantized,
            indices=indices,
            loss=torch.stack(losses).mean(),
            entropy=torch.stack(ents).mean(),
            perplexity=ppl,
            n_active=n,
        )

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """x (B, S, D) -> indices (B, n_stages, S), all stages, no side effects."""
        residual = x
        indices = []
        for stage in self.stages:
            idx = stage.encode(residual)
            residual = residual - stage.lookup(idx)
            indices.append(idx)
        return torch.stack(indices, dim=1)

    def decode(self, indices: Tensor, n_stages: int | None = None) -> Tensor:
        """Indices (B, k, S) -> (B, S, D): sum of the first n_stages stages' values; -1 adds nothing."""
        k = indices.shape[1]
        n = k if n_stages is None else int(n_stages)
        if not 0 <= n <= min(k, self.n_stages):
            raise ValueError(f"n_stages must be in 0..{min(k, self.n_stages)} "
                             f"for indices with {k} stage(s), got {n}")
        out = indices.new_zeros((indices.shape[0], indices.shape[2], self.dim), dtype=self.stages[0].codebook.dtype)
        for l in range(n):
            out = out + self.stages[l].lookup(indices[:, l])
        return out

    def values(self) -> Tensor:
        """(n_stages, codebook_size, dim) value embeddings of every stage."""
        return torch.stack([s.values() for s in self.stages])
