"""Tests for core.posecodes: catalogue, parser geometry, binning, jitter, conversions."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from core import posecodes as P

REPO = Path(__file__).resolve().parents[1]
J = {n: i for i, n in enumerate(P.JOINT_NAMES)}


# --------------------------------------------------------------------------
# poses (metres, Y up, facing +Z, left side at +X)

def standing() -> np.ndarray:
    p = {
        "pelvis": (0, 0.95, 0), "left_hip": (0.09, 0.88, 0), "right_hip": (-0.09, 0.88, 0),
        "spine1": (0, 1.05, 0), "left_knee": (0.10, 0.50, 0.01), "right_knee": (-0.10, 0.50, 0.01),
        "spine2": (0, 1.18, 0), "left_ankle": (0.10, 0.09, -0.02), "right_ankle": (-0.10, 0.09, -0.02),
        "spine3": (0, 1.24, 0.01), "left_foot": (0.11, 0.02, 0.11), "right_foot": (-0.11, 0.02, 0.11),
        "neck": (0, 1.45, 0), "left_collar": (0.08, 1.37, 0), "right_collar": (-0.08, 1.37, 0),
        "head": (0, 1.58, 0.04), "left_shoulder": (0.18, 1.40, 0), "right_shoulder": (-0.18, 1.40, 0),
        "left_elbow": (0.20, 1.12, -0.02), "right_elbow": (-0.20, 1.12, -0.02),
        "left_wrist": (0.22, 0.88, 0.01), "right_wrist": (-0.22, 0.88, 0.01),
    }
    return np.array([p[n] for n in P.JOINT_NAMES], dtype=np.float64)


def yaw(joints: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate about +Y (right-handed): +Z turns towards +X for positive angles."""
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    r = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return joints @ r.T


def set_joint(p: np.ndarray, name: str, xyz) -> np.ndarray:
    p = p.copy()
    p[J[name]] = xyz
    return p


def left_knee_at(p: np.ndarray, degrees: float) -> np.ndarray:
    """Left knee bent to an exact angle: thigh straight down, calf swung forward."""
    knee = p[J["left_knee"]]
    a = np.radians(degrees)
    p = set_joint(p, "left_hip", knee + (0, 0.4, 0))
    return set_joint(p, "left_ankle", knee + 0.4 * np.array([0, np.cos(a), np.sin(a)]))


def hands_apart(p: np.ndarray, gap: float) -> np.ndarray:
    """Both forearms pointing forward, virtual hands `gap` apart in x."""
    p = set_joint(p, "left_elbow", (gap / 2, 1.1, 0.1))
    p = set_joint(p, "right_elbow", (-gap / 2, 1.1, 0.1))
    p = set_joint(p, "left_wrist", (gap / 2, 1.1, 0.35))
    return set_joint(p, "right_wrist", (-gap / 2, 1.1, 0.35))


def group(name: str) -> P.PoseGroup:
    (g,) = [g for g in P.GROUPS if g.name == name]
    return g


def active(onehot: np.ndarray, g: P.PoseGroup) -> int:
    """Local category of group g in a single-frame 70-hot."""
    (c,) = np.flatnonzero(onehot[g.first_code: g.first_code + g.n_codes])
    return int(c)


def active_name(onehot: np.ndarray, group_name: str) -> str:
    g = group(group_name)
    return g.code_names[active(onehot, g)]


def assert_one_per_group(onehot: np.ndarray) -> None:
    oh = onehot.reshape(-1, P.N_CODES)
    assert oh.dtype == bool
    counts = np.add.reduceat(oh.astype(int), P.GROUP_START[:-1], axis=1)
    assert (counts == 1).all()


# --------------------------------------------------------------------------
# catalogue

EXPECTED_KINDS = [  # kind, first group, last group, first id, last id, codes per group
    ("angle", 0, 3, 0, 71, 18),
    ("distance", 4, 21, 72, 251, 10),
    ("relX", 22, 27, 252, 269, 3),
    ("relY", 28, 43, 270, 317, 3),
    ("relZ", 44, 52, 318, 344, 3),
    ("relV", 53, 65, 345, 383, 3),
    ("ground", 66, 69, 384, 391, 2),
]

