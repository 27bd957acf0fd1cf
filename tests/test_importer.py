import json
import shutil

import numpy as np
import pytest

from core import atomic, posecodes
from core.cli import main as cli
from core.data.bandai_namco import TEMPLATES, read_labels
from core.data.captions import Templates
from core.data.humanml3d import HumanML3DFolder
from core.data.importer import assign_splits, import_bvh_folder
from core.features import recover_joints

BN_LABELS = {"dataset-1_walk_normal_001": {"content": "walk", "style": "normal"},
             "dataset-1_bye_happy_001": {"content": "bye", "style": "happy"},
             "dataset-1_kick_normal_001": {"content": "kick", "style": "normal"}}


@pytest.fixture
def bvh_dir(tmp_path, test_data):
    src = tmp_path / "src"
    src.mkdir()
    for f in (test_data / "bvh").glob("dataset-1_*.bvh"):
        shutil.copy(f, src / f.name)
    return src


def test_import_makes_a_loadable_humanml3d_folder(bvh_dir, tmp_path):
    out = tmp_path / "out"
    report = import_bvh_folder(bvh_dir, out, labels=BN_LABELS, templates=Templates.load(TEMPLATES),
                               joint_map="bandai-namco", workers=1)
    assert sorted(report.converted) == sorted(BN_LABELS) and not report.failures
    for cid in BN_LABELS:
        vecs = atomic.load_npy(out / "new_joint_vecs" / f"{cid}.npy")
        joints = atomic.load_npy(out / "new_joints" / f"{cid}.npy")
        assert vecs.shape == (39, 263) and joints.shape == (39, 22, 3)   # 60 frames at 30 fps -> 40 at 20
        np.testing.assert_allclose(joints, recover_joints(vecs), atol=1e-5)
        np.testing.assert_array_equal(atomic.load_npy(out / "codes" / f"{cid}.npy"), posecodes.parse(joints))
        lines = (out / "texts" / f"{cid}.txt").read_text().splitlines()
        assert len(lines) == 3 and all(line.count("#") == 3 for line in lines)
    assert "goodbye" in (out / "texts" / "dataset-1_bye_happy_001.txt").read_text()
    all_ids = (out / "all.txt").read_text().split()
    assert sorted(all_ids) == sorted(BN_LABELS)
    ds = HumanML3DFolder(out, "all")
    assert len(ds) == 3 and not ds.problems and ds.mean.shape == (263,)
    # metres, not centimetres: the rig's head joint (skull base) of standing adults
    heads = np.concatenate([recover_joints(r.features)[:, 15, 1] for r in ds.records])
    assert 1.2 < np.median(heads) < 1.9
    info = json.loads((out / "dataset.json").read_text())
    assert info["clips"] == 3 and info["fps"] == 20.0


def test_bad_files_are_reported_and_the_rest_go_on(bvh_dir, tmp_path):
    (bvh_dir / "broken.bvh").write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0\n")
    (bvh_dir / "nolabel.bvh").write_bytes((bvh_dir / "dataset-1_walk_normal_001.bvh").read_bytes())
    labels = dict(BN_LABELS, broken={"content": "walk", "style": "normal"})
    report = import_bvh_folder(bvh_dir, tmp_path / "out", labels=labels, templates=Templates.load(TEMPLATES),
                               joint_map="bandai-namco", workers=2)
    assert len(report.converted) == 3
    failed = dict(report.failures)
    assert any("broken.bvh" in f and "line 4" in why for f, why in failed.items())
    assert any("nolabel.bvh" in f and "style" in why for f, why in failed.items())
    summary = report.summary()
    assert "2 file(s) failed" in summary and "broken.bvh" in summary


