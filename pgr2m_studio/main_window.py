"""The main window: a vispy 3D viewport, a pose-code grid dock, menus and a status bar.

A first plain window. The skeleton is a fixed placeholder pose and the grid holds zeros until the
motion core (``core``) supplies documents to show.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMessageBox

import pyqtgraph as pg  # after PySide6, so pyqtgraph picks that binding
import vispy.scene
from vispy.scene import visuals

from core.skeleton import T2M

# HumanML3D "t2m" 22-joint skeleton: parent of each joint (-1 for the root).
T2M_PARENTS: list[int] = T2M.parents.tolist()

# Placeholder pose to show before any motion is loaded: a T-pose, rough positions in metres,
# Y up, facing +Z, the character's left on +X, feet on the floor.
T2M_REST_POSE = np.array(
    [
        [0.00, 0.95, 0.00],  # 0 pelvis
        [0.09, 0.86, 0.00],  # 1 left hip
        [-0.09, 0.86, 0.00],  # 2 right hip
        [0.00, 1.06, -0.01],  # 3 spine 1
        [0.10, 0.49, 0.01],  # 4 left knee
        [-0.10, 0.49, 0.01],  # 5 right knee
        [0.00, 1.20, 0.00],  # 6 spine 2
        [0.10, 0.08, -0.03],  # 7 left ankle
        [-0.10, 0.08, -0.03],  # 8 right ankle
        [0.00, 1.26, 0.01],  # 9 spine 3
        [0.11, 0.02, 0.10],  # 10 left foot
        [-0.11, 0.02, 0.10],  # 11 right foot
        [0.00, 1.48, -0.01],  # 12 neck
        [0.08, 1.39, 0.00],  # 13 left collar
        [-0.08, 1.39, 0.00],  # 14 right collar
        [0.00, 1.62, 0.04],  # 15 head
        [0.18, 1.42, -0.01],  # 16 left shoulder
        [-0.18, 1.42, -0.01],  # 17 right shoulder
        [0.44, 1.42, -0.02],  # 18 left elbow
        [-0.44, 1.42, -0.02],  # 19 right elbow
        [0.69, 1.42, -0.01],  # 20 left wrist
        [-0.69, 1.42, -0.01],  # 21 right wrist
    ],
    dtype=np.float32,
)

POSE_CODE_GROUPS = 70  # rows of the pose-code grid
PLACEHOLDER_STEPS = 49  # columns (token steps) of the placeholder grid

STATUS_NO_MODEL = "No model loaded — motion core preview"

ABOUT_HTML = """
<h3>PGR²M Studio</h3>
<p>Text to 3D skeleton motion with interpretable, editable pose codes. Early version:
the motion core is in progress and no model is trained yet.</p>
<p><b>Licences</b></p>
<ul>
<li>Code: Apache-2.0.</li>
<li>Bandai-Namco-Research-Motiondataset and any model trained on it: CC BY-NC 4.0
(non-commercial). Trained on the Bandai-Namco-Research-Motiondataset (Bandai Namco Research Inc.,
CC BY-NC 4.0), converted to the HumanML3D 22-joint format. Kobayashi et al., arXiv:2306.08861
(2023).</li>
<li>smplx (optional extra, not included): non-commercial licence of its authors.</li>
<li>Qt / PySide6: LGPL-3.0. vispy, pyqtgraph, numpy: BSD/MIT. PyTorch: BSD-3-Clause.</li>
</ul>
"""


def floor_grid_segments(half_extent: float = 2.0, step: float = 0.25) -> np.ndarray:
    """Line-segment endpoints (2 rows per segment) of a square grid on the y = 0 plane."""
    ticks = np.arange(-half_extent, half_extent + step / 2, step, dtype=np.float32)
    n = len(ticks)
    seg = np.zeros((2 * n, 2, 3), dtype=np.float32)
    seg[:n, 0] = np.stack([ticks, np.zeros(n), np.full(n, -half_extent)], axis=1)  # along Z
    seg[:n, 1] = np.stack([ticks, np.zeros(n), np.full(n, half_extent)], axis=1)
    seg[n:, 0] = np.stack([np.full(n, -half_extent), np.zeros(n), ticks], axis=1)  # along X
    seg[n:, 1] = np.stack([np.full(n, half_extent), np.zeros(n), ticks], axis=1)
    return seg.reshape(-1, 3)


def bone_segments(joints: np.ndarray, parents: list[int]) -> np.ndarray:
    """Line-segment endpoints, parent then child, for every non-root joint: shape (2 * bones, 3)."""
    child = np.array([j for j, p in enumerate(parents) if p >= 0])
    parent = np.array([parents[j] for j in child])
    return np.stack([joints[parent], joints[child]], axis=1).reshape(-1, 3)


class Viewport:
    """The vispy 3D view: floor grid and one skeleton (one Markers + one segment Line visual)."""

    def __init__(self, parent=None):
        self.canvas = vispy.scene.SceneCanvas(
            app="pyside6", keys=None, show=False, bgcolor="#1e2127", parent=parent
        )
        self.view = self.canvas.central_widget.add_view()
        self.view.camera = vispy.scene.TurntableCamera(
            up="+y", fov=45.0, elevation=12.0, azimuth=30.0, distance=4.2, center=(0.0, 0.85, 0.0)
        )
        self.floor = visuals.Line(
            pos=floor_grid_segments(), connect="segments", color=(0.55, 0.58, 0.62, 1.0),
            parent=self.view.scene,
        )
        self.bones = visuals.Line(connect="segments", color=(0.95, 0.75, 0.30, 1.0), width=3.0,
                                  parent=self.view.scene)
        self.joints = visuals.Markers(parent=self.view.scene)
        self.parents = list(T2M_PARENTS)
        self.set_pose(T2M_REST_POSE)

    @property
    def widget(self):
        return self.canvas.native

    def set_pose(self, joints: np.ndarray) -> None:
        """Show one frame of joint positions, shape (22, 3), metres, Y up."""
        joints = np.asarray(joints, dtype=np.float32)
        self.bones.set_data(pos=bone_segments(joints, self.parents))
        self.joints.set_data(joints, size=9, face_color=(0.30, 0.75, 0.95, 1.0),
                             edge_color="white", edge_width=1.0)


class PoseCodeGrid(pg.PlotWidget):
    """The pose-code grid: one ImageItem, rows are pose-code groups, columns are token steps."""

    def __init__(self, parent=None):
        super().__init__(parent=parent)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        cmap = pg.ColorMap([0.0, 1.0], [(44, 48, 56), (240, 190, 80)])  # off -> on
        self.image_item.setLookupTable(cmap.getLookupTable(nPts=256))
        self.addItem(self.image_item)
        plot = self.getPlotItem()
        plot.setLabel("bottom", "token step")
        plot.setLabel("left", "pose-code group")
        plot.invertY(True)
        plot.setMenuEnabled(False)
        self.set_codes(np.zeros((POSE_CODE_GROUPS, PLACEHOLDER_STEPS), dtype=np.float32))

    def set_codes(self, grid: np.ndarray) -> None:
        """Show a (groups, steps) array of values in [0, 1]."""
        self.image_item.setImage(np.asarray(grid, dtype=np.float32), levels=(0.0, 1.0))
        self.getPlotItem().vb.autoRange(padding=0.0)


class MainWindow(QMainWindow):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("PGR²M Studio")
        self.setObjectName("MainWindow")

        self.viewport = Viewport(parent=self)
        self.setCentralWidget(self.viewport.widget)

        self.pose_code_grid = PoseCodeGrid()
        dock = QDockWidget("Pose codes", self)
        dock.setObjectName("PoseCodeDock")
        dock.setWidget(self.pose_code_grid)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
        self.addDockWidget(Qt.BottomDockWidgetArea, dock)
        self.pose_code_dock = dock
        self.resizeDocks([dock], [240], Qt.Vertical)

        self._build_menus()
        self.statusBar().showMessage(STATUS_NO_MODEL)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        self.quit_action.setShortcutContext(Qt.ApplicationShortcut)
        self.quit_action.triggered.connect(self.close)
        file_menu.addAction(self.quit_action)

        help_menu = self.menuBar().addMenu("&Help")
        self.about_action = QAction("&About PGR²M Studio", self)
        self.about_action.triggered.connect(self.show_about)
        help_menu.addAction(self.about_action)

    def show_about(self) -> None:
        QMessageBox.about(self, "About PGR²M Studio", ABOUT_HTML)
