"""Named model configurations: frozen dataclasses that round-trip through JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["TokenizerConfig", "TOKENIZER_CONFIGS", "tokenizer_config"]

_CODEBOOK_INITS = ("enc", "random")


@dataclass(frozen=True)
class TokenizerConfig:
    """Hyper-parameters of the pose-guided RVQ tokenizer (defaults: the paper's, method-facts §1.2–1.5)."""

    motion_dim: int = 263               # features per frame: HumanML3D 263, KIT-ML 251
    width: int = 512                    # conv channels of encoder and decoder
    code_dim: int = 512                 # latent width: pose codebook, encoder output, RVQ codes
    down_t: int = 2                     # stride-2 downsamplings; one latent per 2**down_t frames
    depth: int = 3                      # residual blocks per resnet stack
    dilation_growth: int = 3            # block dilations growth**i, applied largest first
    n_stages: int = 6                   # residual quantizer stages
    n_codes: int = 512                  # codes per stage (separate codebook per stage)
    n_pose_codes: int = 392             # width of the per-frame K-hot pose code vector
    beta: float = 0.25                  # weight of the codebook-side term in each stage loss
    rvq_weight: float = 0.02            # weight of the mean stage loss in the total
    entropy_weight: float = 0.01        # weight of the entropy loss in the total
    entropy_temperature: float = 0.01   # softmax temperature of the entropy loss
    quantizer_dropout: float = 0.2      # chance a training batch keeps only stages 0..k, k ~ U{0..n-1}
    residual_dropout: float = 0.1       # chance a training batch is decoded from pose latents only
    pos_weight: float = 0.5             # weight of the local-position reconstruction term
    norm_eps: float = 1e-5              # RMSNorm epsilon of query and key
    codebook_init: str = "enc"          # "enc": copy first training batch's residuals; "random": keep init

    def __post_init__(self):
        for name in ("motion_dim", "width", "code_dim", "depth", "dilation_growth",
                     "n_stages", "n_codes", "n_pose_codes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.down_t < 0:
            raise ValueError(f"down_t must be >= 0, got {self.down_t}")
        for name in ("quantizer_dropout", "residual_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability, got {getattr(self, name)}")
        if self.entropy_temperature <= 0:
            raise ValueError(f"entropy_temperature must be > 0, got {self.entropy_temperature}")
        if self.codebook_init not in _CODEBOOK_INITS:
            raise ValueError(f"codebook_init must be one of {_CODEBOOK_INITS}, got {self.codebook_init!r}")
        if self.motion_dim < 11:
            raise ValueError(f"motion_dim must be >= 11 (root 4 + local positions + ...), got {self.motion_dim}")

    @property
    def unit(self) -> int:
        """Frames per latent step (4 in the paper)."""
        return 2 ** self.down_t

    @property
    def pos_slice(self) -> slice:
        """The local joint positions (ric) in the HumanML3D layout: 4:67 for 263, 4:64 for 251."""
        # 263 = 4 + 3(J-1) + 6(J-1) + 3J + 4, i.e. 12(J-1) + 11
        n_joints_minus_1 = (self.motion_dim - 11) // 12
        return slice(4, 4 + 3 * n_joints_minus_1)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TokenizerConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TokenizerConfig field(s): {', '.join(unknown)}")
        return cls(**d)

    def replace(self, **changes) -> "TokenizerConfig":
        return dataclasses.replace(self, **changes)


TOKENIZER_CONFIGS: dict[str, TokenizerConfig] = {
    # the paper's tokenizer, about 25.9 M parameters
    "paper": TokenizerConfig(),
    # for a 2-core CPU, about 1.2 M parameters: ~0.15 s per training step at batch 64 x 64
    # frames (width 128 measured ~0.2 s); six stages of 512 codes as in the paper
    "small": TokenizerConfig(width=96, code_dim=96, depth=2),
}


def tokenizer_config(name: str, **changes) -> TokenizerConfig:
    """A named configuration, optionally with some fields changed."""
    try:
        cfg = TOKENIZER_CONFIGS[name]
    except KeyError:
        raise KeyError(f"no tokenizer config named {name!r}; "
                       f"known: {', '.join(TOKENIZER_CONFIGS)}") from None
    return cfg.replace(**changes) if changes else cfg
