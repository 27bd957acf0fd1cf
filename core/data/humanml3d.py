"""HumanML3D / KIT-ML dataset folders, exactly as users have them, with pose codes cached.

Folder layout::

    new_joint_vecs/<id>.npy   (T, 263) or (T, 251) features
    new_joints/<id>.npy       (T, J, 3) joints (optional: recovered from the features)
    texts/<id>.txt            caption#tokens#start#end lines
    Mean.npy, Std.npy         feature statistics
    train.txt, val.txt, test.txt (and train_val.txt, all.txt)
    codes/<id>.npy            (T, 392) pose codes: written here on first use
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from core import atomic, posecodes
from core.data.captions import Caption, read_captions
from core.features import recover_joints
from core.skeleton import KIT, T2M, Skeleton

log = logging.getLogger(__name__)

CODES_META = {"parser": "pgr2m.posecodes", "version": 1, "frame": "heading", "jitter": False}
SPLITS = ("train", "val", "test", "train_val", "all")

Progress = Callable[[int, int, str], None]


class DatasetError(ValueError):
    """The folder as a whole cannot be used; the message names what is wrong."""


@dataclass
class MotionRecord:
    id: str
    features: np.ndarray            # (T, D) float32, not normalised
    captions: list[Caption]
    codes: np.ndarray               # (T, 392) bool, one code per group per frame

    @property
    def n_frames(self) -> int:
        return len(self.features)


@dataclass
class Segment:
    """One (caption, frame range) training pair; sub-clip captions give their own range."""

    record: int
    caption: Caption
    start: int
    end: int


def _check_array(path: Path, arr: np.ndarray, ndim_shape: tuple, what: str) -> None:
    if arr.dtype.kind not in "fiub":
        raise ValueError(f"{path}: {what} must be numeric, found dtype {arr.dtype}")
    if arr.ndim != len(ndim_shape) or any(s is not None and a != s for a, s in zip(arr.shape, ndim_shape)):
        want = "(" + ", ".join("T" if s is None else str(s) for s in ndim_shape) + ")"
        raise ValueError(f"{path}: {what} should have shape {want}, found {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        rows = np.flatnonzero(~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1))
        raise ValueError(f"{path}: {what} contains NaN or infinite values in {len(rows)} frame(s), first at {rows[0]}")


def read_split(root: Path, split: str) -> list[str]:
    path = root / f"{split}.txt"
    if not path.is_file():
        have = ", ".join(s for s in SPLITS if (root / f"{s}.txt").is_file()) or "none"
        raise DatasetError(f"{path}: split file not found (splits present: {have})")
    ids = [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
    return [i for i in ids if i]


def load_mean_std(root: str | Path) -> tuple[np.ndarray, np.ndarray]:
    root = Path(root)
    out = []
    for name in ("Mean.npy", "Std.npy"):
        path = root / name
        if not path.is_file():
            raise DatasetError(f"{path}: missing; a HumanML3D folder needs Mean.npy and Std.npy "
                               "(compute them with `pgr2m dataset-stats --write-mean-std`)")
        try:
            arr = atomic.load_npy(path)          # its errors name the file
        except ValueError as exc:
            raise DatasetError(str(exc)) from None
        if arr.dtype.kind not in "biuf":
            raise DatasetError(f"{path}: not a plain numeric .npy file ({arr.dtype})")
        arr = arr.astype(np.float32)
        if arr.ndim != 1 or arr.shape[0] not in (T2M.feature_dim, KIT.feature_dim) or not np.isfinite(arr).all():
            raise DatasetError(f"{path}: expected a finite vector of 263 (HumanML3D) or 251 (KIT) values, "
                               f"found shape {arr.shape}")
        out.append(arr)
    if out[0].shape != out[1].shape:
        raise DatasetError(f"{root}: Mean.npy and Std.npy differ in length ({out[0].shape[0]} vs {out[1].shape[0]})")
    if (out[1] <= 0).any():
        raise DatasetError(f"{root / 'Std.npy'}: has zero or negative entries")
    return out[0], out[1]


class HumanML3DFolder:
    """One split of a HumanML3D-format folder, loaded into memory.

    Broken items (a missing or malformed file, NaN, no usable caption) are skipped and
    described in ``problems``; a folder that cannot be used at all raises DatasetError.
    """

    def __init__(self, root: str | Path, split: str = "train", *, min_frames: int = 2,
                 max_frames: int | None = None, cache_codes: bool = True, fps: float | None = None,
                 progress: Progress | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: dataset folder not found")
        for sub in ("new_joint_vecs", "texts"):
            if not (self.root / sub).is_dir():
                raise DatasetError(f"{self.root / sub}: missing; this does not look like a HumanML3D-format folder")
        self.split = split
        self.mean, self.std = load_mean_std(self.root)
        self.skeleton: Skeleton = T2M if self.mean.shape[0] == T2M.feature_dim else KIT
        self.fps = fps or self._meta_fps() or self.skeleton.fps
        self.problems: list[str] = []
        self.records: list[MotionRecord] = []
        ids = read_split(self.root, split)
        codes_ok = cache_codes and self._codes_cache_valid()
        wrote_codes = False
        for n, clip_id in enumerate(ids):
            if progress:
                progress(n, len(ids), clip_id)
            try:
                record, fresh = self._load(clip_id, codes_ok, cache_codes)
            except ValueError as exc:
                self.problems.append(str(exc))
                continue
            wrote_codes |= fresh
            if record.n_frames < min_frames:
                self.problems.append(f"{clip_id}: {record.n_frames} frames, fewer than the minimum {min_frames}; skipped")
                continue
            if max_frames and record.n_frames > max_frames:
                record = MotionRecord(record.id, record.features[:max_frames], record.captions, record.codes[:max_frames])
            self.records.append(record)
        if progress:
            progress(len(ids), len(ids), "done")
        if wrote_codes and cache_codes:
            self._write_codes_meta()
        if not self.records:
            raise DatasetError(f"{self.root}: no usable motions in split '{split}'"
                               + (f" (first problem: {self.problems[0]})" if self.problems else ""))
        for p in self.problems:
            log.warning(p)

    # loading

    def _meta_fps(self) -> float | None:
        meta = self.root / "dataset.json"
        try:
            fps = float(json.loads(meta.read_text(encoding="utf-8"))["fps"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        # NaN, infinite or absurd rates would break frame arithmetic in segments()
        if not 0 < fps <= 1000:
            log.warning("%s: ignoring invalid fps %r", meta, fps)
            return None
        return fps

    def _codes_cache_valid(self) -> bool:
        try:
            return json.loads((self.root / "codes" / "_parser.json").read_text()) == CODES_META
        except (OSError, ValueError):
            return False

    def _write_codes_meta(self) -> None:
        try:
            atomic.write_text(self.root / "codes" / "_parser.json", json.dumps(CODES_META, indent=1))
        except OSError as exc:
            log.warning("could not write the pose-code cache: %s", exc)

    def _load(self, clip_id: str, codes_ok: bool, cache_codes: bool) -> tuple[MotionRecord, bool]:
        if not clip_id.replace("-", "").replace("_", "").replace(".", "").isalnum() or clip_id.startswith("."):
            raise ValueError(f"{self.split}.txt: invalid clip id {clip_id!r}")
        vec_path = self.root / "new_joint_vecs" / f"{clip_id}.npy"
        if not vec_path.is_file():
            raise ValueError(f"{vec_path}: missing")
        features = atomic.load_npy(vec_path)
        _check_array(vec_path, features, (None, self.skeleton.feature_dim), "features")
        features = features.astype(np.float32)

        text_path = self.root / "texts" / f"{clip_id}.txt"
        if not text_path.is_file():
            raise ValueError(f"{text_path}: missing")
        captions, problems = read_captions(text_path)
        self.problems.extend(problems)
        if not captions:
            raise ValueError(f"{text_path}: no usable caption; clip skipped")

        codes, fresh = None, False
        code_path = self.root / "codes" / f"{clip_id}.npy"
        if codes_ok and code_path.is_file():
            try:
                codes = atomic.load_npy(code_path)
                if codes.shape != (len(features), posecodes.N_CODES) or codes.dtype != bool:
                    codes = None
            except ValueError:
                codes = None
        if codes is None:
            codes = posecodes.parse(self._joints(clip_id, features))
            fresh = True
            if cache_codes:
                try:
                    atomic.save_npy(code_path, codes)
                except OSError:
                    pass    # read-only dataset: codes stay in memory
        return MotionRecord(clip_id, features, captions, codes), fresh

    def _joints(self, clip_id: str, features: np.ndarray) -> np.ndarray:
        path = self.root / "new_joints" / f"{clip_id}.npy"
        if path.is_file():
            joints = atomic.load_npy(path)
            _check_array(path, joints, (None, self.skeleton.n_joints, 3), "joints")
            if len(joints) >= len(features):
                return joints[:len(features)].astype(np.float64)
        return recover_joints(features, self.skeleton)

    # access

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> MotionRecord:
        return self.records[i]

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]

    def segments(self) -> list[Segment]:
        """Every caption as a (record, frame range) pair, sub-clip captions cut to their range."""
        out = []
        for i, rec in enumerate(self.records):
            for cap in rec.captions:
                if cap.whole_clip:
                    out.append(Segment(i, cap, 0, rec.n_frames))
                else:
                    a, b = int(cap.start * self.fps), min(int(cap.end * self.fps), rec.n_frames)
                    if b - a >= 2:
                        out.append(Segment(i, cap, a, b))
        return out

    def normalized(self, features: np.ndarray) -> np.ndarray:
        return (features - self.mean) / self.std
