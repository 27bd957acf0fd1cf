"""BVH reader/writer and forward kinematics."""

from __future__ import annotations

import os
import stat
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from core.formats import bvh as B
from core.formats.bvh import Bvh, BvhError, BvhJoint

FIXTURES = Path(__file__).resolve().parent / "data" / "bvh"
BN_FILES = sorted(FIXTURES.glob("*.bvh"))
BN_NAMES = [
    "joint_Root", "Hips", "Spine", "Chest", "Neck", "Head",
    "Shoulder_L", "UpperArm_L", "LowerArm_L", "Hand_L",
    "Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R",
    "UpperLeg_L", "LowerLeg_L", "Foot_L", "Toes_L",
    "UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R",
]

# Line numbers matter: the malformed cases below edit this text by line.
MIXED = """\
HIERARCHY
ROOT Hips
{
\tOFFSET 0 0 0
\tCHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
\tJOINT Spine
\t{
\t\tOFFSET 0 10 0
\t\tCHANNELS 3 Xrotation Yrotation Zrotation
\t\tJOINT Head
\t\t{
\t\t\tOFFSET 0 12 0
\t\t\tCHANNELS 3 Yrotation Xrotation Zrotation
\t\t\tEnd Site
\t\t\t{
\t\t\t\tOFFSET 0 8 0
\t\t\t}
\t\t}
\t}
\tJOINT Marker
\t{
\t\tOFFSET 5 0 0
\t\tCHANNELS 0
\t\tEnd Site
\t\t{
\t\t\tOFFSET 1 0 0
\t\t}
\t}
}
MOTION
Frames: 3
Frame Time: 0.041666666666666664
1 2 3 10 20 30 0 0 0 5 -5 0.25
1.5 2 3 11 21 31 1 2 3 -0 1e-07 0
2 2.5 3 12 22 32 4 5 6 7 8 9
"""
MIXED_FIRST_MOTION_LINE = 33


def lines_of(text: str) -> list[str]:
    return text.split("\n")


def edit(text: str, lineno: int, new: str | None) -> str:
    """Replace (or with None, delete) 1-based line ``lineno``."""
    lines = lines_of(text)
    if new is None:
        del lines[lineno - 1]
    else:
        lines[lineno - 1] = new
    return "\n".join(lines)


def bits(a) -> bytes:
    return np.asarray(a, dtype=np.float64).tobytes()


# parsing

@pytest.mark.parametrize("path", BN_FILES, ids=lambda p: p.name)
def test_bandai_namco_fixture_structure(path):
    b = B.read(path)
    assert b.names == BN_NAMES
    assert b.n_frames == 60
    assert b.frame_time == 0.0333333
    assert b.fps == pytest.approx(30.0, abs=1e-3)
    assert b.motion.shape == (60, 22 * 6) and b.motion.dtype == np.float64
    assert all(j.channels == ["Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation"]
               for j in b.joints)
    parents = dict(zip(b.names, b.parents.tolist()))
    assert parents["joint_Root"] == -1
    assert b.names[parents["Hips"]] == "joint_Root"
    assert b.names[parents["Shoulder_L"]] == "Chest"
    assert b.names[parents["UpperLeg_R"]] == "Hips"
    assert b.names[parents["Toes_L"]] == "Foot_L"
    with_end = {j.name for j in b.joints if j.end_site is not None}
    assert with_end == {"Head", "Hand_L", "Hand_R", "Toes_L", "Toes_R"}
    assert b.joints[b.joint_index("Hips")].offset.tolist() == [0.0, 93.9241, -3.0]


@pytest.mark.parametrize("path", BN_FILES, ids=lambda p: p.name)
def test_motion_values_match_python_float_exactly(path):
    """The vectorised reader must give the same bits as float() on every token."""
    text = path.read_text()
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Frame Time")) + 1
    expected = np.array([[float(w) for w in line.split()] for line in lines[start:] if line.strip()])
    assert bits(B.parse(text).motion) == bits(expected)


