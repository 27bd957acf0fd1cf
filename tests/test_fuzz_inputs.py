"""Property-based fuzzing of the file readers: BVH, .pgr2m projects and HumanML3D caption lines.

The property everywhere: whatever the input, the reader either returns a valid result or
raises its own error type (a ValueError subclass) with a message that says where and what;
never an IndexError, KeyError, UnicodeError, OverflowError, RecursionError, numpy error, ...
Valid input (made by our writers, then re-laid-out) must parse back to the same thing.
"""

from __future__ import annotations

import io
import json
import math
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from test_bvh import MIXED, random_bvh
from test_document import fake_motion
from test_project import same_motion

from core import posecodes as pc
from core.data.captions import MAX_SECONDS, Caption, CaptionError, parse_caption_line, read_captions
from core.data.humanml3d import DatasetError, HumanML3DFolder
from core.document import Document
from core.formats import bvh as B
from core.formats.bvh import BvhError
from core.project import ProjectError, load_project, save_project

SLOW_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large,
           HealthCheck.filter_too_much, HealthCheck.large_base_example]


def fuzz(n):
    return settings(max_examples=n, deadline=None, suppress_health_check=SLOW_OK)


# anything a str can hold, lone surrogates and control characters included
ANY_CHAR = st.characters(exclude_categories=())
NASTY = ["", " ", "\t", "\x00", "\ufeff", "\u2028", "\x85", "\x1c", "\x0b", "\r", "\ud800", "\udfff",
         "😀", "一", "ش", "ह", "\u0301", "ſ", "ı", "İ", "K"]       # ſ ı K: case mapping tricks


# --------------------------------------------------------------------------
# BVH

def check_bvh_error(err: BvhError, text: str, source: str) -> None:
    assert isinstance(err, ValueError)
    assert err.message and err.path == source
    assert str(err).startswith(source + (f", line {err.line}: " if err.line is not None else ": "))
    if err.line is not None:
        assert 1 <= err.line <= max(len(text.splitlines()), 1), str(err)


def parse_or_error(text: str, source: str = "fuzz.bvh"):
    try:
        b = B.parse(text, source)
    except BvhError as err:
        check_bvh_error(err, text, source)
        return None
    # what parses is internally consistent
    assert b.joints and b.joints[0].parent == -1
    assert b.motion.shape == (b.n_frames, b.n_channels) and np.isfinite(b.motion).all()
    assert math.isfinite(b.frame_time) and b.frame_time > 0 and math.isfinite(b.fps)
    return b


@fuzz(500)
@given(text=st.text(alphabet=ANY_CHAR, max_size=400))
def test_bvh_any_text(text):
    parse_or_error(text)


BVH_TOKENS = ["HIERARCHY", "ROOT", "JOINT", "End", "Site", "OFFSET", "CHANNELS", "MOTION", "Frames:",
              "Frame", "Time:", "{", "}", "Hips", "j1", "Xposition", "yrotation", "ZROTATION", "Wrotation",
              "0", "1", "3", "6", "-1", "0.5", "-0", "1e-7", "nan", "inf", "-inf", "1e999", "5e-324", "0x10",
              "1_0", "١٢", "9" * 60, "+.5", "∞", "\x00", "\ufeff", "😀", "\ud800"]


@fuzz(700)
@given(parts=st.lists(st.one_of(st.sampled_from(BVH_TOKENS), st.sampled_from(["\n", "\n", "\r\n", " ", "\t"]),
                                st.text(alphabet=ANY_CHAR, max_size=3)), max_size=120))
def test_bvh_token_soup(parts):
    # words the grammar knows, in random order: reaches much deeper than random characters
    text = " ".join(parts)
    parse_or_error("HIERARCHY\nROOT r\n{\n" + text)
    parse_or_error(text)


WEIRD_WORDS = BVH_TOKENS + ["", "Frames: 1", "Frames: " + "9" * 30, "Frame Time: 0", "CHANNELS 0",
                            "CHANNELS 7 Xposition Yposition Zposition Xrotation Yrotation Zrotation Xrotation",
                            "OFFSET 0 0", "End Site {", "}}", "{ {", "ROOT x {", "MOTION extra"]


