"""`pgr2m export` and `generate -o` in every format, on a tiny random model."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from core.cli import main as cli
from core.document import Document
from core.formats import bvh as B
from core.formats.fbx_binary import parse as parse_fbx
from core.pipeline import Pipeline
from core.project import save_project


@pytest.fixture(scope="module")
def codes_json(model_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("motion") / "jump.json"
    assert cli(["generate", "a person jumps", "--model", str(model_dir), "-o", str(path),
                "--seed", "2", "--length", "48"]) == 0
    return path


def glb_json(path) -> dict:
    data = path.read_bytes()
    magic, version, total = struct.unpack_from("<4sII", data)
    assert magic == b"glTF" and version == 2 and total == len(data)
    size, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    return json.loads(data[20:20 + size])


def fbx_models(path) -> list:
    root = parse_fbx(path.read_bytes())
    objects = next(n for n in root.children if n.name == "Objects")
    return [n for n in objects.children if n.name == "Model"]


def test_every_format_from_a_codes_json(model_dir, codes_json, tmp_path):
    run = lambda *a: cli(["export", str(codes_json), "--model", str(model_dir), *a])   # noqa: E731
    assert run("-o", str(tmp_path / "m.bvh")) == 0
    assert run("-o", str(tmp_path / "m.fbx")) == 0
    assert run("-o", str(tmp_path / "m.glb")) == 0
    assert run("-o", str(tmp_path / "m.npy")) == 0
    assert run("-o", str(tmp_path / "f.npy"), "--format", "features") == 0
    b = B.read(tmp_path / "m.bvh")
    assert len(b.joints) == 22 and b.n_frames == 48
    assert len(fbx_models(tmp_path / "m.fbx")) == 22
    gl = glb_json(tmp_path / "m.glb")
    assert len(gl["skins"][0]["joints"]) == 22 and len(gl["animations"]) == 1
    joints = np.load(tmp_path / "m.npy")
    assert joints.shape == (48, 22, 3) and joints.dtype == np.float32
    assert np.load(tmp_path / "f.npy").shape == (48, 263)
    # the BVH holds the same motion as the joints file
    pos, _ = B.forward_kinematics(b)
    pelvis = pos[:, b.joint_index("pelvis")]
    np.testing.assert_allclose(pelvis, joints[:, 0], atol=1e-4)


def test_frame_rate_range_and_units(model_dir, codes_json, tmp_path):
    base = ["export", str(codes_json), "--model", str(model_dir)]
    assert cli(base + ["-o", str(tmp_path / "a.bvh"), "--fps", "60", "--frames", "8:28", "--scale", "100"]) == 0
    b = B.read(tmp_path / "a.bvh")
    assert b.n_frames == (20 - 1) * 3 + 1 and abs(b.fps - 60) < 1e-9
    assert cli(base + ["-o", str(tmp_path / "m.bvh")]) == 0
    metres = B.read(tmp_path / "m.bvh")
    # centimetres: the range's first pelvis position is 100x the metre file's frame 8
    pos_cm, _ = B.forward_kinematics(b)
    pos_m, _ = B.forward_kinematics(metres)
    np.testing.assert_allclose(pos_cm[0, 0] / 100, pos_m[8, 0], atol=2e-3)
    assert cli(base + ["-o", str(tmp_path / "a.json"), "--frames", "8:28"]) == 0
    data = json.loads((tmp_path / "a.json").read_text(encoding="utf-8"))
    assert len(data["steps"]) == 5 and data["frames"] == 20
    assert all(len(row) == 5 for row in data["residual_codes"])


def test_project_bvh_and_npy_inputs(model_dir, tmp_path):
    pipe = Pipeline(model_dir)
    doc = Document("a person walks")
    doc.set_samples(pipe.generate("a person walks", n_samples=2, seed=1, length=32), current=1)
    save_project(tmp_path / "p.pgr2m", doc)
    assert cli(["export", str(tmp_path / "p.pgr2m"), "-o", str(tmp_path / "p.npy")]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), doc.samples[1].joints, atol=1e-6)
    assert cli(["export", str(tmp_path / "p.pgr2m"), "-o", str(tmp_path / "p0.npy"), "--sample", "0"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "p0.npy"), doc.samples[0].joints, atol=1e-6)
    # joints and BVH inputs need no model
    assert cli(["export", str(tmp_path / "p.npy"), "-o", str(tmp_path / "p.fbx")]) == 0
    assert cli(["export", str(tmp_path / "p.npy"), "-o", str(tmp_path / "p.bvh")]) == 0
    assert cli(["export", str(tmp_path / "p.bvh"), "-o", str(tmp_path / "q.glb")]) == 0
    assert len(fbx_models(tmp_path / "p.fbx")) == 22
    assert glb_json(tmp_path / "q.glb")["animations"][0]["channels"]


def test_generate_writes_fbx_and_glb(model_dir, tmp_path):
    for ext in ("fbx", "glb"):
        out = tmp_path / f"wave.{ext}"
        assert cli(["generate", "a person waves", "--model", str(model_dir), "-o", str(out),
                    "--seed", "1", "--length", "24"]) == 0
        assert out.stat().st_size > 1000
    assert len(fbx_models(tmp_path / "wave.fbx")) == 22


@pytest.mark.parametrize("args, message", [
    (["m.json", "-o", "x.abc"], "cannot write .abc"),
    (["m.json", "-o", "x.bvh", "--frames", "5:2"], "frame range 5:2"),
    (["m.json", "-o", "x.bvh", "--frames", "a-b"], "START:END"),
    (["m.json", "-o", "x.bvh", "--fps", "0"], "--fps"),
    (["m.json", "-o", "x.bvh", "--scale", "-1"], "scale must be"),
    (["missing.npy", "-o", "x.bvh"], "file not found"),
    (["bad.npy", "-o", "x.bvh"], "(frames, 22, 3)"),
    (["m.txt", "-o", "x.bvh"], "cannot read .txt"),
    (["m.json", "-o", "nofolder/x.bvh"], "does not exist"),
])
def test_export_errors_are_one_clear_line(model_dir, codes_json, tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.json").write_bytes(codes_json.read_bytes())
    (tmp_path / "m.txt").write_text("hello")
    np.save(tmp_path / "bad.npy", np.zeros((4, 3)))
    assert cli(["export", *args, "--model", str(model_dir)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x.bvh").exists()