def test_mixed_orders_zero_channels_and_end_sites():
    b = B.parse(MIXED)
    assert b.names == ["Hips", "Spine", "Head", "Marker"]
    assert b.parents.tolist() == [-1, 0, 1, 0]
    assert [len(j.channels) for j in b.joints] == [6, 3, 3, 0]
    assert b.joints[2].channels == ["Yrotation", "Xrotation", "Zrotation"]
    assert b.joints[2].end_site.tolist() == [0, 8, 0]
    assert b.joints[3].end_site.tolist() == [1, 0, 0]
    assert b.joints[1].end_site is None
    assert b.channel_slices == [slice(0, 6), slice(6, 9), slice(9, 12), slice(12, 12)]
    assert b.n_frames == 3 and b.fps == pytest.approx(24.0)
    assert b.motion[1].tolist() == [1.5, 2, 3, 11, 21, 31, 1, 2, 3, -0.0, 1e-07, 0]
    assert np.signbit(b.motion[1, 9])


def test_layout_variants_parse_the_same():
    b = B.parse(MIXED)
    crlf = MIXED.replace("\n", "\r\n")
    spaces = MIXED.replace("\t", "  ")
    # brace on the keyword line, and blank lines anywhere
    inline = MIXED.replace("ROOT Hips\n{", "ROOT Hips {").replace("JOINT Spine\n\t{", "JOINT Spine {")
    blanks = MIXED.replace("MOTION\n", "\nMOTION\n\n").replace("\n2 2.5", "\n\n2 2.5")
    lower = MIXED.replace("Xrotation Yrotation Zrotation", "XROTATION yrotation ZRotation")
    for text in (crlf, spaces, inline, blanks, lower):
        assert B.parse(text) == b


def test_joint_with_zero_channels_only_and_zero_frames():
    text = "HIERARCHY\nROOT A\n{\n OFFSET 1 2 3\n CHANNELS 0\n}\nMOTION\nFrames: 2\nFrame Time: 0.5\n\n\n"
    b = B.parse(text)
    assert b.motion.shape == (2, 0)
    assert B.parse(B.dumps(b)) == b
    pos, rot = B.forward_kinematics(b)
    assert pos.shape == (2, 1, 3) and pos[1, 0].tolist() == [1, 2, 3]
    empty = B.parse(edit(MIXED, 31, "Frames: 0").split("1 2 3 10")[0])
    assert empty.motion.shape == (0, 12)
    assert B.parse(B.dumps(empty)) == empty


def test_bvh_helpers():
    b = B.parse(MIXED)
    assert b.joint_index("Head") == 2
    with pytest.raises(KeyError, match="Nope"):
        b.joint_index("Nope")
    c = b.copy()
    c.motion[0, 0] = 99.0
    c.joints[0].offset[0] = 7.0
    c.joints[0].channels.append("bogus")
    assert b.motion[0, 0] == 1.0 and b.joints[0].offset[0] == 0.0 and len(b.joints[0].channels) == 6
    assert b.n_channels == 12


# malformed input: (text, line, words the message must contain)

def _truncated_motion() -> str:
    return MIXED.rstrip("\n").rsplit("\n", 1)[0] + "\n"  # drop the last frame