@st.composite
def mutated_bvh(draw):
    lines = B.dumps(draw(random_bvh())).split("\n") if draw(st.booleans()) else MIXED.split("\n")
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "truncate", "replace_word", "insert",
                                   "frames", "frame_time", "cut_file"]))
        if op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "truncate":
            lines[i] = lines[i][:draw(st.integers(0, max(len(lines[i]), 0)))]
        elif op == "replace_word":
            words = lines[i].split() or [""]
            k = draw(st.integers(0, len(words) - 1))
            words[k] = draw(st.sampled_from(WEIRD_WORDS) | st.text(ANY_CHAR, max_size=4))
            lines[i] = " ".join(words)
        elif op == "insert":
            lines.insert(i, draw(st.sampled_from(WEIRD_WORDS)))
        elif op == "frames":
            k = next((n for n, line in enumerate(lines) if line.startswith("Frames:")), i)
            lines[k] = "Frames: " + draw(st.sampled_from(["-1", "0", "2", "10000001", "9" * 40, "1e3", "x", "", "٣"])
                                         | st.integers(-5, 10**12).map(str))
        elif op == "frame_time":
            k = next((n for n, line in enumerate(lines) if line.startswith("Frame Time:")), i)
            lines[k] = "Frame Time: " + draw(st.sampled_from(["0", "-1", "nan", "inf", "5e-324", "1e-310", "1e308",
                                                              "", "x", "0.0333"]))
        else:
            return "\n".join(lines)[:draw(st.integers(0, len("\n".join(lines))))]
    return "\n".join(lines)


@fuzz(800)
@given(text=mutated_bvh())
def test_bvh_mutations_of_valid_files(text):
    parse_or_error(text)


@st.composite
def relaid(draw, text: str) -> str:
    """The same BVH with another layout: keyword case, spacing, indentation, blank lines, CRLF."""
    out = []
    in_motion = False
    spaces = st.sampled_from([" ", "\t", "  ", " \t "])
    for line in text.split("\n"):
        words = line.split()
        if words[:1] == ["MOTION"]:
            in_motion = True
        elif not in_motion and words:
            key = words[0]
            if key in ("HIERARCHY", "ROOT", "JOINT", "OFFSET", "CHANNELS", "End", "Site", "MOTION"):
                words[0] = draw(st.sampled_from([key, key.lower(), key.upper()]))
            if key == "CHANNELS":
                words[2:] = [draw(st.sampled_from([c, c.lower(), c.upper()])) for c in words[2:]]
            if key == "End":
                words[1] = draw(st.sampled_from(["Site", "site", "SITE"]))
        if not in_motion or len(words) > 2:
            indent, trail = draw(st.sampled_from(["", " ", "\t\t"])), draw(st.sampled_from(["", " "]))
            line = indent + draw(spaces).join(words) + trail
        out.append(line)
        if draw(st.integers(0, 9)) == 0 and out[-1].split()[:1] not in (["MOTION"],):
            out.append(draw(st.sampled_from(["", "   ", "\t"])))
    return draw(st.sampled_from(["\n", "\r\n"])).join(out)


@fuzz(300)
@given(data=st.data(), b=random_bvh())
def test_bvh_valid_files_in_any_layout_parse_exactly(data, b):
    text = data.draw(relaid(B.dumps(b, indent=data.draw(st.sampled_from(["\t", "  "])))))
    assert B.parse(text) == b


