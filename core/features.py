"""HumanML3D motion features: joints (T, J, 3) <-> the 263-d (KIT: 251-d) vector per frame.

Layout per frame (J joints), as HumanML3D defines it:
    [0]        root angular velocity about Y (half the per-frame yaw change, radians)
    [1:3]      root linear velocity (x, z) in the heading frame
    [3]        root height
    ric        joints 1..J-1 relative to the root xz, in the heading frame   (J-1)*3
    rot        6-D local rotations of joints 1..J-1 (HumanML3D IK)             (J-1)*6
    vel        velocities of all joints in the heading frame                  J*3
    contacts   left (ankle, toe), right (ankle, toe) foot contacts            4
T input frames give T-1 feature rows (velocities need a next frame).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.rotations import cont6d_to_matrix, matrix_to_quat, qfix, qinv, qmul, qrot, quat_to_cont6d, yaw_quat
from core.skeleton import KIT, T2M, Skeleton, facing_rotation, forward_kinematics, inverse_kinematics

FOOT_CONTACT_THRESHOLD = 0.002   # squared displacement per frame (HumanML3D's feet_thre)
FORWARD_SMOOTH_SIGMA = 20.0      # frames; HumanML3D smooths the heading for the features


@dataclass(frozen=True)
class FeatureLayout:
    """Slices of the feature vector for a skeleton of J joints."""

    n_joints: int

    @property
    def dim(self) -> int:
        return 4 + (self.n_joints - 1) * 9 + self.n_joints * 3 + 4

    @property
    def blocks(self) -> dict[str, slice]:
        j = self.n_joints
        ric = 4 + (j - 1) * 3
        rot = ric + (j - 1) * 6
        vel = rot + j * 3
        return {
            "root_rot_vel": slice(0, 1),
            "root_lin_vel": slice(1, 3),
            "root_y": slice(3, 4),
            "ric": slice(4, ric),
            "rot": slice(ric, rot),
            "vel": slice(rot, vel),
            "contacts": slice(vel, vel + 4),
        }


def layout(skeleton: Skeleton = T2M) -> FeatureLayout:
    return FeatureLayout(skeleton.n_joints)


def _check_joints(joints: np.ndarray, skeleton: Skeleton, min_frames: int = 2) -> np.ndarray:
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (skeleton.n_joints, 3):
        raise ValueError(f"expected joints of shape (T, {skeleton.n_joints}, 3), got {tuple(joints.shape)}")
    if len(joints) < min_frames:
        raise ValueError(f"a motion needs at least {min_frames} frame(s) here, got {len(joints)}")
    bad = ~np.isfinite(joints).all(axis=(1, 2))
    if bad.any():
        frames = np.flatnonzero(bad)
        shown = ", ".join(map(str, frames[:5])) + (" ..." if len(frames) > 5 else "")
        raise ValueError(f"motion contains NaN or infinite values in {len(frames)} frame(s): {shown}")
    return joints


def canonicalize(joints: np.ndarray, skeleton: Skeleton = T2M) -> np.ndarray:
    """Floor at y = 0, first-frame root at the XZ origin, first frame facing +Z."""
    out = _check_joints(joints, skeleton, min_frames=1).copy()
    out[..., 1] -= out[..., 1].min()
    out -= out[0, 0] * np.array([1.0, 0.0, 1.0])
    face = facing_rotation(out[:1], skeleton)[0]
    return qrot(np.broadcast_to(face, out.shape[:-1] + (4,)), out)


def foot_contacts(joints: np.ndarray, skeleton: Skeleton = T2M,
                  threshold: float = FOOT_CONTACT_THRESHOLD) -> np.ndarray:
    """(T, J, 3) -> (T-1, 4) float: a foot joint touches when it (almost) stands still."""
    idx = list(skeleton.left_foot) + list(skeleton.right_foot)
    step = joints[1:, idx] - joints[:-1, idx]
    return (np.sum(step ** 2, axis=-1) < threshold).astype(np.float64)


def extract_features(joints: np.ndarray, skeleton: Skeleton = T2M,
                     contact_threshold: float = FOOT_CONTACT_THRESHOLD) -> np.ndarray:
    """Joint positions (T, J, 3) in metres, Y up -> features (T-1, D) float32.

    The motion is first canonicalised (floor, origin, facing +Z), as HumanML3D does.
    """
    joints = _check_joints(joints, skeleton)
    pos = canonicalize(joints, skeleton)
    contacts = foot_contacts(pos, skeleton, contact_threshold)

    quats, _, _ = inverse_kinematics(pos, skeleton, smooth_sigma=FORWARD_SMOOTH_SIGMA)
    quats = qfix(quats)
    rot6d = quat_to_cont6d(quats[:, 1:])                         # (T, J-1, 6)
    r_rot = quats[:, 0]                                         # world -> heading

    root_vel = qrot(r_rot[1:], pos[1:, 0] - pos[:-1, 0])         # (T-1, 3)
    r_vel = qmul(r_rot[1:], qinv(r_rot[:-1]))
    r_ang = np.arcsin(np.clip(r_vel[:, 2:3], -1.0, 1.0))         # half-angle about Y

    n = skeleton.n_joints
    ric = pos.copy()
    ric[..., 0] -= pos[:, 0:1, 0]
    ric[..., 2] -= pos[:, 0:1, 2]
    ric = qrot(np.broadcast_to(r_rot[:, None], ric.shape[:-1] + (4,)), ric)

    vel = qrot(np.broadcast_to(r_rot[:-1, None], (len(pos) - 1, n, 4)), pos[1:] - pos[:-1])

    feats = np.concatenate([
        r_ang,
        root_vel[:, [0, 2]],
        pos[:-1, 0, 1:2],
        ric[:-1, 1:].reshape(len(pos) - 1, -1),
        rot6d[:-1].reshape(len(pos) - 1, -1),
        vel.reshape(len(pos) - 1, -1),
        contacts,
    ], axis=-1)
    return feats.astype(np.float32)


def recover_root(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., T, D) -> (heading quaternions (..., T, 4), root positions (..., T, 3))."""
    f = np.asarray(features, dtype=np.float64)
    ang = np.zeros(f.shape[:-1])
    ang[..., 1:] = f[..., :-1, 0]
    ang = np.cumsum(ang, axis=-1)
    quat = yaw_quat(ang)
    root = np.zeros(f.shape[:-1] + (3,))
    root[..., 1:, 0] = f[..., :-1, 1]
    root[..., 1:, 2] = f[..., :-1, 2]
    root = np.cumsum(qrot(qinv(quat), root), axis=-2)
    root[..., 1] = f[..., 3]
    return quat, root


