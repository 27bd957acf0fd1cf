"""Skeletons (HumanML3D 22-joint "t2m", KIT-ML 21-joint) with forward and inverse kinematics.

Rotations follow HumanML3D's chain convention: the quaternion stored at joint c turns the
bone that ends at c, relative to the rotation accumulated along its kinematic chain, and
every chain starts again from the root rotation. FK(IK(joints)) reproduces the joints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.rotations import qbetween, qinv, qmul, qrot

UP = np.array([0.0, 1.0, 0.0])
FORWARD = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True)
class Skeleton:
    name: str
    joint_names: tuple[str, ...]
    chains: tuple[tuple[int, ...], ...]
    raw_offsets: np.ndarray          # (J, 3) unit bone directions in the rest pose
    bone_lengths: np.ndarray         # (J,) default lengths in metres (0 for the root)
    face_joints: tuple[int, int, int, int]  # HumanML3D's face_joint_indx, in its order
    left_foot: tuple[int, int]       # (ankle, toe) joints used for foot contacts
    right_foot: tuple[int, int]
    fps: float
    parents: np.ndarray = field(init=False)

    def __post_init__(self):
        parents = np.full(len(self.joint_names), -1, dtype=np.int64)
        for chain in self.chains:
            for a, b in zip(chain[:-1], chain[1:]):
                parents[b] = a
        object.__setattr__(self, "parents", parents)

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)

    @property
    def feature_dim(self) -> int:
        j = self.n_joints
        return 4 + (j - 1) * 3 + (j - 1) * 6 + j * 3 + 4

    @property
    def rest_offsets(self) -> np.ndarray:
        """(J, 3) bone vectors of the default rest pose, in metres."""
        return self.raw_offsets * self.bone_lengths[:, None]

    def index(self, name: str) -> int:
        return self.joint_names.index(name)

    def rest_pose(self) -> np.ndarray:
        """(J, 3) joint positions of the rest pose with the pelvis at the origin."""
        return forward_kinematics(self, np.tile([1.0, 0, 0, 0], (1, self.n_joints, 1)),
                                  np.zeros((1, 3)))[0]

    def measure_offsets(self, joints: np.ndarray) -> np.ndarray:
        """Bone lengths taken from positions: (..., J, 3) -> (..., J)."""
        joints = np.asarray(joints, dtype=np.float64)
        lengths = np.zeros(joints.shape[:-1])
        child = np.arange(1, self.n_joints)
        lengths[..., 1:] = np.linalg.norm(joints[..., child, :] - joints[..., self.parents[child], :], axis=-1)
        return lengths


T2M = Skeleton(
    name="t2m",
    joint_names=(
        "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
        "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
        "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
        "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    ),
    chains=((0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15),
            (9, 14, 17, 19, 21), (9, 13, 16, 18, 20)),
    raw_offsets=np.array([
        [0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0],
        [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0],
        [-1, 0, 0], [0, 0, 1], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0],
        [0, -1, 0]], dtype=np.float64),
    # Median bone lengths of Bandai Namco clips after retargeting, in metres
    # (benchmarks/motion_core.py prints them).
    bone_lengths=np.array([
        0.0, 0.068, 0.068, 0.157, 0.391, 0.391, 0.090, 0.410, 0.410, 0.082, 0.118, 0.118,
        0.082, 0.069, 0.069, 0.065, 0.053, 0.053, 0.243, 0.243, 0.223, 0.223]),
    face_joints=(2, 1, 17, 16),
    left_foot=(7, 10),
    right_foot=(8, 11),
    fps=20.0,
)

KIT = Skeleton(
    name="kit",
    joint_names=(
        "root", "torso", "chest", "neck", "head", "right_shoulder", "right_elbow",
        "right_wrist", "left_shoulder", "left_elbow", "left_wrist", "right_hip", "right_knee",
        "right_ankle", "right_midfoot", "right_toe", "left_hip", "left_knee", "left_ankle",
        "left_midfoot", "left_toe",
    ),
    chains=((0, 11, 12, 13, 14, 15), (0, 16, 17, 18, 19, 20), (0, 1, 2, 3, 4),
            (3, 5, 6, 7), (3, 8, 9, 10)),
    raw_offsets=np.array([
        [0, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0], [0, -1, 0],
        [0, -1, 0], [-1, 0, 0], [0, -1, 0], [0, -1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0],
        [0, 0, 1], [0, 0, 1], [-1, 0, 0], [0, -1, 0], [0, -1, 0], [0, 0, 1], [0, 0, 1]],
        dtype=np.float64),
    # KIT-ML joints are stored in millimetres.
    bone_lengths=np.array([
        0.0, 100, 250, 250, 150, 200, 280, 250, 200, 280, 250, 100, 420, 420, 70, 70, 100,
        420, 420, 70, 70], dtype=np.float64),
    face_joints=(11, 16, 5, 8),
    left_foot=(19, 20),
    right_foot=(14, 15),
    fps=12.5,
)

SKELETONS = {"t2m": T2M, "kit": KIT}


def facing_rotation(joints: np.ndarray, skeleton: Skeleton, smooth_sigma: float = 0.0) -> np.ndarray:
    """Per-frame quaternion turning the body's forward direction onto +Z: (T, J, 3) -> (T, 4).

    Uses HumanML3D's definition, quirk included: its face joints are unpacked as
    (l_hip, r_hip, r_shoulder, l_shoulder), so the hip term enters with the opposite sign
    of the shoulder term and the (wider) shoulders decide the heading. Features stay
    compatible with models and evaluators trained on HumanML3D.
    """
    a, b, c, d = skeleton.face_joints
    across = (joints[:, b] - joints[:, a]) + (joints[:, c] - joints[:, d])
    across = across / np.maximum(np.linalg.norm(across, axis=-1, keepdims=True), 1e-12)
    forward = np.cross(UP, across)
    if smooth_sigma > 0 and len(forward) > 1:
        from scipy.ndimage import gaussian_filter1d

        forward = gaussian_filter1d(forward, smooth_sigma, axis=0, mode="nearest")
    forward = forward / np.maximum(np.linalg.norm(forward, axis=-1, keepdims=True), 1e-12)
    return qbetween(forward, np.broadcast_to(FORWARD, forward.shape))


def inverse_kinematics(joints: np.ndarray, skeleton: Skeleton = T2M, smooth_sigma: float = 0.0):
    """Joint positions (T, J, 3) -> (quats (T, J, 4), root positions (T, 3), bone lengths (T, J)).

    quats[:, 0] is the root rotation (world -> heading frame, identity at frame 0, as in
    HumanML3D); quats[:, c] is the local rotation of the bone ending at joint c. Twist about
    a bone cannot be seen from positions, so every bone gets its shortest-arc swing.
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (skeleton.n_joints, 3):
        raise ValueError(f"expected joints of shape (T, {skeleton.n_joints}, 3), got {joints.shape}")
    t = len(joints)
    quats = np.zeros((t, skeleton.n_joints, 4))
    root = facing_rotation(joints, skeleton, smooth_sigma)
    root[0] = [1.0, 0.0, 0.0, 0.0]
    quats[:, 0] = root
    for chain in skeleton.chains:
        r = root
        for parent, child in zip(chain[:-1], chain[1:]):
            u = np.broadcast_to(skeleton.raw_offsets[child], (t, 3))
            v = joints[:, child] - joints[:, parent]
            local = qmul(qinv(r), qbetween(u, v))
            quats[:, child] = local
            r = qmul(r, local)
    return quats, joints[:, 0].copy(), skeleton.measure_offsets(joints)


def forward_kinematics(skeleton: Skeleton, quats: np.ndarray, root_positions: np.ndarray,
                       bone_lengths: np.ndarray | None = None) -> np.ndarray:
    """Local rotations (T, J, 4) and root positions (T, 3) -> joint positions (T, J, 3).

    bone_lengths: (J,) or (T, J); the skeleton's defaults when omitted.
    """
    quats = np.asarray(quats, dtype=np.float64)
    root_positions = np.asarray(root_positions, dtype=np.float64)
    lengths = skeleton.bone_lengths if bone_lengths is None else np.asarray(bone_lengths, dtype=np.float64)
    lengths = np.broadcast_to(lengths, (len(quats), skeleton.n_joints))
    out = np.zeros(quats.shape[:-1] + (3,))
    out[:, 0] = root_positions
    for chain in skeleton.chains:
        r = quats[:, 0]
        for parent, child in zip(chain[:-1], chain[1:]):
            r = qmul(r, quats[:, child])
            bone = skeleton.raw_offsets[child] * lengths[:, child:child + 1]
            out[:, child] = out[:, parent] + qrot(r, bone)
    return out
