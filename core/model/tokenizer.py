"""The pose-guided RVQ tokenizer of PGR²M (method-facts §1.1–1.5).

A motion becomes two code streams at one step per 4 frames:

* pose codes (given, from ``core.posecodes``): the 70-hot code vector of frame
  4t, embedded as the sum of its 70 rows of a learned 392 × D pose codebook;
* residual codes (learned): a 6-stage attention RVQ of what the encoder sees
  beyond the pose latent, r = encoder(motion) − stopgrad(pose latent).

The decoder turns pose latent + residual latents back into motion features.

    tok = PoseGuidedTokenizer(TOKENIZER_CONFIGS["small"])
    out = tok(motion, codes)                  # training: recon, indices, losses
    total, logs = tok.loss(out, motion)
    pose, idx = tok.encode(motion, codes)     # (B, T/4, 392) bool, (B, 6, T/4)
    tok.decode(pose, idx)                     # (B, T, 263)
    tok.decode(pose, idx, n_stages=0)         # pose codes only
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .configs import TOKENIZER_CONFIGS, TokenizerConfig
from .conv import Decoder, Encoder
from .quantizer import ResidualAttentionVQ

__all__ = ["TokenizerOutput", "PoseGuidedTokenizer"]


@dataclass
class TokenizerOutput:
    recon: Tensor                  # (B, T, motion_dim) reconstruction, normalised features
    indices: Tensor                # (B, n_stages, T // unit) long; -1 for stages not run
    losses: dict[str, Tensor]      # "rvq", "entropy": scalars, zero when residual-dropped
    perplexity: Tensor             # (n_stages,) from this batch's hard indices, 0 if not run
    residual_dropped: bool         # decoded from pose latents only


class PoseGuidedTokenizer(nn.Module):
    def __init__(self, config: TokenizerConfig | str = "paper", **changes):
        """`config`: a TokenizerConfig or a name in TOKENIZER_CONFIGS; `changes` override fields."""
        super().__init__()
        if isinstance(config, str):
            config = TOKENIZER_CONFIGS[config]
        if changes:
            config = config.replace(**changes)
        self.config = cfg = config

        self.encoder = Encoder(in_dim=cfg.motion_dim, out_dim=cfg.code_dim, width=cfg.width,
                               down_t=cfg.down_t, depth=cfg.depth, dilation_growth=cfg.dilation_growth)
        self.decoder = Decoder(in_dim=cfg.code_dim, out_dim=cfg.motion_dim, width=cfg.width,
                               down_t=cfg.down_t, depth=cfg.depth, dilation_growth=cfg.dilation_growth)
        # the reference's uniform(-1/n_codes, 1/dim) init, asymmetric as it is there
        self.pose_codebook = nn.Parameter(
            torch.empty(cfg.n_pose_codes, cfg.code_dim).uniform_(-1.0 / cfg.n_pose_codes, 1.0 / cfg.code_dim))
        self.rvq = ResidualAttentionVQ(
            dim=cfg.code_dim, n_stages=cfg.n_stages, codebook_size=cfg.n_codes, beta=cfg.beta,
            entropy_temperature=cfg.entropy_temperature, quantizer_dropout=cfg.quantizer_dropout,
            norm_eps=cfg.norm_eps, init=cfg.codebook_init)

    # -- checks ------------------------------------------------------------

    def _check_inputs(self, motion: Tensor, codes: Tensor) -> None:
        cfg = self.config
        if motion.ndim != 3 or motion.shape[-1] != cfg.motion_dim:
            raise ValueError(f"motion must be (B, T, {cfg.motion_dim}), got {tuple(motion.shape)}")
        if codes.ndim != 3 or codes.shape[-1] != cfg.n_pose_codes:
            raise ValueError(f"codes must be (B, T, {cfg.n_pose_codes}) per frame, got {tuple(codes.shape)}")
        if codes.shape[:2] != motion.shape[:2]:
            raise ValueError(f"codes {tuple(codes.shape)} and motion {tuple(motion.shape)} "
                             "must have the same batch and frame count")
        T = motion.shape[1]
        if T == 0 or T % cfg.unit:
            raise ValueError(f"frame count must be a positive multiple of {cfg.unit} "
                             f"(one latent per {cfg.unit} frames), got {T}; crop the motion first")

    def _check_pose_codes(self, pose_codes: Tensor) -> None:
        if pose_codes.ndim != 3 or pose_codes.shape[-1] != self.config.n_pose_codes:
            raise ValueError(f"pose_codes must be (B, S, {self.config.n_pose_codes}), "
                             f"got {tuple(pose_codes.shape)}")

    def _subsample(self, codes: Tensor) -> Tensor:
        # latent step t takes the codes of frame unit*t (not pooled)
        return codes[:, ::self.config.unit]

    def _residual_dropped(self, residual_dropout: bool | None) -> bool:
        if residual_dropout is not None:
            return bool(residual_dropout)
        if not self.training:
            return False
        return torch.rand(()).item() < self.config.residual_dropout

    # -- latents -----------------------------------------------------------

    def pose_latents(self, pose_codes: Tensor) -> Tensor:
        """Token-rate K-hot codes (B, S, 392) -> (B, S, code_dim): sum of the active codes' rows."""
        self._check_pose_codes(pose_codes)
        return pose_codes.to(self.pose_codebook.dtype) @ self.pose_codebook

    def residual_latents(self, indices: Tensor, n_stages: int | None = None) -> Tensor:
        """Indices (B, k, S) -> (B, S, code_dim): sum of the value embeddings of the first n_stages."""
        if indices.ndim != 3:
            raise ValueError(f"indices must be (B, stages, S), got {tuple(indices.shape)}")
        if indices.shape[1] > self.config.n_stages:
            raise ValueError(f"indices have {indices.shape[1]} stages, the tokenizer {self.config.n_stages}")
        if indices.numel() and (int(indices.min()) < -1 or int(indices.max()) >= self.config.n_codes):
            raise ValueError(f"indices must be in -1..{self.config.n_codes - 1}, "
                             f"got {int(indices.min())}..{int(indices.max())}")
        return self.rvq.decode(indices.long(), n_stages)

    def codebook_values(self) -> Tensor:
        """(n_stages, n_codes, code_dim) value embeddings, the vectors decoding adds per code."""
        return self.rvq.values()

    # -- training forward ----------------------------------------------------

    def forward(self, motion: Tensor, codes: Tensor, *,
                residual_dropout: bool | None = None) -> TokenizerOutput:
        """Reconstruct normalised motion (B, T, D) from itself and its per-frame codes (B, T, 392).

        residual_dropout: None samples it with probability config.residual_dropout in
        training mode and never in eval mode; True/False forces it.  Quantizer dropout
        happens in training mode only.
        """
        self._check_inputs(motion, codes)
        cfg = self.config
        p = self.pose_latents(self._subsample(codes))
        B, S = p.shape[:2]

        if self._residual_dropped(residual_dropout):
            # decode from pose latents alone; encoder and RVQ are not run
            zero = p.new_zeros(())
            return TokenizerOutput(
                recon=self.decoder(p),
                indices=torch.full((B, cfg.n_stages, S), -1, dtype=torch.long, device=p.device),
                losses={"rvq": zero, "entropy": zero.clone()},
                perplexity=p.new_zeros(cfg.n_stages),
                residual_dropped=True,
            )

        z = self.encoder(motion)
        # detached: the pose codebook learns only through the decoder
        q = self.rvq(z - p.detach())
        return TokenizerOutput(
            recon=self.decoder(p + q.quantized),
            indices=q.indices,
            losses={"rvq": q.loss, "entropy": q.entropy},
            perplexity=q.perplexity,
            residual_dropped=False,
        )

    def loss(self, output: TokenizerOutput, target: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Total training loss and float logs.

        L = SmoothL1(all dims) + pos_weight * SmoothL1(local positions)
            + [not residual-dropped] * (rvq_weight * L_rvq + entropy_weight * L_ent)
        """
        cfg = self.config
        if output.recon.shape != target.shape:
            raise ValueError(f"target {tuple(target.shape)} must match recon {tuple(output.recon.shape)}")
        rec = F.smooth_l1_loss(output.recon, target)
        ps = cfg.pos_slice
        pos = F.smooth_l1_loss(output.recon[..., ps], target[..., ps])
        total = rec + cfg.pos_weight * pos
        if not output.residual_dropped:
            total = total + cfg.rvq_weight * output.losses["rvq"] + cfg.entropy_weight * output.losses["entropy"]

        names = ["rec", "pos", "rvq", "entropy", "total"] + [f"perplexity_{l}" for l in range(cfg.n_stages)]
        # one device-to-host copy for all logs
        values = torch.cat([torch.stack([rec, pos, output.losses["rvq"], output.losses["entropy"], total]),
                            output.perplexity.to(total.dtype)]).detach().tolist()
        return total, dict(zip(names, values))

    # -- inference -------------------------------------------------------------

    @torch.no_grad()
    def encode(self, motion: Tensor, codes: Tensor) -> tuple[Tensor, Tensor]:
        """Motion (B, T, D) and per-frame codes (B, T, 392) -> token-rate pose codes
        (B, T/4, 392) bool and residual indices (B, n_stages, T/4); no dropouts, all stages."""
        self._check_inputs(motion, codes)
        pose_codes = self._subsample(codes) != 0
        p = self.pose_latents(pose_codes)
        return pose_codes, self.rvq.encode(self.encoder(motion) - p)

    def decode(self, pose_codes: Tensor, indices: Tensor | None = None,
               n_stages: int | None = None) -> Tensor:
        """Pose codes (B, S, 392) plus the first n_stages of indices (B, k, S) -> motion (B, S*4, D).

        n_stages defaults to all stages given; 0 (or indices None) decodes pose codes only.
        """
        latent = self.pose_latents(pose_codes)
        if indices is not None:
            if indices.shape[0] != latent.shape[0] or indices.shape[-1] != latent.shape[1]:
                raise ValueError(f"indices {tuple(indices.shape)} do not match pose codes "
                                 f"{tuple(pose_codes.shape)}: expected (B, k, S)")
            latent = latent + self.residual_latents(indices, n_stages)
        elif n_stages:
            raise ValueError(f"n_stages={n_stages} needs indices")
        return self.decoder(latent)
