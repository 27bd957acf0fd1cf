"""glTF (.glb) export: Khronos validator, an independent reader's FK against the rig,
inverse bind matrices, skinned mesh placement, resampling and errors."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from motion_factory import generated_motion, synth_motion

from core.formats import bvh as B
from core.formats import retarget as R
from core.formats.bvh_export import joints_to_rig
from core.formats.gltf_export import joints_to_glb_bytes, save_glb

HERE = Path(__file__).resolve().parent
BN_FILES = sorted((HERE / "data" / "bvh").glob("*.bvh"))
VALIDATE = HERE / "gltf_validate.mjs"
CASES = {
    "synthetic": lambda: synth_motion(120, seed=3, turn=0.08),  # spins past 180 degrees
    "bandai_namco": lambda: R.bvh_to_t2m(B.read(BN_FILES[0])),
    "generated": lambda: generated_motion(),
    "one_frame": lambda: synth_motion(1, seed=4),
    "thousand_frames": lambda: synth_motion(1000, seed=5),
}


@pytest.fixture(scope="module")
def motions():
    return {name: make() for name, make in CASES.items()}


# --- a small GLB reader, independent of the exporter -----------------------------------

_DTYPES = {5120: "<i1", 5121: "<u1", 5122: "<i2", 5123: "<u2", 5125: "<u4", 5126: "<f4"}
_NCOMP = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


def read_glb(data: bytes):
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert (magic, version, length) == (b"glTF", 2, len(data))
    chunks, at = {}, 12
    while at < len(data):
        size, kind = struct.unpack_from("<I4s", data, at)
        assert size % 4 == 0
        chunks[kind] = data[at + 8:at + 8 + size]
        at += 8 + size
    assert at == len(data)
    return json.loads(chunks[b"JSON"]), chunks[b"BIN\0"]


def accessor(doc, binary, index) -> np.ndarray:
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    dtype = np.dtype(_DTYPES[acc["componentType"]])
    n = _NCOMP[acc["type"]]
    stride = view.get("byteStride", dtype.itemsize * n)
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    rows = [np.frombuffer(binary, dtype, n, start + i * stride) for i in range(acc["count"])]
    out = np.array(rows, dtype=np.float64)
    if acc["type"] == "MAT4":
        return out.reshape(-1, 4, 4).transpose(0, 2, 1)  # stored column-major
    return out[:, 0] if n == 1 else out


def quat_matrix(q) -> np.ndarray:
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def trs(node, t=None, r=None) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = quat_matrix(node.get("rotation", [0, 0, 0, 1]) if r is None else r)
    m[:3, 3] = node.get("translation", [0, 0, 0]) if t is None else t
    return m


def slerp(a, b, w):
    d = np.dot(a, b)
    if d < 0:
        b, d = -b, -d
    if d > 0.9995:
        q = a + w * (b - a)
    else:
        th = np.arccos(d)
        q = (np.sin((1 - w) * th) * a + np.sin(w * th) * b) / np.sin(th)
    return q / np.linalg.norm(q)


def sample(doc, binary, time) -> dict:
    """{(node, path): value} of the first animation at ``time`` (LINEAR samplers)."""
    anim = doc["animations"][0]
    out = {}
    for ch in anim["channels"]:
        s = anim["samplers"][ch["sampler"]]
        assert s.get("interpolation", "LINEAR") == "LINEAR"
        keys, values = accessor(doc, binary, s["input"]), accessor(doc, binary, s["output"])
        i = int(np.clip(np.searchsorted(keys, time, side="right") - 1, 0, len(keys) - 2))
        w = float(np.clip((time - keys[i]) / (keys[i + 1] - keys[i]), 0.0, 1.0))
        path = ch["target"]["path"]
        if path == "rotation":
            value = slerp(values[i], values[i + 1], w)
        else:
            value = (1 - w) * values[i] + w * values[i + 1]
        out[ch["target"]["node"], path] = value
    return out


def world_matrices(doc, pose=None, identity_rotations=False) -> dict:
    """{node: 4x4 world matrix} by walking the scene's trees."""
    pose = pose or {}
    world = {}
    stack = [(n, np.eye(4)) for n in doc["scenes"][doc.get("scene", 0)]["nodes"]]
    while stack:
        n, parent = stack.pop()
        node = doc["nodes"][n]
        r = [0, 0, 0, 1] if identity_rotations else pose.get((n, "rotation"))
        world[n] = parent @ trs(node, pose.get((n, "translation")), r)
        stack += [(c, world[n]) for c in node.get("children", [])]
    return world


def joint_nodes(doc) -> list[int]:
    return doc["skins"][0]["joints"]


# --- Khronos validator -------------------------------------------------------------------

def _validator_missing(why: str):
    if os.environ.get("PGR2M_REQUIRE_VALIDATORS") == "1":
        pytest.fail(f"{why}; run `bash scripts/test-tools.sh`")
    pytest.skip(why)