MALFORMED = {
    "empty": ("", 1, "empty file"),
    "blank": ("\n  \n\t\n", 1, "empty file"),
    "no hierarchy keyword": (edit(MIXED, 1, "HIERACHY"), 1, "expected 'HIERARCHY'"),
    "no root": (edit(MIXED, 2, "JOINT Hips"), 2, "expected 'ROOT'"),
    "missing brace after joint": (edit(MIXED, 7, ""), 8, "expected '{' after JOINT Spine"),
    "missing closing brace": (edit(MIXED, 29, ""), 28, "'}' to close joint Hips"),
    "truncated in hierarchy": ("\n".join(lines_of(MIXED)[:12]), 12, "unexpected end of hierarchy"),
    "truncated before frames": ("\n".join(lines_of(MIXED)[:30]), 30, "expected 'Frames"),
    "missing MOTION": ("\n".join(lines_of(MIXED)[:29]), 29, "missing MOTION"),
    "unknown channel": (edit(MIXED, 9, "\t\tCHANNELS 3 Xrotation Wrotation Zrotation"), 9,
                        "unknown channel name 'Wrotation'"),
    "channel count too high": (edit(MIXED, 9, "\t\tCHANNELS 4 Xrotation Yrotation Zrotation"), 9,
                               "CHANNELS says 4 but lists 3"),
    "channel count too low": (edit(MIXED, 13, "\t\t\tCHANNELS 2 Yrotation Xrotation Zrotation"), 13,
                              "CHANNELS says 2 but lists 3"),
    "channel count not a number": (edit(MIXED, 9, "\t\tCHANNELS three Xrotation"), 9, "not an integer"),
    "duplicate channel": (edit(MIXED, 9, "\t\tCHANNELS 3 Xrotation Yrotation Xrotation"), 9, "listed twice"),
    "offset too short": (edit(MIXED, 12, "\t\t\tOFFSET 0 12"), 12, "OFFSET needs 3 numbers, found 2"),
    "offset not a number": (edit(MIXED, 8, "\t\tOFFSET 0 ten 0"), 8, "'ten' is not a number"),
    "offset nan": (edit(MIXED, 16, "\t\t\t\tOFFSET 0 nan 0"), 16, "non-finite"),
    "bad token in joint": (edit(MIXED, 9, "\t\tCHANNEL 3 Xrotation Yrotation Zrotation"), 9,
                           "unexpected 'CHANNEL'"),
    "duplicate joint name": (edit(MIXED, 20, "\tJOINT Spine"), 20,
                             "duplicate joint name 'Spine' (first defined on line 6)"),
    "two roots": (MIXED.replace("MOTION\n", "ROOT Other\n{\n\tOFFSET 0 0 0\n}\nMOTION\n"), 30,
                  "more than one ROOT"),
    "frames not a number": (edit(MIXED, 31, "Frames: many"), 31, "not an integer"),
    "frames negative": (edit(MIXED, 31, "Frames: -1"), 31, "negative frame count"),
    "frame time missing": (edit(MIXED, 32, "Frames per second: 24"), 32, "expected 'Frame Time"),
    "frame time zero": (edit(MIXED, 32, "Frame Time: 0"), 32, "positive"),
    "frame time negative": (edit(MIXED, 32, "Frame Time: -0.01"), 32, "positive"),
    "frame time nan": (edit(MIXED, 32, "Frame Time: nan"), 32, "positive"),
    "frame time text": (edit(MIXED, 32, "Frame Time: soon"), 32, "not a number"),
    "too few numbers": (edit(MIXED, 34, "1.5 2 3 11 21 31 1 2 3 -0 1e-07"), 34,
                        "frame 2 has too few numbers: 11, expected 12"),
    "too many numbers": (edit(MIXED, 35, "2 2.5 3 12 22 32 4 5 6 7 8 9 10"), 35,
                         "frame 3 has too many numbers: 13, expected 12"),
    "not a number": (edit(MIXED, 34, "1.5 2 3 11 21 31 1 2 x3 -0 1e-07 0"), 34,
                     "frame 2: 'x3' is not a number"),
    "nan value": (edit(MIXED, 33, "1 2 3 10 20 30 0 0 0 5 nan 0.25"), 33, "frame 1: non-finite value 'nan'"),
    "inf value": (edit(MIXED, 35, "2 2.5 3 12 22 32 4 5 6 7 -inf 9"), 35, "frame 3: non-finite value '-inf'"),
    "truncated motion": (_truncated_motion(), 31, "'Frames: 3' but only 2 frames found"),
    "truncated mid line": (MIXED.rstrip("\n")[:-6], 35, "frame 3 has too few numbers: 9,"),
    "more lines than frames": (edit(MIXED, 31, "Frames: 2"), 35, "more motion lines than 'Frames: 2'"),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_malformed_input_names_file_and_line(case):
    text, line, words = MALFORMED[case]
    with pytest.raises(BvhError) as info:
        B.parse(text, source="walk.bvh")
    err = info.value
    assert err.path == "walk.bvh"
    assert err.line == line, str(err)
    assert str(err).startswith(f"walk.bvh, line {line}: "), str(err)
    assert words in str(err)


def test_read_names_the_file(tmp_path):
    path = tmp_path / "walk.bvh"
    path.write_text(edit(MIXED, 7, "\t\tOFFSET 0 10 0"))
    with pytest.raises(BvhError) as info:
        B.read(path)
    assert str(info.value) == f"{path}, line 7: expected '{{' after JOINT Spine"
    path.write_bytes(MIXED.encode().replace(b"Marker", b"Mark\xffer"))
    with pytest.raises(BvhError, match="line 20: not UTF-8"):
        B.read(path)


def test_bvh_error_pickles():
    import pickle

    err = pickle.loads(pickle.dumps(BvhError("boom", "a.bvh", 3)))
    assert (err.path, err.line, str(err)) == ("a.bvh", 3, "a.bvh, line 3: boom")


_FUZZ_LINES = lines_of(MIXED)


@settings(max_examples=150, deadline=None)
@given(op=st.sampled_from(["delete", "duplicate", "truncate", "replace", "insert"]),
       lineno=st.integers(1, len(_FUZZ_LINES)),
       cut=st.integers(0, 80),
       junk=st.text(alphabet="{} \t0123456789.-eEnaifJOINTEndSiteROOTCHANNELSXrotationposition:",
                    max_size=12))
def test_corrupted_files_only_raise_bvh_error(op, lineno, cut, junk):
    lines = list(_FUZZ_LINES)
    i = lineno - 1
    if op == "delete":
        del lines[i]
    elif op == "duplicate":
        lines.insert(i, lines[i])
    elif op == "truncate":
        lines = lines[:i] + [lines[i][:cut]]
    elif op == "replace":
        lines[i] = junk
    else:
        lines.insert(i, junk)
    text = "\n".join(lines)
    try:
        B.parse(text, "fuzz.bvh")
    except BvhError as err:
        assert 1 <= err.line <= max(len(text.splitlines()), 1)
        assert str(err).startswith(f"fuzz.bvh, line {err.line}: ")


# writing and round trips

def test_round_trip_mixed_at_several_frame_rates():
    for fps in (24, 60, 120):
        b = B.parse(MIXED.replace("0.041666666666666664", repr(1 / fps)))
        assert b.fps == pytest.approx(fps)
        for indent in ("\t", "  "):
            text = B.dumps(b, indent=indent)
            again = B.parse(text)
            assert again == b
            assert bits(again.frame_time) == bits(1 / fps)
            assert B.dumps(again, indent=indent) == text


@pytest.mark.parametrize("path", BN_FILES, ids=lambda p: p.name)
def test_round_trip_fixture_bit_for_bit(path):
    b = B.read(path)
    again = B.parse(B.dumps(b))
    assert again == b
    assert bits(again.motion) == bits(b.motion)
    for x, y in zip(again.joints, b.joints):
        assert (x.name, x.parent, x.channels) == (y.name, y.parent, y.channels)
        assert bits(x.offset) == bits(y.offset)
        assert (x.end_site is None) == (y.end_site is None)
        if x.end_site is not None:
            assert bits(x.end_site) == bits(y.end_site)


def test_equality_is_bitwise():
    b = B.parse(MIXED)
    c = b.copy()
    assert c == b
    c.motion[1, 9] = 0.0  # was -0.0
    assert c != b
    c = b.copy()
    c.joints[1].end_site = np.zeros(3)
    assert c != b


_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_:.\-]{0,8}", fullmatch=True)
_finite = st.floats(allow_nan=False, allow_infinity=False)  # includes -0.0, subnormals, 1e308
_vec3 = hnp.arrays(np.float64, 3, elements=_finite)


