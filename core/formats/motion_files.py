"""Write a motion to the file its extension names, and read one back for editing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core import atomic
from core import posecodes as pc

WRITABLE = (".npy", ".bvh", ".json")
READABLE = (".json", ".npy", ".bvh")


class MotionFileError(ValueError):
    pass


def save_motion(path: str | Path, motion, *, fps: float | None = None, scale: float = 1.0) -> Path:
    """.npy: joints (T, 22, 3) float32, metres, Y up; .bvh: the 22-joint rig (fps resamples,
    scale 100 for centimetres); .json: the pose codes with names, the residual codes and prompt."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".npy":
        atomic.save_npy(path, np.asarray(motion.joints, np.float32))
    elif ext == ".bvh":
        from core.formats.bvh_export import save_bvh

        save_bvh(path, motion.joints, fps=motion.fps, target_fps=fps, scale=scale)
    elif ext == ".json":
        atomic.write_text(path, json.dumps(motion.codes_json(), indent=1, ensure_ascii=False))
    else:
        raise MotionFileError(f"{path.name}: cannot write {ext or 'a file without extension'}; "
                              f"use one of {', '.join(WRITABLE)}")
    return path


def read_codes_json(path: str | Path) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(pose codes (S, 392) bool, residual codes (n, S) or None, prompt) from a codes JSON."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        ids = np.array([[c["id"] for c in s["codes"]] for s in data["steps"]], dtype=np.int64)
        pose = pc.from_indices(ids)
        res = data.get("residual_codes")
        res = None if res is None else np.array(res, dtype=np.int64)
        prompt = str(data.get("prompt") or "")
    except (OSError, UnicodeDecodeError) as exc:
        raise MotionFileError(f"{path}: cannot read ({exc})") from None
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise MotionFileError(f"{path}: not a pose-code JSON written by pgr2m ({exc})") from None
    if len(pose) == 0:
        raise MotionFileError(f"{path}: holds no steps")
    if res is not None and (res.ndim != 2 or res.shape[1] != len(pose)):
        raise MotionFileError(f"{path}: residual_codes must be (stages, {len(pose)}), got {res.shape}")
    return pose, res, prompt


def load_motion(path: str | Path, pipeline, prompt: str | None = None):
    """A Motion to edit from a codes JSON (exact), a joints .npy or a BVH (tokenized)."""
    path = Path(path)
    ext = path.suffix.lower()
    if not path.is_file():
        raise MotionFileError(f"{path}: file not found")
    if ext == ".json":
        pose, res, saved_prompt = read_codes_json(path)
        return pipeline.from_codes(pose, res, prompt if prompt is not None else saved_prompt)
    if ext == ".npy":
        try:
            joints = atomic.load_npy(path)
        except ValueError as exc:
            raise MotionFileError(f"{path}: not a plain .npy array ({exc})") from None
        return pipeline.from_joints(joints, prompt or "")
    if ext == ".bvh":
        from core.formats import bvh as bvh_io
        from core.formats.retarget import bvh_to_t2m

        b = bvh_io.read(path)
        scale = 1.0 if _in_metres(b) else 0.01
        return pipeline.from_joints(bvh_to_t2m(b, target_fps=20.0, scale=scale, source=str(path)), prompt or "")
    raise MotionFileError(f"{path.name}: cannot read {ext or 'a file without extension'}; "
                          f"use one of {', '.join(READABLE)}")


def _in_metres(b) -> bool:
    """A skeleton under 3 units tall is in metres (ours), otherwise centimetres."""
    offsets = np.array([j.offset for j in b.joints])
    return float(np.abs(offsets[:, 1]).sum()) < 3.0
