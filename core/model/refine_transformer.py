"""Refine Transformer: the residual codes of each RVQ stage from text and pose codes (§1.7).

Bidirectional over [text tokens | stage token | motion steps]. A motion step's input is the
embedding of its 70-hot pose codes plus the summed embeddings of its codes in the stages
before the one predicted. One table per stage serves as the input embedding of that stage's
codes and as its output projection (the reference's shared weights).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core import posecodes as pc
from core.model.blocks import Block, KVCache, init_weights, sinusoidal
from core.model.configs import REFINE_CONFIGS, RefineConfig


def _pick(logits: Tensor, temperature: float, generator: torch.Generator | None) -> Tensor:
    """One code per row: the argmax at temperature 0, else a Gumbel-max draw."""
    logits = logits.float()
    if temperature <= 0:
        return logits.argmax(-1)
    u = torch.rand(logits.shape, generator=generator).to(logits.device).clamp_(1e-20, 1 - 1e-7)
    return (logits / temperature - torch.log(-torch.log(u))).argmax(-1)


class RefineTransformer(nn.Module):
    def __init__(self, config: RefineConfig | str = "small", **changes):
        super().__init__()
        if isinstance(config, str):
            config = REFINE_CONFIGS[config]
        self.config = cfg = config.replace(**changes) if changes else config
        self.cond_emb = nn.Linear(cfg.text_dim, cfg.dim)
        self.stage_emb = nn.Embedding(cfg.n_stages, cfg.dim)      # = Linear on a one-hot stage id
        self.pose_emb = nn.Linear(pc.N_TOKENS, cfg.dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_ratio, cfg.dropout) for _ in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.dim)
        self.apply(init_weights)
        # codes + 2 spare rows as in the reference; row n_codes + 1 is the ignored padding target
        self.code_table = nn.Parameter(torch.randn(cfg.n_stages, cfg.n_codes + 2, cfg.dim) * 0.02)
        self.register_buffer("pos", sinusoidal(cfg.max_tokens, cfg.dim), persistent=False)

    @property
    def ignore_index(self) -> int:
        return self.config.n_codes + 1

    def pose_embedding(self, pose_codes: Tensor) -> Tensor:
        """(B, S, 392 or 394) K-hot -> (B, S, dim)."""
        dtype = self.ln_f.weight.dtype          # not a Linear's: those may hold int8 weights
        if pose_codes.shape[-1] == pc.N_CODES:
            pose_codes = F.pad(pose_codes.to(dtype), (0, 2))
        return self.pose_emb(pose_codes.to(dtype))

    def code_embedding(self, stage: int, indices: Tensor) -> Tensor:
        """(B, S) indices of one stage -> (B, S, dim); negative (not run) indices embed to zero."""
        emb = self.code_table[stage][indices.clamp(min=0)]
        return emb * (indices >= 0)[..., None].to(emb.dtype)

    def logits(self, cond: Tensor, motion_emb: Tensor, stage: Tensor, mask: Tensor | None = None,
               cache: KVCache | None = None) -> Tensor:
        """cond (B, 12, text_dim); motion_emb (B, S, dim): pose + earlier-stage embeddings;
        stage (B,) long; mask (B, S) True on real steps -> (B, S, n_codes + 2) logits of that stage.
        An empty cache gets every layer's keys and values."""
        cfg = self.config
        if cond.ndim != 3 or cond.shape[1:] != (cfg.n_text_tokens, cfg.text_dim):
            raise ValueError(f"text condition must be (B, {cfg.n_text_tokens}, {cfg.text_dim}), "
                             f"got {tuple(cond.shape)}")
        B, S, _ = motion_emb.shape
        if S > cfg.max_tokens:
            raise ValueError(f"at most {cfg.max_tokens} steps, got {S}")
        cond = cond.to(motion_emb.dtype)
        x = torch.cat([self.cond_emb(cond), self.stage_emb(stage)[:, None], motion_emb + self.pos[:S].to(motion_emb.dtype)],
                      dim=1)
        x = self.drop(x)
        key_mask = None
        if mask is not None:
            prefix = torch.ones(B, cfg.n_text_tokens + 1, dtype=torch.bool, device=mask.device)
            key_mask = torch.cat([prefix, mask.bool()], dim=1)
        for i, block in enumerate(self.blocks):
            x = block(x, key_mask=key_mask, cache=cache, layer=i)
        h = self.ln_f(x[:, cfg.n_text_tokens + 1:])
        if bool((stage == stage[0]).all()):       # one stage for the batch: no per-sample table copy
            return h @ self.code_table[int(stage[0])].T
        return torch.einsum("bsd,bcd->bsc", h, self.code_table[stage])

    def forward(self, cond: Tensor, pose_codes: Tensor, indices: Tensor, lengths: Tensor,
                stage: Tensor) -> tuple[Tensor, dict]:
        """Training loss: cross-entropy of stage q[b] given GT pose codes and GT stages < q[b].

        indices (B, n_stages, S) GT codes; lengths (B,) real steps; stage (B,) long."""
        B, n, S = indices.shape
        real = torch.arange(S, device=indices.device)[None] < lengths[:, None]
        x = self.pose_embedding(pose_codes)
        earlier = (torch.arange(n, device=indices.device)[None] < stage[:, None]).to(x.dtype)   # (B, n)
        table = self.code_table[torch.arange(n, device=indices.device)[None, :, None], indices.clamp(min=0)]
        x = x + (table * earlier[:, :, None, None]).sum(1)
        logits = self.logits(cond, x, stage, real)
        target = indices.gather(1, stage[:, None, None].expand(B, 1, S))[:, 0]
        target = target.masked_fill(~real, self.ignore_index)
        loss = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=self.ignore_index)
        with torch.no_grad():
            acc = ((logits.argmax(-1) == target) & real).sum() / real.sum().clamp(min=1)
        return loss, {"acc": float(acc)}

    @torch.inference_mode()
    def sample(self, cond: Tensor, pose_codes: Tensor, lengths: Tensor | None = None, *,
               temperature: float = 1.0, generator: torch.Generator | None = None,
               keep: Tensor | None = None, known: Tensor | None = None) -> Tensor:
        """Residual indices (B, n_stages, S) for pose codes (B, S, 392|394), one forward per stage.

        keep (B, S) bool with known (B, n_stages, S): steps whose codes are fixed (an edit keeps
        the residuals outside its range); they are not re-predicted but condition later stages.
        temperature 0 takes the argmax."""
        cfg = self.config
        B, S = pose_codes.shape[:2]
        mask = None
        if lengths is not None:
            mask = torch.arange(S, device=pose_codes.device)[None] < lengths.to(pose_codes.device)[:, None]
        x = self.pose_embedding(pose_codes)
        out = torch.zeros(B, cfg.n_stages, S, dtype=torch.long, device=pose_codes.device)
        for q in range(cfg.n_stages):
            stage = torch.full((B,), q, dtype=torch.long, device=pose_codes.device)
            idx = _pick(self.logits(cond, x, stage, mask)[..., :cfg.n_codes], temperature, generator)
            if keep is not None:
                idx = torch.where(keep, known[:, q], idx)
            out[:, q] = idx
            x = x + self.code_embedding(q, idx)
        if mask is not None:
            out = out.masked_fill(~mask[:, None], 0)
        return out

    # -- edits: re-predict a few steps against the keys and values of the unedited motion ------

    @torch.inference_mode()
    def context(self, cond: Tensor, pose_codes: Tensor, indices: Tensor) -> KVCache:
        """The keys and values of every layer that ``sample`` computes for one motion, all stages
        in one batch (their inputs are known): k and v of shape (layers, n_stages, heads,
        13 + S, head_dim). cond (1, 12, text_dim); pose_codes (1, S, 392|394); indices (1, n_stages, S)."""
        cfg = self.config
        n, S = cfg.n_stages, pose_codes.shape[1]
        emb = torch.stack([self.code_embedding(q, indices[0, q]) for q in range(n)])      # (n, S, dim)
        x = self.pose_embedding(pose_codes) + torch.cat([torch.zeros_like(emb[:1]), emb[:-1].cumsum(0)])
        cache = KVCache(cfg.layers, n, cfg.heads, cfg.n_text_tokens + 1 + S, cfg.dim // cfg.heads, x)
        self.logits(cond.expand(n, -1, -1), x, torch.arange(n, device=x.device), cache=cache)
        return cache

    @torch.inference_mode()
    def sample_steps(self, cond: Tensor, pose_codes: Tensor, indices: Tensor, steps: Tensor,
                     context: KVCache, *, temperature: float = 0.0,
                     generator: torch.Generator | None = None) -> Tensor:
        """Re-predict the residual codes of some steps (an edit's), stage by stage, each stage a
        forward pass over those steps alone: the text and the other steps keep the keys and
        values they had in the unedited motion (``context``). On an unchanged motion this gives
        exactly what ``sample`` gives; after an edit, the other steps do not see it.

        pose_codes (1, S, ...) after the edit; indices (1, n_stages, S); steps (k,) long.
        Returns indices with those steps' codes replaced."""
        cfg = self.config
        out = indices.clone()
        rows = cfg.n_text_tokens + 1 + steps
        x0 = self.pose_embedding(pose_codes[:, steps]) + self.pos[steps].to(self.ln_f.weight.dtype)
        for q in range(cfg.n_stages):
            # this stage's keys and values, copied: the edited rows overwrite them
            cache = KVCache.of_rows(context.k[:, q:q + 1].clone(), context.v[:, q:q + 1].clone(), rows)
            x = x0
            for i, block in enumerate(self.blocks):
                x = block(x, cache=cache, layer=i)
            idx = _pick((self.ln_f(x) @ self.code_table[q].T)[..., :cfg.n_codes], temperature, generator)
            out[:, q, steps] = idx
            x0 = x0 + self.code_embedding(q, idx)
        return out
