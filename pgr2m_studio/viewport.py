"""The 3D viewport: a vispy scene with the skeleton, floor grid, root trajectory, foot contacts, an
optional ghost (the previous motion) and an optional body mesh (skinned per frame beforehand).

The skeleton is one Markers visual (joints) and one segment Line visual (bones); a new frame only
uploads new vertex data. Joints are (T, 22, 3) arrays in metres, Y up (core.model.pipeline.Motion).
"""

from __future__ import annotations

import numpy as np
import vispy.scene
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget
from vispy.scene import visuals

from core.features import FOOT_CONTACT_THRESHOLD, foot_contacts
from core.skeleton import T2M

# colours (RGBA): left limbs warm, right limbs cool, so the sides read apart
LEFT = (0.98, 0.60, 0.22, 1.0)
RIGHT = (0.30, 0.68, 0.98, 1.0)
CENTRE = (0.86, 0.88, 0.92, 1.0)
CONTACT = (0.30, 1.00, 0.40, 1.0)
TRAJECTORY = (0.82, 0.50, 0.98, 0.9)
GRID = (0.40, 0.43, 0.48, 1.0)
GHOST_ALPHA = 0.3
BODY = (0.80, 0.78, 0.74, 1.0)
BACKGROUND = "#1e2127"

JOINT_SIZE = 9.0
CONTACT_SIZE = 14.0
FEET = list(T2M.left_foot) + list(T2M.right_foot)  # order of foot_contacts' columns
CONTACT_HEIGHT = 0.15   # a foot above the floor by more than this never touches (metres)
FOLLOW_HEIGHT = 0.9     # camera centre height in follow mode, above the floor (metres)


# helpers (pure numpy)

def bone_pairs(parents) -> tuple[np.ndarray, np.ndarray]:
    """(parent, child) joint indices of every bone."""
    child = np.array([j for j, p in enumerate(parents) if p >= 0])
    return np.asarray(parents)[child], child


def bone_segments(joints: np.ndarray, parents=T2M.parents) -> np.ndarray:
    """(J, 3) -> (2 * bones, 3) segment endpoints, parent then child."""
    parent, child = bone_pairs(parents)
    return np.stack([joints[parent], joints[child]], axis=1).reshape(-1, 3)


def side_colours(names) -> np.ndarray:
    """(J, 4) colour of each joint: left, right or centre."""
    return np.array([LEFT if n.startswith("left") else RIGHT if n.startswith("right") else CENTRE
                     for n in names], dtype=np.float32)


def floor_grid(centre=(0.0, 0.0), half_extent: float = 2.0, step: float = 0.5,
               y: float = 0.0) -> np.ndarray:
    """Segment endpoints of a square grid on the plane at height y."""
    ticks = np.arange(-half_extent, half_extent + step / 2, step)
    lo, hi = -half_extent, half_extent
    seg = [((t, lo), (t, hi)) for t in ticks] + [((lo, t), (hi, t)) for t in ticks]
    xz = np.asarray(seg).reshape(-1, 2) + centre
    return np.column_stack([xz[:, 0], np.full(len(xz), y), xz[:, 1]]).astype(np.float32)


def contacts_of(joints: np.ndarray, fps: float, floor_y: float) -> np.ndarray:
    """(T, J, 3) -> (T, 4) bool for (l ankle, l toe, r ankle, r toe): still and near the floor."""
    t = len(joints)
    near = joints[:, FEET, 1] - floor_y < CONTACT_HEIGHT
    if t < 2:
        return near
    # HumanML3D's threshold is per frame at 20 fps; scale it to this frame rate
    still = foot_contacts(joints, T2M, FOOT_CONTACT_THRESHOLD * (T2M.fps / fps) ** 2) > 0
    return near & np.concatenate([still, still[-1:]])


def rest_motion() -> np.ndarray:
    """(1, J, 3) rest pose standing on y = 0, shown before any motion."""
    pose = T2M.rest_pose()
    pose[:, 1] -= pose[:, 1].min()
    return pose[None].astype(np.float32)


# the widget

