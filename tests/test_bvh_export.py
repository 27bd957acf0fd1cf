"""BVH export of joint positions: structure, positions, bvhio cross-check, rates, errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from motion_factory import spoiled_motion, synth_motion

from core.formats import bvh as B
from core.formats import retarget as R
from core.formats.bvh_export import joints_to_bvh, save_bvh
from core.rotations import qinv, qmul, yaw_quat
from core.skeleton import T2M, forward_kinematics, inverse_kinematics

FIXTURES = Path(__file__).resolve().parent / "data" / "bvh"
BN_FILES = sorted(FIXTURES.glob("*.bvh"))
BRANCHES = [p for p in range(22) if (T2M.parents == p).sum() > 1]  # pelvis, spine3
LEAVES = [j for j in range(22) if not (T2M.parents == j).any()]


def bn_motion(path: Path) -> np.ndarray:
    """A real clip retargeted to HumanML3D joints at 20 fps (metres)."""
    return R.bvh_to_t2m(B.read(path)).astype(np.float64)


def rigid_motion(frames: int, seed: int = 0, stretch: float = 0.0) -> np.ndarray:
    """A smooth random motion (slower than synth_motion, which turns joints at up to 3 Hz),
    with the children of pelvis and spine3 moving as one piece, as in SMPL data, and bone
    lengths breathing by +-stretch per frame, as in generated motion."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None, None]
    aa = rng.uniform(0.1, 0.6, (22, 3)) * np.sin(2 * np.pi * rng.uniform(0.005, 0.03, (22, 3)) * t
                                                  + rng.uniform(0, 2 * np.pi, (22, 3)))
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    q = np.concatenate([np.cos(angle / 2), aa / np.maximum(angle, 1e-12) * np.sin(angle / 2)], -1)
    q[:, 0] = yaw_quat(0.01 * t[:, 0, 0])  # turning slowly
    q[:, 1:4] = q[:1, 1:4]  # hips and spine1 fixed relative to the pelvis
    spine3 = qmul(qmul(qmul(q[:, 3], q[:, 6]), q[:, 9]), q[:, 12])
    for c in (13, 14):  # collars follow the neck's frame
        q[:, c] = qmul(spine3, qmul(qinv(spine3[:1]), q[:1, c]))
    root = np.concatenate([0.02 * t[:, 0], 0.9 + 0.02 * np.sin(0.3 * t[:, 0]), -0.01 * t[:, 0]], -1)
    lengths = T2M.bone_lengths * (1 + stretch * np.sin(0.37 * t[:, 0] + rng.uniform(0, 2 * np.pi, 22)))
    return forward_kinematics(T2M, q, root, lengths)


def t2m_positions(b: B.Bvh) -> np.ndarray:
    """World positions from our BVH FK, in T2M joint order."""
    pos, _ = B.forward_kinematics(b)
    return pos[:, [b.joint_index(n) for n in T2M.joint_names]]


def reference(joints: np.ndarray) -> np.ndarray:
    """FK(IK(joints)) with each bone at its median length: what a fixed-offset rig can show."""
    q, root, lengths = inverse_kinematics(joints)
    return forward_kinematics(T2M, q, root, np.median(lengths, axis=0))


def length_bound(joints: np.ndarray, median: np.ndarray | None = None) -> np.ndarray:
    """(T, J) sum over the bones from the root to each joint of |length - median length|.

    With every bone direction exact, that is how far fixed median lengths can move a joint
    (triangle inequality along the chain)."""
    lengths = T2M.measure_offsets(joints)
    dev = np.abs(lengths - (np.median(lengths, axis=0) if median is None else median))
    out = np.zeros_like(dev)
    for j in range(1, 22):  # parents come before children in T2M order
        out[:, j] = out[:, T2M.parents[j]] + dev[:, j]
    return out


