"""Code inspector: the active pose codes at the current frame, in words, grouped by body part."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import QLabel, QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from core import posecodes as pc

UNIT = 4
_CHANGED_BG = QBrush(QColor(255, 200, 60, 70))


class CodeInspector(QWidget):
    """Lists the 70 active codes at a frame; codes that change at this step are bold and marked."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.codes = np.zeros((0, pc.N_GROUPS), np.int64)
        self.fps, self.step = 20.0, -1
        self.header = QLabel("No motion")
        self.filter_box = QLineEdit(placeholderText="Filter codes…", clearButtonEnabled=True)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["group", "active code"])
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self._parts: dict[str, QTreeWidgetItem] = {}
        self._items: list[QTreeWidgetItem] = [None] * pc.N_GROUPS
        for part in pc.BODY_PARTS:
            top = QTreeWidgetItem(self.tree, [part])
            top.setFirstColumnSpanned(True)
            self._parts[part] = top
        for g in pc.GROUPS:
            self._items[g.index] = QTreeWidgetItem(self._parts[g.body_part], [g.name, ""])
        self._order = [g for p in pc.BODY_PARTS for g in range(pc.N_GROUPS) if pc.GROUPS[g].body_part == p]
        self.tree.expandAll()
        self.tree.setColumnWidth(0, 210)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        for w in (self.header, self.filter_box, self.tree):
            layout.addWidget(w)
        self.filter_box.textChanged.connect(self._apply_filter)
        self._plain, self._bold = QFont(self.tree.font()), QFont(self.tree.font())
        self._bold.setBold(True)
        self._hidden: dict = {}                         # group index or part -> hidden
        self._shown = np.full(pc.N_GROUPS, -1)          # code id shown per group
        self._marked = np.zeros(pc.N_GROUPS, bool)      # shown as changed

    def set_motion(self, motion) -> None:
        self.set_codes(motion.code_ids(), motion.fps)

    def set_codes(self, code_ids, fps: float = 20.0) -> None:
        self.codes, self.fps, self.step = np.asarray(code_ids, np.int64), float(fps), -1
        self.set_frame(0)

    def set_frame(self, frame: int) -> None:
        if not len(self.codes):
            return
        step = min(max(int(frame) // UNIT, 0), len(self.codes) - 1)
        if step != self.step:
            self.step = step
            self._fill()

    def changed_groups(self) -> np.ndarray:
        """Groups whose code differs from the previous step's (none at step 0)."""
        if self.step <= 0:
            return np.zeros(0, np.int64)
        return np.flatnonzero(self.codes[self.step] != self.codes[self.step - 1])

    def _fill(self) -> None:
        # touch only the rows that differ from what is shown: few Qt calls per step
        codes, marked = self.codes[self.step], np.zeros(pc.N_GROUPS, bool)
        marked[self.changed_groups()] = True
        for g in np.flatnonzero((codes != self._shown) | (marked != self._marked)):
            item, on = self._items[g], bool(marked[g])
            item.setText(1, ("● " if on else "") + pc.CODES[codes[g]].name)
            if on != self._marked[g]:
                for col in (0, 1):
                    item.setFont(col, self._bold if on else self._plain)
                    item.setBackground(col, _CHANGED_BG if on else QBrush())
        self._shown, self._marked = codes.copy(), marked
        frame = self.step * UNIT
        self.header.setText(f"step {self.step} · frame {frame} · {frame / self.fps:.2f} s — "
                            f"{int(marked.sum())} code(s) change here")
        if self.filter_box.text():
            self._apply_filter(self.filter_box.text())

    def _apply_filter(self, text: str) -> None:
        t = text.strip().casefold()
        shown = dict.fromkeys(pc.BODY_PARTS, 0)
        for g in self._order:
            grp = pc.GROUPS[g]
            code = pc.CODES[self._shown[g]].name if self._shown[g] >= 0 else ""
            words = f"{grp.name} {grp.body_part} {code}".casefold()
            hide = bool(t) and t not in words
            shown[grp.body_part] += not hide
            self._set_hidden(g, self._items[g], hide)
        for part, top in self._parts.items():
            self._set_hidden(part, top, shown[part] == 0)

    def _set_hidden(self, key, item, hide: bool) -> None:
        if hide != self._hidden.get(key, False):
            item.setHidden(hide)
            self._hidden[key] = hide

    def rows(self) -> list[tuple[str, str, str, bool]]:
        """Visible rows in display order: (body part, group name, code name, changed here)."""
        changed = set(self.changed_groups().tolist())
        return [(pc.GROUPS[g].body_part, pc.GROUPS[g].name, pc.CODES[self.codes[self.step, g]].name,
                 g in changed) for g in self._order if not self._hidden.get(g, False)]