@fuzz(300)
@given(data=st.binary(max_size=600) | mutated_bvh().map(lambda t: t.encode("utf-8", "surrogatepass")),
       prefix=st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\x80"]))
def test_bvh_read_any_bytes(tmp_path_factory, data, prefix):
    path = tmp_path_factory.getbasetemp() / "fuzz.bvh"
    path.write_bytes(prefix + data)
    try:
        b = B.read(path)
    except BvhError as err:
        assert err.path == str(path) and str(err).startswith(str(path))
        assert err.line is None or err.line >= 1
    else:
        assert b.motion.shape == (b.n_frames, b.n_channels)


def nested(depth: int) -> str:
    opens = "".join(f"JOINT j{i}\n{{\nOFFSET 0 1 0\nCHANNELS 1 Zrotation\n" for i in range(depth - 1))
    return ("HIERARCHY\nROOT r\n{\nOFFSET 0 0 0\nCHANNELS 1 Zrotation\n" + opens + "}\n" * depth
            + "MOTION\nFrames: 1\nFrame Time: 0.05\n" + " ".join(["1"] * depth) + "\n")


def test_bvh_found_by_fuzzing():
    # RecursionError: one parser frame per nesting level
    with pytest.raises(BvhError, match="nested more than 256 deep"):
        B.parse(nested(3000))
    deep = B.parse(nested(B.MAX_DEPTH))                 # the deepest allowed still round-trips
    assert len(deep.joints) == B.MAX_DEPTH and B.parse(B.dumps(deep)) == deep
    # ValueError "Maximum allowed dimension exceeded" from numpy; and a 10**18-frame empty motion
    no_channels = "HIERARCHY\nROOT r\n{\nOFFSET 0 0 0\nCHANNELS 0\n}\nMOTION\nFrames: %s\nFrame Time: 1\n"
    for frames in ("9" * 40, "9" * 18):
        with pytest.raises(BvhError, match="implausibly large"):
            B.parse(no_channels % frames)
    assert B.parse(no_channels % "3").motion.shape == (3, 0)
    # a subnormal frame time made fps infinite
    with pytest.raises(BvhError, match="frame time"):
        B.parse(MIXED.replace("0.041666666666666664", "5e-324"))


# --------------------------------------------------------------------------
# projects

@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz-projects")


def good_document() -> Document:
    doc = Document(prompt="a person walks", length=40, n_samples=2, seed=5, model_dir="/models/tiny")
    a, b = fake_motion(1, steps=3), fake_motion(2, steps=2, prompt="jump \ud800")
    a.cond = np.random.default_rng(0).standard_normal((12, 8)).astype(np.float32)
    doc.set_samples([a, b], current=1)
    return doc


@pytest.fixture(scope="module")
def good_members(folder):
    path = save_project(folder / "good.pgr2m", good_document())
    with zipfile.ZipFile(path) as z:
        outer = {n: z.read(n) for n in z.namelist()}
    with zipfile.ZipFile(io.BytesIO(outer["motions.npz"])) as z:
        inner = {n: z.read(n) for n in z.namelist()}
    return Members((path.read_bytes(), json.loads(outer["project.json"]), inner))


class Blob(bytes):
    def __repr__(self):
        return f"<{len(self)} bytes>"


class Members(tuple):
    """(file bytes, header, inner npz members); a short repr keeps failure reports readable."""

    def __repr__(self):
        return "<good project members>"


def zip_bytes(members, method=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                 # duplicate names are on purpose
        with zipfile.ZipFile(buf, "w", method) as z:
            for name, data in members:
                z.writestr(name, data)
    return buf.getvalue()


def load_or_error(path):
    try:
        doc = load_project(path)
    except ProjectError as err:
        msg = str(err)
        assert msg.startswith(f"{path}: ") and len(msg) > len(str(path)) + 5, msg
        return None
    for m in doc.samples:                               # what loads is usable
        assert m.joints.shape == (m.n_frames, 22, 3) and m.features.shape == (m.n_frames, 263)
        assert np.isfinite(m.joints).all() and m.code_ids().shape == (m.n_steps, pc.N_GROUPS)
    assert -1 <= doc.current < max(len(doc.samples), 1)
    return doc


@fuzz(250)
@given(data=st.binary(max_size=400), prefix=st.sampled_from([b"", b"PK\x03\x04", b"PK\x05\x06" + b"\0" * 18]))
def test_project_any_bytes(folder, data, prefix):
    path = folder / "bytes.pgr2m"
    path.write_bytes(prefix + data)
    load_or_error(path)


@fuzz(300)
@given(data=st.data())
def test_project_byte_mutations(folder, good_members, data):
    raw = bytearray(good_members[0])
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if op == "flip":
            raw[i] = data.draw(st.integers(0, 255))
        elif op == "delete":
            del raw[i:i + data.draw(st.integers(1, 64))]
        elif op == "insert":
            raw[i:i] = data.draw(st.binary(min_size=1, max_size=16))
        else:
            del raw[i:]
        if not raw:
            break
    path = folder / "mutated.pgr2m"
    path.write_bytes(bytes(raw))
    load_or_error(path)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(ANY_CHAR, max_size=8)
    | st.sampled_from([2**64, -2**63, 10**400, 1e308, 0, -1, 1, 196, 1000.0, 1e-300, ""]),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
    max_leaves=6)


def json_paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from json_paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from json_paths(v, prefix + (i,))


@fuzz(500)
@given(data=st.data())
def test_project_header_mutations(folder, good_members, data):
    _, header, inner = good_members
    h = json.loads(json.dumps(header))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(list(json_paths(h))[1:]))
        parent = h
        for k in path[:-1]:
            parent = parent[k]
        op = data.draw(st.sampled_from(["set", "set", "delete", "add"]))
        if op == "delete":
            del parent[path[-1]]
        elif op == "add" and isinstance(parent, dict):
            parent[data.draw(st.text(max_size=6))] = data.draw(JSON_VALUES)
        elif op == "add":
            parent.append(data.draw(JSON_VALUES))
        else:
            parent[path[-1]] = data.draw(JSON_VALUES)
    text = json.dumps(h, ensure_ascii=data.draw(st.sampled_from([True, True, True, False])))
    raw = text.encode("utf-8", "surrogatepass")
    path = folder / "header.pgr2m"
    path.write_bytes(zip_bytes([("project.json", raw), ("motions.npz", zip_bytes(inner.items()))]))
    load_or_error(path)


