"""The View menu's optional SMPL body: the model file (kept in QSettings), the dialog that explains
what is missing, and skinning each motion on the window's background thread."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMessageBox

SETTING = "smpl/model_path"
FILTER = "SMPL-family models (*.npz);;All files (*)"
CACHE = 4                  # skinned motions kept, so undo and redo show the body at once

MISSING_HTML = """
<p>The body view needs an <b>SMPL body model</b> file, which PGR²M Studio cannot include.</p>
<ul>
<li>Get it from <a href="https://smpl.is.tue.mpg.de">smpl.is.tue.mpg.de</a> (free registration).
SMPL-H and SMPL-X models (as <code>.npz</code>) work too; only their body joints move.</li>
<li>Its licence allows <b>non-commercial</b> use only, and it may not be passed on.</li>
<li>Choose an <code>.npz</code> file. The downloads for SMPL are <code>.pkl</code> files: those are
Python pickles, and opening a pickle can run any code hidden in it, so this app never opens one.
Convert the file once with the short script in <code>docs/smpl.md</code>, run by you, on the file
you downloaded.</li>
</ul>
"""


def explain_missing(parent, problem: str | None = None) -> bool:
    """Say what is missing (and what went wrong, if anything); True when the user wants to choose a file."""
    box = QMessageBox(QMessageBox.Information, "SMPL body model", MISSING_HTML, QMessageBox.Cancel, parent)
    box.setTextFormat(Qt.RichText)
    if problem:
        box.setInformativeText(problem)
    choose = box.addButton("Choose File…", QMessageBox.AcceptRole)
    box.exec()
    return box.clickedButton() is choose


class BodyView(QObject):
    """Adds "Show SMPL Body…" and "Choose SMPL Model File…" to ``menu``; the window calls
    ``motion_changed`` whenever the viewport gets a new motion."""

    def __init__(self, window, menu):
        super().__init__(window)
        self.window = window
        self.model = None
        self._job: int | None = None
        self._cache: list = []                   # (motion, vertices), newest last
        self.action = QAction("Show SMPL &Body…", window, checkable=True)
        self.action.toggled.connect(self.set_shown)
        self.choose_action = QAction("Choose SMPL &Model File…", window)
        self.choose_action.triggered.connect(lambda: self.choose() and self.action.setChecked(True))
        menu.addAction(self.action)
        menu.addAction(self.choose_action)
        window.runner.finished.connect(self._done)
        window.runner.failed.connect(self._failed)

    @property
    def path(self) -> str:
        return str(self.window.settings.value(SETTING, "") or "")

    def set_shown(self, on: bool) -> None:
        if not on:
            self.window.viewport.set_body(None)
            return
        if self.model is None and not self._load(self.path):
            self.action.setChecked(False)
            return
        self.motion_changed()

    def _load(self, path: str, problem: str | None = None) -> bool:
        """Load the configured model; when it cannot be, explain and let the user choose one."""
        from core.body import SmplError, SmplModel

        if path:
            try:
                self.model = SmplModel.load(path)
                return True
            except SmplError as exc:
                problem = str(exc)
        return explain_missing(self.window, problem) and self.choose()

    def choose(self) -> bool:
        """Ask for a model file; keep it when it loads."""
        from core.body import SmplError, SmplModel

        start = str(Path(self.path).parent) if self.path else str(Path.home())
        path, _ = QFileDialog.getOpenFileName(self.window, "SMPL body model (.npz)", start, FILTER)
        if not path:
            return False
        try:
            model = SmplModel.load(path)
        except SmplError as exc:
            QMessageBox.warning(self.window, "Cannot use this body model", str(exc))
            return False
        self.model, self._cache = model, []
        self.window.settings.setValue(SETTING, path)
        if self.action.isChecked():
            self.motion_changed()
        return True

    def motion_changed(self) -> None:
        """Show the body for the current motion: from the cache, else skinned in the background."""
        from core.body import body_vertices

        motion = self.window.document.motion
        if not self.action.isChecked() or self.model is None or motion is None:
            return
        for m, vertices in self._cache:
            if m is motion:
                self._show(motion, vertices)
                return
        model = self.model
        self._job = self.window.runner.submit(lambda: (motion, model, body_vertices(model, motion.joints)),
                                              "Posing the SMPL body")

    def _done(self, job: int, result) -> None:
        if job != self._job:
            return
        self._job = None
        motion, model, vertices = result
        if model is self.model:
            self._cache = [c for c in self._cache if c[0] is not motion][-(CACHE - 1):] + [(motion, vertices)]
            self._show(motion, vertices)

    def _show(self, motion, vertices) -> None:
        vp = self.window.viewport
        if self.action.isChecked() and motion is self.window.document.motion and len(vertices) == vp.frame_count:
            vp.set_body(vertices, self.model.faces)

    def _failed(self, job: int, message: str, details: str) -> None:
        if job == self._job:                     # the window shows the message
            self._job = None
