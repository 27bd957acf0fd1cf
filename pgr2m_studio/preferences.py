"""Preferences kept with QSettings: device, model folder, theme and edit guidance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QApplication,
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
    QWidget,
)

THEMES = ("system", "light", "dark")


def cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken torch install just means no GPU choice
        return False


@dataclass
class Preferences:
    device: str = "cpu"
    model_dir: str = ""           # empty: the built-in model
    theme: str = "system"
    guided_edits: bool = True

    @classmethod
    def load(cls, settings: QSettings) -> "Preferences":
        p = cls()
        device = str(settings.value("prefs/device", p.device))
        p.device = device if device in ("cpu", "cuda") else "cpu"
        p.model_dir = str(settings.value("model_dir", "") or "")
        theme = str(settings.value("prefs/theme", p.theme))
        p.theme = theme if theme in THEMES else "system"
        p.guided_edits = str(settings.value("prefs/guided_edits", "true")).lower() in ("true", "1")
        return p

    def save(self, settings: QSettings) -> None:
        settings.setValue("prefs/device", self.device)
        settings.setValue("model_dir", self.model_dir)
        settings.setValue("prefs/theme", self.theme)
        settings.setValue("prefs/guided_edits", "true" if self.guided_edits else "false")


_system_palette: QPalette | None = None


def apply_theme(theme: str, app: QApplication | None = None) -> None:
    """Light, dark, or the system's own palette (kept from the first call)."""
    global _system_palette
    app = app or QApplication.instance()
    if app is None:
        return
    if _system_palette is None:
        _system_palette = QPalette(app.palette())
    if theme == "dark":
        pal = QPalette()
        base, text, mid = QColor(37, 37, 40), QColor(225, 225, 225), QColor(53, 53, 58)
        for role, color in ((QPalette.Window, mid), (QPalette.WindowText, text), (QPalette.Base, base),
                            (QPalette.AlternateBase, mid), (QPalette.Text, text), (QPalette.Button, mid),
                            (QPalette.ButtonText, text), (QPalette.ToolTipBase, base),
                            (QPalette.ToolTipText, text), (QPalette.Highlight, QColor(42, 130, 218)),
                            (QPalette.HighlightedText, QColor(255, 255, 255)),
                            (QPalette.PlaceholderText, QColor(140, 140, 140))):
            pal.setColor(role, color)
        pal.setColor(QPalette.Disabled, QPalette.Text, QColor(120, 120, 120))
        pal.setColor(QPalette.Disabled, QPalette.ButtonText, QColor(120, 120, 120))
        app.setPalette(pal)
    elif theme == "light":
        app.setPalette(app.style().standardPalette())
    else:
        app.setPalette(_system_palette)


class PreferencesDialog(QDialog):
    def __init__(self, prefs: Preferences, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Preferences")
        form = QFormLayout(self)

        self.device = QComboBox()
        self.device.addItem("CPU", "cpu")
        if cuda_available():
            self.device.addItem("GPU (CUDA)", "cuda")
        self.device.setCurrentIndex(max(0, self.device.findData(prefs.device)))
        form.addRow("Device", self.device)

        row = QWidget()
        h = QHBoxLayout(row)
        h.setContentsMargins(0, 0, 0, 0)
        self.model_dir = QLineEdit(prefs.model_dir)
        self.model_dir.setPlaceholderText("built-in model (Bandai Namco, small)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        builtin = QPushButton("Built-in")
        builtin.clicked.connect(lambda: self.model_dir.setText(""))
        for w in (self.model_dir, browse, builtin):
            h.addWidget(w)
        form.addRow("Model folder", row)

        self.theme = QComboBox()
        for t in THEMES:
            self.theme.addItem(t.capitalize(), t)
        self.theme.setCurrentIndex(self.theme.findData(prefs.theme))
        form.addRow("Theme", self.theme)

        self.guided = QCheckBox("Guide edits so the asked pose code shows (slower, about 0.3 s)")
        self.guided.setChecked(prefs.guided_edits)
        form.addRow("Edits", self.guided)

        self.problem = QLabel()
        self.problem.setStyleSheet("color: #c0392b")
        form.addRow("", self.problem)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form.addRow(self.buttons)
        self.model_dir.textChanged.connect(self._check)
        self._check()

    def _browse(self):
        folder = QFileDialog.getExistingDirectory(self, "Model folder (tokenizer/, base/, refine/)",
                                                  self.model_dir.text())
        if folder:
            self.model_dir.setText(folder)

    def _check(self, *_):
        text = self.model_dir.text().strip()
        problem = ""
        if text:
            missing = [p for p in ("tokenizer", "base", "refine") if not (Path(text) / p).is_dir()]
            if not Path(text).is_dir():
                problem = "That folder does not exist."
            elif missing:
                problem = f"Not a model folder: no {', '.join(missing)}/ inside."
        self.problem.setText(problem)
        self.buttons.button(QDialogButtonBox.Ok).setEnabled(not problem)

    def preferences(self) -> Preferences:
        return Preferences(device=self.device.currentData(), model_dir=self.model_dir.text().strip(),
                           theme=self.theme.currentData(), guided_edits=self.guided.isChecked())