def test_import_resumes_and_keeps_finished_clips(bvh_dir, tmp_path):
    out = tmp_path / "out"
    t = Templates.load(TEMPLATES)
    import_bvh_folder(bvh_dir, out, labels=BN_LABELS, templates=t, joint_map="bandai-namco", workers=1)
    done = out / "new_joint_vecs" / "dataset-1_kick_normal_001.npy"
    before = done.stat().st_mtime_ns
    (out / "new_joint_vecs" / "dataset-1_walk_normal_001.npy").unlink()     # as if killed mid-way
    report = import_bvh_folder(bvh_dir, out, labels=BN_LABELS, templates=t, joint_map="bandai-namco", workers=1)
    assert report.converted == ["dataset-1_walk_normal_001"] and len(report.skipped_existing) == 2
    assert done.stat().st_mtime_ns == before


def test_text_labels_and_sidecar_json(bvh_dir, tmp_path):
    for cid in BN_LABELS:
        (bvh_dir / f"{cid}.json").write_text(json.dumps({"text": [f"a person does {cid}", "someone moves"]}))
    report = import_bvh_folder(bvh_dir, tmp_path / "out", workers=1)      # rig recognised automatically
    assert len(report.converted) == 3, report.failures
    assert (tmp_path / "out" / "texts" / "dataset-1_kick_normal_001.txt").read_text().startswith(
        "a person does dataset-1_kick_normal_001#")


def test_bandai_namco_sidecar_labels(test_data, tmp_path):
    root = tmp_path / "Bandai-Namco-Research-Motiondataset-1"
    (root / "cfg").mkdir(parents=True)
    (root / "data").mkdir()
    contents = ["walk", "run", "dash", "walk-back", "walk-left", "walk-right", "bow", "bye", "guide", "byebye",
                "respond", "call", "punch", "kick", "slash", "dance-long", "dance-short"]
    (root / "cfg" / "content_label.txt").write_text("".join(f"dataset-1_{c}\n" for c in contents))
    (root / "cfg" / "style_label.txt").write_text("dataset-1_normal\ndataset-1_happy\n")
    for f in (test_data / "bvh").glob("dataset-1_*"):
        shutil.copy(f, root / "data" / f.name)
    (root / "data" / "dataset-1_dance-long_normal_001.json").write_text('{"content": 0, "style": 0}')
    labels, problems = read_labels(root)
    raw = {k: json.loads((root / "data" / f"{k}.json").read_text()) for k in labels}
    assert labels["dataset-1_bye_happy_001"] == {"content": "bye", "style": "happy", "take": "001"}
    assert labels["dataset-1_kick_normal_001"]["content"] == contents[raw["dataset-1_kick_normal_001"]["content"]]
    assert len(problems) == 1 and "without a BVH" in problems[0][1]


def test_split_is_fixed_and_stratified():
    groups = {"walk": [f"w{i}" for i in range(20)], "bow": [f"b{i}" for i in range(10)], "rare": ["r0", "r1"]}
    a = assign_splits(groups)
    assert sorted(a["train"] + a["val"] + a["test"]) == sorted(sum(groups.values(), []))
    assert sum(i.startswith("w") for i in a["test"]) == 2 and sum(i.startswith("b") for i in a["test"]) == 1
    assert {"r0", "r1"} <= set(a["train"])
    groups["walk"].append("w99")
    b = assign_splits(groups)
    moved = [i for i in a["train"] if i in b["test"]]
    assert len(moved) <= 1


def test_cli_import_and_info(bvh_dir, tmp_path, capsys):
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps(BN_LABELS))
    out = tmp_path / "out"
    rc = cli(["import-bvh", str(bvh_dir), str(out), "--labels", str(labels), "--templates", str(TEMPLATES),
              "--joint-map", "bandai-namco", "--workers", "1"])
    assert rc == 0 and "3 clips" in capsys.readouterr().out
    rc = cli(["dataset-info", str(out), "--json", str(tmp_path / "stats.json")])
    text = capsys.readouterr().out
    assert rc == 0 and "3 clips" in text and "codes never used" in text
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["frames"] == 3 * 39 and len(stats["groups"]) == 70


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert cli(["dataset-info", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "dataset folder not found" in err and "Traceback" not in err
    bad = tmp_path / "t.json"
    bad.write_text("{")
    assert cli(["import-bvh", str(tmp_path), str(tmp_path / "o"), "--templates", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
