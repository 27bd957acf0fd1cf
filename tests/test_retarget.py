"""Retargeting BVH skeletons to the HumanML3D 22-joint layout."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from core.formats import bvh as B
from core.formats import retarget as R
from core.formats.retarget import RetargetError

FIXTURES = Path(__file__).resolve().parent / "data" / "bvh"
BN_FILES = sorted(FIXTURES.glob("*.bvh"))
T = {name: i for i, name in enumerate(R.T2M_JOINT_NAMES)}
UP = np.array([0.0, 1.0, 0.0])

# A synthetic CMU-named rig in centimetres: Y up, facing +Z, the character's left on +X.
# (name, offset, children, end site)
_LEFT_LEG = ("LHipJoint", (0, 0, 0), [
    ("LeftUpLeg", (9, -6, 0), [
        ("LeftLeg", (0, -42, 0), [
            ("LeftFoot", (0, -41, 0), [
                ("LeftToeBase", (0, -6, 12), [], (0, 0, 5))], None)], None)], None)], None)
_LEFT_ARM = ("LeftShoulder", (0, 0, 0), [
    ("LeftArm", (17, 9, 0), [
        ("LeftForeArm", (28, 0, 0), [
            ("LeftHand", (25, 0, 0), [
                ("LeftFingerBase", (5, 0, 0), [("LeftHandIndex1", (3, 0, 0), [], (3, 0, 0))], None),
                ("LThumb", (2, 0, 3), [], (2, 0, 2))], None)], None)], None)], None)


def _mirror(node):
    name, off, kids, end = node
    name = {"LHipJoint": "RHipJoint", "LThumb": "RThumb"}.get(name, name.replace("Left", "Right"))
    flip = lambda v: None if v is None else (-v[0], v[1], v[2])  # noqa: E731
    return (name, flip(off), [_mirror(k) for k in kids], flip(end))


CMU_TREE = ("Hips", (0, 0, 0), [
    _LEFT_LEG, _mirror(_LEFT_LEG),
    ("LowerBack", (0, 0, 0), [
        ("Spine", (0, 11, 0), [
            ("Spine1", (0, 12, 0), [
                ("Neck", (0, 0, 0), [
                    ("Neck1", (0, 14, 0), [("Head", (0, 10, 0), [], (0, 15, 0))], None)], None),
                _LEFT_ARM, _mirror(_LEFT_ARM)], None)], None)], None)], None)
HIPS_HEIGHT = 95.0  # 6 + 42 + 41 + 6 cm down to the toe base


def cmu_text(frames: int = 121, fps: float = 120.0, seed: int = 0, still: bool = False) -> str:
    """BVH text of the rig: root XYZ position + XYZ rotation, other joints XYZ rotation only."""
    lines = ["HIERARCHY"]
    count = 0

    def emit(node, depth):
        nonlocal count
        name, off, kids, end = node
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if depth == 0 else 'JOINT'} {name}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {off[0]} {off[1]} {off[2]}")
        if depth == 0:
            lines.append(f"{pad}  CHANNELS 6 Xposition Yposition Zposition Xrotation Yrotation Zrotation")
        else:
            lines.append(f"{pad}  CHANNELS 3 Xrotation Yrotation Zrotation")
        count += 1
        for k in kids:
            emit(k, depth + 1)
        if end is not None:
            lines.extend([f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {end[0]} {end[1]} {end[2]}",
                          f"{pad}  }}"])
        lines.append(pad + "}")

    emit(CMU_TREE, 0)
    assert count == 31
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    motion = np.zeros((frames, 6 + 3 * 30))
    motion[:, 1] = HIPS_HEIGHT
    if not still:
        motion[:, 2] = 100.0 * t  # walk along +Z at 1 m/s
        phase = rng.uniform(0, 2 * np.pi, motion.shape[1] - 3)
        motion[:, 3:] = 8.0 * np.sin(2 * np.pi * 1.5 * t[:, None] + phase)  # small swings, degrees
    lines += ["MOTION", f"Frames: {frames}", f"Frame Time: {1 / fps!r}"]
    lines += [" ".join(map(repr, row)) for row in motion.tolist()]
    return "\n".join(lines) + "\n"


def t2m_forward(x: np.ndarray) -> np.ndarray:
    """Facing direction per frame from the hips: left-to-right axis crossed with up."""
    left = x[:, T["left_hip"]] - x[:, T["right_hip"]]
    fwd = np.cross(left, UP)
    return fwd / np.linalg.norm(fwd, axis=-1, keepdims=True)


def test_target_names():
    assert len(R.T2M_JOINT_NAMES) == 22
    assert R.T2M_JOINT_NAMES[:4] == ("pelvis", "left_hip", "right_hip", "spine1")
    assert R.T2M_JOINT_NAMES[15] == "head" and R.T2M_JOINT_NAMES[21] == "right_wrist"
    for jm in R.BUILTIN_MAPS.values():
        assert set(jm) == set(R.T2M_JOINT_NAMES)
        R.validate_joint_map(jm)


# Bandai Namco

@pytest.mark.parametrize("path", BN_FILES, ids=lambda p: p.name)
def test_bandai_namco_to_t2m(path):
    b = B.read(path)
    assert R.guess_joint_map(b)[0] == "bandai-namco"
    x = R.bvh_to_t2m(b, source=str(path))
    assert x.shape == (40, 22, 3) and x.dtype == np.float32  # 60 frames at 30 fps -> 20 fps

    y = x[..., 1]
    assert (y[:, T["head"]] > y[:, T["neck"]]).all()
    assert (y[:, T["neck"]] > y[:, T["pelvis"]]).all()
    assert (y[:, T["pelvis"]] > np.minimum(y[:, T["left_ankle"]], y[:, T["right_ankle"]])).all()
    assert (y[:, T["spine3"]] > y[:, T["spine2"]]).all() and (y[:, T["spine2"]] > y[:, T["pelvis"]]).all()
    # metres: the Head joint (skull base; the rig has no crown) stands 1.2-1.9 m above the
    # lowest foot joint, the pelvis 0.7-1.1 m
    floor = x[:, [T["left_foot"], T["right_foot"], T["left_ankle"], T["right_ankle"]], 1].min()
    assert 1.2 < np.median(y[:, T["head"]]) - floor < 1.9
    assert 0.7 < np.median(y[:, T["pelvis"]]) - floor < 1.1
    # thigh about 0.39 m and rigid, bar the slight shortening of linear interpolation
    thigh = np.linalg.norm(x[:, T["left_knee"]] - x[:, T["left_hip"]], axis=-1)
    assert 0.3 < thigh.mean() < 0.5 and np.ptp(thigh) < 2e-3
    assert np.ptp(thigh[::2]) < 1e-5  # even output frames fall on input frames

    # sides: everything labelled left lies on the same side as the left hip, and the facing
    # direction that implies is the way the toes point
    fwd = t2m_forward(x)
    left = x[:, T["left_hip"]] - x[:, T["right_hip"]]
    for a, b_ in (("left_shoulder", "right_shoulder"), ("left_collar", "right_collar"),
                  ("left_knee", "right_knee")):
        assert np.mean(np.sum((x[:, T[a]] - x[:, T[b_]]) * left, axis=-1)) > 0
    for side in ("left", "right"):
        toes = x[:, T[f"{side}_foot"]] - x[:, T[f"{side}_ankle"]]
        assert np.mean(np.sum(toes * fwd, axis=-1)) > 0.03


def test_walk_moves_forward():
    x = R.bvh_to_t2m(B.read(FIXTURES / "dataset-1_walk_normal_001.bvh"))
    travel = x[-1, T["pelvis"]] - x[0, T["pelvis"]]
    assert travel @ t2m_forward(x)[0] > 1.0  # about 2 s of walking


def test_bandai_namco_values_follow_the_map():
    b = B.read(BN_FILES[0])
    pos, _ = B.forward_kinematics(b)
    x = R.bvh_to_t2m(b, target_fps=b.fps)  # same rate: no resampling
    assert x.shape == (60, 22, 3)
    cm = lambda name: pos[:, b.joint_index(name)] * 0.01  # noqa: E731
    np.testing.assert_allclose(x[:, T["pelvis"]], cm("Hips"), atol=1e-6)
    np.testing.assert_allclose(x[:, T["right_wrist"]], cm("Hand_R"), atol=1e-6)
    np.testing.assert_allclose(x[:, T["spine3"]], 0.5 * (cm("Chest") + cm("Neck")), atol=1e-6)
    # joint_Root, the floor projection, is not used
    assert "joint_Root" not in json.dumps(R.BANDAI_NAMCO)


def test_195_frames_at_30_give_130_at_20():
    b = B.read(BN_FILES[0])
    long = B.Bvh(b.joints, 1 / 30, np.repeat(b.motion, 4, axis=0)[:195])
    assert R.bvh_to_t2m(long).shape == (130, 22, 3)
    assert R.resample(np.zeros((195, 2)), 30, 20).shape == (130, 2)


# CMU

def test_cmu_rig_round_trips_and_retargets():
    text = cmu_text()
    b = B.parse(text, "cmu.bvh")
    assert len(b.joints) == 31 and b.fps == pytest.approx(120)
    assert B.parse(B.dumps(b)) == b
    assert R.guess_joint_map(b)[0] == "cmu"
    x = R.bvh_to_t2m(b)
    assert x.shape == (21, 22, 3)  # 1 s at 120 fps -> frames 0..20 at 20 fps
    y = x[..., 1]
    assert (y[:, T["head"]] > y[:, T["pelvis"]]).all()
    assert (y[:, T["pelvis"]] > y[:, T["left_ankle"]]).all()
    assert ((x[:, T["left_hip"]] - x[:, T["right_hip"]]) @ np.array([1.0, 0, 0]) > 0).all()
    assert (x[-1, T["pelvis"]] - x[0, T["pelvis"]]) @ t2m_forward(x)[0] > 0.9


def test_cmu_rest_pose_by_hand():
    b = B.parse(cmu_text(frames=3, fps=60, still=True))
    x = R.bvh_to_t2m(b, target_fps=60)
    m = 0.01
    expect = {
        "pelvis": (0, 95, 0), "spine1": (0, 106, 0), "spine2": (0, 118, 0),
        "spine3": (0, 125, 0),  # halfway from Spine1 (118) to Neck1 (132)
        "neck": (0, 132, 0), "head": (0, 142, 0),
        "left_collar": (8.5, 122.5, 0),  # halfway from LeftShoulder (0,118) to LeftArm (17,127)
        "left_shoulder": (17, 127, 0), "left_elbow": (45, 127, 0), "left_wrist": (70, 127, 0),
        "right_wrist": (-70, 127, 0), "left_hip": (9, 89, 0), "left_knee": (9, 47, 0),
        "left_ankle": (9, 6, 0), "left_foot": (9, 0, 12), "right_foot": (-9, 0, 12),
    }
    for name, p in expect.items():
        np.testing.assert_allclose(x[:, T[name]], np.broadcast_to(np.array(p) * m, (3, 3)), atol=1e-6,
                                   err_msg=name)


def test_bvhio_reads_the_cmu_rig(tmp_path):
    bvhio = pytest.importorskip("bvhio")
    import warnings

    b = B.parse(cmu_text(frames=5, fps=24))
    path = tmp_path / "cmu.bvh"
    B.write(path, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = bvhio.readAsHierarchy(str(path))
        root.loadPose(4)
        world = np.array([list(j.PositionWorld) for j, _, _ in root.layout()])
    pos, _ = B.forward_kinematics(b, frames=4)
    np.testing.assert_allclose(world, pos[0], rtol=0, atol=1e-4)


# errors and user maps

def test_missing_joint_names_it():
    b = B.read(BN_FILES[0])
    b.joints[b.joint_index("Toes_L")].name = "ToeTip_L"
    with pytest.raises(RetargetError) as info:
        R.guess_joint_map(b, source="walk.bvh")
    msg = str(info.value)
    assert msg.startswith("walk.bvh: ")
    assert "bandai-namco map lacks Toes_L" in msg
    assert "JSON" in msg
    with pytest.raises(RetargetError, match="Toes_L"):
        R.bvh_to_t2m(b, source="walk.bvh")
    with pytest.raises(RetargetError, match="walk.bvh: joint map names joints the skeleton lacks: Toes_L"):
        R.bvh_to_t2m(b, R.BANDAI_NAMCO, source="walk.bvh")


def test_user_json_map(tmp_path):
    b = B.parse(cmu_text(frames=7, fps=60))
    jm = dict(R.CMU)
    jm["head"] = "Head/end"  # the crown, from the End Site
    jm["spine3"] = {"Spine1": 0.25, "Neck1": 0.75}
    jm["left_foot"] = "LeftToeBase/end"
    path = tmp_path / "map.json"
    path.write_text(json.dumps(jm))
    loaded = R.load_joint_map(path, b)
    assert loaded == jm
    x = R.bvh_to_t2m(b, loaded, target_fps=60)
    pos, rot = B.forward_kinematics(b)
    ends = B.end_site_positions(b, pos, rot)
    head = b.joint_index("Head")
    np.testing.assert_allclose(x[:, T["head"]], ends[:, head] * 0.01, atol=1e-6)
    np.testing.assert_allclose(x[:, T["head"]], (pos[:, head] + rot[:, head] @ [0, 15, 0]) * 0.01, atol=1e-6)
    s1, n1 = b.joint_index("Spine1"), b.joint_index("Neck1")
    np.testing.assert_allclose(x[:, T["spine3"]], (0.25 * pos[:, s1] + 0.75 * pos[:, n1]) * 0.01, atol=1e-6)
    builtin = R.bvh_to_t2m(b, target_fps=60)
    assert not np.allclose(builtin[:, T["head"]], x[:, T["head"]])
    np.testing.assert_array_equal(builtin[:, T["pelvis"]], x[:, T["pelvis"]])


def _write_map(tmp_path, data, raw: str | None = None) -> Path:
    path = tmp_path / "bad_map.json"
    path.write_text(raw if raw is not None else json.dumps(data))
    return path


@pytest.mark.parametrize("change, words", [
    (lambda m: m.pop("left_elbow"), "lacks target joints: left_elbow"),
    (lambda m: m.update(tail="Hips"), "unknown target joints tail"),
    (lambda m: m.update(spine3={"Spine1": 0.5, "Neck1": 0.6}), "weights sum to 1.1, not 1"),
    (lambda m: m.update(spine3={"Spine1": "half", "Neck1": 0.5}), "must be a finite number"),
    (lambda m: m.update(spine3={"Spine1": True}), "must be a finite number"),
    (lambda m: m.update(spine3={}), "non-empty object"),
    (lambda m: m.update(neck=3), "non-empty object"),
    (lambda m: m.update(neck="Neck2"), "skeleton lacks: Neck2"),
    (lambda m: m.update(neck="Neck1/end"), "End Site of joints that have none: Neck1"),
])
def test_bad_user_maps_are_explained(tmp_path, change, words):
    b = B.parse(cmu_text(frames=2))
    data = json.loads(json.dumps(R.CMU))
    change(data)
    path = _write_map(tmp_path, data)
    with pytest.raises(RetargetError) as info:
        R.load_joint_map(path, b)
    assert str(info.value).startswith(f"{path}: ")
    assert words in str(info.value)


def test_bad_json_syntax_and_shape(tmp_path):
    path = _write_map(tmp_path, None, raw='{"pelvis": "Hips",\n "left_hip": }')
    with pytest.raises(RetargetError, match=r"bad_map\.json: not valid JSON \(line 2"):
        R.load_joint_map(path)
    path = _write_map(tmp_path, ["Hips"])
    with pytest.raises(RetargetError, match="must be an object"):
        R.load_joint_map(path)
    # without a skeleton, names are not checked
    data = dict(R.CMU, neck="Anything")
    assert R.load_joint_map(_write_map(tmp_path, data))["neck"] == "Anything"


def test_nan_and_empty_clips_are_rejected():
    b = B.read(BN_FILES[0])
    bad = b.copy()
    bad.motion[10, 3] = np.nan  # only possible in memory: the reader refuses NaN
    with pytest.raises(RetargetError, match=r"walk\.bvh: .*NaN"):
        R.bvh_to_t2m(bad, source="walk.bvh")
    empty = B.Bvh(b.joints, b.frame_time, b.motion[:0])
    with pytest.raises(RetargetError, match="no frames"):
        R.bvh_to_t2m(empty)
    with pytest.raises(RetargetError, match="scale"):
        R.bvh_to_t2m(b, scale=0.0)


# resampling

@pytest.mark.parametrize("src, dst, n", [(30, 20, 60), (120, 20, 121), (24, 20, 50), (60, 20, 7),
                                         (20, 30, 11), (30.00003, 20, 195), (20, 20, 9)])
def test_resample_is_exact_on_a_linear_signal(src, dst, n):
    a = np.array([1.5, -2.0, 0.25])
    v = np.array([0.3, 1.0, -4.0])
    t = np.arange(n) / src
    x = a + t[:, None] * v
    y = R.resample(x, src, dst)
    n_out = math.floor((n - 1) * dst / src + 1e-9) + 1
    assert y.shape == (n_out, 3)
    assert (n_out - 1) / dst <= (n - 1) / src + 1e-9 < n_out / dst
    np.testing.assert_allclose(y, a + (np.arange(n_out) / dst)[:, None] * v, rtol=0, atol=1e-12)


def test_resample_shapes_and_dtypes():
    x = np.arange(60 * 22 * 3, dtype=np.float32).reshape(60, 22, 3)
    y = R.resample(x, 30, 20)
    assert y.shape == (40, 22, 3) and y.dtype == np.float32
    np.testing.assert_array_equal(y[::2], x[::3])  # every other output frame lands on an input frame
    assert R.resample(x[:1], 30, 20).shape == (1, 22, 3)
    same = R.resample(x, 20, 20)
    assert same is not x and np.array_equal(same, x)
    with pytest.raises(ValueError):
        R.resample(x, 0, 20)