@st.composite
def random_bvh(draw):
    n = draw(st.integers(1, 10))
    names = draw(st.lists(_names, min_size=n, max_size=n, unique=True))
    joints = []
    path: list[int] = []  # from the root to the previous joint
    for i in range(n):
        if i == 0:
            parent = -1
        else:
            depth = draw(st.integers(0, len(path) - 1))
            path = path[: depth + 1]
            parent = path[-1]
        path.append(i)
        order = draw(st.permutations(B.CHANNEL_NAMES))
        k = draw(st.integers(0, 6))
        end = draw(st.none() | _vec3)
        joints.append(BvhJoint(names[i], parent, draw(_vec3), list(order[:k]), end))
    n_ch = sum(len(j.channels) for j in joints)
    frames = draw(st.integers(0, 4))
    motion = draw(hnp.arrays(np.float64, (frames, n_ch), elements=_finite))
    frame_time = draw(st.floats(min_value=1e-9, max_value=1e3))
    return Bvh(joints, frame_time, motion)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(b=random_bvh(), indent=st.sampled_from(["\t", "  "]))
def test_round_trip_random_hierarchies(b, indent):
    text = B.dumps(b, indent=indent)
    again = B.parse(text)
    assert again == b
    assert bits(again.motion) == bits(b.motion)
    assert bits(again.frame_time) == bits(b.frame_time)


