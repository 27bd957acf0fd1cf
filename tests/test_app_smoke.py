"""Smoke test of the main window: it opens, draws its 3D view and has its basic parts.

Needs a display with OpenGL: run it with `bash scripts/run-tests.sh` (Xvfb + Mesa).
"""


import numpy as np
import pytest
from conftest import GUI

pytestmark = GUI


@pytest.fixture
def window(qtbot):
    from PySide6.QtCore import QCoreApplication, QSettings, QStandardPaths

    QStandardPaths.setTestModeEnabled(True)
    QCoreApplication.setOrganizationName("PGR2M-tests")
    QSettings().clear()
    from pgr2m_studio.main_window import MainWindow

    win = MainWindow(load_model=False)
    qtbot.addWidget(win)
    win.resize(1024, 700)
    win.show()
    qtbot.waitExposed(win)
    return win


def test_title_and_parts(window):
    assert window.windowTitle() == "untitled — PGR²M Studio"
    assert set(window.docks) == {"generate", "grid", "inspector", "history"}
    assert not window.panel.generate_button.isEnabled()          # no model loaded yet


def test_viewport_renders_something(window, qtbot):
    from vispy.scene import SceneCanvas

    canvas = window.viewport.canvas
    assert isinstance(canvas, SceneCanvas)
    assert window.centralWidget().isAncestorOf(canvas.native)
    qtbot.wait(50)
    frame = canvas.render(alpha=False)
    assert frame.ndim == 3 and frame.shape[0] > 50 and frame.shape[1] > 50
    colours = np.unique(frame.reshape(-1, frame.shape[2]), axis=0)
    assert len(colours) > 10, "the 3D view rendered a uniform image: skeleton and floor missing"


def test_pose_code_grid_has_one_row_per_code(window):
    window.grid.clear()
    assert window.grid.image_item.image.shape[0] == 392 or window.grid.image_item.image.shape[1] == 392


def test_quit_action(window):
    from PySide6.QtGui import QKeySequence

    actions = {a.text().replace("&", ""): a for m in window.menuBar().actions()
               if m.menu() is not None for a in m.menu().actions()}
    quit_action = actions["Quit"]
    assert quit_action.shortcut() == QKeySequence("Ctrl+Q")
    quit_action.trigger()
    assert not window.isVisible()


def test_about_lists_licences(window, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    shown = []
    monkeypatch.setattr(QMessageBox, "about", lambda parent, title, text: shown.append(text))
    window.about_action.trigger()
    assert shown and "Apache-2.0" in shown[0] and "CC BY-NC 4.0" in shown[0]


def test_unattended_screenshot_run_generates_saves_and_quits(model_dir, tmp_path):
    """`main.py --prompt ... --screenshot PNG` (the README's check) must end by itself: the
    generated motion makes the document unsaved, and a "save the changes?" question would wait
    for ever with nobody there."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    png = tmp_path / "shot.png"
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"),
               XDG_CACHE_HOME=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    run = subprocess.run([sys.executable, str(root / "main.py"), "--model", str(model_dir), "--prompt", "walk",
                          "--seed", "1", "--screenshot", str(png)],
                         env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"screenshot saved to {png}" in run.stdout
    assert png.stat().st_size > 10_000
