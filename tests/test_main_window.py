"""The main window driven through its real widgets: generate -> pick -> edit -> undo -> save ->
reopen -> export, on a tiny random model (the flows, not the model quality)."""


import numpy as np
import pytest
from conftest import GUI

pytestmark = GUI


@pytest.fixture
def window(qtbot, model_dir, tmp_path, monkeypatch):
    from PySide6.QtCore import QCoreApplication, QSettings, QStandardPaths

    QStandardPaths.setTestModeEnabled(True)          # settings and autosaves out of the user's home
    QCoreApplication.setOrganizationName("PGR2M-tests")
    QSettings().clear()
    import pgr2m_studio.main_window as mw
    from pgr2m_studio.main_window import MainWindow

    monkeypatch.setattr(mw, "autosave_folder", lambda: tmp_path / "autosave")

    win = MainWindow(str(model_dir))          # closed below, not by qtbot: its close would ask to save
    win.resize(1200, 800)
    win.show()
    qtbot.waitUntil(lambda: win.pipeline is not None, timeout=60_000)
    yield win
    qtbot.waitUntil(lambda: not win.runner.busy, timeout=30_000)
    if win.document.dirty:
        win.document.mark_saved(tmp_path / "x.pgr2m")
    win.close()
    win.deleteLater()


def generate(qtbot, win, prompt="a person walks", samples=2, seed=5, length=40):
    win.panel.set_settings(prompt, length, samples, seed)
    win.panel.generate_button.click()
    qtbot.waitUntil(lambda: len(win.document.samples) == samples and win._generate_job is None, timeout=30_000)


def test_generate_pick_edit_undo_save_reopen_export(window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox

    from core import posecodes as pc
    from core.formats.bvh import read
    from core.motion import Edit, steps_showing

    win = window
    generate(qtbot, win)
    assert win.panel.list.count() == 2 and win.document.current == 0
    assert win.viewport.frame_count == 40 and win.playback.n_frames == 40
    assert win.grid.n_steps == 10
    # pick the second sample from the list
    win.panel.list.setCurrentRow(1)
    assert win.document.current == 1
    assert np.array_equal(win.viewport.motion, win.document.samples[1].joints)
    # edit: make a code active over steps 2..5
    original = win.document.motion
    code = next(c for c in pc.GROUPS[0].code_ids if not (original.code_ids()[2:6, 0] == c).any())
    win.request_edit(code, 2, 6)
    qtbot.waitUntil(lambda: win.document.motion is not original, timeout=10_000)
    assert (win.document.motion.code_ids()[2:6, 0] == code).all()
    assert win.undo_stack.count() == 2 and "steps 2–5" in win.undo_stack.text(1)
    # the status bar says how many edited steps the body shows, re-parsed from the joints
    shown, n = steps_showing(win.document.motion, Edit(code, 2, 6))
    assert n == 4 and f"the body shows it on {shown} of 4 steps" in win.statusBar().currentMessage()
    assert win.viewport.ghost is not None                       # the previous motion as a ghost
    assert win.windowTitle().startswith("untitled *")
    win.undo_stack.undo()
    assert win.document.motion is original
    win.undo_stack.redo()
    edited = win.document.motion
    assert (edited.code_ids()[2:6, 0] == code).all()
    # save, then reopen in a fresh document
    path = tmp_path / "walk.pgr2m"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(path), PROJECT))
    assert win.save()
    assert path.is_file() and not win.document.dirty and "walk.pgr2m" in win.windowTitle()
    win.new_document()
    assert win.document.motion is None and win.undo_stack.count() == 0
    assert win.open_project(str(path))
    assert win.document.current == 1 and np.array_equal(win.document.motion.joints, edited.joints)
    assert win.viewport.frame_count == 40
    # export through the menu action: the dialog picks FBX, 60 fps and frames 8..28
    from pgr2m_studio.export_dialog import ExportDialog

    fbx = tmp_path / "out.fbx"

    def fill(dialog):
        dialog.format.setCurrentIndex(dialog.format.findData("fbx"))
        dialog.path.setText(str(fbx))
        dialog.rate.setCurrentIndex(dialog.rate.findData(60.0))
        dialog.whole.setChecked(False)
        dialog.start.setValue(8)
        dialog.end.setValue(28)
        assert dialog.buttons.button(dialog.buttons.StandardButton.Ok).isEnabled()
        return QDialog.Accepted

    monkeypatch.setattr(ExportDialog, "exec", fill)
    win.export_action.trigger()
    from core.formats.fbx_binary import parse as parse_fbx

    root = parse_fbx(fbx.read_bytes())
    objects = next(n for n in root.children if n.name == "Objects")
    assert sum(n.name == "Model" for n in objects.children) == 22
    bvh = tmp_path / "out.bvh"
    assert win.export({"path": bvh, "fmt": "bvh", "fps": None, "frames": None, "scale": 100.0})
    assert read(bvh).n_frames == 40 and read(bvh).joints[1].offset[1] != 0
    # a refused export says why and writes nothing
    warned = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *a: warned.append(a[2]))
    assert not win.export({"path": tmp_path / "x.bvh", "fmt": "bvh", "frames": (30, 10)})
    assert "frame range" in warned[0] and not (tmp_path / "x.bvh").exists()


