"""Export joint positions (HumanML3D layout, metres, Y up) as a BVH file.

The BVH keeps the skeleton's joints, names and tree. A BVH has fixed offsets, so each bone
gets the clip's median length; the rest pose points bones along the skeleton's rest
directions. Channels: the root has X/Y/Zposition + Z/X/Yrotation, the others Z/X/Yrotation
("ZXY", R = Rz @ Rx @ Ry as in core.rotations.euler_to_matrix).

Rotations: a single-child joint takes the world rotation our IK gives the bone to its child,
and a leaf the one of its own bone. A joint with several children (pelvis, spine3) moves
them rigidly, whereas HumanML3D positions move each bone on its own, so such a joint gets
the least-squares rotation of its children's directions (Kabsch) and its children get the
clip's median directions as rest offsets. This is exact when those children keep their
relative layout (SMPL-derived and retargeted data do); otherwise the error is the drift of
that layout.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from core.formats import bvh as _bvh
from core.formats.bvh import Bvh, BvhJoint
from core.formats.retarget import resample
from core.rotations import matrix_to_euler, qmul, quat_to_matrix
from core.skeleton import T2M, Skeleton, inverse_kinematics

__all__ = ["ROTATION_ORDER", "Rig", "joints_to_bvh", "joints_to_rig", "rig_to_bvh", "save_bvh"]

ROTATION_ORDER = "ZXY"
_ROT_CHANNELS = [f"{a}rotation" for a in ROTATION_ORDER]
_POS_CHANNELS = ["Xposition", "Yposition", "Zposition"]


def _positive(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}") from None
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def _check_joints(joints, skeleton: Skeleton) -> np.ndarray:
    try:
        x = np.asarray(joints, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("joints must be a numeric array of shape "
                         f"(frames, {skeleton.n_joints}, 3)") from None
    if x.ndim != 3 or x.shape[1:] != (skeleton.n_joints, 3):
        raise ValueError(f"joints must have shape (frames, {skeleton.n_joints}, 3) for the "
                         f"{skeleton.name} skeleton, got {x.shape}")
    if x.shape[0] == 0:
        raise ValueError("joints has no frames")
    bad = ~np.isfinite(x).all(axis=-1)
    if bad.any():
        t, j = np.argwhere(bad)[0]
        raise ValueError(f"joints contain NaN or infinite values ({int(bad.sum())} positions; "
                         f"first at frame {t}, joint {skeleton.joint_names[j]})")
    return x


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _kabsch(rest: np.ndarray, dirs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Rotations (T, 3, 3) best taking rest directions (K, 3) onto dirs (T, K, 3)."""
    m = np.einsum("k,tki,kj->tij", weights, dirs, rest)
    u, _, vt = np.linalg.svd(m)
    d = np.sign(np.linalg.det(u @ vt))
    d[d == 0] = 1.0
    u[..., :, 2] *= d[:, None]  # no reflections
    return u @ vt


