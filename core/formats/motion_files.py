"""Write a motion to the file its extension names, and read one back for editing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from core import atomic
from core import posecodes as pc
from core.formats import bvh as bvh_io
from core.formats.bvh_export import save_bvh
from core.formats.fbx_export import save_fbx
from core.formats.gltf_export import save_glb
from core.formats.retarget import bvh_to_t2m

# extension -> format; "features" is HumanML3D's (T, 263) .npy, picked by name, not extension
FORMATS = {".npy": "npy", ".bvh": "bvh", ".fbx": "fbx", ".glb": "glb", ".json": "json"}
WRITABLE = tuple(FORMATS)
READABLE = (".json", ".npy", ".bvh")
EXPORT_FORMATS = ("bvh", "fbx", "glb", "npy", "features", "json")


class MotionFileError(ValueError):
    pass


def format_for(path: str | Path, fmt: str | None = None) -> str:
    """The format a path asks for: ``fmt`` when given, else its extension's."""
    path = Path(path)
    if fmt is not None:
        if fmt not in EXPORT_FORMATS:
            raise MotionFileError(f"unknown format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
        return fmt
    ext = path.suffix.lower()
    if ext not in FORMATS:
        raise MotionFileError(f"{path.name}: cannot write {ext or 'a file without extension'}; "
                              f"use one of {', '.join(WRITABLE)}")
    return FORMATS[ext]


def _frame_range(n_frames: int, frames: tuple[int, int] | None) -> slice:
    if frames is None:
        return slice(0, n_frames)
    start, end = (int(v) for v in frames)
    if not 0 <= start < end <= n_frames:
        raise MotionFileError(f"frame range {start}:{end} must lie within 0:{n_frames} with start before end")
    return slice(start, end)


def save_motion(path: str | Path, motion, *, fps: float | None = None, scale: float | None = None,
                frames: tuple[int, int] | None = None, fmt: str | None = None) -> Path:
    """Write a motion in the format its extension (or ``fmt``) names:

    - npy: joints (T, 22, 3) float32, metres, Y up; features: HumanML3D's (T, 263) float32;
    - bvh / fbx / glb: the 22-joint rig; ``fps`` resamples; ``scale`` sets units (bvh default 1 =
      metres, fbx default 100 = centimetres; glTF is always metres);
    - json: the pose codes with names, the residual codes and the prompt (whole steps).
    ``frames`` (start, end) keeps that range of frames (json: the steps inside it)."""
    path = Path(path)
    kind = format_for(path, fmt)
    cut = _frame_range(motion.n_frames, frames)
    joints = np.asarray(motion.joints)[cut]
    for name, value in (("fps", fps), ("scale", scale)):
        if value is not None and not (math.isfinite(float(value)) and float(value) > 0):
            raise MotionFileError(f"{name} must be a positive number, got {value}")
    if kind == "npy":
        atomic.save_npy(path, np.asarray(joints, np.float32))
    elif kind == "features":
        atomic.save_npy(path, np.asarray(motion.features, np.float32)[cut])
    elif kind == "bvh":
        save_bvh(path, joints, fps=motion.fps, target_fps=fps, scale=scale or 1.0)
    elif kind == "fbx":
        save_fbx(path, joints, fps=motion.fps, target_fps=fps, scale=scale or 100.0)
    elif kind == "glb":
        save_glb(path, joints, fps=motion.fps, target_fps=fps)
    else:
        data = motion.codes_json()
        if frames is not None:
            unit = data["frames_per_step"]
            a, b = cut.start // unit, -(-cut.stop // unit)
            data["frames"] = cut.stop - cut.start
            data["steps"] = data["steps"][a:b]
            if data.get("residual_codes") is not None:
                data["residual_codes"] = [row[a:b] for row in data["residual_codes"]]
        atomic.write_text(path, json.dumps(data, indent=1, ensure_ascii=False))
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


def read_joints(path: str | Path) -> np.ndarray:
    """Joints (T, 22, 3) in metres at 20 fps from a joints .npy or any BVH (retargeted)."""
    path = Path(path)
    ext = path.suffix.lower()
    if not path.is_file():
        raise MotionFileError(f"{path}: file not found")
    if ext == ".npy":
        try:
            joints = atomic.load_npy(path)
        except ValueError as exc:
            raise MotionFileError(str(exc)) from None
        if joints.ndim != 3 or joints.shape[1:] != (22, 3):
            raise MotionFileError(f"{path}: joints must be (frames, 22, 3), got {joints.shape}")
        return joints
    if ext == ".bvh":
        b = bvh_io.read(path)
        scale = 1.0 if _in_metres(b) else 0.01
        return bvh_to_t2m(b, target_fps=20.0, scale=scale, source=str(path))
    raise MotionFileError(f"{path.name}: cannot read joints from {ext or 'a file without extension'}; "
                          "use a joints .npy or a .bvh")


def load_motion(path: str | Path, pipeline, prompt: str | None = None):
    """A Motion to edit from a codes JSON (exact), a joints .npy or a BVH (tokenized)."""
    path = Path(path)
    ext = path.suffix.lower()
    if not path.is_file():
        raise MotionFileError(f"{path}: file not found")
    if ext == ".json":
        pose, res, saved_prompt = read_codes_json(path)
        return pipeline.from_codes(pose, res, prompt if prompt is not None else saved_prompt)
    if ext in (".npy", ".bvh"):
        return pipeline.from_joints(read_joints(path), prompt or "")
    raise MotionFileError(f"{path.name}: cannot read {ext or 'a file without extension'}; "
                          f"use one of {', '.join(READABLE)}")


def _in_metres(b) -> bool:
    """A skeleton under 3 units tall is in metres (ours), otherwise centimetres."""
    offsets = np.array([j.offset for j in b.joints])
    return float(np.abs(offsets[:, 1]).sum()) < 3.0