class Viewport(QWidget):
    """One vispy SceneCanvas (``.canvas``) showing a motion one frame at a time."""

    follow_changed = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.canvas = vispy.scene.SceneCanvas(app="pyside6", keys=None, show=False,
                                              bgcolor=BACKGROUND, parent=self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.canvas.native)
        self.view = self.canvas.central_widget.add_view()
        self.camera = vispy.scene.TurntableCamera(up="+y", fov=45.0, elevation=15.0, azimuth=30.0)
        self.view.camera = self.camera
        scene = self.view.scene

        self.floor = visuals.Line(connect="segments", color=GRID, parent=scene)
        self.trajectory = visuals.Line(connect="strip", color=TRAJECTORY, width=2.0, parent=scene)
        self.ghost_bones = visuals.Line(connect="segments", width=3.0, parent=scene)
        self.ghost_joints = visuals.Markers(parent=scene)
        # a placeholder triangle until set_body: the shading filter needs mesh data
        self.body = visuals.Mesh(vertices=np.zeros((3, 3), np.float32), faces=np.array([[0, 1, 2]], np.uint32),
                                 color=BODY, shading="smooth", parent=scene)
        self.body.visible = False
        self._body: np.ndarray | None = None
        self._body_faces = np.zeros((0, 3), np.uint32)
        self.bones = visuals.Line(connect="segments", width=4.0, parent=scene)
        self.joints = visuals.Markers(parent=scene)

        self.parents = T2M.parents
        colours = side_colours(T2M.joint_names)
        self._joint_colours = colours
        bone_colours = np.repeat(colours[bone_pairs(self.parents)[1]], 2, axis=0)
        self.bones.set_data(color=bone_colours)
        ghost = bone_colours.copy()
        ghost[:, 3] = GHOST_ALPHA
        self.ghost_bones.set_data(color=ghost)

        self._motion = np.zeros((0, T2M.n_joints, 3), np.float32)
        self._ghost: np.ndarray | None = None
        self.contacts = np.zeros((0, 4), bool)
        self.fps = T2M.fps
        self.frame = 0
        self.follow = False
        self._follow_y = FOLLOW_HEIGHT
        self.set_ghost(None)
        self.set_motion(rest_motion(), T2M.fps)

    # motion data

    @property
    def frame_count(self) -> int:
        return len(self._motion)

    @property
    def motion(self) -> np.ndarray:
        return self._motion

    def set_motion(self, joints: np.ndarray, fps: float = T2M.fps, *, reframe: bool = True) -> None:
        """Show a new motion, (T, 22, 3) metres Y up; reframe=False keeps the camera as it is."""
        joints = np.asarray(joints, dtype=np.float32)
        if joints.ndim != 3 or joints.shape[1:] != (T2M.n_joints, 3) or len(joints) == 0:
            raise ValueError(f"expected joints of shape (T, {T2M.n_joints}, 3), got {joints.shape}")
        self._motion, self.fps = joints, float(fps)
        floor_y = float(joints[..., 1].min())
        self.contacts = contacts_of(joints, self.fps, floor_y)
        self._follow_y = floor_y + FOLLOW_HEIGHT

        root = joints[:, 0, [0, 2]]
        lo, hi = root.min(0), root.max(0)
        half = np.ceil((np.max(hi - lo) / 2 + 1.5) * 2) / 2       # 1.5 m margin, 0.5 m steps
        centre = np.round((lo + hi) / 2 / 0.5) * 0.5
        self._floor = (centre, half, floor_y, root)
        self.set_body(None)             # the body belonged to the previous motion (draws the floor)
        self.set_frame(0)
        if reframe and self.follow:
            self.centre_on_character()
        elif reframe:
            self.frame_all()

    def set_ghost(self, joints: np.ndarray | None) -> None:
        """A translucent second skeleton, (T, 22, 3) or (22, 3); None hides it."""
        if joints is not None:
            joints = np.asarray(joints, dtype=np.float32)
            joints = joints[None] if joints.ndim == 2 else joints
        self._ghost = joints
        self.ghost_joints.visible = self.ghost_bones.visible = joints is not None
        self._draw_ghost()

    @property
    def ghost(self) -> np.ndarray | None:
        return self._ghost

    def set_body(self, vertices: np.ndarray | None, faces: np.ndarray | None = None) -> None:
        """A body mesh moving with the motion: vertices (T, V, 3), one set per motion frame, metres
        Y up, and triangles faces (F, 3); None hides it. A new motion hides it too."""
        if vertices is None:
            self._body = None
            self.body.visible = False
            self._draw_floor()
            return
        vertices = np.asarray(vertices, dtype=np.float32)
        faces = np.asarray(faces, dtype=np.uint32) if faces is not None else self._body_faces
        if vertices.ndim != 3 or vertices.shape[2] != 3 or len(vertices) != self.frame_count:
            raise ValueError(f"expected body vertices of shape ({self.frame_count}, V, 3), got {vertices.shape}")
        if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0 or faces.max() >= vertices.shape[1]:
            raise ValueError("expected triangles (F, 3) indexing the body's vertices")
        self._body, self._body_faces = vertices, faces
        self.body.visible = True
        self._draw_floor(float(vertices[..., 1].min()))     # the soles, a little below the foot joints
        self._draw_body()

    @property
    def body_vertices(self) -> np.ndarray | None:
        return self._body

    # per frame

    def set_frame(self, i: int) -> None:
        """Show frame i (clamped): uploads the new vertex data only."""
        i = int(np.clip(i, 0, self.frame_count - 1))
        self.frame = i
        pose = self._motion[i]
        face = self._joint_colours.copy()
        size = np.full(len(pose), JOINT_SIZE, np.float32)
        touching = np.asarray(FEET)[self.contacts[i]]
        face[touching] = CONTACT
        size[touching] = CONTACT_SIZE
        self.joints.set_data(pose, size=size, face_color=face, edge_color="black", edge_width=1.0)
        self.bones.set_data(pos=bone_segments(pose, self.parents))
        self._draw_ghost()
        self._draw_body()
        if self.follow:
            self.centre_on_character(keep_zoom=True)

    def _draw_ghost(self) -> None:
        if self._ghost is None:
            return
        pose = self._ghost[min(max(self.frame, 0), len(self._ghost) - 1)]
        face = self._joint_colours.copy()
        face[:, 3] = GHOST_ALPHA
        self.ghost_joints.set_data(pose, size=JOINT_SIZE - 2, face_color=face,
                                   edge_color=(0, 0, 0, GHOST_ALPHA), edge_width=1.0)
        self.ghost_bones.set_data(pos=bone_segments(pose, self.parents))

    def _draw_floor(self, lowest: float | None = None) -> None:
        centre, half, floor_y, root = self._floor
        y = floor_y if lowest is None else min(floor_y, lowest)
        self.floor.set_data(pos=floor_grid(centre, half, 0.5, y))
        path = np.column_stack([root[:, 0], np.full(len(root), y + 0.005), root[:, 1]])
        self.trajectory.set_data(pos=path if len(path) > 1 else np.repeat(path, 2, 0))
        self.trajectory.visible = len(path) > 1

    def _draw_body(self) -> None:
        if self._body is not None:
            self.body.set_data(vertices=self._body[min(self.frame, len(self._body) - 1)],
                               faces=self._body_faces, color=BODY)

    # camera

    def set_follow(self, on: bool) -> None:
        """Keep the character centred as it moves (the orbit angles and zoom stay the user's)."""
        on = bool(on)
        if on == self.follow:
            return
        self.follow = on
        if on:
            self.centre_on_character(keep_zoom=True)
        self.follow_changed.emit(on)

    def centre_on_character(self, keep_zoom: bool = False) -> None:
        x, _, z = self._motion[self.frame, 0]
        self.camera.center = (float(x), self._follow_y, float(z))
        if not keep_zoom:
            self.camera.scale_factor = 3.0

    def frame_all(self) -> None:
        """Fit the whole motion (all frames) in view; turns follow off."""
        self.set_follow(False)
        pts = self._motion.reshape(-1, 3)
        lo, hi = pts.min(0), pts.max(0)
        self.camera.center = tuple(float(v) for v in (lo + hi) / 2)
        self.camera.scale_factor = float(max(np.linalg.norm(hi - lo), 1.8)) * 1.25   # room for raised arms
