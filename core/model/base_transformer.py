"""Base Transformer: text -> a sequence of 70-hot pose-code vectors (method-facts §1.6).

Causal over [text tokens | pose-code steps]; the output at text position n_text-1+t
predicts step t as 394 logits (392 codes, END, PAD), trained with BCE. Sampling keeps
one code per group, stops at END or at a requested length, and caches keys and values so
each step costs one position, not the whole sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core import posecodes as pc
from core.model.blocks import Block, KVCache, init_weights, sinusoidal
from core.model.configs import BASE_CONFIGS, BaseConfig

N_TOKENS = pc.N_TOKENS          # 394


def _group_table() -> tuple[Tensor, Tensor]:
    """(70, G) code ids per group padded with 0, and the (70, G) validity mask; G = largest group."""
    width = int(max(g.n_codes for g in pc.GROUPS))
    ids = torch.zeros(pc.N_GROUPS, width, dtype=torch.long)
    valid = torch.zeros(pc.N_GROUPS, width, dtype=torch.bool)
    for g in pc.GROUPS:
        ids[g.index, :g.n_codes] = torch.arange(g.first_code, g.first_code + g.n_codes)
        valid[g.index, :g.n_codes] = True
    return ids, valid


GROUP_IDS, GROUP_VALID = _group_table()
_TABLES: dict = {}


def _tables(device) -> tuple[Tensor, Tensor, Tensor]:
    """(ids, invalid mask, first code per group) on a device, built once (sampling runs them per step)."""
    key = str(device)
    if key not in _TABLES:
        _TABLES[key] = (GROUP_IDS.to(device), ~GROUP_VALID.to(device),
                        torch.as_tensor(pc.GROUP_START[:-1], device=device))
    return _TABLES[key]


def group_logits(logits: Tensor) -> Tensor:
    """(..., >=392) -> (..., 70, G) logits per group, -inf where a group has fewer codes."""
    ids, invalid, _ = _tables(logits.device)
    return logits[..., ids].masked_fill(invalid, float("-inf"))


def khot(choice: Tensor, dtype=torch.float32) -> Tensor:
    """(..., 70) category per group -> (..., 394) K-hot vector (END and PAD bits 0)."""
    first = _tables(choice.device)[2]
    ids = (choice + first).reshape(-1, pc.N_GROUPS)
    out = torch.zeros(ids.shape[0], N_TOKENS, device=choice.device, dtype=dtype)
    out.scatter_(1, ids, 1.0)
    return out.reshape(*choice.shape[:-1], N_TOKENS)


def project_valid(x: Tensor) -> Tensor:
    """Any (..., 394) vector -> a valid token: END/PAD by sigmoid > 0.5, else the argmax of each group
    (an END or PAD step carries no pose codes)."""
    out = khot(group_logits(x).argmax(-1))
    special = (x[..., pc.END:] > 0).float()
    out = out * (special.sum(-1, keepdim=True) == 0)
    out[..., pc.END:] = special
    return out


def pick_codes(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
               generator: torch.Generator | None = None) -> Tensor:
    """(B, 394) logits -> (B, 70) category per group. temperature 0 takes the argmax; otherwise
    Gumbel-max sampling of softmax(logits / temperature) inside each group, among its top_k."""
    g = group_logits(logits.float())
    if temperature <= 0:
        return g.argmax(-1)
    g = g / temperature
    if top_k is not None and top_k > 0 and top_k < g.shape[-1]:
        kth = g.topk(top_k, dim=-1).values[..., -1:]
        g = g.masked_fill(g < kth, float("-inf"))
    u = torch.rand(g.shape, generator=generator, device="cpu" if generator is not None else g.device)
    gumbel = -torch.log(-torch.log(u.to(g.device).clamp_(1e-20, 1.0 - 1e-7)))
    return (g + gumbel).argmax(-1)


@dataclass
class BaseSample:
    tokens: Tensor          # (B, S_max, 394) K-hot steps, zero beyond each sample's length
    lengths: Tensor         # (B,) steps per sample (END excluded)


class BaseTransformer(nn.Module):
    def __init__(self, config: BaseConfig | str = "small", **changes):
        super().__init__()
        if isinstance(config, str):
            config = BASE_CONFIGS[config]
        self.config = cfg = config.replace(**changes) if changes else config
        self.cond_emb = nn.Linear(cfg.text_dim, cfg.dim)
        self.tok_emb = nn.Linear(N_TOKENS, cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_ratio, cfg.dropout) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.dim)
        self.head = nn.Linear(cfg.dim, N_TOKENS, bias=False)
        self.register_buffer("pos", sinusoidal(cfg.block_size, cfg.dim), persistent=False)
        self.apply(init_weights)

    def _check_cond(self, cond: Tensor) -> None:
        cfg = self.config
        if cond.ndim != 3 or cond.shape[1:] != (cfg.n_text_tokens, cfg.text_dim):
            raise ValueError(f"text condition must be (B, {cfg.n_text_tokens}, {cfg.text_dim}), "
                             f"got {tuple(cond.shape)}")

    def forward(self, cond: Tensor, tokens: Tensor) -> Tensor:
        """cond (B, 12, text_dim), tokens (B, S, 394) teacher-forced steps ->
        (B, S + 1, 394) logits; row t predicts step t (row S: what follows the last)."""
        self._check_cond(cond)
        cfg = self.config
        S = tokens.shape[1]
        if S + cfg.n_text_tokens > cfg.block_size:
            raise ValueError(f"at most {cfg.max_tokens - 1} input steps, got {S}")
        x = torch.cat([self.cond_emb(cond), self.tok_emb(tokens)], dim=1)
        x = self.drop(x + self.pos[: x.shape[1]])
        for block in self.blocks:
            x = block(x, causal=True)
        return self.head(self.ln_f(x[:, cfg.n_text_tokens - 1:]))

    def _step(self, x: Tensor, cache: KVCache) -> Tensor:
        """Run new positions x (B, T, dim) through the blocks with the cache; last row's logits."""
        x = x + self.pos[cache.length: cache.length + x.shape[1]]
        for i, block in enumerate(self.blocks):
            x = block(x, causal=True, cache=cache, layer=i)
        cache.length += x.shape[1]
        return self.head(self.ln_f(x[:, -1]))

    @torch.inference_mode()
    def sample(self, cond: Tensor, lengths: Tensor | None = None, *, temperature: float = 1.0,
               top_k: int | None = None, min_steps: int = 1, generator: torch.Generator | None = None,
               use_cache: bool = True) -> BaseSample:
        """Sample pose-code steps for each text condition.

        lengths: (B,) steps wanted (END ignored until then), or None to stop at END (or at
        max_tokens - 1 steps). min_steps: END is ignored before this many steps.
        use_cache=False recomputes the whole sequence every step (for comparison only).
        """
        self._check_cond(cond)
        cfg = self.config
        dtype = self.ln_f.weight.dtype          # not a Linear's: those may hold int8 weights
        cond = cond.to(dtype)
        B, limit = cond.shape[0], cfg.max_tokens - 1
        if lengths is not None:
            lengths = torch.as_tensor(lengths, dtype=torch.long).reshape(-1).cpu()
            if lengths.numel() != B or int(lengths.min()) < 1 or int(lengths.max()) > limit:
                raise ValueError(f"lengths must be {B} values in 1..{limit} steps")
        out = torch.zeros(B, limit, N_TOKENS, device=cond.device, dtype=dtype)
        done = torch.zeros(B, dtype=torch.bool)
        final = torch.full((B,), limit, dtype=torch.long)
        active = torch.arange(B)                       # rows still in the batch
        cache = None
        if use_cache:
            cache = KVCache(cfg.layers, B, cfg.heads, cfg.block_size, cfg.dim // cfg.heads, cond)
            logits = self._step(self.cond_emb(cond), cache)
        else:
            logits = self.forward(cond, out[:, :0])[:, -1]
        for t in range(limit):
            choice = pick_codes(logits, temperature, top_k, generator)
            tok = khot(choice, dtype)
            if lengths is not None:
                ended = t >= lengths[active]
            elif t >= min_steps:
                ended = logits[:, pc.END].float().cpu() > 0
            else:
                ended = torch.zeros(len(active), dtype=torch.bool)
            out[active, t] = tok * (~ended).to(tok.device)[:, None]
            final[active[ended]] = t
            done[active[ended]] = True
            if bool(done.all()) or t == limit - 1:
                break
            keep = (~ended).nonzero().squeeze(1)
            if len(keep) < len(active):
                active, tok = active[keep], tok[keep]
                if cache is not None:
                    cache.select(keep.to(cache.k.device))
            if cache is not None:
                logits = self._step(self.tok_emb(tok)[:, None], cache)
            else:
                logits = self.forward(cond[active], out[active, :t + 1])[:, -1]
        S = int(final.max())
        return BaseSample(out[:, :S], final)


def count_parameters(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def corrupt(tokens: Tensor, pkeep: float, generator: torch.Generator | None = None) -> Tensor:
    """Scheduled-sampling noise (§1.6): each code bit kept with probability pkeep, else N(0, 1),
    then projected back to one code per group. Unlike the reference, END/PAD bits are not noised:
    a random END inside the input would only teach the model to ignore END."""
    keep = torch.rand(tokens.shape, generator=generator) < pkeep
    keep[..., pc.END:] = True
    noise = torch.randn(tokens.shape, generator=generator)
    x = torch.where(keep.to(tokens.device), tokens, noise.to(tokens.device))
    return project_valid(x)


def bce_loss(logits: Tensor, target: Tensor, lengths: Tensor) -> Tensor:
    """BCE over all 394 outputs on steps 0..length (the steps and the END), mean per sample."""
    S = logits.shape[1]
    valid = (torch.arange(S, device=logits.device)[None] <= lengths[:, None]).float()
    per = F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(-1)
    return ((per * valid).sum(1) / valid.sum(1)).mean() / N_TOKENS


def token_sequence(codes: np.ndarray, max_tokens: int) -> tuple[np.ndarray, int]:
    """Token-rate bool codes (S, 392) -> (max_tokens, 394) target: steps, END, then PAD."""
    S = min(len(codes), max_tokens - 1)
    out = np.zeros((max_tokens, N_TOKENS), np.float32)
    out[:S, :pc.N_CODES] = codes[:S]
    out[S, pc.END] = 1.0
    out[S + 1:, pc.PAD] = 1.0
    return out, S
