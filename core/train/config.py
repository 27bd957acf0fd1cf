"""Training configuration: one JSON-serialisable dataclass shared by every stage."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from core import atomic


@dataclass
class TrainConfig:
    # what and where
    stage: str = "tokenizer"          # tokenizer | evaluator | base | refine | module:Class
    data: str = ""                    # HumanML3D-format dataset folder
    out: str = ""                     # run folder: checkpoint, logs, exported model
    preset: str = "small"             # named model size of the stage (small | paper)
    model: dict = field(default_factory=dict)    # overrides of the preset's model config
    # batches
    batch_size: int = 64
    window: int = 64                  # frames per training window, a multiple of 4
    # AdamW and the schedule: linear warm-up, then step decay at the milestones
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 0.0
    warmup_steps: int = 1000
    max_steps: int = 300_000
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.05
    grad_clip: float = 1.0            # max gradient norm; 0 turns clipping off
    # bookkeeping
    log_every: int = 50
    val_every: int = 1000
    ckpt_every: int = 500
    seed: int = 123
    device: str = "auto"              # auto | cpu | cuda | cuda:N
    threads: int = 0                  # torch CPU threads; 0 leaves torch's default
    extra: dict = field(default_factory=dict)    # stage-specific knobs

    def __post_init__(self):
        self.betas = tuple(self.betas)
        if self.window % 4:
            raise ValueError(f"window must be a multiple of 4 frames, got {self.window}")
        if self.batch_size < 1 or self.max_steps < 0:
            raise ValueError("batch_size must be >= 1 and max_steps >= 0")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training setting(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def save(self, path: str | Path) -> None:
        atomic.write_text(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> "TrainConfig":
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise ValueError(f"{path}: training config not found") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None

    def override(self, assignments: list[str]) -> "TrainConfig":
        """Apply ``key=value`` strings (values parsed as JSON when they can be)."""
        d = self.to_dict()
        for item in assignments:
            key, sep, raw = item.partition("=")
            if not sep:
                raise ValueError(f"expected key=value, got {item!r}")
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
            target = d
            *parents, leaf = key.split(".")
            for p in parents:
                target = target.setdefault(p, {})
                if not isinstance(target, dict):
                    raise ValueError(f"{key}: {p} is not a group of settings")
            if target is d and leaf not in d:
                raise ValueError(f"unknown training setting {leaf!r}")
            target[leaf] = value
        return TrainConfig.from_dict(d)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate of a step: linear warm-up lr*(step+1)/(warmup+1), then times gamma
    at each milestone passed."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / (cfg.warmup_steps + 1)
    return cfg.lr * cfg.gamma ** sum(step >= m for m in cfg.milestones)
