"""Named model configurations: frozen dataclasses that round-trip through JSON."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

__all__ = ["TokenizerConfig", "TOKENIZER_CONFIGS", "tokenizer_config", "BaseConfig", "RefineConfig",
           "BASE_CONFIGS", "REFINE_CONFIGS", "named_config"]

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


class _JsonConfig:
    """to_dict / from_dict / replace for the frozen transformer configs."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
        return cls(**d)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def _check(self):
        for name in ("dim", "layers", "heads", "text_dim", "n_text_tokens", "max_tokens"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be divisible by heads {self.heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass(frozen=True)
class BaseConfig(_JsonConfig):
    """Base Transformer: causal, [text tokens | K-hot pose-code steps] -> 394 logits (method-facts §1.6)."""

    dim: int = 1024
    layers: int = 18                  # the reference's 9 "base" + 9 "head" blocks
    heads: int = 16
    mlp_ratio: int = 4
    dropout: float = 0.1
    text_dim: int = 384               # sentence/keyword vector width: MiniLM 384, CLIP 512
    n_text_tokens: int = 12           # sentence + 11 keywords
    max_tokens: int = 50              # pose-code steps incl. END: 49 steps = 196 frames
    text_encoder: str = "minilm"

    def __post_init__(self):
        self._check()

    @property
    def block_size(self) -> int:
        return self.n_text_tokens + self.max_tokens


@dataclass(frozen=True)
class RefineConfig(_JsonConfig):
    """Refine Transformer: bidirectional, [text | stage | pose codes + earlier residuals] -> codes (§1.7)."""

    dim: int = 1024
    layers: int = 6
    heads: int = 8
    mlp_ratio: int = 4
    dropout: float = 0.2
    text_dim: int = 384
    n_text_tokens: int = 12
    max_tokens: int = 49              # token steps (196 frames)
    n_stages: int = 6
    n_codes: int = 512
    text_encoder: str = "minilm"

    def __post_init__(self):
        self._check()
        if self.n_stages < 1 or self.n_codes < 2:
            raise ValueError("n_stages must be >= 1 and n_codes >= 2")


BASE_CONFIGS: dict[str, BaseConfig] = {
    "paper": BaseConfig(),                                          # ~228 M parameters
    "small": BaseConfig(dim=256, layers=4, heads=4, dropout=0.1),   # ~3.5 M, for a 2-core CPU
}
REFINE_CONFIGS: dict[str, RefineConfig] = {
    "paper": RefineConfig(),                                        # ~80 M parameters
    "small": RefineConfig(dim=256, layers=4, heads=4, dropout=0.1),
}


def named_config(kind: str, name: str, **changes):
    """``kind`` in tokenizer | base | refine; ``name`` a preset; ``changes`` override fields."""
    table = {"tokenizer": TOKENIZER_CONFIGS, "base": BASE_CONFIGS, "refine": REFINE_CONFIGS}[kind]
    try:
        cfg = table[name]
    except KeyError:
        raise KeyError(f"no {kind} config named {name!r}; known: {', '.join(table)}") from None
    return cfg.replace(**changes) if changes else cfg