def bvhio_world(path: Path, frames: list[int]):
    bvhio = pytest.importorskip("bvhio")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        container = bvhio.readAsBvh(str(path))
        root = bvhio.readAsHierarchy(str(path))
        layout = [j for j, _, _ in root.layout()]
        out = []
        for f in frames:
            root.loadPose(f)
            out.append([list(j.PositionWorld) for j in layout])
    names = [j.Name for j in layout]
    parents = [names.index(j.Parent.Name) if j.Parent is not None else -1 for j in layout]
    return container, names, parents, np.array(out, dtype=np.float64)


# structure

def test_file_structure_read_by_us_and_bvhio(tmp_path):
    x = bn_motion(BN_FILES[0])
    path = tmp_path / "walk.bvh"
    made = save_bvh(path, x, 20.0)
    b = B.read(path)
    assert b == made  # bitwise round trip through the file

    assert len(b.joints) == 22 and sorted(b.names) == sorted(R.T2M_JOINT_NAMES)
    assert b.names[0] == "pelvis"
    for j in b.joints[1:]:
        assert b.names[j.parent] == T2M.joint_names[T2M.parents[T2M.index(j.name)]]
    assert b.joints[0].channels == ["Xposition", "Yposition", "Zposition",
                                    "Zrotation", "Xrotation", "Yrotation"]
    assert all(j.channels == ["Zrotation", "Xrotation", "Yrotation"] for j in b.joints[1:])
    assert {j.name for j in b.joints if j.end_site is not None} == {T2M.joint_names[k] for k in LEAVES}
    assert b.n_frames == 40 and b.motion.shape == (40, 6 + 21 * 3)
    assert b.frame_time == 1 / 20

    container, names, parents, _ = bvhio_world(path, [0])
    assert names == b.names and parents == b.parents.tolist()
    assert container.FrameCount == 40
    assert container.FrameTime == pytest.approx(0.05, abs=1e-9)
    # a smooth clip gives smooth channels: no 360-degree wraps between frames
    assert np.abs(np.diff(b.motion[:, 3:], axis=0)).max() < 90


def test_rest_offsets_use_median_lengths_along_rest_directions():
    x = rigid_motion(60, seed=4, stretch=0.02)
    b = joints_to_bvh(x)
    med = np.median(T2M.measure_offsets(x), axis=0)
    for j in range(1, 22):
        off = b.joints[b.joint_index(T2M.joint_names[j])].offset
        assert np.linalg.norm(off) == pytest.approx(med[j], abs=1e-12)
        if T2M.parents[j] not in BRANCHES:
            np.testing.assert_allclose(off, T2M.raw_offsets[j] * med[j], atol=1e-12)
    assert np.all(b.joints[0].offset == 0)


# positions

@pytest.mark.parametrize("case", [p.name for p in BN_FILES] + ["rigid-synth"])
def test_positions_match_fk_of_ik_and_input(tmp_path, case):
    if case == "rigid-synth":
        x, tol = rigid_motion(120, seed=1, stretch=0.02), 1e-9
    else:
        # retargeted at 20 fps from 30: interpolation bends the rigid parts very slightly
        x, tol = bn_motion(FIXTURES / case), 1e-3
    path = tmp_path / "out.bvh"
    save_bvh(path, x)
    pos = t2m_positions(B.read(path))
    err_ref = np.linalg.norm(pos - reference(x), axis=-1)
    assert err_ref.max() < tol
    # against the input, only the per-frame bone-length changes remain
    err_in = np.linalg.norm(pos - x, axis=-1)
    bound = length_bound(x)
    assert np.all(err_in <= bound + tol)
    if case == "rigid-synth":
        assert bound.max() > 0.01  # the lengths really vary, so the bound is exercised
        assert err_in.max() > 0.5 * bound.max()


