"""Training batches from a HumanML3D-format folder: random windows of normalised features
with their per-frame pose codes, drawn from a seeded generator."""

from __future__ import annotations

import numpy as np
import torch

from core.data.humanml3d import HumanML3DFolder


def train_and_val(root: str) -> tuple[HumanML3DFolder, HumanML3DFolder]:
    """The train split and the val split; a folder without a val split validates on train."""
    train = HumanML3DFolder(root, "train")
    try:
        return train, HumanML3DFolder(root, "val")
    except ValueError:
        return train, train


class MotionWindows:
    """All clips of a split that are at least ``window`` frames long, packed in one array."""

    def __init__(self, folder: HumanML3DFolder, window: int):
        keep = [r for r in folder.records if r.n_frames >= window]
        if not keep:
            longest = max(r.n_frames for r in folder.records)
            raise ValueError(f"{folder.root} [{folder.split}]: no clip has {window} frames (longest: {longest}); "
                             "lower the training window")
        self.window = window
        self.ids = [r.id for r in keep]
        self.lengths = np.array([r.n_frames for r in keep])
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths)[:-1]])
        self.features = np.concatenate([folder.normalized(r.features) for r in keep]).astype(np.float32)
        self.codes = np.concatenate([r.codes for r in keep])
        self.skipped = len(folder.records) - len(keep)

    def __len__(self) -> int:
        return len(self.ids)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(motion (B, W, D) float32, codes (B, W, 392) float32): a clip uniformly at random,
        then a window uniformly inside it."""
        clip = torch.randint(len(self.ids), (batch_size,), generator=generator).numpy()
        room = self.lengths[clip] - self.window + 1
        start = (torch.rand(batch_size, generator=generator).numpy() * room).astype(np.int64)
        rows = (self.offsets[clip] + start)[:, None] + np.arange(self.window)[None]
        return (torch.from_numpy(self.features[rows]),
                torch.from_numpy(self.codes[rows].astype(np.float32)))


def eval_clips(folder: HumanML3DFolder, max_frames: int = 196, unit: int = 4) -> list:
    """Whole clips for validation, cropped to at most ``max_frames`` and to a multiple of ``unit``."""
    out = []
    for r in folder.records:
        n = min(r.n_frames, max_frames) // unit * unit
        if n >= unit:
            out.append((r.id, folder.normalized(r.features[:n]).astype(np.float32), r.codes[:n]))
    return out