def test_dumps_rejects_what_it_cannot_write():
    good = B.parse(MIXED)
    bad = good.copy()
    bad.motion[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        B.dumps(bad)
    bad = good.copy()
    bad.motion = bad.motion[:, :-1]
    with pytest.raises(ValueError, match="shape"):
        B.dumps(bad)
    bad = good.copy()
    bad.joints[3].name = "Spine"
    with pytest.raises(ValueError, match="duplicate"):
        B.dumps(bad)
    # joints must be listed depth-first: C (child of A) may not follow B, A's sibling
    def rig(parents):
        return Bvh([BvhJoint(n, p, np.zeros(3), []) for n, p in zip("RABC", parents)], 0.1, np.zeros((1, 0)))
    B.dumps(rig([-1, 0, 1, 0]))
    with pytest.raises(ValueError, match="depth-first"):
        B.dumps(rig([-1, 0, 0, 1]))
    with pytest.raises(ValueError, match="depth-first"):
        B.dumps(rig([-1, 0, -1, 2]))
    bad = good.copy()
    bad.frame_time = 0.0
    with pytest.raises(ValueError, match="frame time"):
        B.dumps(bad)
    bad = good.copy()
    bad.joints[1].name = "two words  apart"
    with pytest.raises(ValueError, match="cannot be written"):
        B.dumps(bad)


def test_write_is_atomic_and_round_trips(tmp_path):
    b = B.read(BN_FILES[0])
    path = tmp_path / "out.bvh"
    B.write(path, b)
    assert B.read(path) == b
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    os.chmod(path, 0o600)
    B.write(path, b)  # overwrite keeps the file's permissions
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()
    bad = b.copy()
    bad.motion[3, 3] = np.inf
    with pytest.raises(ValueError):
        B.write(path, bad)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bvh"]  # no temp files left


def test_writer_and_reader_are_fast():
    b = B.read(BN_FILES[0])
    rng = np.random.default_rng(0)
    # 3,000 frames, 22 joints x 6 channels, six significant digits like the corpus
    motion = np.array([float(f"{v:.6g}") for v in rng.normal(0, 60, 3000 * 132)]).reshape(3000, 132)
    big = Bvh(b.joints, b.frame_time, motion)
    t0 = time.perf_counter()
    text = B.dumps(big)
    t_write = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = B.parse(text)
    t_read = time.perf_counter() - t0
    assert again == big
    assert t_write < 1.0, f"dumps took {t_write:.2f} s"
    assert t_read < 1.0, f"parse took {t_read:.2f} s"


# forward kinematics

def test_fk_two_joint_chain_by_hand():
    text = """HIERARCHY
ROOT A
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT B
  {
    OFFSET 1 0 0
    CHANNELS 0
    End Site
    {
      OFFSET 0 2 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.1
1 2 3 90 0 0
0 0 0 0 0 0
"""
    b = B.parse(text)
    pos, rot = B.forward_kinematics(b)
    np.testing.assert_allclose(pos[0], [[1, 2, 3], [1, 3, 3]], atol=1e-12)  # Rz(90) x -> y
    np.testing.assert_allclose(rot[0, 1], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(pos[1], [[0, 0, 0], [1, 0, 0]], atol=1e-12)
    ends = B.end_site_positions(b, pos, rot)
    np.testing.assert_allclose(ends[0, 1], [-1, 3, 3], atol=1e-12)  # Rz(90) (0,2,0) = (-2,0,0)
    assert np.isnan(ends[:, 0]).all()


def test_fk_rotation_order_follows_channel_order():
    def child_position(channels: str) -> np.ndarray:
        text = f"""HIERARCHY
ROOT A
{{
  OFFSET 0 0 0
  CHANNELS 2 {channels}
  JOINT B
  {{
    OFFSET 0 1 0
    CHANNELS 0
  }}
}}
MOTION
Frames: 1
Frame Time: 0.1
90 90
"""
        return B.forward_kinematics(B.parse(text))[0][0, 1]

    # Rz Rx (0,1,0): Rx turns y to z, Rz leaves z alone
    np.testing.assert_allclose(child_position("Zrotation Xrotation"), [0, 0, 1], atol=1e-12)
    # Rx Rz (0,1,0): Rz turns y to -x, Rx leaves x alone
    np.testing.assert_allclose(child_position("Xrotation Zrotation"), [-1, 0, 0], atol=1e-12)


def test_fk_position_channels_replace_the_offset():
    text = """HIERARCHY
ROOT A
{
  OFFSET 100 100 100
  CHANNELS 1 Yposition
  JOINT B
  {
    OFFSET 1 2 3
    CHANNELS 2 Zposition Xrotation
  }
}
MOTION
Frames: 1
Frame Time: 0.1
5 7 90
"""
    pos, _ = B.forward_kinematics(B.parse(text))
    # root: x, z from the offset, y from the channel; B: (1, 2, 7) in A's frame
    np.testing.assert_allclose(pos[0], [[100, 5, 100], [101, 7, 107]], atol=1e-12)


def test_fk_frame_selection_and_mixed_orders():
    b = B.parse(MIXED)
    pos, rot = B.forward_kinematics(b)
    assert pos.shape == (3, 4, 3) and rot.shape == (3, 4, 3, 3)
    p1, r1 = B.forward_kinematics(b, frames=[2, 0])
    assert bits(p1) == bits(pos[[2, 0]]) and bits(r1) == bits(rot[[2, 0]])
    p2, _ = B.forward_kinematics(b, frames=1)
    assert bits(p2) == bits(pos[1:2])
    p3, _ = B.forward_kinematics(b, frames=slice(1, None))
    assert bits(p3) == bits(pos[1:])
    # rotations stay orthonormal through the chain
    eye = np.broadcast_to(np.eye(3), rot.shape)
    np.testing.assert_allclose(rot @ np.swapaxes(rot, -1, -2), eye, atol=1e-12)
    # Marker has no channels: rigidly attached to the hips
    np.testing.assert_allclose(pos[:, 3], pos[:, 0] + rot[:, 0] @ np.array([5.0, 0, 0]), atol=1e-12)


def test_fk_bone_lengths_are_constant_on_real_data():
    b = B.read(BN_FILES[0])
    pos, _ = B.forward_kinematics(b)
    for child, parent in (("LowerLeg_L", "UpperLeg_L"), ("Hand_R", "LowerArm_R"), ("Head", "Neck")):
        length = np.linalg.norm(pos[:, b.joint_index(child)] - pos[:, b.joint_index(parent)], axis=-1)
        assert np.ptp(length) < 1e-6
        # position channels hold the offset's values in these files
        np.testing.assert_allclose(length, np.linalg.norm(b.joints[b.joint_index(child)].offset), rtol=1e-5)


# cross-check with the independent bvhio package (float32 maths inside, hence 1e-4)

def _bvhio_world(path: Path, frames: list[int]):
    bvhio = pytest.importorskip("bvhio")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root = bvhio.readAsHierarchy(str(path))
        layout = [j for j, _, _ in root.layout()]
        names = [j.Name for j in layout]
        parents = [names.index(j.Parent.Name) if j.Parent is not None else -1 for j in layout]
        out = []
        for f in frames:
            root.loadPose(f)
            out.append([list(j.PositionWorld) for j in layout])
    return names, parents, np.array(out, dtype=np.float64)


def _compare_with_bvhio(path: Path, b: Bvh):
    frames = [0, b.n_frames // 2, b.n_frames - 1]
    names, parents, world = _bvhio_world(path, frames)
    assert names == b.names
    assert parents == b.parents.tolist()
    pos, _ = B.forward_kinematics(b, frames=frames)
    np.testing.assert_allclose(world, pos, rtol=0, atol=1e-4)


def test_bvhio_agrees_on_fixture():
    _compare_with_bvhio(BN_FILES[-1], B.read(BN_FILES[-1]))


def test_bvhio_agrees_on_our_output(tmp_path):
    # mixed orders (bvhio cannot evaluate a joint without rotation channels, so drop Marker)
    src = B.parse(MIXED)
    b = Bvh(src.joints[:3], src.frame_time, src.motion[:, :12])
    path = tmp_path / "ours.bvh"
    B.write(path, b)
    _compare_with_bvhio(path, b)
    # and a real clip rewritten by our writer
    path2 = tmp_path / "walk.bvh"
    B.write(path2, B.read(BN_FILES[0]))
    _compare_with_bvhio(path2, B.read(BN_FILES[0]))
