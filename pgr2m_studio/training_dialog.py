"""Model → Train a Model…: choose a dataset, stages, configuration, device and output folder;
training runs in a separate process (training_run) while this dialog shows progress, live loss
curves and validation metrics, and can cancel, resume, and load the finished model."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QCoreApplication, QSettings, Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from pgr2m_studio.loss_plot import LossPlot
from pgr2m_studio.training_run import (
    MODEL_STAGES,
    STAGES,
    MetricsTail,
    TrainingProcess,
    TrainSettings,
    holds_run,
    is_model_folder,
)

POLL_MS = 500
KINDS = {"humanml3d": "HumanML3D folder", "bvh": "BVH folder (imported first)"}
STAGE_TIPS = {"evaluator": "Only for FID / R-precision evaluation; generating does not need it"}


def open_for(window) -> "TrainingDialog":
    """Show the window's training dialog (one per window; it keeps running when hidden)."""
    dialog = window.findChild(QDialog, "TrainingDialog")
    if dialog is None:
        dialog = TrainingDialog(window.load_model, window)
    dialog.show()
    dialog.raise_()
    dialog.activateWindow()
    return dialog


def _guess_kind(folder: str) -> str | None:
    p = Path(folder)
    if (p / "new_joint_vecs").is_dir():
        return "humanml3d"
    if p.is_dir() and next(p.rglob("*.bvh"), None) is not None:
        return "bvh"
    return None