# the parser's joint order, written out independently of the module (method-facts §2.1)
EXPECTED_JOINTS = [
    "left_hip left_knee left_ankle", "right_hip right_knee right_ankle",
    "left_shoulder left_elbow left_wrist", "right_shoulder right_elbow right_wrist",
    # distance
    "left_elbow right_elbow", "left_hand right_hand", "left_knee right_knee", "left_foot right_foot",
    "left_hand left_shoulder", "left_hand right_shoulder", "right_hand right_shoulder",
    "right_hand left_shoulder", "left_hand right_elbow", "right_hand left_elbow",
    "left_hand left_knee", "left_hand right_knee", "right_hand right_knee", "right_hand left_knee",
    "left_hand left_foot", "left_hand right_foot", "right_hand right_foot", "right_hand left_foot",
    # relX
    "left_hand right_hand", "neck pelvis", "left_hand left_shoulder", "right_hand right_shoulder",
    "left_foot left_hip", "right_foot right_hip",
    # relY (filter order: knees before the ankle/neck pairs)
    "left_shoulder right_shoulder", "left_elbow right_elbow", "left_hand right_hand",
    "left_knee right_knee", "left_ankle neck", "right_ankle neck", "left_hip left_knee",
    "right_hip right_knee", "left_hand left_shoulder", "right_hand right_shoulder",
    "left_foot left_hip", "right_foot right_hip", "left_wrist neck", "right_wrist neck",
    "left_hand left_hip", "right_hand right_hip",
    # relZ
    "left_shoulder right_shoulder", "left_elbow right_elbow", "left_hand right_hand",
    "left_knee right_knee", "neck pelvis", "left_hand torso", "right_hand torso",
    "left_foot torso", "right_foot torso",
    # relV
    "left_hip left_knee", "right_hip right_knee", "left_knee left_ankle", "right_knee right_ankle",
    "left_shoulder left_elbow", "right_shoulder right_elbow", "left_elbow left_wrist",
    "right_elbow right_wrist", "pelvis left_shoulder", "pelvis right_shoulder", "pelvis neck",
    "left_hand right_hand", "left_foot right_foot",
    # ground
    "left_knee", "right_knee", "left_foot", "right_foot",
]


def test_counts_and_special_tokens():
    assert (P.N_GROUPS, P.N_CODES) == (70, 392)
    assert len(P.GROUPS) == 70 and len(P.CODES) == 392
    assert (P.END, P.PAD, P.N_TOKENS) == (392, 393, 394)


@pytest.mark.parametrize("kind, g0, g1, c0, c1, n", EXPECTED_KINDS)
def test_id_ranges_per_kind(kind, g0, g1, c0, c1, n):
    gs = [g for g in P.GROUPS if g.kind == kind]
    assert [g.index for g in gs] == list(range(g0, g1 + 1))
    assert gs[0].first_code == c0
    assert gs[-1].first_code + gs[-1].n_codes - 1 == c1
    assert all(g.n_codes == n for g in gs)
    assert all(len(P.THRESHOLDS[kind]) + 1 == n for _ in gs)


def test_thresholds_and_jitter_constants():
    expected = {
        "angle": (list(range(10, 171, 10)), 5.0), "distance": ([0.1 * i for i in range(1, 10)], 0.05),
        "relX": ([-0.15, 0.15], 0.05), "relY": ([-0.15, 0.15], 0.05), "relZ": ([-0.15, 0.15], 0.05),
        "relV": ([10, 80], 5.0), "ground": ([0.1], 0.05),
    }
    assert set(P.KINDS) == set(expected) == set(P.THRESHOLDS) == set(P.JITTER)
    for kind, (thr, amp) in expected.items():
        assert np.allclose(P.THRESHOLDS[kind], thr, rtol=0, atol=1e-12)
        assert P.JITTER[kind] == amp


def test_group_joints_in_parser_order():
    assert [" ".join(g.joints) for g in P.GROUPS] == EXPECTED_JOINTS


