import numpy as np
import pytest
from motion_factory import synth_motion

from core.skeleton import KIT, T2M, forward_kinematics, inverse_kinematics


def test_t2m_tree_matches_humanml3d():
    assert T2M.n_joints == 22
    assert T2M.parents.tolist() == [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]
    assert T2M.joint_names[20] == "left_wrist" and T2M.joint_names[17] == "right_shoulder"
    assert T2M.feature_dim == 263 and KIT.feature_dim == 251
    assert KIT.n_joints == 21 and KIT.parents[5] == 3 and KIT.parents[16] == 0


def test_rest_pose_is_anatomical():
    rest = T2M.rest_pose()
    idx = T2M.index
    assert rest[idx("head"), 1] > rest[idx("neck"), 1] - 1e-9 > rest[idx("pelvis"), 1]
    assert rest[idx("left_ankle"), 1] < rest[idx("left_knee"), 1] < rest[idx("pelvis"), 1]
    # HumanML3D convention: left at +X
    assert rest[idx("left_hip"), 0] > 0 > rest[idx("right_hip"), 0]
    assert rest[idx("left_shoulder"), 0] > 0 > rest[idx("right_shoulder"), 0]
    np.testing.assert_allclose(rest[idx("left_hip")], [T2M.bone_lengths[1], 0, 0])


def test_fk_by_hand_quarter_turn_of_left_hip():
    # Turning the left thigh -90 deg about +X lifts it forward: the knee goes from -Y to +Z.
    q = np.tile([1.0, 0, 0, 0], (1, 22, 1))
    q[0, 4] = [np.cos(np.pi / 4), -np.sin(np.pi / 4), 0, 0]
    out = forward_kinematics(T2M, q, np.zeros((1, 3)))[0]
    hip, knee, ankle = out[1], out[4], out[7]
    np.testing.assert_allclose(knee - hip, [0, 0, T2M.bone_lengths[4]], atol=1e-12)
    np.testing.assert_allclose(ankle - knee, [0, 0, T2M.bone_lengths[7]], atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fk_of_ik_reproduces_positions(seed):
    joints = synth_motion(90, seed=seed)
    quats, root, lengths = inverse_kinematics(joints)
    np.testing.assert_allclose(np.linalg.norm(quats, axis=-1), 1.0, atol=1e-9)
    np.testing.assert_allclose(forward_kinematics(T2M, quats, root, lengths), joints, atol=1e-9)
    # rigid motion: constant bone lengths, so the per-clip offsets work too
    np.testing.assert_allclose(forward_kinematics(T2M, quats, root, lengths[0]), joints, atol=1e-9)


def test_fk_of_ik_with_varying_bone_lengths():
    # Interpolated capture data stretches bones slightly; per-frame lengths keep it exact.
    joints = synth_motion(40, seed=3)
    rng = np.random.default_rng(0)
    joints[:, 1:] += rng.normal(scale=0.005, size=joints[:, 1:].shape)
    quats, root, lengths = inverse_kinematics(joints)
    assert lengths.std(axis=0)[1:].min() > 1e-4
    np.testing.assert_allclose(forward_kinematics(T2M, quats, root, lengths), joints, atol=1e-9)


def test_ik_of_rest_pose_is_identity_and_root_starts_at_identity():
    rest = T2M.rest_pose()[None]
    quats, _, _ = inverse_kinematics(rest)
    np.testing.assert_allclose(np.abs(quats[..., 0]), 1.0, atol=1e-9)
    turned = synth_motion(10, seed=4, turn=0.3)
    quats, _, _ = inverse_kinematics(turned)
    np.testing.assert_allclose(quats[0, 0], [1, 0, 0, 0])
    assert not np.allclose(quats[5, 0], [1, 0, 0, 0], atol=1e-3)


def test_ik_handles_bone_pointing_against_rest_direction():
    # A bone exactly opposite its rest direction (shortest arc undefined) must not give NaN.
    rest = T2M.rest_pose()
    flipped = rest.copy()
    flipped[4] = rest[1] + (rest[1] - rest[4])        # left knee straight up
    flipped[7] = flipped[4] + (flipped[4] - rest[1])
    flipped[10] = flipped[7] + (rest[10] - rest[7])
    quats, root, lengths = inverse_kinematics(flipped[None])
    assert np.isfinite(quats).all()
    np.testing.assert_allclose(forward_kinematics(T2M, quats, root, lengths)[0], flipped, atol=1e-9)


def test_ik_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(T, 22, 3\)"):
        inverse_kinematics(np.zeros((5, 21, 3)))


def test_kit_fk_of_ik():
    joints = synth_motion(30, seed=5, skeleton=KIT, scale=1000.0)
    quats, root, lengths = inverse_kinematics(joints, KIT)
    np.testing.assert_allclose(forward_kinematics(KIT, quats, root, lengths), joints, atol=1e-6)