DTYPES = ["<f4", ">f4", "<f8", "<f2", "|b1", "<i8", ">i8", "<i4", "|u1", "<c8", "<U2", "|S2", "<M8[s]"]


def npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def npy_raw_header(descr: str, fortran: str, shape: str, body: bytes) -> bytes:
    text = "{'descr': %s, 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
    text += " " * (-(len(text) + 11) % 64) + "\n"
    head = text.encode("latin1", "replace")
    return b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head + body


@st.composite
def array_member(draw, original: bytes) -> bytes:
    a = np.load(io.BytesIO(original))
    kind = draw(st.sampled_from(["random", "reshaped", "retyped", "poked", "header", "bytes", "object"]))
    if kind == "random":
        return npy(draw(hnp.arrays(st.sampled_from(DTYPES), hnp.array_shapes(min_dims=0, max_dims=4, max_side=4))))
    if kind == "reshaped":
        sl = tuple(slice(draw(st.integers(0, 2)), None) for _ in range(a.ndim))
        b = a[sl]
        return npy(np.asfortranarray(b.T) if draw(st.booleans()) else b)
    if kind == "retyped":
        try:
            return npy(a.astype(draw(st.sampled_from(DTYPES)), casting="unsafe"))
        except (TypeError, ValueError):             # e.g. float to datetime
            return npy(a)
    if kind == "poked":
        b = a.copy()
        if b.size:
            flat = b.reshape(-1)
            value = draw(st.sampled_from([np.nan, np.inf, -1, 2**40, 0, 1, True, False]))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    flat[draw(st.integers(0, b.size - 1))] = value
                except (OverflowError, ValueError):
                    pass
        return npy(b)
    if kind == "header":
        descr = draw(st.sampled_from(["'<f4'", "'|O'", "'foo'", "[('a', '<f4')]", "('<f4', (3,))", "'<f4", "{",
                                      "'<U0'", "'V0'", "b'<f4'", "None", "'<f4', 'x': 1"]))
        shape = draw(st.sampled_from(["()", "(3,)", "(-1, 22, 3)", "(2**40, 22, 3)", "(3, 22, 3)", "[3]", "(3.0,)",
                                      "(" * 300, "(1,) * 10", "'x'"]) | st.text(max_size=10))
        fortran = draw(st.sampled_from(["False", "True", "0", "'no'"]))
        return npy_raw_header(descr, fortran, shape, draw(st.binary(max_size=64)))
    if kind == "bytes":
        b = bytearray(original)
        for _ in range(draw(st.integers(1, 4))):
            b[draw(st.integers(0, len(b) - 1))] = draw(st.integers(0, 255))
        return bytes(b[:draw(st.integers(0, len(b)))] if draw(st.booleans()) else b)
    arr = np.empty(1, dtype=object)
    arr[0] = draw(st.sampled_from([1, "x", None]))
    return npy(arr)


# zipfile cuts a name at its first NUL, and cannot write an empty one
MEMBER_NAME = st.text(st.characters(exclude_characters="\x00"), min_size=1, max_size=10)