def test_catalogue_consistency():
    assert [g.index for g in P.GROUPS] == list(range(70))
    assert [c.index for c in P.CODES] == list(range(392))
    assert P.GROUP_START.shape == (71,) and P.GROUP_START[-1] == 392
    assert P.CODE_GROUP.shape == (392,)
    for g in P.GROUPS:
        assert P.GROUP_START[g.index] == g.first_code
        assert list(g.code_ids) == list(range(g.first_code, g.first_code + g.n_codes))
        assert len(g.code_names) == g.n_codes
        for cat, cid in enumerate(g.code_ids):
            c = P.CODES[cid]
            assert (c.group, c.category, c.name) == (g.index, cat, g.code_names[cat])
            assert c.body_part == g.body_part
            assert P.CODE_GROUP[cid] == g.index
            assert P.group_of(cid) is g
    assert np.all(np.diff(P.CODE_GROUP) >= 0)


def test_names_unique_and_non_empty():
    gnames = [g.name for g in P.GROUPS]
    cnames = [c.name for c in P.CODES]
    assert all(n.strip() for n in gnames + cnames)
    assert len(set(gnames)) == 70
    assert len({n.casefold() for n in cnames}) == 392


def test_body_parts_from_fixed_set():
    assert {g.body_part for g in P.GROUPS} == set(P.BODY_PARTS)
    assert group("left knee angle").body_part == "left leg"
    assert group("right elbow angle").body_part == "right arm"
    assert group("left hand – right hand distance").body_part == "arms"
    assert group("torso direction").body_part == "torso"
    assert group("right hand – left foot distance").body_part == "arms & legs"


def test_example_names():
    for name in ["left knee bent 80–90°", "left knee straight (>170°)",
                 "hands very close (≤0.1 m)", "left hand at the right of right hand",
                 "right hand above right shoulder", "left calf vertical",
                 "left foot on the ground", "left knee not on the ground"]:
        assert P.code_by_name(name).name == name
    for name in ["left knee angle", "left hand – right hand distance",
                 "left hand vs right hand (left/right)", "left thigh direction",
                 "left foot on ground"]:
        assert group(name)


def test_lookup_helpers():
    c = P.code_by_name("LEFT KNEE BENT 80–90°")
    assert (c.group, c.category, c.index) == (0, 8, 8)
    with pytest.raises(KeyError):
        P.code_by_name("left knee wobbly")
    with pytest.raises(IndexError):
        P.group_of(392)
    hits = P.find_codes("Hands very")
    assert {c.name for c in hits} == {"hands very close (≤0.1 m)", "hands very wide (>0.9 m)"}
    assert len(P.find_codes("left knee angle")) == 18    # matches group names too
    assert P.find_codes("no such thing") == ()


def test_distance_words_follow_editing_table():
    words = ["very close", "slightly close", "close", "almost shoulder width apart",
             "shoulder width apart", "almost spread", "spread", "slightly wide", "wide", "very wide"]
    for name, w in zip(group("left knee – right knee distance").code_names, words):
        assert name.startswith(f"knees {w} (")


# --------------------------------------------------------------------------
# one code per group

poses = hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.just(22), st.just(3)),
                   elements=st.floats(-2, 2, allow_nan=False))


@settings(max_examples=60, deadline=None)
@given(poses, st.sampled_from(["heading", "como"]), st.booleans())
def test_one_code_per_group_random(j, frame, jitter):
    oh = P.parse(j, frame=frame, jitter=jitter, seed=0)
    assert oh.shape == (len(j), 392)
    assert_one_per_group(oh)
    ids = P.to_indices(oh)
    assert np.array_equal(P.CODE_GROUP[ids], np.broadcast_to(np.arange(70), ids.shape))
    assert np.array_equal(P.from_indices(ids), oh)


def test_one_code_per_group_constructed():
    base = standing()
    cases = [base, yaw(base, 73), left_knee_at(base, 90), hands_apart(base, 0.05),
             np.zeros((22, 3)), np.ones((22, 3))]     # collapsed poses hit the degenerate paths
    for p in cases:
        assert_one_per_group(P.parse(p))


def test_single_frame_and_empty_shapes():
    p = standing()
    assert P.parse(p).shape == (392,)
    assert P.measure(p).shape == (70,)
    assert np.array_equal(P.parse(p), P.parse(p[None])[0])
    assert P.parse(np.zeros((0, 22, 3))).shape == (0, 392)


# --------------------------------------------------------------------------
# hand-computed cases