@pytest.fixture(scope="module")
def reports(motions, tmp_path_factory):
    """{case: validator report}, from one node run over all files."""
    node = shutil.which("node")
    if node is None:
        _validator_missing("node is not installed")
    folder = tmp_path_factory.mktemp("glb")
    paths = []
    for name, joints in motions.items():
        save_glb(folder / f"{name}.glb", joints)
        paths.append(folder / f"{name}.glb")
    # a broken file proves the validator looks: POSITION's declared min is off
    doc, binary = read_glb(joints_to_glb_bytes(motions["synthetic"]))
    doc["accessors"][doc["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]["min"][0] -= 1.0
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    broken = (struct.pack("<I4s", len(text), b"JSON") + text
              + struct.pack("<I4s", len(binary), b"BIN\0") + binary)
    (folder / "broken.glb").write_bytes(struct.pack("<4sII", b"glTF", 2, 12 + len(broken)) + broken)
    paths.append(folder / "broken.glb")
    run = subprocess.run([node, str(VALIDATE), *map(str, paths)], capture_output=True, text=True, timeout=120)
    if run.returncode == 3:
        _validator_missing(run.stderr.strip())
    assert run.returncode == 0, run.stderr
    return dict(zip([*motions, "broken"], json.loads(run.stdout)))


@pytest.mark.parametrize("case", list(CASES))
def test_validator_clean(reports, case):
    issues = reports[case]["issues"]
    found = [(m["severity"], m["code"], m.get("pointer"), m["message"]) for m in issues["messages"]]
    assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, found
    assert not issues["truncated"]
    assert all(sev >= 2 for sev, *_ in found)  # infos and hints only
    info = reports[case]["info"]
    assert info["hasSkins"] and info["animationCount"] == 1 and info["drawCallCount"] == 1


def test_validator_catches_a_broken_file(reports):
    codes = [m["code"] for m in reports["broken"]["issues"]["messages"]]
    assert reports["broken"]["issues"]["numErrors"] >= 1 and "ACCESSOR_MIN_MISMATCH" in codes


# --- content, read back independently ----------------------------------------------------

@pytest.mark.parametrize("case", list(CASES))
def test_animation_matches_rig(motions, case):
    joints = motions[case]
    rig = joints_to_rig(joints, 20.0)
    doc, binary = read_glb(joints_to_glb_bytes(joints, 20.0))
    ref = rig.world_positions()
    slot = {n: i for i, n in enumerate(rig.names)}
    frames = np.unique(np.linspace(0, rig.n_frames - 1, 9).round().astype(int))
    worst = 0.0
    for f in frames:
        world = world_matrices(doc, sample(doc, binary, f / 20.0))
        for n in joint_nodes(doc):
            err = np.linalg.norm(world[n][:3, 3] - ref[f, slot[doc["nodes"][n]["name"]]])
            worst = max(worst, err)
    assert worst < 1e-3, f"max joint position error {worst * 1000:.3f} mm"


def test_bandai_namco_clips_match_rig():
    for path in BN_FILES:
        joints = R.bvh_to_t2m(B.read(path))
        rig = joints_to_rig(joints)
        doc, binary = read_glb(joints_to_glb_bytes(joints))
        for f in (0, rig.n_frames // 2, rig.n_frames - 1):
            world = world_matrices(doc, sample(doc, binary, f / rig.fps))
            got = np.array([world[n][:3, 3] for n in joint_nodes(doc)])
            order = [rig.names.index(doc["nodes"][n]["name"]) for n in joint_nodes(doc)]
            np.testing.assert_allclose(got, rig.world_positions()[f, order], atol=1e-3, err_msg=path.name)


def test_structure(motions):
    joints = motions["synthetic"]
    rig = joints_to_rig(joints)
    doc, binary = read_glb(joints_to_glb_bytes(joints))
    jn = joint_nodes(doc)
    assert [doc["nodes"][n]["name"] for n in jn] == rig.names
    roots = doc["scenes"][doc["scene"]]["nodes"]
    body = [i for i, n in enumerate(doc["nodes"]) if "skin" in n]
    assert len(body) == 1 and body[0] in roots and body[0] not in jn
    assert not {"translation", "rotation", "scale", "matrix"} & set(doc["nodes"][body[0]])
    assert doc["skins"][0]["skeleton"] in roots
    # nodes start in the first frame's pose
    first = world_matrices(doc)
    np.testing.assert_allclose([first[n][:3, 3] for n in jn], rig.world_positions()[0], atol=1e-6)
    # one take, times at 20 fps, rotations continuous in sign
    anim = doc["animations"][0]
    assert anim["name"] == "take"
    times = accessor(doc, binary, anim["samplers"][0]["input"])
    np.testing.assert_allclose(times, np.arange(len(joints)) / 20.0, atol=1e-6)
    for ch in anim["channels"]:
        if ch["target"]["path"] == "rotation":
            q = accessor(doc, binary, anim["samplers"][ch["sampler"]]["output"])
            np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
            assert (np.sum(q[1:] * q[:-1], axis=1) > 0).all()


def test_inverse_bind_matrices_invert_rest_pose(motions):
    doc, binary = read_glb(joints_to_glb_bytes(motions["bandai_namco"]))
    ibm = accessor(doc, binary, doc["skins"][0]["inverseBindMatrices"])
    rest = world_matrices(doc, identity_rotations=True)
    for m, n in zip(ibm, joint_nodes(doc)):
        np.testing.assert_allclose(m @ rest[n], np.eye(4), atol=1e-5)


def test_skinned_mesh_follows_bones(motions):
    """Skinning by the spec's formula puts each bone's box between its joint and the child."""
    doc, binary = read_glb(joints_to_glb_bytes(motions["synthetic"]))
    prim = doc["meshes"][0]["primitives"][0]
    att = prim["attributes"]
    pos = accessor(doc, binary, att["POSITION"])
    jnt = accessor(doc, binary, att["JOINTS_0"]).astype(int)
    wgt = accessor(doc, binary, att["WEIGHTS_0"])
    np.testing.assert_allclose(wgt.sum(axis=1), 1.0, atol=1e-6)
    idx = accessor(doc, binary, prim["indices"]).astype(int)
    assert len(idx) % 3 == 0 and idx.max() < len(pos)
    tri = pos[idx.reshape(-1, 3)]  # counter-clockwise seen from outside: along the normals
    facing = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    assert (np.einsum("ti,ti->t", facing, accessor(doc, binary, att["NORMAL"])[idx[::3]]) > 0).all()
    assert np.einsum("ti,ti->", tri[:, 0], facing) > 0  # closed boxes: positive volume = outward
    ibm = accessor(doc, binary, doc["skins"][0]["inverseBindMatrices"])
    jn = joint_nodes(doc)
    for f in (0, 77):
        world = world_matrices(doc, sample(doc, binary, f / 20.0))
        skin = np.array([world[n] @ m for n, m in zip(jn, ibm)])
        hom = np.c_[pos, np.ones(len(pos))]
        skinned = np.einsum("vk,vkij,vj->vi", wgt, skin[jnt], hom)[:, :3]
        for k, n in enumerate(jn):
            for c in doc["nodes"][n].get("children", []):  # a corner of k's box is near child c
                near = np.linalg.norm(skinned[jnt[:, 0] == k] - world[c][:3, 3], axis=1).min()
                assert near < 0.05, (doc["nodes"][n]["name"], near)


def test_one_frame_holds_the_pose(motions):
    doc, binary = read_glb(joints_to_glb_bytes(motions["one_frame"]))
    anim = doc["animations"][0]
    times = accessor(doc, binary, anim["samplers"][0]["input"])
    assert len(times) == 2 and times[0] == 0.0 and times[1] > 0
    for s in anim["samplers"]:
        v = accessor(doc, binary, s["output"])
        np.testing.assert_array_equal(v[0], v[1])


def test_target_fps_resamples(motions):
    joints = motions["synthetic"][:40]
    doc, binary = read_glb(joints_to_glb_bytes(joints, 20.0, target_fps=60))
    times = accessor(doc, binary, doc["animations"][0]["samplers"][0]["input"])
    assert len(times) == 39 * 3 + 1
    end = doc["accessors"][doc["animations"][0]["samplers"][0]["input"]]["max"][0]
    assert end == pytest.approx(39 / 20.0)
    np.testing.assert_allclose(np.diff(times), 1 / 60, atol=1e-5)


def test_pygltflib_loads(tmp_path, motions):
    pygltflib = pytest.importorskip("pygltflib")
    path = tmp_path / "m.glb"
    save_glb(path, motions["synthetic"])
    g = pygltflib.GLTF2().load(str(path))
    assert len(g.nodes) == 23 and len(g.skins) == 1 and len(g.animations) == 1
    assert len(g.binary_blob()) >= g.buffers[0].byteLength


@pytest.mark.parametrize("bad, kw", [
    (np.zeros((10, 21, 3)), {}),
    (np.zeros((0, 22, 3)), {}),
    (np.full((5, 22, 3), np.nan), {}),
    ("walk", {}),
    (None, {"fps": 0}),
    (None, {"target_fps": -1}),
])
def test_bad_input_raises_and_writes_nothing(tmp_path, bad, kw):
    joints = synth_motion(5) if bad is None else bad
    with pytest.raises(ValueError):
        save_glb(tmp_path / "x.glb", joints, **kw)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError):
        joints_to_glb_bytes(joints, **kw)


def test_overwrite_is_atomic(tmp_path, motions):
    path = tmp_path / "m.glb"
    save_glb(path, motions["one_frame"])
    save_glb(path, motions["synthetic"])
    assert path.read_bytes() == joints_to_glb_bytes(motions["synthetic"])
    assert [p.name for p in tmp_path.iterdir()] == ["m.glb"]
