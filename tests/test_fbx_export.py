"""FBX export: our binary container, ufbx as an independent reader, world positions, rates,
edge sizes and errors; Blender when installed."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from motion_factory import generated_motion, spoiled_motion, synth_motion
from test_bvh_export import bn_motion, rigid_motion

from core.formats import fbx_binary as fb
from core.formats.bvh_export import joints_to_rig
from core.formats.fbx_export import KTIME_PER_SECOND, fbx_euler, joints_to_fbx_bytes, rotation_orders, save_fbx
from core.rotations import euler_to_matrix

BN_FILES = sorted((Path(__file__).resolve().parent / "data" / "bvh").glob("*.bvh"))
MM = 0.1  # one millimetre in the file's centimetres

# ufbx 0.0.5's Python binding hands out scene elements without a reference of their own (its
# element cache keeps the only one), so dropping one frees it under the cache and later use
# crashes the interpreter. The probe runs in a child process: it adds the missing reference to
# each element it touches, keeps everything alive, skips teardown with os._exit, and a crash
# fails the test instead of killing the test run.
_PROBE = r"""
import ctypes, gc, json, os, sys
import ufbx
gc.disable()
keep = []
def held(obj):
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))
    keep.append(obj)
    return obj
path, times = sys.argv[1], json.loads(sys.argv[2])
scene = held(ufbx.load_file(path))
nodes = [held(n) for n in scene.nodes]
parents = [held(n.parent) if not n.is_root else None for n in nodes]
stacks = [held(s) for s in scene.anim_stacks]
curves = [held(c) for c in scene.anim_curves]
out = {
    "version": scene.metadata.version,
    "warnings": [str(w.description) for w in scene.metadata.warnings],
    "unit_meters": scene.settings.unit_meters,
    "fps": scene.settings.frames_per_second,
    "time_mode": int(scene.settings.time_mode),
    "bones": [held(b).name for b in scene.bones],
    "nodes": {n.name: (None if p is None or p.is_root else p.name)
              for n, p in zip(nodes, parents) if not n.is_root},
    "stacks": [[s.name, s.time_begin, s.time_end] for s in stacks],
    "curves": len(curves),
    "interpolations": sorted({int(k.interpolation) for c in curves for k in c.keyframes}),
    "world": {},
}
anim = held(stacks[0].anim)
for t in times:
    ev = held(ufbx.evaluate_scene(scene, anim, t))
    for n in ev.nodes:
        n = held(n)
        if not n.is_root:
            c = n.node_to_world.c3
            out["world"].setdefault(n.name, []).append([c.x, c.y, c.z])