def test_binning_rule_is_less_or_equal():
    v = np.zeros(70)
    v[0] = 90.0          # angle threshold 90 is index 8
    v[4] = 0.1           # distance threshold 0.1 is index 0
    v[22] = -0.15        # relX -0.15 -> at_right (0)
    v[23] = 0.15         # relX 0.15 -> ignored (1)
    v[24] = 0.1500001    # -> at_left (2)
    v[53] = 80.0         # relV 80 -> ignored (1)
    v[66] = 0.1          # ground 0.1 -> on ground (0)
    v[67] = 0.11         # -> not on ground (1)
    cat = P.bin_values(v)
    assert (cat[0], cat[4], cat[22], cat[23], cat[24], cat[53], cat[66], cat[67]) == \
        (8, 0, 0, 1, 2, 1, 0, 1)
    assert P.bin_values(np.full(70, 1e6))[0] == 17


def test_standing_pose():
    oh = P.parse(standing())
    assert active_name(oh, "left knee angle") == "left knee straight (>170°)"
    assert active_name(oh, "right knee angle") == "right knee straight (>170°)"
    assert active_name(oh, "left foot on ground") == "left foot on the ground"
    assert active_name(oh, "right foot on ground") == "right foot on the ground"
    assert active_name(oh, "left knee on ground") == "left knee not on the ground"
    assert active_name(oh, "left thigh direction") == "left thigh vertical"
    assert active_name(oh, "torso direction") == "torso vertical"


def test_knee_bent_to_90_degrees():
    p = standing()
    knee = p[J["left_knee"]]
    p = set_joint(p, "left_hip", knee + (0, 0.4, 0))
    p = set_joint(p, "left_ankle", knee + (0, 0, 0.4))
    assert P.measure(p)[0] == pytest.approx(90.0, abs=1e-9)
    assert active(P.parse(p), P.GROUPS[0]) == 8                  # 90 <= 90
    assert active_name(P.parse(left_knee_at(standing(), 85)), "left knee angle") == \
        "left knee bent 80–90°"
    assert active_name(P.parse(left_knee_at(standing(), 95)), "left knee angle") == \
        "left knee bent 90–100°"


def test_hands_very_close():
    p = hands_apart(standing(), 0.05)
    assert P.measure(p)[5] == pytest.approx(0.05)
    assert active_name(P.parse(p), "left hand – right hand distance") == "hands very close (≤0.1 m)"
    p = hands_apart(standing(), 0.45)
    assert active_name(P.parse(p), "left hand – right hand distance") == \
        "hands shoulder width apart (0.4–0.5 m)"


def test_virtual_joints_by_hand():
    # hand = wrist + 0.1367/2 m along the forearm; torso = mean(pelvis, neck, spine3)
    p = hands_apart(standing(), 0.1)         # forearms point +Z, wrists at z = 0.35
    torso_z = (p[J["pelvis"], 2] + p[J["neck"], 2] + p[J["spine3"], 2]) / 3
    assert P.measure(p)[49] == pytest.approx(0.35 + 0.1367 / 2 - torso_z, abs=1e-12)
    # the offset does not scale with the forearm: a 1 mm forearm gives the same reach
    p = set_joint(p, "left_wrist", (0.05, 1.1, 0.101))
    hand = np.array([0.05, 1.1, 0.101 + 0.1367 / 2])
    assert P.measure(p)[12] == pytest.approx(np.linalg.norm(hand - p[J["right_elbow"]]))


def test_right_hand_above_head():
    p = standing()
    p = set_joint(p, "right_elbow", (-0.2, 1.7, 0))
    p = set_joint(p, "right_wrist", (-0.2, 1.95, 0))
    oh = P.parse(p)
    assert active_name(oh, "right hand vs right shoulder (above/below)") == \
        "right hand above right shoulder"
    assert active_name(oh, "right wrist vs neck (above/below)") == "right wrist above neck"
    assert active_name(oh, "left hand vs left shoulder (above/below)") == \
        "left hand below left shoulder"
    assert active_name(oh, "right upper arm direction") == "right upper arm vertical"