def test_bone_directions_exact_when_branches_are_not_rigid():
    # synth_motion turns hips, spine1 and collars independently, which one rigid pelvis or
    # chest cannot show: those six bones get a best fit, every other bone is exact
    x = synth_motion(80, seed=2)
    pos = t2m_positions(joints_to_bvh(x))
    med = np.median(T2M.measure_offsets(x), axis=0)
    for c in range(1, 22):
        p = T2M.parents[c]
        got = pos[:, c] - pos[:, p]
        np.testing.assert_allclose(np.linalg.norm(got, axis=-1), med[c], atol=1e-9)
        if p not in BRANCHES:
            want = x[:, c] - x[:, p]
            cos = np.sum(got * want, -1) / np.linalg.norm(got, axis=-1) / np.linalg.norm(want, axis=-1)
            assert cos.min() > 1 - 1e-12
    np.testing.assert_allclose(pos[:, 0], x[:, 0], atol=1e-12)


@pytest.mark.parametrize("scale, source", [(1.0, "kick"), (100.0, "kick"), (1.0, "generated")])
def test_bvhio_world_positions_agree(tmp_path, scale, source):
    from motion_factory import generated_motion

    x = bn_motion(BN_FILES[1]) if source == "kick" else generated_motion()
    path = tmp_path / "kick.bvh"
    b = save_bvh(path, x, scale=scale)
    frames = [0, b.n_frames // 2, b.n_frames - 1]
    _, names, _, world = bvhio_world(path, frames)
    assert names == b.names
    ours, _ = B.forward_kinematics(b, frames=frames)
    # bvhio computes in float32 and in file units: compare in metres
    np.testing.assert_allclose(world / scale, ours / scale, rtol=0, atol=1e-3)
    assert np.abs(world - ours).max() / scale < 1e-5


def test_scale_100_is_centimetres():
    x = rigid_motion(30, seed=5, stretch=0.01)
    m, cm = joints_to_bvh(x), joints_to_bvh(x, scale=100)
    for a, b in zip(m.joints, cm.joints):
        np.testing.assert_allclose(b.offset, 100 * a.offset, rtol=1e-12, atol=1e-12)
        if a.end_site is not None:
            np.testing.assert_allclose(b.end_site, 100 * a.end_site, rtol=1e-12)
    np.testing.assert_allclose(cm.motion[:, :3], 100 * x[:, 0], rtol=1e-12)
    np.testing.assert_array_equal(cm.motion[:, 3:], m.motion[:, 3:])  # angles do not scale
    np.testing.assert_allclose(t2m_positions(cm), 100 * t2m_positions(m), rtol=1e-12, atol=1e-10)


# frame rates

def test_target_fps_60_triples_frames_and_keeps_shared_times():
    x = rigid_motion(50, seed=6, stretch=0.02)
    b20, b60 = joints_to_bvh(x, 20), joints_to_bvh(x, 20, target_fps=60)
    assert b60.n_frames == 3 * (50 - 1) + 1 and b60.frame_time == 1 / 60
    # the rig comes from the input frames, so it is the same at any rate
    assert all(np.array_equal(a.offset, c.offset) for a, c in zip(b20.joints, b60.joints))
    p20, p60 = t2m_positions(b20), t2m_positions(b60)
    np.testing.assert_allclose(p60[::3], p20, atol=1e-9)
    # in between: the bone directions of the linearly resampled input, at the clip's lengths
    # (blending two poses bends the turning rigid pelvis by 0.3 um: hence 1e-5)
    lin = R.resample(x, 20, 60)
    bound = length_bound(lin, np.median(T2M.measure_offsets(x), axis=0))
    assert np.all(np.linalg.norm(p60 - lin, axis=-1) <= bound + 1e-5)
    # so frames in between stay near the blend of their neighbours (2.6 mm measured, with
    # joints moving up to 2.6 m/s: the arc of a turning bone against its chord)
    lerp = (2 * p20[:-1] + p20[1:]) / 3
    assert np.linalg.norm(p60[1::3] - lerp, axis=-1).max() < 0.005
    # 30 fps: 1.5x, with every other output frame on an input frame
    b30 = joints_to_bvh(x, 20, target_fps=30)
    assert b30.n_frames == 74 and b30.frame_time == 1 / 30
    np.testing.assert_allclose(t2m_positions(b30)[::3], p20[::2], atol=1e-9)
    # same rate: no resampling
    assert joints_to_bvh(x, 20, target_fps=20) == b20


# sizes

def test_one_frame(tmp_path):
    x = synth_motion(1, seed=7)
    path = tmp_path / "one.bvh"
    save_bvh(path, x, target_fps=60)
    b = B.read(path)
    assert b.n_frames == 1 and b.frame_time == 1 / 60
    np.testing.assert_allclose(t2m_positions(b), x, atol=1e-9)  # one frame: lengths are exact
    _, _, _, world = bvhio_world(path, [0])
    np.testing.assert_allclose(world, B.forward_kinematics(b)[0], rtol=0, atol=1e-5)


def test_thousand_frames(tmp_path):
    x = rigid_motion(1000, seed=8, stretch=0.01)
    path = tmp_path / "long.bvh"
    save_bvh(path, x)
    b = B.read(path)
    assert b.n_frames == 1000
    pos = t2m_positions(b)
    assert np.linalg.norm(pos - reference(x), axis=-1).max() < 1e-9
    assert np.all(np.linalg.norm(pos - x, axis=-1) <= length_bound(x) + 1e-9)


def test_reimports_one_to_one_through_retarget(tmp_path):
    x = bn_motion(BN_FILES[2])
    path = tmp_path / "bye.bvh"
    save_bvh(path, x, scale=100)
    b = B.read(path)
    assert R.guess_joint_map(b)[0] == "humanml3d"
    back = R.bvh_to_t2m(b, target_fps=20, scale=0.01)
    np.testing.assert_allclose(back, reference(x), atol=1e-3)


# bad input

@pytest.mark.parametrize("joints, kw, words", [
    (np.zeros((10, 21, 3)), {}, r"shape \(frames, 22, 3\).*got \(10, 21, 3\)"),
    (np.zeros((22, 3)), {}, r"shape \(frames, 22, 3\)"),
    (np.zeros((5, 22, 2)), {}, r"shape \(frames, 22, 3\)"),
    (np.zeros((0, 22, 3)), {}, "no frames"),
    ([["a"] * 3] * 22, {}, "numeric array"),
    ("nan", {}, "NaN or infinite.*frame 3, joint left_knee"),
    ("inf", {}, "NaN or infinite"),
    (None, {"fps": 0}, "fps must be a positive"),
    (None, {"fps": -20}, "fps must be a positive"),
    (None, {"fps": float("nan")}, "fps must be a positive"),
    (None, {"fps": "fast"}, "fps must be a positive"),
    (None, {"target_fps": 0}, "target_fps must be a positive"),
    (None, {"target_fps": float("inf")}, "target_fps must be a positive"),
    (None, {"scale": 0}, "scale must be a positive"),
])
def test_bad_input_is_explained(tmp_path, joints, kw, words):
    joints = spoiled_motion(joints)
    with pytest.raises(ValueError, match=words):
        joints_to_bvh(joints, **kw)
    path = tmp_path / "never.bvh"
    with pytest.raises(ValueError, match=words):
        save_bvh(path, joints, **kw)
    assert not path.exists() and not list(tmp_path.iterdir())


# the shared rig (FBX and glTF build on it)

def test_rig_forward_kinematics_matches_the_bvh():
    from core.formats.bvh_export import joints_to_rig, rig_to_bvh

    x = rigid_motion(30, seed=2, stretch=0.01)
    rig = joints_to_rig(x, 20.0, scale=100)
    b = rig_to_bvh(rig)
    pos, _ = B.forward_kinematics(b)
    np.testing.assert_allclose(rig.world_positions(), pos, atol=1e-6)
    assert rig.names == b.names and rig.parents.tolist() == b.parents.tolist()
    assert [T2M.joint_names[j] for j in rig.source] == rig.names
    # rotations are proper: orthonormal with determinant 1
    eye = np.einsum("tjik,tjil->tjkl", rig.local, rig.local)
    np.testing.assert_allclose(eye, np.broadcast_to(np.eye(3), eye.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(rig.local), 1.0, atol=1e-9)