def recover_joints(features: np.ndarray, skeleton: Skeleton | None = None) -> np.ndarray:
    """Features (..., T, D) -> joint positions (..., T, J, 3), from the root-relative block.

    The skeleton is inferred from D (263 -> t2m, 251 -> kit) when not given.
    """
    f = np.asarray(features, dtype=np.float64)
    if skeleton is None:
        skeleton = {T2M.feature_dim: T2M, KIT.feature_dim: KIT}.get(f.shape[-1])
        if skeleton is None:
            raise ValueError(f"features have {f.shape[-1]} dims; expected 263 (HumanML3D) or 251 (KIT)")
    elif f.shape[-1] != skeleton.feature_dim:
        raise ValueError(f"features have {f.shape[-1]} dims; the {skeleton.name} skeleton needs {skeleton.feature_dim}")
    quat, root = recover_root(f)
    n = skeleton.n_joints
    ric = f[..., layout(skeleton).blocks["ric"]].reshape(f.shape[:-1] + (n - 1, 3))
    q = np.broadcast_to(qinv(quat)[..., None, :], ric.shape[:-1] + (4,))
    joints = qrot(q, ric)
    joints[..., 0] += root[..., None, 0]
    joints[..., 2] += root[..., None, 2]
    return np.concatenate([root[..., None, :], joints], axis=-2)


# normalisation

def mean_std(features: list[np.ndarray] | np.ndarray, skeleton: Skeleton = T2M) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std over all frames, the std averaged within each block
    as HumanML3D's Mean.npy / Std.npy are (so a block keeps its relative scales)."""
    data = np.concatenate(list(features), axis=0) if not isinstance(features, np.ndarray) else features
    data = np.asarray(data, dtype=np.float64).reshape(-1, skeleton.feature_dim)
    mean = data.mean(axis=0)
    std = data.std(axis=0)
    for block in layout(skeleton).blocks.values():
        std[block] = std[block].mean()
    std = np.where(std < 1e-8, 1.0, std)   # constant blocks (e.g. no contacts) stay unscaled
    return mean.astype(np.float32), std.astype(np.float32)


def normalize(features: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return (features - mean) / std


def denormalize(features: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return features * std + mean


def recover_joints_from_rotations(features: np.ndarray, bone_lengths: np.ndarray,
                                  skeleton: Skeleton = T2M) -> np.ndarray:
    """Features (T, D) -> joints (T, J, 3) by FK of the 6-D rotation block.

    A check on the rotation block (and what a retargeting exporter uses): the bone lengths
    must come from the motion, e.g. ``skeleton.measure_offsets(joints[0])``.
    """
    f = np.asarray(features, dtype=np.float64)
    quat, root = recover_root(f)
    n = skeleton.n_joints
    rot6d = f[..., layout(skeleton).blocks["rot"]].reshape(len(f), n - 1, 6)
    local = matrix_to_quat(cont6d_to_matrix(rot6d))
    quats = np.concatenate([quat[:, None], local], axis=1)
    return forward_kinematics(skeleton, quats, root, bone_lengths)