def test_raised_knee_thigh_horizontal():
    p = standing()
    p = set_joint(p, "left_knee", (0.09, 0.88, 0.45))
    p = set_joint(p, "left_ankle", (0.09, 0.45, 0.45))
    p = set_joint(p, "left_foot", (0.09, 0.40, 0.55))
    oh = P.parse(p)
    assert active_name(oh, "left thigh direction") == "left thigh horizontal"
    assert active_name(oh, "left calf direction") == "left calf vertical"
    assert active_name(oh, "left foot on ground") == "left foot not on the ground"
    assert active_name(oh, "right foot on ground") == "right foot on the ground"
    assert active_name(oh, "left knee vs right knee (above/below)") == "left knee above right knee"


def test_kneeling_knee_on_ground():
    p = standing()
    p = set_joint(p, "left_knee", (0.10, 0.06, 0.1))
    p = set_joint(p, "left_ankle", (0.10, 0.08, -0.3))
    p = set_joint(p, "left_foot", (0.10, 0.03, -0.35))
    oh = P.parse(p)
    assert active_name(oh, "left knee on ground") == "left knee on the ground"
    assert active_name(oh, "right knee on ground") == "right knee not on the ground"


# --------------------------------------------------------------------------
# left/right and front/behind in the heading frame

def test_heading_is_plus_z_for_canonical_body():
    assert np.allclose(P.heading(standing()), (0, 0, 1))
    # yaw by +90 turns +Z towards +X
    assert np.allclose(P.heading(yaw(standing(), 90)), (1, 0, 0))
    assert np.allclose(P.heading(yaw(standing(), 180)), (0, 0, -1))


def test_heading_undefined_frame_borrows_previous():
    b = standing()
    for n in ("left_hip", "left_shoulder"):
        b = set_joint(b, n, b[J["right" + n[4:]]])   # left on top of right: no across vector
    h = P.heading(np.stack([standing(), yaw(standing(), 90), b]))
    assert np.allclose(h, [(0, 0, 1), (1, 0, 0), (1, 0, 0)])
    # a leading undefined frame takes the first defined one
    h = P.heading(np.stack([b, yaw(standing(), -90), standing()]))
    assert np.allclose(h, [(-1, 0, 0), (-1, 0, 0), (0, 0, 1)])
    assert np.allclose(P.heading(b), (0, 0, 1))   # nothing to borrow: canonical


@pytest.mark.parametrize("turn", [0, 90, 180, -135])
def test_left_right_front_behind_anatomical(turn):
    base = standing()
    oh = P.parse(yaw(base, turn))
    assert active_name(oh, "left hand vs right hand (left/right)") == \
        "left hand at the left of right hand"

    # left hand crossed over to the character's right side, in front of the body
    p = set_joint(base, "left_elbow", (-0.1, 1.2, 0.3))
    p = set_joint(p, "left_wrist", (-0.4, 1.2, 0.4))
    oh = P.parse(yaw(p, turn))
    assert active_name(oh, "left hand vs right hand (left/right)") == \
        "left hand at the right of right hand"
    assert active_name(oh, "left hand vs left shoulder (left/right)") == \
        "left hand at the right of left shoulder"
    assert active_name(oh, "left hand vs torso (front/behind)") == "left hand in front of torso"
    assert active_name(oh, "right hand vs torso (front/behind)") == \
        "right hand and torso at similar front/back position"

    # right foot stepped back
    p = set_joint(base, "right_foot", (-0.1, 0.02, -0.5))
    oh = P.parse(yaw(p, turn))
    assert active_name(oh, "right foot vs torso (front/behind)") == "right foot behind torso"


def near_threshold(values: np.ndarray, tol: float) -> np.ndarray:
    near = np.zeros(values.shape, dtype=bool)
    for g in P.GROUPS:
        d = np.abs(values[..., g.index, None] - P.THRESHOLDS[g.kind])
        near[..., g.index] = (d < tol).any(axis=-1)
    return near


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, (3, 22, 3), elements=st.floats(-0.25, 0.25)),
       st.floats(-360, 360), st.floats(-20, 20), st.floats(-1, 1), st.floats(-20, 20))
def test_invariant_to_yaw_and_translation(noise, angle, tx, ty, tz):
    j = standing() + noise
    moved = yaw(j, angle) + (tx, ty, tz)
    a, b = P.measure(j), P.measure(moved)
    assert np.allclose(a, b, atol=1e-7)
    ok = ~near_threshold(a, 1e-6)
    assert np.array_equal(P.bin_values(a)[ok], P.bin_values(b)[ok])


