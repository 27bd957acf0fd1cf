"""Export options and preferences dialogs, through their widgets."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GUI

pytestmark = GUI


def test_export_dialog_follows_format_and_path(qtbot, tmp_path):
    from pgr2m_studio.export_dialog import ExportDialog

    d = ExportDialog(80, 20.0, str(tmp_path), "walk")
    qtbot.addWidget(d)
    ok = d.buttons.button(d.buttons.StandardButton.Ok)
    assert d.fmt == "bvh" and d.path.text().endswith("walk.bvh") and ok.isEnabled()
    d.format.setCurrentIndex(d.format.findData("fbx"))
    assert d.path.text().endswith("walk.fbx") and d.units.currentData() == 100.0 and d.units.isEnabled()
    d.format.setCurrentIndex(d.format.findData("glb"))
    assert d.path.text().endswith("walk.glb") and not d.units.isEnabled() and d.rate.isEnabled()
    assert d.options()["scale"] is None
    # typing another extension switches the format
    d.path.setText(str(tmp_path / "x.json"))
    d.path.textEdited.emit(d.path.text())
    assert d.fmt == "json" and not d.rate.isEnabled()
    # features keep .npy; the options are what save_motion takes
    d.format.setCurrentIndex(d.format.findData("features"))
    d.path.textEdited.emit(str(tmp_path / "f.npy"))
    assert d.fmt == "features"
    d.format.setCurrentIndex(d.format.findData("bvh"))
    d.rate.setCurrentIndex(d.rate.findData(30.0))
    d.whole.setChecked(False)
    d.start.setValue(10)
    d.end.setValue(50)
    opts = d.options()
    assert opts["fmt"] == "bvh" and opts["fps"] == 30.0 and opts["frames"] == (10, 50) and opts["scale"] == 1.0
    assert Path(opts["path"]).suffix == ".bvh"
    # the native rate is not a resampling
    d.rate.setCurrentIndex(d.rate.findData(20.0))
    assert d.options()["fps"] is None
    # problems disable Export and say why
    d.start.setValue(50)
    assert not ok.isEnabled() and "start before" in d.problem.text()
    d.whole.setChecked(True)
    assert ok.isEnabled()
    d.path.setText(str(tmp_path / "missing" / "x.bvh"))
    d.path.textEdited.emit(d.path.text())
    assert not ok.isEnabled() and "does not exist" in d.problem.text()


@pytest.fixture
def settings():
    from PySide6.QtCore import QCoreApplication, QSettings, QStandardPaths

    QStandardPaths.setTestModeEnabled(True)
    QCoreApplication.setOrganizationName("PGR2M-tests")
    s = QSettings()
    s.clear()
    yield s
    s.clear()


def test_preferences_round_trip_and_validate(qtbot, tmp_path, settings):
    from PySide6.QtWidgets import QApplication

    from pgr2m_studio.preferences import Preferences, PreferencesDialog, apply_theme

    assert Preferences.load(settings) == Preferences()        # defaults: cpu, built-in, system, guided
    settings.setValue("prefs/device", "tpu")                   # junk falls back to the default
    settings.setValue("prefs/theme", "neon")
    assert Preferences.load(settings) == Preferences()
    d = PreferencesDialog(Preferences())
    qtbot.addWidget(d)
    ok = d.buttons.button(d.buttons.StandardButton.Ok)
    d.model_dir.setText(str(tmp_path))
    assert not ok.isEnabled() and "tokenizer" in d.problem.text()
    for part in ("tokenizer", "base", "refine"):
        (tmp_path / part).mkdir()
    d.model_dir.clear()
    d.model_dir.setText(str(tmp_path))
    assert ok.isEnabled()
    d.theme.setCurrentIndex(d.theme.findData("dark"))
    d.guided.setChecked(False)
    prefs = d.preferences()
    prefs.save(settings)
    assert Preferences.load(settings) == prefs == Preferences("cpu", str(tmp_path), "dark", False)
    app = QApplication.instance()
    before = app.palette().window().color().lightness()
    apply_theme("dark")
    assert app.palette().window().color().lightness() < 100
    apply_theme("system")
    assert app.palette().window().color().lightness() == before
