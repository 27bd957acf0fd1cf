"""Smoke test of the main window: it opens, draws its 3D view and has its basic parts.

Needs a display with OpenGL: run it with `bash scripts/run-tests.sh` (Xvfb + Mesa).
"""

import os
import sys

import numpy as np
import pytest

pytestmark = [
    pytest.mark.gui,
    pytest.mark.skipif(
        sys.platform.startswith("linux")
        and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")),
        reason="no display; run under Xvfb with `bash scripts/run-tests.sh`",
    ),
]


@pytest.fixture
def window(qtbot):
    from pgr2m_studio.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    win.resize(1024, 700)
    win.show()
    qtbot.waitExposed(win)
    return win


def test_title_and_status(window):
    assert window.windowTitle() == "PGR²M Studio"
    assert window.statusBar().currentMessage() == "No model loaded — motion core preview"


def test_viewport_renders_something(window, qtbot):
    from vispy.scene import SceneCanvas

    canvas = window.viewport.canvas
    assert isinstance(canvas, SceneCanvas)
    assert window.centralWidget() is canvas.native
    qtbot.wait(50)
    frame = canvas.render(alpha=False)
    assert frame.ndim == 3 and frame.shape[0] > 50 and frame.shape[1] > 50
    colours = np.unique(frame.reshape(-1, frame.shape[2]), axis=0)
    assert len(colours) > 10, "the 3D view rendered a uniform image: skeleton and floor missing"


def test_skeleton_placeholder(window):
    from pgr2m_studio.main_window import T2M_PARENTS, T2M_REST_POSE

    assert T2M_PARENTS == [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]
    assert T2M_REST_POSE.shape == (22, 3)
    assert T2M_REST_POSE[:, 1].min() >= 0.0  # on or above the floor, Y up
    bones = window.viewport.bones.pos
    assert bones.shape == (2 * 21, 3)


def test_pose_code_grid(window):
    item = window.pose_code_grid.image_item
    assert item.image.shape == (70, 49)
    assert item.width() == 49 and item.height() == 70


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