PROJECT = "PGR²M projects (*.pgr2m)"


def test_edits_queue_in_order_and_a_drag_is_one_undo_step(window, qtbot):
    from core import posecodes as pc

    win = window
    generate(qtbot, win, samples=1)
    g = pc.GROUPS[2]
    a, b = g.first_code, g.first_code + 1
    win.request_edit(a, 0, 3)          # two quick edits: the second applies to the first's result
    win.request_edit(b, 1, 2)
    qtbot.waitUntil(lambda: win.undo_stack.count() == 3, timeout=10_000)
    ids = win.document.motion.code_ids()[:, 2]
    assert list(ids[:3]) == [a, b, a]


def test_broken_project_shows_a_message_and_keeps_the_work(window, qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    win = window
    generate(qtbot, win, samples=1)
    before = win.document.motion
    bad = tmp_path / "broken.pgr2m"
    bad.write_bytes(b"not a zip")
    shown = []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: shown.append(text))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Discard)
    assert not win.open_project(str(bad))
    assert shown and "broken.pgr2m" in shown[0]
    assert win.document.motion is before


def test_model_errors_are_reported_not_fatal(window, qtbot, tmp_path):
    win = window
    win.load_model(str(tmp_path / "missing"))
    qtbot.waitUntil(lambda: "not found" in win.panel.status.text(), timeout=10_000)
    assert win.pipeline is not None and win.panel.generate_button.isEnabled()   # the old model stays


def test_autosave_and_recovery(window, qtbot, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    import pgr2m_studio.main_window as mw

    autosave_folder = mw.autosave_folder
    win = window
    generate(qtbot, win, samples=1)
    win.autosave()
    assert (autosave_folder() / f"{win.document.uid}.pgr2m").is_file()
    joints = win.document.motion.joints
    win.document = type(win.document)()      # a crash: the work is gone, its autosave stays
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    win.offer_recovery()
    assert np.array_equal(win.document.motion.joints, joints)


def test_preferences_reach_edits_and_the_model(window, qtbot, monkeypatch, model_dir, tmp_path):
    from dataclasses import replace

    from core import posecodes as pc
    from core.pipeline import Pipeline

    win = window
    generate(qtbot, win, samples=1)
    seen = []
    real = Pipeline.edit
    monkeypatch.setattr(Pipeline, "edit", lambda self, *a, **k: (seen.append(k.get("guided")), real(self, *a, **k))[1])
    code = pc.GROUPS[3].first_code
    win.request_edit(code, 0, 2)
    qtbot.waitUntil(lambda: win._edit_job is None and win.undo_stack.count() == 2, timeout=30_000)
    win.apply_preferences(replace(win.prefs, guided_edits=False))
    win.request_edit(code + 1, 0, 2)
    qtbot.waitUntil(lambda: win._edit_job is None and win.undo_stack.count() == 3, timeout=30_000)
    assert seen == [True, False]
    # another device or model folder reloads the model; the choice is kept for the next start
    old = win.pipeline
    win.apply_preferences(replace(win.prefs, model_dir=str(model_dir)))
    qtbot.waitUntil(lambda: win.pipeline is not old and win.pipeline is not None, timeout=60_000)
    from pgr2m_studio.preferences import Preferences

    assert Preferences.load(win.settings).model_dir == str(model_dir)
    assert Preferences.load(win.settings).guided_edits is False


def test_the_shown_motion_is_prepared_for_its_next_edit(window, qtbot):
    from core import posecodes as pc

    win = window
    prepared = []
    real = win.pipeline.prepare_edit
    win.pipeline.prepare_edit = lambda m: (prepared.append(m), real(m))
    generate(qtbot, win)
    qtbot.waitUntil(lambda: not win.runner.busy, timeout=30_000)
    assert prepared and prepared[-1] is win.document.motion
    win.panel.list.setCurrentRow(1)                  # another sample shown: prepared too
    qtbot.waitUntil(lambda: not win.runner.busy and prepared[-1] is win.document.motion, timeout=30_000)
    before = win.document.motion
    win.request_edit(pc.GROUPS[0].code_ids[1], 1, 3)
    qtbot.waitUntil(lambda: win.document.motion is not before and not win.runner.busy, timeout=30_000)
    assert prepared[-1] is win.document.motion       # the edit's result, for the next click
