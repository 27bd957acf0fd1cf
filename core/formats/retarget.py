"""Retarget a BVH skeleton to the HumanML3D 22-joint layout (joint positions only).

A joint map sends each of the 22 target joints to one source joint, to a source joint's
End Site (``"Hand_L/end"``), or to a weighted blend ``{"Chest": 0.5, "Neck": 0.5}`` for
joints the source rig lacks. Positions come from forward kinematics in the file's units,
are scaled to metres and resampled in time; axes are left as the file has them (Y up for
the rigs below).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Mapping, Union

import numpy as np

from core.formats.bvh import Bvh, end_site_positions, forward_kinematics

__all__ = [
    "BANDAI_NAMCO",
    "BUILTIN_MAPS",
    "CMU",
    "T2M_JOINT_NAMES",
    "RetargetError",
    "bvh_to_t2m",
    "guess_joint_map",
    "load_joint_map",
    "resample",
    "validate_joint_map",
]

# Same order as core/skeleton.py's list; kept local so this module stands alone.
T2M_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)

JointSource = Union[str, Mapping[str, float]]
JointMap = Mapping[str, JointSource]

END_SUFFIX = "/end"
_WEIGHT_TOL = 1e-6


class RetargetError(ValueError):
    pass


def _sided(left: dict[str, JointSource], right_of) -> dict[str, JointSource]:
    """Mirror the left-side entries onto the right side by renaming."""
    out: dict[str, JointSource] = {}
    for target, src in left.items():
        out[target] = src
        rt = target.replace("left_", "right_")
        out[rt] = ({right_of(k): w for k, w in src.items()} if isinstance(src, dict) else right_of(src))
    return out


# Bandai Namco: joint_Root is a floor projection of the hips and is not used. The rig has
# no third spine joint; SMPL's spine3 lies between the chest and the base of the neck, and
# with no landmark saying where, the midpoint is the least biased choice.
BANDAI_NAMCO: dict[str, JointSource] = {
    "pelvis": "Hips",
    "spine1": "Spine",
    "spine2": "Chest",
    "spine3": {"Chest": 0.5, "Neck": 0.5},
    "neck": "Neck",
    "head": "Head",
    **_sided({
        "left_hip": "UpperLeg_L",
        "left_knee": "LowerLeg_L",
        "left_ankle": "Foot_L",
        "left_foot": "Toes_L",
        "left_collar": "Shoulder_L",
        "left_shoulder": "UpperArm_L",
        "left_elbow": "LowerArm_L",
        "left_wrist": "Hand_L",
    }, lambda n: n[:-2] + "_R"),
}

# CMU (31-joint rig of the BVH conversions). LowerBack sits on the Hips (zero offset) and
# Neck on Spine1, so using them would stack two targets on one point: spine1/spine2 take
# Spine/Spine1, spine3 is halfway up the lower neck link, and neck takes Neck1. The CMU
# LeftShoulder joint also sits on Spine1 (the midline), whereas SMPL's collar is lateral,
# so the collar is put halfway between it and the shoulder joint (LeftArm).
# Note: the usual CMU files are in inches/0.45, so pass scale=0.056444 for metres.
CMU: dict[str, JointSource] = {
    "pelvis": "Hips",
    "spine1": "Spine",
    "spine2": "Spine1",
    "spine3": {"Spine1": 0.5, "Neck1": 0.5},
    "neck": "Neck1",
    "head": "Head",
    **_sided({
        "left_hip": "LeftUpLeg",
        "left_knee": "LeftLeg",
        "left_ankle": "LeftFoot",
        "left_foot": "LeftToeBase",
        "left_collar": {"LeftShoulder": 0.5, "LeftArm": 0.5},
        "left_shoulder": "LeftArm",
        "left_elbow": "LeftForeArm",
        "left_wrist": "LeftHand",
    }, lambda n: "Right" + n[4:]),
}

# our own BVH export uses the HumanML3D names, so it re-imports one to one
HUMANML3D = {name: name for name in T2M_JOINT_NAMES}
BUILTIN_MAPS: dict[str, dict[str, JointSource]] = {"humanml3d": HUMANML3D, "bandai-namco": BANDAI_NAMCO, "cmu": CMU}


def _joint_of(ref: str) -> str:
    return ref[: -len(END_SUFFIX)] if ref.endswith(END_SUFFIX) else ref


def _missing_sources(joint_map: JointMap, bvh: Bvh) -> list[str]:
    names = set(bvh.names)
    missing: list[str] = []
    for src in joint_map.values():
        for ref in ([src] if isinstance(src, str) else list(src)):
            joint = _joint_of(ref)
            if joint not in names and ref not in missing:
                missing.append(ref)
    return missing


def validate_joint_map(joint_map: object, bvh: Bvh | None = None,
                       source: str = "<joint map>") -> dict[str, dict[str, float]]:
    """Check a joint map and return it as {target: {source ref: weight}}.

    Blend weights must sum to 1; negative ones are allowed (extrapolating past a joint).

    With ``bvh``, also check that every source joint (and End Site) exists in it.
    """
    if not isinstance(joint_map, Mapping):
        raise RetargetError(f"{source}: a joint map must be an object mapping the 22 target "
                            f"joint names to source joints, got {type(joint_map).__name__}")
    missing = [t for t in T2M_JOINT_NAMES if t not in joint_map]
    if missing:
        raise RetargetError(f"{source}: joint map lacks target joints: {', '.join(missing)}")
    unknown = [str(t) for t in joint_map if t not in T2M_JOINT_NAMES]
    if unknown:
        raise RetargetError(f"{source}: unknown target joints {', '.join(unknown)} "
                            f"(targets are: {', '.join(T2M_JOINT_NAMES)})")
    out: dict[str, dict[str, float]] = {}
    for target in T2M_JOINT_NAMES:
        src = joint_map[target]
        if isinstance(src, str):
            if not src:
                raise RetargetError(f"{source}: target {target!r} has an empty source name")
            out[target] = {src: 1.0}
            continue
        if not isinstance(src, Mapping) or not src:
            raise RetargetError(f"{source}: target {target!r} must map to a joint name or a "
                                "non-empty object of joint name -> weight")
        weights: dict[str, float] = {}
        for ref, w in src.items():
            # bool is an int subclass but never a meaningful weight
            if not isinstance(ref, str) or not ref or isinstance(w, bool) \
                    or not isinstance(w, (int, float)) or not math.isfinite(w):
                raise RetargetError(f"{source}: target {target!r}: weight of {ref!r} must be a "
                                    f"finite number, got {w!r}")
            weights[ref] = float(w)
        total = sum(weights.values())
        if abs(total - 1.0) > _WEIGHT_TOL:
            raise RetargetError(f"{source}: target {target!r}: weights sum to {total:g}, not 1")
        out[target] = weights
    if bvh is not None:
        missing = _missing_sources(joint_map, bvh)
        if missing:
            raise RetargetError(f"{source}: joint map names joints the skeleton lacks: "
                                f"{', '.join(missing)}")
        by_name = {j.name: j for j in bvh.joints}
        no_end = sorted({_joint_of(r) for w in out.values() for r in w
                         if r.endswith(END_SUFFIX) and by_name[_joint_of(r)].end_site is None})
        if no_end:
            raise RetargetError(f"{source}: joint map uses the End Site of joints that have none: "
                                f"{', '.join(no_end)}")
    return out


def guess_joint_map(bvh: Bvh, source: str | None = None) -> tuple[str, dict[str, JointSource]]:
    """The first built-in map whose source joints all exist in ``bvh``."""
    report = []
    for name, jm in BUILTIN_MAPS.items():
        missing = _missing_sources(jm, bvh)
        if not missing:
            return name, jm
        report.append((len(missing), name, missing))
    report.sort(key=lambda r: r[0])
    where = f"{source}: " if source else ""
    detail = "; ".join(f"{name} map lacks {', '.join(missing)}" for _, name, missing in report)
    raise RetargetError(f"{where}no built-in joint map fits this skeleton ({detail}). Pass a JSON "
                        "joint map: an object mapping each of the 22 HumanML3D joint names to a "
                        "joint of this file")


def load_joint_map(path: str | os.PathLike, bvh: Bvh | None = None) -> dict[str, JointSource]:
    """Read and validate a user joint map (JSON), optionally against ``bvh``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RetargetError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: "
                            f"{exc.msg})") from None
    except UnicodeDecodeError:
        raise RetargetError(f"{path}: not UTF-8 text") from None
    validate_joint_map(data, bvh, source=str(path))
    return data


