"""The main window: a document (core.document) shown by the viewport, the pose-code grid and
the inspector; changed only through undo commands; model calls run on a background thread."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QUndoStack
from PySide6.QtWidgets import (
    QDialog,
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMessageBox,
    QTextBrowser,
    QUndoView,
    QVBoxLayout,
    QWidget,
)

from core.document import Document
from pgr2m_studio.body_view import BodyView
from pgr2m_studio.commands import ReplaceMotion, SetSamples
from pgr2m_studio.generate_panel import GeneratePanel
from pgr2m_studio.inspector import CodeInspector
from pgr2m_studio.playback import Playback
from pgr2m_studio.preferences import Preferences, apply_theme
from pgr2m_studio.timeline import PoseCodeGrid
from pgr2m_studio.transport import TransportBar
from pgr2m_studio.viewport import Viewport
from pgr2m_studio.workers import JobRunner

ABOUT_HTML = """
<h3>PGR²M Studio</h3>
<p>Text to 3D skeleton motion with interpretable, editable pose codes
(PGR²M, arXiv 2512.22464).</p>
<p><b>Licences</b></p>
<ul>
<li>Code: Apache-2.0.</li>
<li>The built-in model is trained on the Bandai-Namco-Research-Motiondataset (Bandai Namco
Research Inc., CC BY-NC 4.0): the model and its output are for non-commercial use only.
Kobayashi et al., arXiv:2306.08861 (2023).</li>
<li>smplx (optional extra, not included): non-commercial licence of its authors.</li>
<li>Qt / PySide6: LGPL-3.0. vispy, pyqtgraph, numpy: BSD/MIT. PyTorch: BSD-3-Clause.</li>
</ul>
"""
PROJECT_FILTER = "PGR²M projects (*.pgr2m)"
AUTOSAVE_MS = 60_000
MAX_RECENT = 8


def autosave_folder() -> Path:
    return Path(QStandardPaths.writableLocation(QStandardPaths.AppDataLocation)) / "autosave"


class MainWindow(QMainWindow):
    def __init__(self, model_dir: str | None = None, *, load_model: bool = True, parent=None):
        super().__init__(parent)
        self.setWindowTitle("PGR²M Studio")
        self.setObjectName("MainWindow")
        self.settings = QSettings()
        self.prefs = Preferences.load(self.settings)
        apply_theme(self.prefs.theme)
        self.document = Document(n_samples=3)
        self.undo_stack = QUndoStack(self)
        self.runner = JobRunner(self)
        self.pipeline = None
        self.model_dir = model_dir or self.prefs.model_dir or None
        self._jobs: dict[int, str] = {}           # job id -> kind
        self._generate_job: int | None = None
        self._pending_edits: list = []
        self.ask_before_close = True            # False when started to run unattended (--screenshot, --quit-after)
        self._edit_job: int | None = None
        self._ghost = None

        self._build_views()
        self._build_menus()
        self.document.subscribe(self._on_document)
        self.undo_stack.cleanChanged.connect(self._update_title)
        self.runner.finished.connect(self._job_done)
        self.runner.failed.connect(self._job_failed)
        self._autosave_timer = QTimer(self, interval=AUTOSAVE_MS, timeout=self.autosave)
        self._autosave_timer.start()
        self._restore_layout()
        self._update_title()
        self.statusBar().showMessage("Starting…")
        if load_model:
            self.load_model(self.model_dir)

    # -- building ----------------------------------------------------------------

    def _build_views(self) -> None:
        self.viewport = Viewport()
        self.playback = Playback(parent=self)
        self.transport = TransportBar(self.playback)
        self.playback.frame_changed.connect(self._on_frame)
        self.transport.follow_toggled.connect(self.viewport.set_follow)
        self.viewport.follow_changed.connect(self.transport.set_follow)
        centre = QWidget()
        layout = QVBoxLayout(centre)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.viewport, 1)
        layout.addWidget(self.transport)
        self.setCentralWidget(centre)

        self.panel = GeneratePanel()
        self.panel.generate_requested.connect(self.generate)
        self.panel.cancel_requested.connect(self.cancel_generation)
        self.panel.sample_picked.connect(self.document.pick)
        self.panel.set_ready(False, "Loading the model…")
        self.grid = PoseCodeGrid()
        for name, slot in (("code_clicked", self._code_clicked), ("code_range", self._code_range),
                           ("code_chosen", self._code_chosen)):
            if hasattr(self.grid, name):
                getattr(self.grid, name).connect(slot)
        self.grid.frame_requested.connect(self.playback.seek)
        self.inspector = CodeInspector()
        self.history = QUndoView(self.undo_stack)
        self.history.setEmptyLabel("<new document>")
        self.docks = {}
        for key, title, widget, area in (("generate", "Generate", self.panel, Qt.LeftDockWidgetArea),
                                         ("grid", "Pose codes", self.grid, Qt.BottomDockWidgetArea),
                                         ("inspector", "Inspector", self.inspector, Qt.RightDockWidgetArea),
                                         ("history", "History", self.history, Qt.RightDockWidgetArea)):
            dock = QDockWidget(title, self)
            dock.setObjectName(f"{key}Dock")
            dock.setWidget(widget)
            self.addDockWidget(area, dock)
            self.docks[key] = dock
        self.tabifyDockWidget(self.docks["inspector"], self.docks["history"])
        self.docks["inspector"].raise_()
        self.resizeDocks([self.docks["grid"]], [300], Qt.Vertical)
        self.resizeDocks([self.docks["generate"], self.docks["inspector"]], [300, 300], Qt.Horizontal)

    def _action(self, menu, text, slot, shortcut=None, checkable=False) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        action.setCheckable(checkable)
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        m = bar.addMenu("&File")
        self._action(m, "&New", self.new_document, QKeySequence.New)
        self._action(m, "&Open…", lambda: self.open_project(), QKeySequence.Open)
        self.recent_menu = m.addMenu("Open &Recent")
        self._action(m, "&Save", self.save, QKeySequence.Save)
        self._action(m, "Save &As…", self.save_as, QKeySequence.SaveAs)
        m.addSeparator()
        self.export_action = self._action(m, "&Export Motion…", lambda: self.export(), "Ctrl+E")
        m.addSeparator()
        self.quit_action = self._action(m, "&Quit", self.close, QKeySequence("Ctrl+Q"))
        self.quit_action.setShortcutContext(Qt.ApplicationShortcut)
        m = bar.addMenu("&Edit")
        undo = self.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.Undo)
        redo = self.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence.Redo])
        m.addAction(undo)
        m.addAction(redo)
        m.addSeparator()
        self._action(m, "&Preferences…", self.show_preferences, "Ctrl+,")
        m = bar.addMenu("&View")
        self._action(m, "&Play / Pause", self.playback.toggle, Qt.Key_Space)
        self._action(m, "Step &Forward", lambda: self.playback.step(1), Qt.Key_Right)
        self._action(m, "Step &Back", lambda: self.playback.step(-1), Qt.Key_Left)
        self._action(m, "&Frame the Motion", self.viewport.frame_all, "F")
        self.body_view = BodyView(self, m)          # optional SMPL body mesh
        m.addSeparator()
        for dock in self.docks.values():
            m.addAction(dock.toggleViewAction())
        m = bar.addMenu("&Model")
        self._action(m, "&Load Model Folder…", self.choose_model)
        self._action(m, "Use the &Built-in Model", lambda: self.load_model(None))
        self._action(m, "Model &Card…", self.show_model_card)
        self._action(m, "&Train a Model…", self.show_training)
        m = bar.addMenu("&Help")
        self.about_action = self._action(m, "&About PGR²M Studio", self.show_about)
        self._fill_recent()

    # -- model -------------------------------------------------------------------

    def load_model(self, model_dir: str | None) -> None:
        from core.pipeline import Pipeline

        self.panel.set_ready(False, "Loading the model…")
        self.statusBar().showMessage("Loading the model…")

        device = self.prefs.device

        def load():
            pipe = Pipeline(model_dir, device)
            pipe.encode_text(["warm up"])      # loads the text encoder now, not on first Generate
            return pipe

        self._submit(load, "model", "Loading the model")

    def choose_model(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder (tokenizer/, base/, refine/)")
        if folder:
            self.load_model(folder)

    def show_training(self) -> None:
        from pgr2m_studio.training_dialog import open_for

        open_for(self)

    def show_model_card(self) -> None:
        folder = Path(self.pipeline.model_dir) if self.pipeline else None
        card = folder / "MODEL_CARD.md" if folder else None
        text = card.read_text(encoding="utf-8") if card and card.is_file() else "This model has no model card."
        box = QMessageBox(self)
        box.setWindowTitle("Model card")
        view = QTextBrowser()
        view.setMarkdown(text)
        view.setMinimumSize(640, 480)
        box.layout().addWidget(view, 0, 0, 1, box.layout().columnCount())
        box.exec()

    # -- jobs --------------------------------------------------------------------

    def _submit(self, fn, kind: str, description: str) -> int:
        job = self.runner.submit(fn, description)
        self._jobs[job] = kind
        return job

    def _drop_jobs(self, *kinds: str) -> list[str]:
        """Cancel the running or queued jobs of these kinds: their results will be ignored."""
        dropped = [(job, kind) for job, kind in self._jobs.items() if kind in kinds]
        for job, _ in dropped:
            self.runner.cancel(job)
            del self._jobs[job]
        return [kind for _, kind in dropped]

    def _end_generation(self, message: str = "") -> None:
        self._generate_job = None
        self.panel.set_busy(False, message)
        if "model" in self._jobs.values():         # Generate waits for the model being loaded
            self.panel.set_ready(False, message or "Loading the model…")

    def _job_done(self, job: int, result) -> None:
        kind = self._jobs.pop(job, None)           # None: a dropped job
        if kind == "model":
            self.pipeline = result
            self.model_dir = str(result.model_dir)
            self.panel.set_ready(True, "")
            self.statusBar().showMessage(f"Model ready: {result.model_dir.name}", 5000)
        elif kind == "generate" and job == self._generate_job:
            self._end_generation()
            motions, prompt = result
            self.undo_stack.push(SetSamples(self.document, motions, f"Generate “{prompt[:40]}”"))
            self.statusBar().showMessage(f"Generated {len(motions)} motion(s)", 4000)
        elif kind == "edit":
            self._edit_job = None
            before, after, text, edits, (shown, n_edited), guided = result
            if before is self.document.motion:
                self._ghost = before
                self.undo_stack.push(ReplaceMotion(self.document, before, after, text))
                for e in edits:
                    self.grid.mark_edited(*e)
                self.statusBar().showMessage(self._edit_note(text, shown, n_edited, guided), 10000)
            else:       # undone, another sample picked: the queued edits were meant for this one's result
                n = len(self._pending_edits)
                self._pending_edits.clear()
                self.statusBar().showMessage(f"The motion changed during the edit “{text}”: dropped"
                                             + (f" with the {n} edit(s) queued after it" if n else ""), 8000)
            self._next_edit()

    def _job_failed(self, job: int, message: str, details: str) -> None:
        kind = self._jobs.pop(job, None)
        if kind is None:                            # a dropped job: nobody waits for it
            return
        if kind == "generate":
            self._end_generation(message)
        elif kind == "edit":
            self._edit_job = None
            self._pending_edits.clear()
        elif kind == "model":
            self.panel.set_ready(self.pipeline is not None, message)
        box = QMessageBox(QMessageBox.Warning, "PGR²M Studio", message, QMessageBox.Ok, self)
        box.setDetailedText(details)
        box.open()
        self.statusBar().showMessage(message, 8000)

    # -- generate ----------------------------------------------------------------

    def generate(self, prompt: str, length, n_samples: int, seed) -> None:
        if self.pipeline is None:
            return
        try:
            self.document.set_settings(prompt=prompt, length=length, n_samples=n_samples, seed=seed)
        except ValueError as exc:
            self.panel.set_busy(False, str(exc))
            return
        self._pending_edits.clear()                # the generation replaces the motion they were for
        pipe = self.pipeline
        self.panel.set_busy(True, "Generating…")
        self._generate_job = self._submit(
            lambda: (pipe.generate(prompt, n_samples=n_samples, seed=seed, length=length), prompt),
            "generate", "Generating")

    def cancel_generation(self) -> None:
        if self._generate_job is not None:
            self.runner.cancel(self._generate_job)
            self._jobs.pop(self._generate_job, None)
        self._end_generation("Cancelled.")

    # -- edit ----------------------------------------------------------------

    def _code_clicked(self, code: int, step: int) -> None:
        self.request_edit(code, step, step + 1)

    def _code_range(self, code: int, start: int, end: int) -> None:
        self.request_edit(code, start, end)

    def _code_chosen(self, group: int, code: int, start: int, end: int) -> None:
        self.request_edit(code, start, end)

    def request_edit(self, code: int, start: int, end: int) -> None:
        """Queue an edit; edits apply in order, each to the motion the previous one made."""
        if self.pipeline is None or self.document.motion is None:
            return
        if self._generate_job is not None:
            self.statusBar().showMessage("A generation is running: edit its result when it arrives", 4000)
            return
        self._pending_edits.append((int(code), int(start), int(end)))
        self._next_edit()

    def _next_edit(self) -> None:
        from core import posecodes as pc
        from core.motion import Edit, steps_showing

        if self._edit_job is not None or not self._pending_edits:
            return
        code, start, end = self._pending_edits.pop(0)
        before, pipe, guided = self.document.motion, self.pipeline, self.prefs.guided_edits
        name = pc.CODES[code].name
        steps = f"step {start}" if end - start == 1 else f"steps {start}–{end - 1}"
        text = f"{name} at {steps}"
        group = pc.CODES[code].group

        def run():
            edit = Edit(code, start, end)
            after = pipe.edit(before, [edit], guided=guided)
            return before, after, text, [(group, start, end)], steps_showing(after, edit), guided

        self._edit_job = self._submit(run, "edit", "Editing")

    @staticmethod
    def _edit_note(text: str, shown: int, n: int, guided: bool) -> str:
        """What the edit did, as the joints show it: the grid shows the codes as asked, so a
        user would not otherwise see that the body did not follow."""
        note = f"{text}: the body shows it on {shown} of {n} step{'s' if n != 1 else ''}"
        if 2 * shown >= n:
            return note
        if not guided:
            return note + " (Preferences → Edits → guide edits makes it show more often)"
        return note + " (the rest of the pose held it back: try a nearer code, or edit a related group too)"

    def _prepare_edits(self) -> None:
        """While the user looks at the motion, compute what its next edit needs, so a click
        costs one pass over the edited steps. Not a tracked job: nothing waits for it, and if it
        fails the edit computes the same itself (and reports any error)."""
        m, pipe = self.document.motion, self.pipeline
        if m is not None and pipe is not None and not self._pending_edits:
            self.runner.submit(lambda: pipe.prepare_edit(m), "Preparing edits")

    # -- document → views ----------------------------------------------------------

    def _on_document(self, event: str) -> None:
        if event == "samples":
            labels = [f"{i + 1}: {m.n_frames / m.fps:.1f} s · seed {m.seed}" for i, m in enumerate(self.document.samples)]
            self.panel.set_samples(labels, self.document.current)
            self.grid.clear_edited()
            self._ghost = None
        if event in ("samples", "motion"):
            self._show_motion(reframe=event == "samples")
            self._prepare_edits()
        if event in ("dirty", "path"):
            self._update_title()

    def _show_motion(self, reframe: bool = False) -> None:
        m = self.document.motion
        if m is None:
            self.grid.clear()
            return
        frame = min(self.playback.frame, m.n_frames - 1)
        self.viewport.set_motion(m.joints, m.fps, reframe=reframe)
        self.body_view.motion_changed()
        ghost = self._ghost
        self.viewport.set_ghost(ghost.joints if ghost is not None and ghost is not m else None)
        self.grid.set_motion(m)
        self.inspector.set_motion(m)
        self.playback.set_length(m.n_frames, m.fps)
        self.playback.seek(frame)
        self._on_frame(self.playback.frame)

    def _on_frame(self, frame: int) -> None:
        self.viewport.set_frame(frame)
        self.grid.set_frame(frame)
        self.inspector.set_frame(frame)

    def _update_title(self, *_):
        name = self.document.path.name if self.document.path else "untitled"
        self.setWindowTitle(f"{name}{' *' if self.document.dirty else ''} — PGR²M Studio")

    # -- files -----------------------------------------------------------------

    def _confirm_discard(self) -> bool:
        if not self.document.dirty:
            return True
        answer = QMessageBox.question(self, "Unsaved changes", "Save the changes to this project first?",
                                      QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel)
        if answer == QMessageBox.Save:
            return self.save()
        return answer == QMessageBox.Discard

    def new_document(self) -> None:
        if self._confirm_discard():
            self._set_document(Document(n_samples=3))

    def _set_document(self, doc: Document) -> str:
        """Show doc instead of the open document; a generation or edit still running for that one
        is dropped (returns a note saying so, or "")."""
        from core.project import discard_autosave

        dropped = self._drop_jobs("generate", "edit")
        self._pending_edits.clear()
        self._edit_job = None
        if self._generate_job is not None:
            self._end_generation()
        discard_autosave(self.document, autosave_folder())
        self.document = doc
        doc.subscribe(self._on_document)
        self.undo_stack.clear()
        self._ghost = None
        self.panel.set_settings(doc.prompt, doc.length, doc.n_samples, doc.seed)
        self._on_document("samples")
        self._update_title()
        if not dropped:
            return ""
        kinds = list(dict.fromkeys("generation" if k == "generate" else k for k in dropped))
        note = (f"the {' and the '.join(kinds)} still running for the previous document "
                f"{'were' if len(kinds) > 1 else 'was'} dropped")
        self.statusBar().showMessage(note[0].upper() + note[1:], 8000)
        return "; " + note

    def open_project(self, path: str | None = None) -> bool:
        from core.project import ProjectError, load_project

        if not self._confirm_discard():
            return False
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Open project", self._last_folder(), PROJECT_FILTER)
            if not path:
                return False
        try:
            doc = load_project(path)
        except (ProjectError, OSError) as exc:
            QMessageBox.warning(self, "Cannot open the project", str(exc))
            return False
        note = self._set_document(doc)
        self._add_recent(path)
        self.statusBar().showMessage(f"Opened {Path(path).name}{note}", 8000 if note else 4000)
        return True

    def save(self) -> bool:
        if self.document.path is None:
            return self.save_as()
        return self._save_to(self.document.path)

    def save_as(self) -> bool:
        path, _ = QFileDialog.getSaveFileName(self, "Save project", self._last_folder(), PROJECT_FILTER)
        if not path:
            return False
        if not path.endswith(".pgr2m"):
            path += ".pgr2m"
        return self._save_to(Path(path))

    def _save_to(self, path: Path) -> bool:
        from core.project import discard_autosave, save_project

        try:
            save_project(path, self.document)
        except (OSError, ValueError) as exc:
            QMessageBox.warning(self, "Cannot save", f"{path}: {exc}\nThe project is still open; nothing was lost.")
            return False
        self.document.mark_saved(path)
        self.undo_stack.setClean()
        discard_autosave(self.document, autosave_folder())
        self._add_recent(str(path))
        self.statusBar().showMessage(f"Saved {path.name}", 4000)
        return True

    def export(self, options: dict | None = None) -> bool:
        """Export the current motion; without ``options`` the export dialog asks for them."""
        from core.formats.motion_files import save_motion
        from pgr2m_studio.export_dialog import ExportDialog

        m = self.document.motion
        if m is None:
            self.statusBar().showMessage("Nothing to export yet: generate a motion first", 4000)
            return False
        if options is None:
            name = Path(self.document.path).stem if self.document.path else "motion"
            dialog = ExportDialog(m.n_frames, m.fps, self._last_folder(), name, self)
            if dialog.exec() != QDialog.Accepted:
                return False
            options = dialog.options()
        options = dict(options)
        path = Path(options.pop("path"))
        try:
            save_motion(path, m, **options)
        except (OSError, ValueError) as exc:
            QMessageBox.warning(self, "Cannot export", f"{exc}\nThe motion is unchanged; nothing was written.")
            return False
        self.settings.setValue("last_folder", str(path.parent))
        self.statusBar().showMessage(f"Exported {path.name}", 4000)
        return True

    def show_preferences(self) -> bool:
        from pgr2m_studio.preferences import PreferencesDialog

        dialog = PreferencesDialog(self.prefs, self)
        if dialog.exec() != QDialog.Accepted:
            return False
        self.apply_preferences(dialog.preferences())
        return True

    def apply_preferences(self, prefs: Preferences) -> None:
        old, self.prefs = self.prefs, prefs
        prefs.save(self.settings)
        apply_theme(prefs.theme)
        if (prefs.device, prefs.model_dir) != (old.device, old.model_dir):
            self.load_model(prefs.model_dir or None)

    def autosave(self) -> None:
        from core.project import autosave

        if self.document.dirty and self.document.samples:
            try:
                autosave(self.document, autosave_folder())
            except (OSError, ValueError) as exc:
                self.statusBar().showMessage(f"Autosave failed: {exc}", 8000)

    def offer_recovery(self) -> None:
        """After a crash: offer the newest autosaved work."""
        from core.project import discard_autosave, recoverable

        found = recoverable(autosave_folder())
        if not found:
            return
        item = found[0]
        answer = QMessageBox.question(
            self, "Recover unsaved work?",
            f"PGR²M Studio closed without saving “{item.prompt or 'untitled'}” ({item.time}). Recover it?",
            QMessageBox.Yes | QMessageBox.No)
        if answer == QMessageBox.Yes:
            self._set_document(item.load())
        else:
            discard_autosave(item.uid, autosave_folder())

    def _last_folder(self) -> str:
        return str(self.settings.value("last_folder", str(Path.home())))

    def _add_recent(self, path: str) -> None:
        recent = [p for p in self._recent() if p != str(path)]
        self.settings.setValue("recent", [str(path)] + recent[:MAX_RECENT - 1])
        self.settings.setValue("last_folder", str(Path(path).parent))
        self._fill_recent()

    def _recent(self) -> list[str]:
        value = self.settings.value("recent", []) or []
        return [value] if isinstance(value, str) else list(value)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for p in self._recent():
            self.recent_menu.addAction(p, lambda p=p: self.open_project(p))
        self.recent_menu.setEnabled(bool(self._recent()))

    # -- window ------------------------------------------------------------------

    def _restore_layout(self) -> None:
        geometry, state = self.settings.value("geometry"), self.settings.value("window_state")
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    def show_about(self) -> None:
        QMessageBox.about(self, "About PGR²M Studio", ABOUT_HTML)

    def closeEvent(self, event) -> None:
        if self.ask_before_close and not self._confirm_discard():
            event.ignore()
            return
        from core.project import discard_autosave

        discard_autosave(self.document, autosave_folder())
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("window_state", self.saveState())
        if self.model_dir:
            self.settings.setValue("model_dir", self.model_dir)
        self.playback.pause()
        self._autosave_timer.stop()
        training = self.findChild(QDialog, "TrainingDialog")
        if training is not None:                # quitting stops a training run (Resume continues it)
            training.process.stop_now()
            training.close()
        self._jobs.clear()                      # results still to come are dropped
        self._pending_edits.clear()
        self.runner.shutdown(timeout=2.0)       # queued jobs never start; a running one is not awaited longer
        event.accept()