@fuzz(600)
@given(data=st.data())
def test_project_array_mutations(folder, good_members, data):
    _, header, inner = good_members
    members = dict(inner)
    for _ in range(data.draw(st.integers(1, 2))):
        name = data.draw(st.sampled_from(sorted(members)))
        op = data.draw(st.sampled_from(["change"] * 6 + ["delete", "rename", "add"]))
        if op == "change":
            members[name] = data.draw(array_member(Blob(inner.get(name, inner["s0_joints.npy"]))))
        elif op == "delete" and len(members) > 1:
            del members[name]
        elif op == "rename":
            members[data.draw(st.sampled_from(["s9_joints.npy", "s0_joints", "s1_cond.npy", "../x.npy", "s0_joints.NPY",
                                               "ſ0_joints.npy"]))] = members.pop(name)
        else:
            members[data.draw(MEMBER_NAME) + ".npy"] = members[name]
    compressed = data.draw(st.booleans())
    npz = zip_bytes(members.items(), zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED)
    path = folder / "arrays.pgr2m"
    path.write_bytes(zip_bytes([("project.json", json.dumps(header).encode()), ("motions.npz", npz)]))
    load_or_error(path)


@fuzz(200)
@given(data=st.data())
def test_project_archive_mutations(folder, good_members, data):
    _, header, inner = good_members
    members = [("project.json", json.dumps(header).encode()), ("motions.npz", zip_bytes(inner.items()))]
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(["duplicate", "junk", "drop", "swap", "rename", "encrypt"]))
        i = data.draw(st.integers(0, len(members) - 1)) if members else 0
        if op == "duplicate" and members:
            members.append(members[i])
        elif op == "junk":
            members.append((data.draw(MEMBER_NAME), data.draw(st.binary(max_size=32))))
        elif op == "drop" and members:
            del members[i]
        elif op == "swap" and len(members) >= 2:
            (a, x), (b, y) = members[0], members[1]
            members[0:2] = [(a, y), (b, x)]
        elif op == "rename" and members:
            names = ["Project.json", "/project.json", "project.json\x00", "motions.npz/"]
            members[i] = (data.draw(st.sampled_from(names)), members[i][1])
        elif op == "encrypt" and members:
            name = members[i][0]
            info = zipfile.ZipInfo(name.filename if isinstance(name, zipfile.ZipInfo) else name)
            info.flag_bits |= 1                     # claims to be encrypted
            members[i] = (info, members[i][1])
    path = folder / "archive.pgr2m"
    try:
        path.write_bytes(zip_bytes(members, data.draw(st.sampled_from([zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED]))))
    except (ValueError, UnicodeError):
        assume(False)                               # zipfile refuses to write such a name
    load_or_error(path)


@st.composite
def documents(draw):
    text = st.text(ANY_CHAR, max_size=30)
    doc = Document(prompt=draw(text), length=draw(st.none() | st.integers(4, 196)),
                   n_samples=draw(st.integers(1, 16)), seed=draw(st.none() | st.integers(0, 2**32 - 1)),
                   model_dir=draw(st.none() | st.text(min_size=1, max_size=20)))
    samples = []
    for i in range(draw(st.integers(0, 3))):
        m = fake_motion(i, steps=draw(st.integers(1, 6)), prompt=draw(text))
        m.seed = draw(st.none() | st.integers(-2**63, 2**64 - 1))
        m.fps = draw(st.floats(1e-3, 1000))
        if draw(st.booleans()):
            m.cond = draw(hnp.arrays(st.sampled_from([np.float32, np.float64]), (12, draw(st.integers(1, 16))),
                                     elements=st.floats(allow_nan=False, allow_infinity=False, width=32)))
        samples.append(m)
    if samples:
        doc.set_samples(samples, current=draw(st.integers(0, len(samples) - 1)))
    return doc


@fuzz(120)
@given(doc=documents())
def test_project_valid_documents_round_trip(folder, doc):
    back = load_or_error(save_project(folder / "valid.pgr2m", doc))
    assert back is not None
    assert back.settings() == doc.settings() and back.current == doc.current and back.created == doc.created
    assert len(back.samples) == len(doc.samples)
    for a, b in zip(doc.samples, back.samples):
        same_motion(a, b)


