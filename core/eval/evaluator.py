"""Our text–motion contrastive evaluator, trainable on any HumanML3D-format dataset.

Same shape as the T2M evaluator (method-facts §5.2), with the GloVe+POS text
side replaced by frozen MiniLM token features (core.text), so it needs no
external files:

    motion (B, T, D) normalised, foot contacts dropped
      -> movement encoder: Conv1d k4 s2 p1 ×2 (Dropout 0.2, LeakyReLU 0.2) -> Linear   (T/4 steps)
      -> motion encoder:   Linear -> BiGRU over m_len//4 steps -> [h_fwd; h_bwd]
                           -> Linear -> LayerNorm -> LeakyReLU -> Linear   (embed_dim)
    text tokens (B, L, 384) + mask
      -> Linear -> BiGRU over the real tokens -> Linear -> LN -> LeakyReLU -> Linear

Trained with a Hadsell contrastive loss (``contrastive_loss``), margin 10.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Sequence

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence

from core import atomic
from core.model.io import load_weights
from core.text.encoders import TextFeatures, load_text_encoder

__all__ = [
    "EvaluatorConfig", "CONFIGS", "TextMotionEvaluator", "contrastive_loss",
    "MovementEncoder", "SequenceHead",
]

FORMAT = "pgr2m-text-motion-evaluator/1"


@dataclass
class EvaluatorConfig:
    """Widths of the evaluator; ``paper`` mirrors §5.2, ``small`` trains on a laptop CPU."""

    dim_pose: int = 263            # 263 HumanML3D, 251 KIT
    n_contacts: int = 4            # trailing foot-contact dims, dropped before encoding
    movement_hidden: int = 512
    movement_latent: int = 512
    motion_hidden: int = 1024
    text_dim: int = 384            # token width of the text encoder
    text_hidden: int = 512
    embed_dim: int = 512
    dropout: float = 0.2
    unit_length: int = 4           # frames per GRU step (two stride-2 convs)
    text_encoder: str = "minilm"   # spec for core.text.load_text_encoder
    max_text_length: int = 77

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "EvaluatorConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown evaluator config keys: {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def named(cls, name: str, **overrides) -> "EvaluatorConfig":
        if name not in CONFIGS:
            raise ValueError(f"unknown evaluator config {name!r}; choose from {sorted(CONFIGS)}")
        return cls(**{**CONFIGS[name], **overrides})


CONFIGS: dict[str, dict] = {
    "paper": {},
    "small": {"movement_hidden": 128, "movement_latent": 128, "motion_hidden": 192,
              "text_hidden": 128},
}


class MovementEncoder(nn.Module):
    """(B, T, D_in) -> (B, T//4, latent): two stride-2 convolutions then a per-step Linear."""

    def __init__(self, d_in: int, hidden: int, latent: int, dropout: float):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv1d(d_in, hidden, 4, 2, 1), nn.Dropout(dropout), nn.LeakyReLU(0.2),
            nn.Conv1d(hidden, latent, 4, 2, 1), nn.Dropout(dropout), nn.LeakyReLU(0.2),
        )
        self.out_net = nn.Linear(latent, latent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_net(self.main(x.transpose(1, 2)).transpose(1, 2))


class SequenceHead(nn.Module):
    """Linear -> BiGRU (learned initial state) over ``lengths`` steps -> MLP to ``d_out``."""

    def __init__(self, d_in: int, hidden: int, d_out: int):
        super().__init__()
        self.input_emb = nn.Linear(d_in, hidden)
        self.gru = nn.GRU(hidden, hidden, batch_first=True, bidirectional=True)
        self.output_net = nn.Sequential(
            nn.Linear(2 * hidden, hidden), nn.LayerNorm(hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, d_out),
        )
        self.hidden = nn.Parameter(torch.randn(2, 1, hidden) * 0.1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        lengths = lengths.to("cpu", torch.int64).clamp(min=1, max=x.shape[1])
        packed = pack_padded_sequence(self.input_emb(x), lengths, batch_first=True, enforce_sorted=False)
        h0 = self.hidden.expand(-1, x.shape[0], -1).contiguous()
        _, last = self.gru(packed, h0)           # (2, B, H), already back in input order
        return self.output_net(torch.cat([last[0], last[1]], dim=-1))


def _init(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv1d, nn.Linear)):
        nn.init.xavier_normal_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


class TextMotionEvaluator(nn.Module):
    """Joint text/motion embedding network (see module docstring)."""

    def __init__(self, config: EvaluatorConfig | None = None):
        super().__init__()
        self.config = cfg = config or EvaluatorConfig()
        d_in = cfg.dim_pose - cfg.n_contacts
        self.movement = MovementEncoder(d_in, cfg.movement_hidden, cfg.movement_latent, cfg.dropout)
        self.motion = SequenceHead(cfg.movement_latent, cfg.motion_hidden, cfg.embed_dim)
        self.text = SequenceHead(cfg.text_dim, cfg.text_hidden, cfg.embed_dim)
        for part in (self.movement, self.motion.input_emb, self.motion.output_net,
                     self.text.input_emb, self.text.output_net):
            part.apply(_init)

    @property
    def device(self) -> torch.device:
        return self.motion.hidden.device

    # ---------------------------------------------------------------- motion

    def embed_motion(self, features: torch.Tensor, lengths) -> torch.Tensor:
        """(B, T, dim_pose) normalised features, (B,) frame counts -> (B, embed_dim).

        Frames at or beyond each length are zeroed, and zero frames are appended so
        the last GRU step never sees convolution padding: the result depends only
        on the first ``length`` frames.
        """
        cfg = self.config
        if features.ndim != 3 or features.shape[-1] != cfg.dim_pose:
            raise ValueError(f"features must be (B, T, {cfg.dim_pose}), got {tuple(features.shape)}")
        lengths = torch.as_tensor(lengths, device=features.device).to(torch.int64).reshape(-1)
        if lengths.shape[0] != features.shape[0]:
            raise ValueError("one length per motion is needed")
        lengths = lengths.clamp(min=1, max=features.shape[1])
        x = features[..., : cfg.dim_pose - cfg.n_contacts]
        steps = (lengths // cfg.unit_length).clamp(min=1)
        need = int(steps.max().item()) * cfg.unit_length + cfg.unit_length
        if x.shape[1] < need:
            x = nn.functional.pad(x, (0, 0, 0, need - x.shape[1]))
        valid = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
        x = x * valid[..., None].to(x.dtype)
        return self.motion(self.movement(x), steps)

    # ---------------------------------------------------------------- text

    def embed_text(self, text_features: TextFeatures) -> torch.Tensor:
        """Token features (B, L, text_dim) with mask -> (B, embed_dim)."""
        tf = text_features.to(self.device)
        if tf.tokens.shape[-1] != self.config.text_dim:
            raise ValueError(f"text tokens are {tf.tokens.shape[-1]}-d, evaluator expects "
                             f"{self.config.text_dim}-d ({self.config.text_encoder})")
        return self.text(tf.tokens, tf.lengths)

    def text_features(self, texts: Sequence[str]) -> TextFeatures:
        """Run the frozen text encoder named in the config (cached by core.text)."""
        enc = load_text_encoder(self.config.text_encoder, device=self.device)
        return enc.encode(list(texts), max_length=self.config.max_text_length)

    def encode_texts(self, texts: Sequence[str] | TextFeatures) -> torch.Tensor:
        """Captions or precomputed TextFeatures -> (B, embed_dim)."""
        if not isinstance(texts, TextFeatures):
            texts = self.text_features(texts)
        return self.embed_text(texts)

    def forward(self, text_features: TextFeatures, features: torch.Tensor,
                lengths) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (text embeddings, motion embeddings), both (B, embed_dim)."""
        return self.embed_text(text_features), self.embed_motion(features, lengths)

    # ---------------------------------------------------------------- files

    def save(self, folder: str | Path) -> Path:
        """Write ``model.safetensors`` and ``config.json`` into ``folder`` (atomically)."""
        from safetensors.torch import save as st_save

        folder = Path(folder)
        sd = {k: v.detach().to("cpu").contiguous() for k, v in self.state_dict().items()}
        atomic.write_bytes(folder / "model.safetensors", st_save(sd, metadata={"format": FORMAT}))
        meta = {"format": FORMAT, "config": self.config.to_dict()}
        atomic.write_text(folder / "config.json", json.dumps(meta, indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path, device="cpu") -> "TextMotionEvaluator":
        """Load a folder written by ``save``; returned in eval mode."""
        folder = Path(folder)
        cfg_path, w_path = folder / "config.json", folder / "model.safetensors"
        for p in (cfg_path, w_path):
            if not p.is_file():
                raise FileNotFoundError(f"evaluator file missing: {p}")
        meta = json.loads(cfg_path.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{cfg_path} is not a {FORMAT} file (format={meta.get('format')!r})")
        model = cls(EvaluatorConfig.from_dict(meta["config"]))
        load_weights(w_path, model)          # CheckpointError (a ValueError) for anything but safetensors
        return model.to(device).eval()

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def contrastive_loss(text_emb: torch.Tensor, motion_emb: torch.Tensor, margin: float = 10.0,
                     generator: torch.Generator | None = None, offset: int | None = None) -> torch.Tensor:
    """Hadsell contrastive loss on matched rows (B >= 2).

    positives: mean ‖tᵢ − mᵢ‖²; negatives: motions rolled by one random offset
    o ∈ [1, B−1] (never 0, so a negative is never its own positive), mean
    max(0, margin − ‖tᵢ − m_{(i+o) mod B}‖)². Returns positives + negatives.
    """
    b = text_emb.shape[0]
    if b < 2 or motion_emb.shape[0] != b:
        raise ValueError("contrastive_loss needs two equal batches of at least 2 rows")
    if offset is None:
        offset = int(torch.randint(1, b, (1,), generator=generator).item())
    elif not 1 <= offset < b:
        raise ValueError("offset must be in [1, B-1]")
    pos = (text_emb - motion_emb).pow(2).sum(-1)
    neg_m = torch.roll(motion_emb, shifts=-offset, dims=0)     # row i -> motion (i + offset) % B
    d_neg = ((text_emb - neg_m).pow(2).sum(-1) + 1e-12).sqrt()  # eps: finite gradient at d = 0
    neg = (margin - d_neg).clamp(min=0).pow(2)
    return pos.mean() + neg.mean()
