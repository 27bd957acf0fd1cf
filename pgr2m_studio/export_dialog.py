"""Export options: file and format, frame rate, frame range and units."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

# (label, format, extension, what it is for)
FORMATS = (
    ("BVH", "bvh", ".bvh", "skeleton animation for Blender, MotionBuilder, most mocap tools"),
    ("FBX 7.4 (binary)", "fbx", ".fbx", "skeleton animation for Maya, Blender, Unity, Unreal"),
    ("glTF 2.0 (.glb)", "glb", ".glb", "skinned preview mesh and animation for web viewers and engines"),
    ("Joints, NumPy (.npy)", "npy", ".npy", "joint positions (frames, 22, 3) in metres, Y up"),
    ("HumanML3D features (.npy)", "features", ".npy", "the 263-d features (frames, 263) used for training"),
    ("Pose codes, JSON", "json", ".json", "the pose codes with names and the residual codes"),
)
RATES = (20.0, 24.0, 30.0, 60.0)
RIG_FORMATS = {"bvh", "fbx", "glb"}
SCALED = {"bvh": 1.0, "fbx": 100.0}      # default units per metre


class ExportDialog(QDialog):
    def __init__(self, n_frames: int, fps: float, folder: str, name: str = "motion", parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export motion")
        self._n, self._fps = n_frames, fps
        form = QFormLayout(self)

        self.format = QComboBox()
        for label, fmt, ext, tip in FORMATS:
            self.format.addItem(label, fmt)
            self.format.setItemData(self.format.count() - 1, tip, Qt.ToolTipRole)
        form.addRow("Format", self.format)
        self.about = QLabel()
        self.about.setWordWrap(True)
        form.addRow("", self.about)

        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        self.path = QLineEdit(str(Path(folder) / f"{name}.bvh"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        h.addWidget(self.path, 1)
        h.addWidget(browse)
        form.addRow("File", row)

        self.rate = QComboBox()
        for r in RATES:
            self.rate.addItem(f"{r:g} fps" + (" (as generated)" if r == fps else ", resampled"), r)
        form.addRow("Frame rate", self.rate)

        self.whole = QCheckBox(f"Whole motion ({n_frames} frames, {n_frames / fps:.1f} s)")
        self.whole.setChecked(True)
        self.start = QSpinBox()
        self.end = QSpinBox()
        for box in (self.start, self.end):
            box.setRange(0, n_frames)
            box.setSuffix(" frames")
        self.end.setValue(n_frames)
        rng = QWidget()
        h = QHBoxLayout(rng)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(self.whole)
        h.addWidget(QLabel("from"))
        h.addWidget(self.start)
        h.addWidget(QLabel("to"))
        h.addWidget(self.end)
        form.addRow("Range", rng)

        self.units = QComboBox()
        self.units.addItem("Metres", 1.0)
        self.units.addItem("Centimetres", 100.0)
        form.addRow("Units", self.units)

        self.problem = QLabel()
        self.problem.setStyleSheet("color: #c0392b")
        form.addRow("", self.problem)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.button(QDialogButtonBox.Ok).setText("Export")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)

        self.format.currentIndexChanged.connect(self._format_changed)
        self.path.textEdited.connect(self._path_edited)
        self.whole.toggled.connect(self._update)
        for box in (self.start, self.end):
            box.valueChanged.connect(self._update)
        self._format_changed()

    # -- state -------------------------------------------------------------------

    @property
    def fmt(self) -> str:
        return self.format.currentData()

    def _format_changed(self, *_):
        fmt = self.fmt
        ext = next(e for _, f, e, _ in FORMATS if f == fmt)
        self.about.setText(next(t for _, f, _, t in FORMATS if f == fmt))
        p = Path(self.path.text() or "motion")
        if p.suffix.lower() != ext:
            self.path.setText(str(p.with_suffix(ext)))
        self.units.setEnabled(fmt in SCALED)
        if fmt in SCALED:
            self.units.setCurrentIndex(self.units.findData(SCALED[fmt]))
        self.rate.setEnabled(fmt in RIG_FORMATS)
        if fmt not in RIG_FORMATS:
            self.rate.setCurrentIndex(self.rate.findData(self._fps))
        self._update()

    def _path_edited(self, text: str):
        ext = Path(text).suffix.lower()
        for i, (_, fmt, e, _) in enumerate(FORMATS):
            # .npy is ambiguous: keep features when it is chosen
            if e == ext and not (ext == ".npy" and self.fmt in ("npy", "features")):
                self.format.setCurrentIndex(i)
                break
        self._update()

    def _browse(self):
        label = self.format.currentText()
        ext = Path(self.path.text()).suffix or ".bvh"
        path, _ = QFileDialog.getSaveFileName(self, "Export motion", self.path.text(), f"{label} (*{ext})")
        if path:
            self.path.setText(path)
            self._path_edited(path)

    def _update(self, *_):
        whole = self.whole.isChecked()
        self.start.setEnabled(not whole)
        self.end.setEnabled(not whole)
        problem = self.problem_text()
        self.problem.setText(problem)
        self.buttons.button(QDialogButtonBox.Ok).setEnabled(not problem)

    def problem_text(self) -> str:
        path = Path(self.path.text().strip())
        if not self.path.text().strip():
            return "Choose a file to write."
        if not path.parent.is_dir():
            return f"The folder {path.parent} does not exist."
        if not self.whole.isChecked() and self.start.value() >= self.end.value():
            return "The range must start before it ends."
        return ""

    def options(self) -> dict:
        """Arguments for core.formats.motion_files.save_motion."""
        rate = self.rate.currentData()
        return {
            "path": Path(self.path.text().strip()),
            "fmt": self.fmt,
            "fps": rate if self.fmt in RIG_FORMATS and rate != self._fps else None,
            "frames": None if self.whole.isChecked() else (self.start.value(), self.end.value()),
            "scale": self.units.currentData() if self.fmt in SCALED else None,
        }
