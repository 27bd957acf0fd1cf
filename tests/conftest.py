import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = Path(__file__).resolve().parent / "data"
# GUI tests need a display with OpenGL: `bash scripts/run-tests.sh` runs them under Xvfb + Mesa
GUI = [
    pytest.mark.gui,
    pytest.mark.skipif(sys.platform.startswith("linux")
                       and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")),
                       reason="no display; run under Xvfb with `bash scripts/run-tests.sh`"),
]
SHARED = Path(os.environ.get("PGR2M_SHARED", REPO.parent / "shared"))
BANDAI_NAMCO = SHARED / "data" / "bandai-namco"


@pytest.fixture
def test_data() -> Path:
    return TEST_DATA


LABELS = {"dataset-1_walk_normal_001": {"content": "walk", "style": "normal"},
          "dataset-1_bye_happy_001": {"content": "bye", "style": "happy"},
          "dataset-1_kick_normal_001": {"content": "kick", "style": "normal"}}


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """Three fixture clips imported as a HumanML3D folder; every split holds all three."""
    from core.data.bandai_namco import TEMPLATES
    from core.data.captions import Templates
    from core.data.importer import import_bvh_folder

    root = tmp_path_factory.mktemp("tiny")
    src = root / "src"
    src.mkdir()
    for f in (TEST_DATA / "bvh").glob("dataset-1_*.bvh"):
        shutil.copy(f, src / f.name)
    out = root / "data"
    import_bvh_folder(src, out, labels=LABELS, templates=Templates.load(TEMPLATES), joint_map="bandai-namco",
                      workers=1)
    for split in ("train", "val", "test"):          # three clips: use all of them everywhere
        shutil.copy(out / "all.txt", out / f"{split}.txt")
    return out


@pytest.fixture
def studio_env(tmp_path, monkeypatch):
    """Settings and autosaves of a MainWindow kept out of the user's home: Qt's test paths,
    empty settings, autosaves under tmp_path. Returns the main_window module."""
    from PySide6.QtCore import QCoreApplication, QSettings, QStandardPaths

    import pgr2m_studio.main_window as mw

    QStandardPaths.setTestModeEnabled(True)
    QCoreApplication.setOrganizationName("PGR2M-tests")
    QSettings().clear()
    monkeypatch.setattr(mw, "autosave_folder", lambda: tmp_path / "autosave")
    return mw


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A tiny random model folder (tokenizer/, base/, refine/), built once; tests copy it to change it."""
    from model_factory import make_model_folder

    return make_model_folder(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def one_torch_thread():
    """Many tiny forward passes: on a busy machine torch's second thread only spin-waits."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
