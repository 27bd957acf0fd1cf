import json
import tarfile

import numpy as np
import pytest
from conftest import BANDAI_NAMCO

from core import posecodes
from core.data import bandai_namco
from core.data.humanml3d import HumanML3DFolder

CONTENTS = ["walk", "run", "dash", "walk-back", "walk-left", "walk-right", "bow", "bye", "guide", "byebye",
            "respond", "call", "punch", "kick", "slash", "dance-long", "dance-short"]
STYLES = ["normal", "happy", "sad", "angry", "proud", "not-confident", "masculinity", "feminine", "childish",
          "old", "tired", "active", "musical", "giant", "chimpira"]


def make_archive(folder, test_data):
    top = "Bandai-Namco-Research-Motiondataset-1"
    path = folder / "bandai-namco-motion-1.tar.xz"
    with tarfile.open(path, "w:xz") as tar:
        for name, items in (("content", CONTENTS), ("style", STYLES)):
            f = folder / f"{name}.txt"
            f.write_text("".join(f"dataset-1_{c}\n" for c in items))
            tar.add(f, f"{top}/cfg/{name}_label.txt")
        for f in sorted((test_data / "bvh").glob("dataset-1_*")):
            tar.add(f, f"{top}/data/{f.name}")
        orphan = folder / "orphan.json"
        orphan.write_text('{"content": 15, "style": 0}')
        tar.add(orphan, f"{top}/data/dataset-1_dance-long_normal_001.json")
    return path


def test_recipe_on_a_small_archive(tmp_path, test_data):
    archives = tmp_path / "archives"
    archives.mkdir()
    make_archive(archives, test_data)
    out = tmp_path / "bn"
    report = bandai_namco.prepare(out, archives, workers=1)
    assert len(report.converted) == 3 and not report.failures
    assert any("dance-long" in n and "without a BVH" in n for n in report.notes)
    assert not [p for p in out.iterdir() if p.name.startswith("pgr2m-bn-")]      # temp folder removed
    assert "CC BY-NC 4.0" in (out / "LICENSE.md").read_text()
    labels = json.loads((out / "labels.json").read_text())
    assert labels["dataset-1_kick_normal_001"]["content"] == "kick"
    ds = HumanML3DFolder(out, "all")
    assert len(ds) == 3 and all(r.codes.shape == (len(r.features), 392) for r in ds.records)


def test_missing_archives_message(tmp_path):
    with pytest.raises(FileNotFoundError, match="bandai-namco-motion-1.tar.xz"):
        bandai_namco.prepare(tmp_path / "out", tmp_path)


@pytest.mark.corpus
@pytest.mark.slow
@pytest.mark.skipif(not (BANDAI_NAMCO / bandai_namco.ARCHIVES[0]).is_file(), reason="Bandai Namco archives not present")
def test_whole_corpus_converts_and_loads(tmp_path):
    out = tmp_path / "bn"
    report = bandai_namco.prepare(out, BANDAI_NAMCO)
    assert not report.failures, report.summary()
    assert len(report.converted) == 3076
    ds = HumanML3DFolder(out, "test")
    train = (out / "train.txt").read_text().split()
    assert 250 < len(ds) < 400 and len(train) > 2000 and not set(train) & set(ds.ids)
    assert all((r.codes.sum(1) == posecodes.N_GROUPS).all() for r in ds.records)
    # semantic check of left and right across the pipeline: who raises which hand
    labels = json.loads((out / "labels.json").read_text())
    left = posecodes.code_by_name("left hand above left shoulder").index
    right = posecodes.code_by_name("right hand above right shoulder").index
    everything = HumanML3DFolder(out, "all").records
    for content, up, down in (("wave-left-hand", left, right), ("wave-right-hand", right, left)):
        codes = np.concatenate([r.codes for r in everything if labels[r.id]["content"] == content])
        assert codes[:, up].mean() > 0.3 and codes[:, down].mean() < 0.05
