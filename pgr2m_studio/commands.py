"""Undoable changes to the document: the only way the GUI changes a motion.

Commands hold Motion snapshots; motions are never changed in place, so a snapshot stays valid."""

from __future__ import annotations

from PySide6.QtGui import QUndoCommand


class ReplaceMotion(QUndoCommand):
    """An edit: the current motion before and after (a drag over a range is one command)."""

    def __init__(self, document, before, after, text: str):
        super().__init__(text)
        self.document, self.before, self.after = document, before, after
        self.index = document.current

    def redo(self) -> None:
        self._show(self.after)

    def undo(self) -> None:
        self._show(self.before)

    def _show(self, motion) -> None:
        self.document.replace_motion(motion, self.index)


class SetSamples(QUndoCommand):
    """A generation: the list of candidate motions and the picked one."""

    def __init__(self, document, samples, text: str, current: int = 0):
        super().__init__(text)
        self.document = document
        self.before = (list(document.samples), document.current)
        self.after = (list(samples), current)

    def redo(self) -> None:
        self.document.set_samples(*self.after)

    def undo(self) -> None:
        samples, current = self.before
        self.document.set_samples(samples, current)