def resample(positions: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Linear interpolation along axis 0 from src_fps to dst_fps.

    Output frame k is at time k / dst_fps; frames run up to the time of the last input
    frame, so n_out = floor((n - 1) * dst / src) + 1.
    """
    x = np.asarray(positions)
    if not (src_fps > 0 and dst_fps > 0 and math.isfinite(src_fps) and math.isfinite(dst_fps)):
        raise ValueError(f"frame rates must be positive, got {src_fps} -> {dst_fps}")
    dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    n = x.shape[0]
    if n <= 1 or src_fps == dst_fps:
        return x.astype(dtype, copy=True)
    ratio = src_fps / dst_fps
    # the epsilon keeps an exact multiple such as 59 * 2/3 from rounding down a frame
    n_out = int(math.floor((n - 1) / ratio + 1e-9)) + 1
    t = np.arange(n_out, dtype=np.float64) * ratio  # in input frames
    i0 = np.minimum(np.floor(t).astype(np.int64), n - 2)
    w = (t - i0).reshape((-1,) + (1,) * (x.ndim - 1))
    xf = x.astype(np.float64, copy=False)
    return ((1.0 - w) * xf[i0] + w * xf[i0 + 1]).astype(dtype, copy=False)


def bvh_to_t2m(bvh: Bvh, joint_map: JointMap | None = None, target_fps: float = 20.0,
               scale: float = 0.01, source: str | None = None) -> np.ndarray:
    """HumanML3D 22-joint positions (T, 22, 3) float32 in metres (file axes, Y up).

    ``scale`` converts file units to metres (0.01 for centimetres); ``source`` names the
    file in error messages. Without ``joint_map`` a built-in map is chosen by joint names.
    """
    where = source or "<bvh>"
    if joint_map is None:
        _, joint_map = guess_joint_map(bvh, source)
    weights = validate_joint_map(joint_map, bvh, source=where)
    if not (math.isfinite(scale) and scale > 0):
        raise RetargetError(f"{where}: scale must be a positive number, got {scale!r}")
    if bvh.n_frames == 0:
        raise RetargetError(f"{where}: the clip has no frames")

    pos, rot = forward_kinematics(bvh)
    ends = None
    if any(r.endswith(END_SUFFIX) for w in weights.values() for r in w):
        ends = end_site_positions(bvh, pos, rot)
    out = np.zeros((pos.shape[0], len(T2M_JOINT_NAMES), 3))
    for k, target in enumerate(T2M_JOINT_NAMES):
        for ref, w in weights[target].items():
            j = bvh.joint_index(_joint_of(ref))
            src = ends if ref.endswith(END_SUFFIX) else pos
            out[:, k] += w * src[:, j]
    out = resample(out * scale, bvh.fps, target_fps)
    bad = ~np.isfinite(out).all(axis=(1, 2))
    if bad.any():
        raise RetargetError(f"{where}: retargeted motion has NaN or infinite positions "
                            f"(first at output frame {int(np.argmax(bad))})")
    return out.astype(np.float32)
