import numpy as np
import pytest
from motion_factory import synth_motion

from core.features import (
    canonicalize,
    denormalize,
    extract_features,
    foot_contacts,
    layout,
    mean_std,
    normalize,
    recover_joints,
    recover_joints_from_rotations,
)
from core.rotations import qrot, yaw_quat
from core.skeleton import KIT, T2M


def test_layout_dims():
    b = layout(T2M).blocks
    assert layout(T2M).dim == 263
    assert (b["ric"].start, b["rot"].start, b["vel"].start, b["contacts"].start) == (4, 67, 193, 259)
    assert layout(KIT).dim == 251 and layout(KIT).blocks["contacts"].stop == 251


def test_shapes_and_dtype():
    f = extract_features(synth_motion(50))
    assert f.shape == (49, 263) and f.dtype == np.float32


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_round_trip_within_a_millimetre(seed):
    joints = synth_motion(160, seed=seed, turn=0.02 * seed)
    rec = recover_joints(extract_features(joints))
    err = np.linalg.norm(rec - canonicalize(joints)[:-1], axis=-1)
    assert err.max() < 1e-3


def test_motion_already_in_humanml3d_form_comes_back_unchanged():
    canon = canonicalize(synth_motion(100, seed=7))
    rec = recover_joints(extract_features(canon))
    np.testing.assert_allclose(rec, canon[:-1], atol=1e-3)


def test_canonical_form():
    canon = canonicalize(synth_motion(60, seed=1, start=(3.0, 4.0)))
    assert abs(canon[..., 1].min()) < 1e-12
    np.testing.assert_allclose(canon[0, 0, [0, 2]], 0, atol=1e-12)
    # first frame faces +Z with the left side at +X (HumanML3D)
    assert canon[0, T2M.index("left_shoulder"), 0] > canon[0, T2M.index("right_shoulder"), 0]


def test_features_ignore_where_and_which_way_the_motion_starts():
    joints = synth_motion(80, seed=2)
    q = yaw_quat(np.full(joints.shape[:-1], 0.9))
    moved = qrot(q, joints) + np.array([5.0, 0.3, -7.0])
    np.testing.assert_allclose(extract_features(moved), extract_features(joints), atol=2e-4)


def test_straight_walk_root_velocity_and_height():
    joints = np.repeat(canonicalize(T2M.rest_pose()[None] + [0, 0.95, 0]), 21, axis=0)
    joints += np.arange(21)[:, None, None] * np.array([0, 0, 0.05])       # 1 m/s at 20 fps
    f = extract_features(joints)
    np.testing.assert_allclose(f[:, 0], 0, atol=1e-6)
    np.testing.assert_allclose(f[:, 1:3], np.tile([0, 0.05], (20, 1)), atol=1e-6)
    np.testing.assert_allclose(f[:, 3], joints[0, 0, 1] - joints[..., 1].min(), atol=1e-6)
    np.testing.assert_allclose(f[:, layout().blocks["vel"]].reshape(20, 22, 3), np.tile([0, 0, 0.05], (20, 22, 1)), atol=1e-6)


def test_turning_in_place_gives_half_angle_rate():
    rest = canonicalize(T2M.rest_pose()[None])[0]
    w = 0.05  # radians per frame
    joints = np.stack([qrot(yaw_quat(np.full(22, w * t / 2)), rest) for t in range(80)])
    f = extract_features(joints)
    # HumanML3D stores half the yaw change; the heading is smoothed, so look mid-clip
    np.testing.assert_allclose(f[25:55, 0], -w / 2, atol=2e-3)


def test_foot_contacts_follow_threshold():
    joints = np.repeat(T2M.rest_pose()[None], 4, axis=0)
    joints[1:, T2M.left_foot[0], 2] += 0.05     # left ankle jumps 5 cm then stays
    c = foot_contacts(joints)
    assert c.shape == (3, 4)
    assert c[0].tolist() == [0, 1, 1, 1] and c[1].tolist() == [1, 1, 1, 1]
    joints[2:, T2M.right_foot[1], 0] += np.sqrt(0.002) * 0.99   # just under the threshold
    assert foot_contacts(joints)[1, 3] == 1


def test_rotation_block_reproduces_the_motion():
    joints = synth_motion(70, seed=4)
    canon = canonicalize(joints)
    f = extract_features(joints)
    rec = recover_joints_from_rotations(f, T2M.measure_offsets(canon[0]))
    np.testing.assert_allclose(rec, canon[:-1], atol=1e-4)


def test_kit_round_trip():
    joints = synth_motion(60, seed=1, skeleton=KIT, scale=1000.0)
    f = extract_features(joints, KIT)
    assert f.shape == (59, 251)
    np.testing.assert_allclose(recover_joints(f), canonicalize(joints, KIT)[:-1], atol=0.5)  # mm


def test_batched_recovery_matches_single():
    f = np.stack([extract_features(synth_motion(30, seed=s)) for s in range(3)])
    np.testing.assert_allclose(recover_joints(f)[1], recover_joints(f[1]), atol=1e-12)


def test_bad_input_messages():
    j = synth_motion(10)
    j[3, 5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN.*1 frame.*3"):
        extract_features(j)
    with pytest.raises(ValueError, match="at least 2"):
        extract_features(synth_motion(1))
    with pytest.raises(ValueError, match="263"):
        recover_joints(np.zeros((5, 100)))


def test_mean_std_blocks_and_normalisation():
    feats = [extract_features(synth_motion(40, seed=s)) for s in range(4)]
    mean, std = mean_std(feats)
    assert mean.shape == std.shape == (263,)
    for block in layout().blocks.values():
        assert np.ptp(std[block]) < 1e-6          # one std per block
    allf = np.concatenate(feats)
    np.testing.assert_allclose(mean, allf.mean(0), rtol=1e-5, atol=1e-6)
    ric = layout().blocks["ric"]
    np.testing.assert_allclose(std[ric][0], allf[:, ric].std(0).mean(), rtol=1e-4)
    x = feats[0]
    np.testing.assert_allclose(denormalize(normalize(x, mean, std), mean, std), x, atol=1e-5)