# --------------------------------------------------------------------------
# CoMo frame

def test_como_frame_is_flipped_world():
    p = yaw(standing(), 37) + (1.0, 0.0, -2.0)
    v = P.measure(p, frame="como")
    neck, pelvis = p[J["neck"]], p[J["pelvis"]]
    assert v[23] == pytest.approx(-(neck[0] - pelvis[0]))     # relX neck vs pelvis
    assert v[48] == pytest.approx(-(neck[2] - pelvis[2]))     # relZ neck vs pelvis
    assert v[33] == pytest.approx(p[J["right_ankle"], 1] - neck[1])   # relY unchanged
    # only relX / relZ depend on the frame
    h = P.measure(p)
    same = np.array([g.kind not in ("relX", "relZ") for g in P.GROUPS])
    assert np.allclose(v[same], h[same])


def test_como_labels_follow_world_not_body():
    p = set_joint(standing(), "left_wrist", (0.6, 0.9, 0.3))    # left hand out to the left, forward
    oh = P.parse(p, frame="como")
    # facing +Z, CoMo's flip swaps the anatomical labels
    assert active_name(oh, "left hand vs right hand (left/right)") == \
        "left hand at the right of right hand"
    assert active_name(oh, "left hand vs torso (front/behind)") == "left hand behind torso"
    # they are anatomical only for a body facing -Z, where they equal the heading frame's codes
    turned = yaw(p, 180)
    assert np.array_equal(P.parse(turned, frame="como"), P.parse(p))
    assert not np.array_equal(P.parse(p, frame="como"), P.parse(p))


def test_como_differs_for_turned_body():
    p = yaw(standing(), 90)
    assert P.measure(p, frame="como")[24] != pytest.approx(P.measure(p)[24])


# --------------------------------------------------------------------------
# jitter

def repeat(p: np.ndarray, n: int = 200) -> np.ndarray:
    return np.repeat(p[None], n, axis=0)


def test_jitter_deterministic_per_seed():
    j = repeat(left_knee_at(standing(), 90), 64)
    a = P.parse(j, jitter=True, seed=7)
    assert np.array_equal(a, P.parse(j, jitter=True, seed=7))
    assert not np.array_equal(a, P.parse(j, jitter=True, seed=8))
    assert_one_per_group(a)
    # without jitter the seed is irrelevant and frames are identical
    b = P.parse(j, seed=1)
    assert np.array_equal(b, P.parse(j, seed=2))
    assert (b == b[0]).all()


def test_jitter_amplitudes():
    # angle: 94 deg can drop into 80-90 with +-5 deg, 96 deg never can
    cats = P.to_indices(P.parse(repeat(left_knee_at(standing(), 94)), jitter=True, seed=0))[:, 0]
    assert set(cats) == {8, 9}
    cats = P.to_indices(P.parse(repeat(left_knee_at(standing(), 96)), jitter=True, seed=0))[:, 0]
    assert set(cats) <= {9, 10} and 8 not in cats
    # distance: 0.14 m can become "very close" with +-0.05 m, 0.16 m never can
    cats = P.to_indices(P.parse(repeat(hands_apart(standing(), 0.14)), jitter=True, seed=0))[:, 5]
    assert set(cats) == {72 + 10, 72 + 11}
    cats = P.to_indices(P.parse(repeat(hands_apart(standing(), 0.16)), jitter=True, seed=0))[:, 5]
    assert 72 + 10 not in cats


# --------------------------------------------------------------------------
# conversions

def test_tokens_and_subsample():
    j = np.stack([yaw(left_knee_at(standing(), a), a) for a in range(30, 130, 10)])  # 10 frames
    oh = P.parse(j)
    sub = P.subsample(oh)
    assert sub.shape == (2, 392)
    assert np.array_equal(sub, oh[[0, 4]])
    assert P.subsample(oh, unit=1).shape == (10, 392)
    assert P.subsample(oh[:3]).shape == (0, 392)

    tok = P.to_tokens(sub)
    assert tok.shape == (3, 394) and tok.dtype == np.float32
    assert np.array_equal(tok[:2, :392], sub.astype(np.float32))
    assert tok[:2, 392:].sum() == 0
    assert tok[2].sum() == 1 and tok[2, P.END] == 1
    assert P.to_tokens(sub, end=False).shape == (2, 394)
    padded = P.to_tokens(sub, pad_to=5)
    assert padded.shape == (5, 394)
    assert (padded[3:, P.PAD] == 1).all() and padded[3:].sum() == 2
    assert padded[:3].sum() == 2 * 70 + 1