def _bone_rotations(joints: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """World rotation (T, J, 3, 3) of the bone ending at each joint, accumulated from IK."""
    quats, _, _ = inverse_kinematics(joints, skeleton)
    world = np.array(quats)
    for chain in skeleton.chains:
        r = quats[:, 0]
        for child in chain[1:]:
            r = qmul(r, quats[:, child])
            world[:, child] = r
    return quat_to_matrix(world)



@dataclass
class Rig:
    """A skinned-skeleton view of a motion, shared by the BVH, FBX and glTF writers.

    Joints are in depth-first order (parents before children). Column vectors throughout:
    a joint's world transform is parent_world @ [local[t, j] | offsets[j]], and the root's
    translation is ``translation[t]``. Lengths are in the exporter's units (metres x scale).
    """

    names: list[str]
    parents: np.ndarray        # (J,) int, -1 for the root, indices into this order
    offsets: np.ndarray        # (J, 3) rest offset from the parent; zeros for the root
    end_sites: list            # per joint: (3,) offset of a leaf's end, or None
    translation: np.ndarray    # (T, 3) root position per frame
    local: np.ndarray          # (T, J, 3, 3) rotation relative to the parent (world for the root)
    fps: float
    source: np.ndarray         # (J,) the skeleton joint index of each rig joint

    @property
    def n_frames(self) -> int:
        return int(self.translation.shape[0])

    def world_positions(self) -> np.ndarray:
        """(T, J, 3) joint positions by forward kinematics, in rig order and units."""
        n_t, n_j = self.local.shape[:2]
        rot = np.empty_like(self.local)
        pos = np.empty((n_t, n_j, 3))
        for j in range(n_j):
            p = int(self.parents[j])
            if p < 0:
                rot[:, j] = self.local[:, j]
                pos[:, j] = self.translation
            else:
                rot[:, j] = rot[:, p] @ self.local[:, j]
                pos[:, j] = pos[:, p] + rot[:, p] @ self.offsets[j]
        return pos


def joints_to_rig(joints, fps: float = 20.0, *, target_fps: float | None = None, scale: float = 1.0,
                  skeleton: Skeleton = T2M) -> Rig:
    """Joint positions (T, J, 3) in metres, Y up, at ``fps`` -> a Rig with fixed bone lengths.

    ``target_fps`` resamples in time; ``scale`` multiplies lengths (1 = metres, 100 = cm).
    """
    fps = _positive("fps", fps)
    scale = _positive("scale", scale)
    if target_fps is not None:
        target_fps = _positive("target_fps", target_fps)
    x = _check_joints(joints, skeleton)
    parents = skeleton.parents
    n_j = skeleton.n_joints
    children = [[c for c in range(n_j) if parents[c] == p] for p in range(n_j)]
    branches = [p for p in range(n_j) if len(children[p]) > 1]

    # The rig comes from the input frames, so resampling cannot change it.
    lengths = np.median(skeleton.measure_offsets(x), axis=0)
    rest = skeleton.raw_offsets.astype(np.float64).copy()

    def branch_dirs(y, p):
        return _unit(y[:, children[p]] - y[:, p:p + 1])

    for p in branches:
        kids = children[p]
        d = branch_dirs(x, p)
        r = _kabsch(rest[kids], d, np.ones(len(kids)))
        local = np.einsum("tji,tkj->tki", r, d)  # R^T d, per child
        rest[kids] = _unit(np.median(local, axis=0))

    # Resample positions, not rotations: one interpolation for root and bones alike, and
    # bone directions then move as normalised lerp (slerp to within a hair at these rates)
    # with no quaternion sign or twist flips to guard against.
    if target_fps is not None and target_fps != fps:
        x = resample(x, fps, target_fps)
        fps = target_fps

    bone = _bone_rotations(x, skeleton)
    world = np.empty_like(bone)
    for p in range(n_j):
        if len(children[p]) == 1:
            world[:, p] = bone[:, children[p][0]]
        elif not children[p]:
            world[:, p] = bone[:, p]
    for p in branches:
        kids = children[p]
        # weights: squared lengths, so the fit minimises the children's position error
        world[:, p] = _kabsch(rest[kids], branch_dirs(x, p), lengths[kids] ** 2 + 1e-12)

    # depth-first order with the skeleton's child order: parents precede children
    order: list[int] = []
    stack = [0]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children[j]))
    slot = {j: i for i, j in enumerate(order)}

    offsets = rest * lengths[:, None] * scale
    local = np.empty((x.shape[0], n_j, 3, 3))
    ends = []
    for i, j in enumerate(order):
        p = parents[j]
        local[:, i] = world[:, j] if p < 0 else np.swapaxes(world[:, p], -1, -2) @ world[:, j]
        # half a bone beyond a leaf, along it, so viewers draw a visible last bone
        ends.append(skeleton.raw_offsets[j] * lengths[j] * scale * 0.5 if not children[j] else None)
    return Rig(
        names=[skeleton.joint_names[j] for j in order],
        parents=np.array([-1 if parents[j] < 0 else slot[parents[j]] for j in order]),
        offsets=np.stack([np.zeros(3) if parents[j] < 0 else offsets[j] for j in order]),
        end_sites=ends,
        translation=x[:, order[0]] * scale,
        local=local,
        fps=float(fps),
        source=np.array(order),
    )


def rig_to_bvh(rig: Rig) -> Bvh:
    """The rig as a BVH: root position + ZXY rotation channels, the others ZXY rotations."""
    bvh_joints = []
    columns = []
    for j, name in enumerate(rig.names):
        p = int(rig.parents[j])
        # unwrapping by whole turns keeps each rotation and stops 180/-180 jumps
        angles = np.unwrap(matrix_to_euler(rig.local[:, j], ROTATION_ORDER), period=360.0, axis=0)
        if p < 0:
            columns += [rig.translation, angles]
        else:
            columns.append(angles)
        bvh_joints.append(BvhJoint(
            name=name, parent=p, offset=rig.offsets[j],
            channels=(_POS_CHANNELS if p < 0 else []) + _ROT_CHANNELS,
            end_site=rig.end_sites[j],
        ))
    return Bvh(bvh_joints, 1.0 / rig.fps, np.concatenate(columns, axis=1))


def joints_to_bvh(joints, fps: float = 20.0, *, target_fps: float | None = None, scale: float = 1.0,
                  skeleton: Skeleton = T2M) -> Bvh:
    """Joint positions (T, J, 3) in metres, Y up, at ``fps`` -> a Bvh.

    ``target_fps`` resamples in time; ``scale`` multiplies lengths (1 = metres, 100 = cm).
    """
    return rig_to_bvh(joints_to_rig(joints, fps, target_fps=target_fps, scale=scale, skeleton=skeleton))




def save_bvh(path: str | os.PathLike, joints, fps: float = 20.0, **kw) -> Bvh:
    """Build the BVH (see joints_to_bvh) and write it atomically; returns it."""
    b = joints_to_bvh(joints, fps, **kw)
    _bvh.write(path, b)
    return b
