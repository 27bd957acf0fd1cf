"""Synthetic but plausible motions for tests: smooth joint rotations on a skeleton, a root
that walks and turns. Built by the tests, so no data files are needed."""

import numpy as np

from core.rotations import yaw_quat
from core.skeleton import T2M, forward_kinematics


def synth_motion(frames=120, seed=0, skeleton=T2M, turn=0.01, speed=0.02, start=(1.5, -2.0), scale=1.0):
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None]
    j = skeleton.n_joints
    amp = rng.uniform(0.1, 0.6, (j, 3))
    freq = rng.uniform(0.02, 0.15, (j, 3))
    phase = rng.uniform(0, 2 * np.pi, (j, 3))
    aa = amp[None] * np.sin(2 * np.pi * freq[None] * t[..., None] + phase[None])
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    axis = aa / np.maximum(angle, 1e-9)
    q = np.concatenate([np.cos(angle / 2), axis * np.sin(angle / 2)], -1)
    yaw = np.cumsum(turn + rng.uniform(-0.02, 0.02, frames))
    q[:, 0] = yaw_quat(yaw / 2)
    root = np.stack([np.cumsum(speed * np.sin(yaw)), 0.9 + 0.02 * np.sin(t[:, 0] * 0.3),
                     np.cumsum(speed * np.cos(yaw))], -1) + [start[0], 0.0, start[1]]
    lengths = skeleton.bone_lengths * scale
    return forward_kinematics(skeleton, q, root * scale, lengths)