def test_index_round_trip_single_frame():
    oh = P.parse(standing())
    ids = P.to_indices(oh)
    assert ids.shape == (70,)
    assert np.array_equal(P.from_indices(ids), oh)
    assert [P.CODES[i].group for i in ids] == list(range(70))


def test_block_processing_matches_single_pass(monkeypatch):
    rng = np.random.default_rng(5)
    j = np.stack([yaw(standing() + rng.uniform(-0.2, 0.2, (22, 3)), a)
                  for a in np.linspace(0, 300, 10)])
    for n in ("left_hip", "left_shoulder"):   # frame 3 has no heading of its own
        j[3, J[n]] = j[3, J["right" + n[4:]]]
    whole = P.measure(j), P.parse(j), P.parse(j, jitter=True, seed=3)
    monkeypatch.setattr(P, "_BLOCK", 3)       # frame 3 starts a block
    assert np.allclose(P.measure(j), whole[0])
    assert np.array_equal(P.parse(j), whole[1])
    assert np.array_equal(P.parse(j, jitter=True, seed=3), whole[2])
    assert np.array_equal(P.from_indices(P.to_indices(whole[1])), whole[1])
    bad = whole[1].copy()
    bad[7, 0:18] = False
    with pytest.raises(ValueError, match="frame 7, group 0"):
        P.to_indices(bad)


# --------------------------------------------------------------------------
# input validation

@pytest.mark.parametrize("shape", [(22, 2), (5, 21, 3), (3,), (2, 2, 22, 3)])
def test_rejects_wrong_shape(shape):
    with pytest.raises(ValueError, match=r"\(T, 22, 3\)"):
        P.parse(np.zeros(shape))


def test_rejects_non_finite_and_names_frames():
    j = repeat(standing(), 10)
    j[3, 5, 1] = np.nan
    j[7, 0, 0] = np.inf
    with pytest.raises(ValueError, match=r"2 frame\(s\): 3, 7"):
        P.parse(j)
    with pytest.raises(ValueError, match="NaN"):
        P.measure(j)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="frame"):
        P.parse(standing(), frame="world")
    with pytest.raises(ValueError, match="numeric"):
        P.parse([["a"] * 3] * 22)
    oh = P.parse(standing())
    two = oh.copy()
    two[1] = True                                   # second active code in group 0
    with pytest.raises(ValueError, match="group 0"):
        P.to_indices(two)
    with pytest.raises(ValueError, match=r"\(T, 392\)"):
        P.to_indices(np.zeros((2, 391), bool))
    ids = P.to_indices(oh)
    bad = ids.copy()
    bad[1] = 0                                      # id of group 0 in group 1's column
    with pytest.raises(ValueError, match="group 1"):
        P.from_indices(bad)
    with pytest.raises(ValueError, match="integers"):
        P.from_indices(ids.astype(float))
    with pytest.raises(ValueError, match="pad_to"):
        P.to_tokens(oh, pad_to=1)
    with pytest.raises(ValueError, match="70 groups"):
        P.bin_values(np.zeros(69))


# --------------------------------------------------------------------------
# generated documentation

def test_docs_catalogue_up_to_date():
    doc = (REPO / "docs" / "posecodes.md").read_text(encoding="utf-8")
    assert doc == P.catalogue_markdown(), \
        "docs/posecodes.md is stale: python -m core.posecodes > docs/posecodes.md"


def test_catalogue_markdown_lists_everything():
    md = P.catalogue_markdown()
    assert all(f"| {c.index} | {c.group} | {c.category} | {c.name} |" in md for c in P.CODES)
    assert all(f"| {g.index} | {g.kind} | {g.name} |" in md for g in P.GROUPS)