sys.stdout.write(json.dumps(out))
sys.stdout.flush()
os._exit(0)
"""


@pytest.fixture
def ufbx_probe():
    """probe(path, times) -> what ufbx reads from the file, and world positions at times."""
    if os.environ.get("PGR2M_REQUIRE_VALIDATORS") == "1":
        try:
            import ufbx  # noqa: F401
        except ImportError as e:
            pytest.fail(f"ufbx is required (PGR2M_REQUIRE_VALIDATORS=1) but cannot be imported: {e}")
    else:
        pytest.importorskip("ufbx")

    def probe(path, times=()):
        run = subprocess.run([sys.executable, "-c", _PROBE, str(path), json.dumps(list(times))],
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, f"ufbx could not read {path} (rc {run.returncode}):\n{run.stderr[-2000:]}"
        return json.loads(run.stdout)

    return probe


def world_error(info: dict, rig, frames) -> float:
    """Largest distance (file units) between ufbx's joint positions and the rig's FK."""
    ref = rig.world_positions()[frames]
    got = np.stack([np.array(info["world"][name]) for name in rig.names], axis=1)
    return float(np.linalg.norm(got - ref, axis=-1).max())


def objects_of(root: fb.Node, kind: str) -> list[fb.Node]:
    return root.find("Objects").find_all(kind)


# the container

def test_container_round_trips_every_property_type():
    big = np.linspace(0, 1, 1000)
    tree = [fb.Node("Top", ["text\x00\x01Class", b"\x00raw", 7, 2.5, True, fb.i16(-3), fb.i64(2**40),
                            fb.f32(1.5), np.arange(5, dtype=np.int32), np.arange(300, dtype=np.int64),
                            big.astype(np.float32), big, np.array([True, False])],
                    [fb.Node("Child", [1]), fb.Node("Empty")]),
            fb.Node("Empty")]
    data = fb.to_bytes(tree)
    assert data.startswith(b"Kaydara FBX Binary  \x00\x1a\x00") and len(data) % 16 == 0
    assert struct.unpack_from("<I", data, 23)[0] == 7400 and data.endswith(fb.FOOTER_MAGIC)
    assert len(data) < 10_000  # the 1000-long arrays went through zlib
    root = fb.parse(data)
    assert root.props == [7400] and [n.name for n in root.children] == ["Top", "Empty"]
    top = root.children[0]
    assert top.props[:8] == ["text\x00\x01Class", b"\x00raw", 7, 2.5, True, -3, 2**40, 1.5]
    for got, want in zip(top.props[8:], tree[0].props[8:]):
        assert got.dtype == want.dtype and np.array_equal(got, want)
    assert [(c.name, c.props, c.children) for c in top.children] == [("Child", [1], []), ("Empty", [], [])]


def test_container_refuses_damage():
    data = joints_to_fbx_bytes(synth_motion(5))
    with pytest.raises(ValueError, match="magic"):
        fb.parse(b"Kaydara FBX Binary!" + data[19:])
    with pytest.raises(ValueError):
        fb.parse(data[:len(data) // 2])
    bad = bytearray(data)
    bad[27:31] = struct.pack("<I", struct.unpack_from("<I", data, 27)[0] + 1)  # first end offset
    with pytest.raises(ValueError, match="ends at"):
        fb.parse(bytes(bad))
    with pytest.raises(TypeError):
        fb.to_bytes([fb.Node("X", [object()])])
    with pytest.raises(struct.error):
        fb.to_bytes([fb.Node("X", [2**40])])  # an int64 needs i64()


def test_file_structure_read_by_our_parser():
    x = synth_motion(40, seed=3)
    rig = joints_to_rig(x, 20.0, scale=100)
    root = fb.parse(joints_to_fbx_bytes(x))
    assert root.props == [7400]
    for name in ("FBXHeaderExtension", "FileId", "GlobalSettings", "Documents", "References",
                 "Definitions", "Objects", "Connections", "Takes"):
        assert root.find(name) is not None, name
    assert root.find("FBXHeaderExtension").find("FBXVersion").props == [7400]
    settings = {p.props[0]: p.props[4:] for p in root.find("GlobalSettings").find("Properties70").children}
    assert settings["UpAxis"] == [1] and settings["FrontAxis"] == [2] and settings["CoordAxis"] == [0]
    assert settings["UnitScaleFactor"] == [1.0] and settings["TimeMode"] == [14]
    assert settings["CustomFrameRate"] == [20.0] and settings["TimeSpanStop"] == [39 * KTIME_PER_SECOND // 20]

    models = objects_of(root, "Model")
    assert len(models) == 22 and all(m.props[2] == "LimbNode" for m in models)
    assert [m.props[1].split("\x00\x01")[0] for m in models] == rig.names
    assert len(objects_of(root, "NodeAttribute")) == 22
    assert len(objects_of(root, "AnimationCurveNode")) == 23  # root T + 22 R
    curves = objects_of(root, "AnimationCurve")
    assert len(curves) == 69
    times = curves[0].find("KeyTime").props[0]
    assert times.dtype == np.int64 and times.tolist() == [i * 2_309_307_900 for i in range(40)]
    assert all(c.find("KeyValueFloat").props[0].dtype == np.float32 for c in curves)
    assert curves[0].find("KeyVer").props == [4008]
    # Definitions count what Objects holds
    defs = {d.props[0]: d.find("Count").props[0] for d in root.find("Definitions").find_all("ObjectType")}
    for kind in ("Model", "NodeAttribute", "AnimationCurveNode", "AnimationCurve", "AnimationStack"):
        assert defs[kind] == len(objects_of(root, kind)), kind
    # the hierarchy in Connections is the rig's
    ids = {m.props[0]: m.props[1].split("\x00\x01")[0] for m in models}
    parent = {ids[c.props[1]]: ids.get(c.props[2]) for c in root.find("Connections").children
              if c.props[0] == "OO" and c.props[1] in ids}
    assert parent == {n: (None if p < 0 else rig.names[p]) for n, p in zip(rig.names, rig.parents)}
    links = [c.props[3] for c in root.find("Connections").children if c.props[0] == "OP"]
    assert links.count("Lcl Rotation") == 22 and links.count("Lcl Translation") == 1
    assert links.count("d|X") == links.count("d|Y") == links.count("d|Z") == 23


def test_scale_one_is_metres():
    root = fb.parse(joints_to_fbx_bytes(synth_motion(3), scale=1.0))
    settings = {p.props[0]: p.props[4:] for p in root.find("GlobalSettings").find("Properties70").children}
    assert settings["UnitScaleFactor"] == [100.0]


# what ufbx reads

def test_ufbx_reads_skeleton_take_and_settings(tmp_path, ufbx_probe):
    x = synth_motion(120, seed=1)
    rig = joints_to_rig(x, 20.0, scale=100)
    path = tmp_path / "walk.fbx"
    save_fbx(path, x)
    info = ufbx_probe(path, [0.0])
    assert info["version"] == 7400 and info["warnings"] == []
    assert info["bones"] == rig.names
    assert info["nodes"] == {n: (None if p < 0 else rig.names[p]) for n, p in zip(rig.names, rig.parents)}
    assert len(info["stacks"]) == 1
    name, begin, end = info["stacks"][0]
    assert name == "Take 001" and begin == 0.0 and end == pytest.approx(119 / 20, abs=1e-12)
    assert info["fps"] == 20.0 and info["time_mode"] == 14 and info["unit_meters"] == pytest.approx(0.01)
    assert info["curves"] == 69 and info["interpolations"] == [2]  # all keys LINEAR


def test_ufbx_probe_notices_a_damaged_file(tmp_path, ufbx_probe):
    path = tmp_path / "cut.fbx"
    path.write_bytes(joints_to_fbx_bytes(synth_motion(20))[:5000])
    with pytest.raises(AssertionError, match="could not read"):
        ufbx_probe(path)


CASES = {
    "synthetic": lambda: synth_motion(120, seed=1),
    "rigid": lambda: rigid_motion(80, seed=4, stretch=0.01),
    "bandai_namco": lambda: bn_motion(BN_FILES[0]),
    "generated": lambda: generated_motion(),
    "one_frame": lambda: synth_motion(1, seed=7),
    "thousand_frames": lambda: rigid_motion(1000, seed=8, stretch=0.01),
}


@pytest.mark.parametrize("case", list(CASES))
def test_ufbx_world_positions_match_the_rig(tmp_path, ufbx_probe, case):
    x = CASES[case]()
    rig = joints_to_rig(x, 20.0, scale=100)
    n = rig.n_frames
    frames = sorted({0, n // 3, n // 2, (2 * n) // 3, n - 1})
    path = tmp_path / f"{case}.fbx"
    save_fbx(path, x)
    info = ufbx_probe(path, [f / 20.0 for f in frames])
    assert len(info["world"]) == 22 and info["stacks"][0][2] == pytest.approx((n - 1) / 20, abs=1e-12)
    err = world_error(info, rig, frames)
    print(f"{case}: {n} frames, max ufbx position error {err * 10:.5f} mm")
    assert err < MM


def test_target_fps_60(tmp_path, ufbx_probe):
    x = rigid_motion(50, seed=6, stretch=0.02)
    rig = joints_to_rig(x, 20.0, target_fps=60, scale=100)
    assert rig.n_frames == 3 * 49 + 1
    path = tmp_path / "sixty.fbx"
    save_fbx(path, x, target_fps=60)
    curve = objects_of(fb.parse(path.read_bytes()), "AnimationCurve")[0]
    assert curve.find("KeyTime").props[0].tolist() == [i * 769_769_300 for i in range(148)]
    frames = [0, 1, 74, 146, 147]
    info = ufbx_probe(path, [f / 60.0 for f in frames])
    assert info["fps"] == 60.0 and info["time_mode"] == 3  # eFrames60
    assert info["stacks"][0][2] == pytest.approx(147 / 60, abs=1e-12)
    err = world_error(info, rig, frames)
    print(f"60 fps: max ufbx position error {err * 10:.5f} mm")
    assert err < MM


@pytest.mark.parametrize("case", ["rigid", "thousand_frames", "bandai_namco"])
def test_euler_angles_are_exact_and_continuous(case):
    rig = joints_to_rig(CASES[case](), 20.0)
    orders = rotation_orders(rig.local)
    e = fbx_euler(rig.local, orders)
    for j, order in enumerate(orders):  # FBX "ABC" applies A first: R = R_C @ R_B @ R_A
        cba = ["XYZ".index(a) for a in order[::-1]]
        np.testing.assert_allclose(euler_to_matrix(e[:, j][:, cba], order[::-1]), rig.local[:, j], atol=1e-9)
    # angle steps follow the real turn between frames: no branch flips, no whole-turn jumps,
    # no fast outer-angle swings near gimbal lock (XYZ alone: 16x to 29x on the turning root)
    rel = np.swapaxes(rig.local[:-1], -1, -2) @ rig.local[1:]
    turn = np.degrees(np.arccos(np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1) / 2, -1, 1)))
    step = np.abs(np.diff(e, axis=0)).max(-1)
    assert np.all(step <= 2 * turn + 0.5), (step / np.maximum(turn, 1e-9)).max()
    if case != "bandai_namco":  # a turning root: yaw applied last, counting on past 180
        assert orders[0][2] == "Y" and np.ptp(e[:, 0, 1]) > (720.0 if case == "thousand_frames" else 60.0)


# bad input

@pytest.mark.parametrize("joints, kw, words", [
    (np.zeros((10, 21, 3)), {}, r"shape \(frames, 22, 3\).*got \(10, 21, 3\)"),
    (np.zeros((22, 3)), {}, r"shape \(frames, 22, 3\)"),
    (np.zeros((0, 22, 3)), {}, "no frames"),
    ([["a"] * 3] * 22, {}, "numeric array"),
    ("nan", {}, "NaN or infinite.*frame 3, joint left_knee"),
    ("inf", {}, "NaN or infinite"),
    (None, {"fps": 0}, "fps must be a positive"),
    (None, {"target_fps": float("inf")}, "target_fps must be a positive"),
    (None, {"scale": -1}, "scale must be a positive"),
])
def test_bad_input_is_explained_and_writes_nothing(tmp_path, joints, kw, words):
    joints = spoiled_motion(joints)
    with pytest.raises(ValueError, match=words):
        joints_to_fbx_bytes(joints, **kw)
    path = tmp_path / "never.fbx"
    with pytest.raises(ValueError, match=words):
        save_fbx(path, joints, **kw)
    assert not list(tmp_path.iterdir())


# Blender, when installed

@pytest.mark.skipif(shutil.which("blender") is None, reason="Blender is not installed")
def test_blender_imports_bones_and_frames(tmp_path):
    x = synth_motion(60, seed=2)
    path = tmp_path / "clip.fbx"
    save_fbx(path, x)
    expr = ("import bpy; bpy.ops.wm.read_factory_settings(use_empty=True); "
            f"bpy.ops.import_scene.fbx(filepath={str(path)!r}); "
            "arm = next(o for o in bpy.data.objects if o.type == 'ARMATURE'); "
            "a = arm.animation_data.action; "
            "print('RESULT', len(arm.data.bones), a.frame_range[0], a.frame_range[1], "
            "bpy.context.scene.render.fps / bpy.context.scene.render.fps_base)")
    run = subprocess.run(["blender", "-b", "--factory-startup", "--python-expr", expr],
                         capture_output=True, text=True, timeout=300)
    line = next((s for s in run.stdout.splitlines() if s.startswith("RESULT")), None)
    assert line, run.stdout[-2000:] + run.stderr[-2000:]
    bones, start, end, fps = (float(v) for v in line.split()[1:])
    assert bones == 22
    assert end - start == pytest.approx(59 / 20 * fps, abs=1.0)