class TrainingDialog(QDialog):
    def __init__(self, load_model: Callable[[str], None], parent=None):
        super().__init__(parent)
        self.setObjectName("TrainingDialog")
        self.setWindowTitle("Train a Model")
        self._load_model = load_model
        self.settings: TrainSettings | None = None
        self._tails: dict[str, MetricsTail] = {}
        self._fraction: dict[str, float] = {}
        self._val: dict[str, dict] = {}
        self.process = TrainingProcess(self)
        self.process.output.connect(self._on_output)
        self.process.ended.connect(self._on_ended)
        self._timer = QTimer(self, interval=POLL_MS, timeout=self._poll)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.process.stop_now)
        self._build()
        self._restore()
        self._update_buttons()

    # -- building ----------------------------------------------------------------

    def _folder_row(self, edit: QLineEdit, title: str, pick_file: bool = False) -> QWidget:
        def browse():
            if pick_file:
                path, _ = QFileDialog.getOpenFileName(self, title, edit.text(), "JSON (*.json)")
            else:
                path = QFileDialog.getExistingDirectory(self, title, edit.text())
            if path:
                edit.setText(path)
                edit.editingFinished.emit()

        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(edit, 1)
        button = QPushButton("Browse…")
        button.clicked.connect(browse)
        layout.addWidget(button)
        return row

    def _build(self) -> None:
        self.data_edit = QLineEdit(placeholderText="a HumanML3D-format folder or a folder of BVH files")
        self.data_edit.editingFinished.connect(self._data_chosen)
        self.kind_combo = QComboBox()
        for key, text in KINDS.items():
            self.kind_combo.addItem(text, key)
        self.kind_combo.currentIndexChanged.connect(self._update_buttons)
        self.templates_edit = QLineEdit(placeholderText="optional: label → caption templates (JSON)")
        self.templates_edit.setToolTip("BVH folder: captions come from a 'text' label in each clip's .json, "
                                       "or from these templates applied to its labels")
        self.stage_boxes = {}
        stages = QWidget()
        row = QHBoxLayout(stages)
        row.setContentsMargins(0, 0, 0, 0)
        for name in STAGES:
            box = QCheckBox(name)
            box.setChecked(name in MODEL_STAGES)
            box.setToolTip(STAGE_TIPS.get(name, ""))
            box.toggled.connect(self._update_buttons)
            self.stage_boxes[name] = box
            row.addWidget(box)
        row.addStretch(1)
        self.config_combo = QComboBox()
        self.config_combo.addItems(["small", "paper"])
        self.config_combo.setToolTip("small: a few thousand steps, fine on a CPU; paper: the published sizes (a GPU)")
        self.device_combo = QComboBox()
        self.device_combo.addItem("cpu")
        import torch

        if torch.cuda.is_available():
            self.device_combo.addItem("cuda")
            self.device_combo.setCurrentText("cuda")
        self.out_edit = QLineEdit(placeholderText="folder for checkpoints, logs and the finished model")
        self.out_edit.textChanged.connect(self._update_buttons)
        self.out_edit.editingFinished.connect(self._out_chosen)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(0, 10_000_000)
        self.steps_spin.setSpecialValueText("preset default")
        self.steps_spin.setSuffix(" steps per stage")
        self.extra_edit = QLineEdit(placeholderText="e.g. batch_size=16 base:model.dim=128")
        self.extra_edit.setToolTip("Settings overrides (pgr2m train --set), separated by spaces; "
                                   "'stage:key=value' applies to one stage")

        form = QFormLayout()
        form.addRow("Dataset", self._folder_row(self.data_edit, "Dataset folder"))
        form.addRow("Dataset kind", self.kind_combo)
        form.addRow("Caption templates", self._folder_row(self.templates_edit, "Caption templates", True))
        form.addRow("Stages", stages)
        form.addRow("Configuration", self.config_combo)
        form.addRow("Device", self.device_combo)
        form.addRow("Output folder", self._folder_row(self.out_edit, "Output folder"))
        form.addRow("Steps", self.steps_spin)
        form.addRow("Extra settings", self.extra_edit)
        self.form = QWidget()
        self.form.setLayout(form)

        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(self.resume)
        self.load_button = QPushButton("Load Model")
        self.load_button.clicked.connect(self.load_result)
        close = QPushButton("Close")
        close.setToolTip("Training goes on in the background; reopen from the Model menu")
        close.clicked.connect(self.hide)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.cancel_button, self.resume_button, self.load_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.status = QLabel("Choose a dataset and an output folder, then Start.")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.val_label = QLabel()
        self.val_label.setWordWrap(True)
        self.val_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.plot = LossPlot()
        self.log = QPlainTextEdit(readOnly=True)
        self.log.setMaximumBlockCount(2000)
        self.log.setLineWrapMode(QPlainTextEdit.NoWrap)
        split = QSplitter(Qt.Vertical)
        split.addWidget(self.plot)
        split.addWidget(self.log)
        split.setSizes([300, 120])

        layout = QVBoxLayout(self)
        layout.addWidget(self.form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.val_label)
        layout.addWidget(split, 1)
        self.resize(760, 820)

    # -- form ----------------------------------------------------------------------

    def form_settings(self) -> TrainSettings:
        return TrainSettings(data=self.data_edit.text().strip(), out=self.out_edit.text().strip(),
                             kind=self.kind_combo.currentData(),
                             stages=[n for n, b in self.stage_boxes.items() if b.isChecked()],
                             config=self.config_combo.currentText(), device=self.device_combo.currentText(),
                             max_steps=self.steps_spin.value(), extra=shlex.split(self.extra_edit.text()),
                             templates=self.templates_edit.text().strip())

    def set_form(self, s: TrainSettings) -> None:
        self.data_edit.setText(s.data)
        self.kind_combo.setCurrentIndex(max(0, self.kind_combo.findData(s.kind)))
        for name, box in self.stage_boxes.items():
            box.setChecked(name in s.stages)
        self.config_combo.setCurrentText(s.config)
        if self.device_combo.findText(s.device) >= 0:
            self.device_combo.setCurrentText(s.device)
        self.out_edit.setText(s.out)
        self.steps_spin.setValue(s.max_steps)
        self.extra_edit.setText(shlex.join(s.extra))
        self.templates_edit.setText(s.templates)

    def _data_chosen(self) -> None:
        kind = _guess_kind(self.data_edit.text().strip())
        if kind:
            self.kind_combo.setCurrentIndex(self.kind_combo.findData(kind))

    def _out_chosen(self) -> None:
        out = self.out_edit.text().strip()
        if out and not self.process.running:
            self._follow(TrainSettings.load(out) or self.form_settings())     # show an earlier run's curves
            self._poll()

    def _restore(self) -> None:
        s = QSettings()
        self.data_edit.setText(str(s.value("training/data", "")))
        self._data_chosen()
        self.out_edit.setText(str(s.value("training/out", "")))
        self._out_chosen()

    def _update_buttons(self, *_) -> None:
        running = self.process.running
        out = self.out_edit.text().strip()
        self.form.setEnabled(not running)
        self.templates_edit.setEnabled(self.kind_combo.currentData() == "bvh")
        self.start_button.setEnabled(not running and any(b.isChecked() for b in self.stage_boxes.values()))
        self.cancel_button.setEnabled(running)
        self.resume_button.setEnabled(not running and bool(out) and holds_run(out))
        self.load_button.setEnabled(not running and bool(out) and is_model_folder(out))

    # -- running -------------------------------------------------------------------

    def start(self) -> None:
        s = self.form_settings()
        problem = (not s.data and "Choose a dataset folder.") or (not s.out and "Choose an output folder.") or \
                  (not s.stages and "Choose at least one stage.") or \
                  (holds_run(s.out) and f"{s.out} already holds a training run: Resume continues it, "
                                        "or choose another output folder.")
        if problem:
            self._set_status(problem, error=True)
            return
        self._run(s)

    def resume(self) -> None:
        out = self.out_edit.text().strip()
        saved = TrainSettings.load(out)
        if saved is not None:
            saved.out = out
            self.set_form(saved)
        self._run(saved or self.form_settings(), resuming=True)

    def _run(self, s: TrainSettings, resuming: bool = False) -> None:
        try:
            Path(s.out).mkdir(parents=True, exist_ok=True)
            s.save()
        except OSError as exc:
            self._set_status(f"Cannot write to the output folder: {exc}", error=True)
            return
        q = QSettings()
        q.setValue("training/data", s.data)
        q.setValue("training/out", s.out)
        self._follow(s)
        self._poll()                    # a resumed run shows its history at once
        self.log.clear()
        self.process.start(s.commands())
        self._timer.start()
        self._set_status(("Resuming" if resuming else "Starting") + " the training process…")
        self._update_buttons()

    def cancel(self) -> None:
        if self.process.running:
            self._set_status("Stopping at the next step (a checkpoint is saved)…")
            self.process.cancel()

    def load_result(self) -> None:
        out = self.out_edit.text().strip()
        if is_model_folder(out):
            self._load_model(out)
            self._set_status(f"Loading the model in {out}…")

    def _on_ended(self, outcome: str, message: str) -> None:
        self._timer.stop()
        self._poll()
        if outcome == "finished":
            for stage in self._fraction:
                self._fraction[stage] = 1.0
            self._show_progress()
            self._set_status("Training finished." + (" Load Model uses it now." if is_model_folder(
                self.settings.out) else ""))
        elif outcome == "cancelled":
            self._set_status("Cancelled. Resume continues from the last checkpoint.")
        else:
            self._set_status(f"Training failed: {message}", error=True)
            self.log.appendPlainText("--- the training process stopped with an error; its last messages:\n"
                                     + "\n".join(list(self.process.errors)[-12:]))
        self._update_buttons()

    def _on_output(self, line: str, err: bool) -> None:
        self.log.appendPlainText(line)
        if err or self.settings is None:
            return
        if line.startswith("$ ") and " import-bvh " in line:
            self._set_status(f"Importing the BVH folder into {self.settings.dataset()}…")
        elif line.startswith("== ") and line.endswith(" =="):
            self._set_status(f"Training {line.strip('= ')}…")
        elif line.endswith("; skipped") and ":" in line:
            stage = line.split(":", 1)[0]
            if stage in self._fraction:
                self._fraction[stage] = 1.0
                self._show_progress()

    # -- progress from the metrics files ----------------------------------------------

    def _follow(self, s: TrainSettings) -> None:
        self.settings = s
        self._tails = {st: MetricsTail(Path(s.out) / st / "metrics.jsonl") for st in s.stages}
        self._fraction = {st: 0.0 for st in s.stages}
        self._val = {}
        self.plot.clear_series()
        self.val_label.clear()
        self._show_progress()

    def _poll(self) -> None:
        for stage, tail in self._tails.items():
            rewritten, events = tail.read()
            if rewritten:
                self.plot.clear_series(f"{stage} ")
            logs = [e for e in events if e.get("kind") == "log" and _num(e.get("loss"))]
            if logs:
                self.plot.add_points(f"{stage} loss", [e.get("step", 0) for e in logs], [e["loss"] for e in logs],
                                     group=stage)
                last = logs[-1]
                total = last.get("max_steps") or 0
                self._fraction[stage] = min(1.0, last.get("step", 0) / total) if total else 0.0
                if self.process.running:
                    self._set_status(f"Training {stage}: step {last.get('step')} / {total}"
                                     + (f" · {last['steps_per_s']:.1f} steps/s" if _num(last.get("steps_per_s")) else ""))
            vals = [e for e in events if e.get("kind") == "val"]
            with_loss = [e for e in vals if _num(e.get("val_loss"))]
            if with_loss:
                self.plot.add_points(f"{stage} val_loss", [e.get("step", 0) for e in with_loss],
                                     [e["val_loss"] for e in with_loss], group=stage, dashed=True)
            if vals:
                self._val[stage] = vals[-1]
        self._show_progress()
        self._show_val()

    def _show_progress(self) -> None:
        n = max(1, len(self._fraction))
        self.progress.setValue(round(1000 * sum(self._fraction.values()) / n))

    def _show_val(self) -> None:
        lines = []
        for stage, e in self._val.items():
            keys = sorted((k for k, v in e.items() if k.startswith("val_") and _num(v)), key=lambda k: k[-1].isdigit())
            shown = [(k, e[k]) for k in keys[:4]]          # overall metrics before per-level ones
            text = ", ".join(f"{k[4:]} {v:.4g}" for k, v in shown)
            best = f" (best {e['best']:.4g})" if _num(e.get("best")) else ""
            lines.append(f"<b>{stage}</b> step {e.get('step')}: {text}{best}")
        self.val_label.setText("<br>".join(lines))

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setStyleSheet("color: #e05050;" if error else "")
        self.status.setText(text)


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v