def test_project_found_by_fuzzing(folder, good_members):
    # tokenize.TokenError escaped from numpy's fallback parser of a broken .npy header
    _, header, inner = good_members
    bad = npy_raw_header("'<f4'", "False", "(" * 3, b"")
    npz = zip_bytes({**inner, "s0_joints.npy": bad}.items())
    path = folder / "token.pgr2m"
    path.write_bytes(zip_bytes([("project.json", json.dumps(header).encode()), ("motions.npz", npz)]))
    with pytest.raises(ProjectError, match="s0_joints.npy: unreadable array header"):
        load_project(path)


# --------------------------------------------------------------------------
# HumanML3D caption lines

NUMBER_TEXT = st.one_of(
    st.floats().map(repr), st.floats(0, 100).map(lambda x: f"{x:g}"), st.integers(-10, 10**6).map(str),
    st.sampled_from(["", " ", "nan", "inf", "-inf", "1e309", "-0", "0x1", "1_0", "١", "٢.٥", "9" * 400, "abc",
                     "1e-400", "86400", "86400.0001", " 2 ", "1.5\t", "\u2003", "+3", "٣e0"]))
FIELD = st.text(st.characters(exclude_categories=(), exclude_characters="#\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
                max_size=20)


def expected_time(s: str) -> float:
    return float(s) if s.strip() else 0.0


@fuzz(800)
@given(text=FIELD, tokens=FIELD, start=NUMBER_TEXT, end=NUMBER_TEXT, extra=st.lists(FIELD, max_size=2),
       n_fields=st.integers(1, 4), newline=st.sampled_from(["", "\n", "\r\n"]))
def test_caption_lines(text, tokens, start, end, extra, n_fields, newline):
    fields = [text, tokens, start, end][:n_fields] + (extra if n_fields == 4 else [])
    line = "#".join(fields) + newline
    try:
        c = parse_caption_line(line, "texts/x.txt", 3)
    except CaptionError as err:
        assert str(err).startswith("texts/x.txt, line 3: ") and len(str(err)) > 24
        ok = False
    else:
        ok = True
    # an oracle, written from the format's description
    valid = n_fields in (2, 4) and text.strip() != "" and "\x00" not in line
    if valid and n_fields == 4:
        try:
            a, b = expected_time(start), expected_time(end)
        except ValueError:
            valid = False
        else:
            valid = 0 <= a <= MAX_SECONDS and 0 <= b <= MAX_SECONDS and not (b and b < a)
    assert ok == valid, line
    if ok:
        assert c.text == text.strip() and c.tokens == tuple(t for t in tokens.split(" ") if t)
        if n_fields == 4:
            assert (c.start, c.end) == (expected_time(start), expected_time(end))


@fuzz(400)
@given(line=st.text(ANY_CHAR, max_size=120) | st.lists(st.sampled_from(["#", "a", " ", "0", "1.5", "nan", "\x00", "\r"])
                                                        | st.text(ANY_CHAR, max_size=3), max_size=20).map("".join))
def test_caption_any_line(line):
    try:
        c = parse_caption_line(line)
    except CaptionError as err:
        assert str(err).startswith("<text>: ")
    else:
        assert c.text and 0 <= c.start <= MAX_SECONDS and 0 <= c.end <= MAX_SECONDS


@fuzz(300)
@given(text=st.text(ANY_CHAR, min_size=1, max_size=30), tokens=st.lists(st.text(ANY_CHAR, min_size=1, max_size=6),
                                                                        max_size=4),
       start=st.integers(0, 2000), length=st.integers(0, 2000))
def test_caption_to_line_round_trips(text, tokens, start, length):
    """What the importer writes (Caption.to_line) reads back through a texts/*.txt file."""
    c = Caption(text, tuple(tokens), start / 20, (start + length) / 20 if length else 0.0)
    line = c.to_line()
    assert len(line.splitlines()) <= 1
    words = text.replace("#", " ").replace("\x00", " ").split()
    try:
        back = parse_caption_line(line)
    except CaptionError as err:
        assert not words, str(err)                  # only a caption without words cannot be written
        return
    assert back.text == " ".join(words)
    assert back.tokens == tuple(" ".join(tokens).replace("#", " ").replace("\x00", " ").split())
    assert (back.start, back.end) == (c.start, c.end)


@fuzz(300)
@given(data=st.binary(max_size=300) | st.lists(st.sampled_from(["a person walks#a/DET#0#0", "bad", "#x#0#0", "\x00",
                                                                "x#y#inf#0", "", "x#y#1#2"]), max_size=5)
       .map(lambda ls: "\n".join(ls).encode()))
def test_read_captions_any_bytes(tmp_path_factory, data):
    path = tmp_path_factory.getbasetemp() / "000001.txt"
    path.write_bytes(data)
    captions, problems = read_captions(path)
    assert captions or problems
    assert all(isinstance(p, str) and str(path) in p for p in problems)


@pytest.fixture(scope="module")
def hml_folder(tmp_path_factory):
    """A one-clip HumanML3D folder made from a real BVH (so pose codes parse)."""
    from core import atomic
    from core.features import extract_features
    from core.formats.retarget import bvh_to_t2m

    root = tmp_path_factory.mktemp("hml")
    joints = bvh_to_t2m(B.read(Path(__file__).parent / "data" / "bvh" / "dataset-1_walk_normal_001.bvh"))[:60]
    feats = extract_features(joints).astype(np.float32)
    (root / "new_joint_vecs").mkdir()
    (root / "texts").mkdir()
    atomic.save_npy(root / "new_joint_vecs" / "c1.npy", feats)
    atomic.save_npy(root / "Mean.npy", feats.mean(0))
    atomic.save_npy(root / "Std.npy", feats.std(0) + 0.1)
    (root / "train.txt").write_text("c1\n")
    (root / "texts" / "c1.txt").write_text("a person walks#a/DET person/NOUN walk/VERB#0#0\n")
    HumanML3DFolder(root, "train")                  # caches the pose codes once
    return root


CAPTION_LINES = st.one_of(
    st.builds(lambda t, a, b: f"{t}#tok/NOUN#{a}#{b}", st.sampled_from(["a person walks", " ", "walk ☃"]),
              NUMBER_TEXT, NUMBER_TEXT),
    st.text(ANY_CHAR, max_size=40))


@fuzz(250)
@given(lines=st.lists(CAPTION_LINES, max_size=4), junk=st.binary(max_size=8),
       fps=st.sampled_from([None, 20, 0, -5, 1e308, float("nan"), float("inf"), "x", True, 1000, 1000.5]))
def test_humanml3d_text_files(hml_folder, lines, junk, fps):
    text = "\n".join(lines).encode("utf-8", "surrogatepass") + junk
    (hml_folder / "texts" / "c1.txt").write_bytes(text)
    meta = hml_folder / "dataset.json"
    if fps is None:
        meta.unlink(missing_ok=True)
    else:
        meta.write_text(json.dumps({"fps": fps}))
    try:
        ds = HumanML3DFolder(hml_folder, "train")
    except DatasetError as err:
        assert str(hml_folder) in str(err) and "no usable motions" in str(err)
        return
    assert 0 < ds.fps <= 1000
    rec = ds.records[0]
    assert rec.captions and all(0 <= c.start <= MAX_SECONDS for c in rec.captions)
    for seg in ds.segments():
        assert 0 <= seg.start < seg.end <= rec.n_frames


def test_captions_found_by_fuzzing(hml_folder):
    # times of inf / 1e308 s passed the parser, then segments() hit int(inf) (OverflowError)
    for line in ("a#b#0#inf", "a#b#1e308#0", "a#b#" + "9" * 400 + "#0", "a#b#0#86400.5"):
        with pytest.raises(CaptionError, match="invalid time range"):
            parse_caption_line(line)
    assert parse_caption_line("a#b#0#86400").end == 86400
    # an fps of NaN or infinity in dataset.json made segments() raise ValueError / OverflowError
    (hml_folder / "texts" / "c1.txt").write_text("a person walks#a/DET#0.5#1.5\n")
    for fps in ("NaN", "Infinity", "-20", "1e308"):
        (hml_folder / "dataset.json").write_text('{"fps": %s}' % fps)
        ds = HumanML3DFolder(hml_folder, "train")
        assert ds.fps == ds.skeleton.fps and len(ds.segments()) == 1
    (hml_folder / "dataset.json").unlink()
