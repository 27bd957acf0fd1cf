"""The Generate panel: prompt with examples, length, samples and seed, Generate / Cancel with
progress, and the list of generated samples to pick from."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from core import limits

EXAMPLES = Path(__file__).resolve().parents[1] / "resources" / "example_prompts.txt"


def example_prompts() -> list[str]:
    try:
        return [s.strip() for s in EXAMPLES.read_text(encoding="utf-8").splitlines() if s.strip()]
    except OSError:
        return []


class GeneratePanel(QWidget):
    generate_requested = Signal(str, object, int, object)   # prompt, length or None, samples, seed or None
    cancel_requested = Signal()
    sample_picked = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.prompt = QComboBox()
        self.prompt.setEditable(True)
        self.prompt.setInsertPolicy(QComboBox.NoInsert)
        self.prompt.addItems(example_prompts())
        self.prompt.setCurrentIndex(0)
        self.prompt.lineEdit().setPlaceholderText("describe a motion, e.g. a person waves the right hand")
        self.prompt.lineEdit().setMaxLength(1000)
        self.prompt.setToolTip("Type a prompt or pick an example")
        self.prompt.lineEdit().returnPressed.connect(self._generate)

        self.length = QSpinBox()
        self.length.setRange(0, limits.MAX_LENGTH)
        self.length.setSingleStep(4)
        self.length.setSpecialValueText("automatic")
        self.length.setSuffix(" frames")
        self.length.setToolTip("Frames at 20 fps (up to 196 = 9.8 s); automatic lets the model end the motion")
        self.samples = QSpinBox()
        self.samples.setRange(1, limits.MAX_SAMPLES)
        self.samples.setValue(3)
        self.seed = QSpinBox()
        self.seed.setRange(-1, 2**31 - 1)
        self.seed.setValue(-1)
        self.seed.setSpecialValueText("random")

        self.generate_button = QPushButton("Generate")
        self.generate_button.setDefault(True)
        self.generate_button.clicked.connect(self._generate)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        keep = self.progress.sizePolicy()
        keep.setRetainSizeWhenHidden(True)              # no layout jump when it appears
        self.progress.setSizePolicy(keep)
        self.progress.setVisible(False)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.list = QListWidget()
        self.list.currentRowChanged.connect(self._picked)

        form = QFormLayout()
        form.addRow("Length", self.length)
        form.addRow("Samples", self.samples)
        form.addRow("Seed", self.seed)
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Prompt"))
        layout.addWidget(self.prompt)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(QLabel("Samples"))
        layout.addWidget(self.list, 1)
        self._filling = False

    def text(self) -> str:
        return self.prompt.currentText().strip()

    def _generate(self) -> None:
        if not self.generate_button.isEnabled():
            return
        if not self.text():
            self.status.setText("Type a prompt first.")
            return
        length = self.length.value() or None
        seed = None if self.seed.value() < 0 else self.seed.value()
        self.generate_requested.emit(self.text(), length, self.samples.value(), seed)

    def set_busy(self, busy: bool, message: str = "") -> None:
        self.generate_button.setEnabled(not busy)
        self.cancel_button.setEnabled(busy)
        self.progress.setRange(0, 0 if busy else 1)     # 0..0 = indeterminate
        # hidden when idle: the style's busy animation otherwise keeps running after the bar
        # stops, repainting the window 60 times a second and taking a CPU core from the model
        self.progress.setVisible(busy)
        self.status.setText(message)

    def set_ready(self, ready: bool, message: str = "") -> None:
        self.generate_button.setEnabled(ready)
        self.status.setText(message)

    def set_samples(self, labels: list[str], current: int) -> None:
        self._filling = True
        try:
            self.list.clear()
            self.list.addItems(labels)
            if 0 <= current < len(labels):
                self.list.setCurrentRow(current)
        finally:
            self._filling = False

    def _picked(self, row: int) -> None:
        if not self._filling and row >= 0:
            self.sample_picked.emit(row)

    def set_settings(self, prompt: str, length, n_samples: int, seed) -> None:
        self.prompt.setEditText(prompt)
        self.length.setValue(int(length or 0))
        self.samples.setValue(int(n_samples))
        self.seed.setValue(-1 if seed is None else int(seed))
