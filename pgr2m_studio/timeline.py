"""The pose-code grid: one pyqtgraph ImageItem, rows = the 70 groups by body part, columns = token steps.

Each cell's value is the active global code id; a lookup table colours it by its category through a
colormap per kind. Mouse handling is our own (no pan / zoom by drag): click, drag along a row,
right-click menu, hover tooltip, wheel scrolls rows, Ctrl+wheel zooms time, the top ruler scrubs.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainterPath, QPen
from PySide6.QtWidgets import (QGraphicsPathItem, QGraphicsRectItem, QMenu, QToolTip, QVBoxLayout,
                               QWidget)

import pyqtgraph as pg

from core import posecodes as pc

UNIT = 4            # frames per token step
FPS = 20.0
ROW_PX = 18         # row height in pixels (labels stay readable; the wheel scrolls the rest)
EMPTY = pc.N_CODES  # image value of a cell with no code (placeholder grid)

# colour stops (category 0 -> last) per kind
_KIND_STOPS = {
    "angle": [(60, 20, 90), (200, 70, 70), (250, 220, 120)],      # fully bent -> straight
    "distance": [(30, 60, 110), (40, 160, 140), (220, 230, 90)],  # close -> wide
    "relX": [(60, 140, 220), (70, 74, 84), (235, 150, 60)],
    "relY": [(90, 110, 230), (70, 74, 84), (230, 90, 90)],
    "relZ": [(60, 180, 110), (70, 74, 84), (210, 90, 200)],
    "relV": [(150, 230, 240), (60, 130, 200), (30, 50, 120)],     # vertical -> horizontal
    "ground": [(120, 220, 90), (55, 58, 66)],                     # on -> off the ground
}

# display row -> group: blocks in BODY_PARTS order, parser order inside a block
ROW_ORDER = np.array(sorted(range(pc.N_GROUPS), key=lambda g: pc.BODY_PARTS.index(pc.GROUPS[g].body_part)))
_ROW_OF = np.argsort(ROW_ORDER)


def code_lut() -> np.ndarray:
    """(N_CODES + 1, 4) uint8 colour of each global code id; the last entry is EMPTY."""
    lut = np.zeros((pc.N_CODES + 1, 4), np.uint8)
    for g in pc.GROUPS:
        cmap = pg.ColorMap(np.linspace(0, 1, len(_KIND_STOPS[g.kind])), _KIND_STOPS[g.kind])
        t = np.arange(g.n_codes) / max(g.n_codes - 1, 1)
        lut[g.first_code:g.first_code + g.n_codes] = cmap.map(t, mode="byte")
    lut[EMPTY] = (40, 43, 50, 255)
    return lut


class _FrameAxis(pg.AxisItem):
    """Top ruler in frames and seconds; a click or drag on it asks for that frame."""

    def __init__(self, grid: "PoseCodeGrid"):
        super().__init__("top")
        self._grid = grid

    def tickSpacing(self, minVal, maxVal, size):
        px = size / max(maxVal - minVal, 1e-9)              # pixels per step
        per_s = self._grid.fps / UNIT                       # steps per second
        for major in (1, per_s, 2 * per_s, 5 * per_s, 10 * per_s, 30 * per_s, 60 * per_s):
            if major * px >= 80:
                break
        return [(major, 0), (1, 0)] if px >= 6 else [(major, 0)]

    def tickStrings(self, values, scale, spacing):
        return [f"{round(v * UNIT)}f · {v * UNIT / self._grid.fps:.4g}s" for v in values]

    def _scrub(self, ev):
        if ev.button() != Qt.LeftButton:
            ev.ignore()
            return
        ev.accept()
        self._grid._scrub(self.linkedView().mapSceneToView(ev.scenePos()).x())

    def mouseClickEvent(self, ev):
        self._scrub(ev)

    def mouseDragEvent(self, ev):
        self._scrub(ev)


class _GridView(pg.ViewBox):
    """A ViewBox whose mouse events go to the grid instead of panning / zooming."""

    def __init__(self, grid: "PoseCodeGrid"):
        super().__init__(enableMenu=False)
        self._grid = grid
        self.setMouseEnabled(False, False)

    def mouseClickEvent(self, ev):
        ev.accept()
        self._grid._click(ev.button(), self.mapSceneToView(ev.scenePos()), ev.screenPos())

    def mouseDragEvent(self, ev, axis=None):
        ev.accept()
        if axis is None and ev.button() == Qt.LeftButton:
            self._grid._drag(self.mapSceneToView(ev.buttonDownScenePos()),
                             self.mapSceneToView(ev.scenePos()), ev.isFinish())

    def wheelEvent(self, ev, axis=None):
        ev.accept()
        x = self.mapSceneToView(ev.scenePos()).x()
        zoom = axis == 0 or bool(ev.modifiers() & Qt.ControlModifier)
        self._grid._wheel(ev.delta() / 120.0, x, zoom, bool(ev.modifiers() & Qt.ShiftModifier))


class PoseCodeGrid(QWidget):
    """Pose codes over time; signals carry group indices (0..69) and token steps."""

    cell_clicked = Signal(int, int)                 # group, step
    range_selected = Signal(int, int, int)          # group, start, end (exclusive)
    code_chosen = Signal(int, int, int, int)        # group, code id, start, end (exclusive)
    frame_requested = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.fps, self.n_frames = FPS, 0
        self.codes = np.zeros((0, pc.N_GROUPS), np.int64)       # (S, 70) code ids
        self.selection: tuple[int, int, int] | None = None
        self.edited: list[tuple[int, int, int]] = []
        self.menu: QMenu | None = None              # the last code menu
        self._top_row = 0.0

        self.view = _GridView(self)
        self.ruler = _FrameAxis(self)
        self.plot_widget = pg.PlotWidget(viewBox=self.view, axisItems={"top": self.ruler},
                                         background="#1e2127")
        plot = self.plot_widget.getPlotItem()
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.showAxes((True, True, True, False), showValues=(True, True, True, False))
        plot.layout.setContentsMargins(2, 2, 4, 2)
        self.view.invertY(True)
        self.view.disableAutoRange()

        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_item.setLookupTable(code_lut())
        self.view.addItem(self.image_item)
        self.separators = pg.PlotCurveItem(pen=pg.mkPen((235, 238, 245), width=2), connect="pairs")
        self.edited_item = QGraphicsPathItem()
        self.edited_item.setPen(_pen((255, 255, 255), 1.5, Qt.DashLine))
        self.edited_item.setBrush(QBrush(QColor(255, 255, 255, 150), Qt.BDiagPattern))
        self.selection_item = QGraphicsRectItem()
        self.selection_item.setPen(_pen((80, 230, 255), 2.5))
        self.selection_item.setBrush(QColor(80, 230, 255, 50))
        self.selection_item.hide()
        self.playhead = pg.InfiniteLine(0.0, angle=90, movable=False, pen=pg.mkPen((255, 60, 60), width=3))
        for item in (self.separators, self.edited_item, self.selection_item, self.playhead):
            self.view.addItem(item, ignoreBounds=True)
        self._setup_axes(plot)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)
        self.setMinimumHeight(120)
        self.plot_widget.viewport().installEventFilter(self)
        self.plot_widget.viewport().setMouseTracking(True)
        self.view.sigResized.connect(self._fit_rows)
        self.clear()

    def _setup_axes(self, plot) -> None:
        font = QFont()
        font.setPointSize(9)
        names = [pc.GROUPS[g].name for g in ROW_ORDER]
        left = plot.getAxis("left")
        left.setTicks([[(r + 0.5, n) for r, n in enumerate(names)], []])
        left.setStyle(tickFont=font, tickLength=0, textFillLimits=[(0, 1.0)])
        left.setWidth(QFontMetrics(font).horizontalAdvance(max(names, key=len)) + 14)
        parts = np.array([pc.GROUPS[g].body_part for g in ROW_ORDER])
        right = plot.getAxis("right")
        right.setTicks([[(np.flatnonzero(parts == p).mean() + 0.5, p) for p in pc.BODY_PARTS], []])
        right.setStyle(tickFont=font, tickLength=0)
        right.setWidth(QFontMetrics(font).horizontalAdvance("arms & legs") + 12)
        self.ruler.setStyle(tickFont=font)
        self._part_bounds = np.flatnonzero(parts[1:] != parts[:-1]) + 1

    # ------------------------------------------------------------------ data

    @property
    def n_steps(self) -> int:
        return len(self.codes)

    def row_of_group(self, g: int) -> int:
        return int(_ROW_OF[g])

    def group_of_row(self, r: int) -> int:
        return int(ROW_ORDER[r])

    def clear(self, n_steps: int = 49) -> None:
        """An empty grid (no codes) of n_steps columns."""
        self._show(np.full((pc.N_GROUPS, n_steps), EMPTY, np.uint16), np.zeros((0, pc.N_GROUPS), np.int64))

    def set_motion(self, motion) -> None:
        self.fps, n_frames = float(motion.fps), motion.n_frames
        self.set_codes(motion.code_ids())
        self.n_frames = n_frames

    def set_codes(self, code_ids) -> None:
        """Show (S, 70) global code ids (column g holds a code of group g)."""
        ids = np.asarray(code_ids)
        if ids.ndim != 2 or ids.shape[1] != pc.N_GROUPS or len(ids) == 0:
            raise ValueError(f"code ids must have shape (S, {pc.N_GROUPS}), got {ids.shape}")
        self._show(ids[:, ROW_ORDER].T.astype(np.uint16), ids.astype(np.int64))

    def _show(self, image: np.ndarray, codes: np.ndarray) -> None:
        resized = self.image_item.image is None or image.shape[1] != self.image_item.width()
        self.codes, self.n_frames = codes, len(codes) * UNIT
        self.image_item.setImage(image, levels=(0, EMPTY + 1), autoLevels=False)
        S = image.shape[1]
        if resized:
            self.view.setLimits(xMin=0, xMax=S, yMin=0, yMax=pc.N_GROUPS)
            self.view.setXRange(0, S, padding=0)
            b = np.repeat(self._part_bounds, 2).astype(float)
            self.separators.setData(np.tile([0.0, S], len(self._part_bounds)), b)
            self.selection, self.edited = None, []
            self._update_overlays()
            self._fit_rows()

    # ------------------------------------------------------------------ overlays

    def set_frame(self, frame: int) -> None:
        """Move the playhead to a frame (inside its step's column) and keep it in view."""
        x = (int(frame) + 0.5) / UNIT
        self.playhead.setValue(x)
        lo, hi = self.view.viewRange()[0]
        if not lo <= x <= hi:
            w = hi - lo
            lo = min(max(x - w / 2, 0), max(self.image_item.width() - w, 0))
            self.view.setXRange(lo, lo + w, padding=0)

    def set_selection(self, group: int, start: int, end: int) -> None:
        self.selection = (int(group), int(start), int(end))
        self._update_overlays()

    def clear_selection(self) -> None:
        self.selection = None
        self._update_overlays()

    def mark_edited(self, group: int, start: int, end: int) -> None:
        """Hatch the cells of an edit (steps start..end-1 of a group)."""
        self.edited.append((int(group), int(start), int(end)))
        self._update_overlays()

    def clear_edited(self) -> None:
        self.edited = []
        self._update_overlays()

    def _cell_rect(self, group: int, start: int, end: int) -> QRectF:
        return QRectF(start, self.row_of_group(group), end - start, 1)

    def _update_overlays(self) -> None:
        path = QPainterPath()
        for e in self.edited:
            path.addRect(self._cell_rect(*e))
        self.edited_item.setPath(path)
        self.selection_item.setVisible(self.selection is not None)
        if self.selection is not None:
            self.selection_item.setRect(self._cell_rect(*self.selection))

    # ------------------------------------------------------------------ view

    def _fit_rows(self, *_) -> None:
        """Show as many rows as fit at ROW_PX each, from the current top row."""
        h = self.view.height()
        n = pc.N_GROUPS if h <= 0 else min(pc.N_GROUPS, max(1.0, h / ROW_PX))
        self._top_row = min(max(self._top_row, 0.0), pc.N_GROUPS - n)
        self.view.setYRange(self._top_row, self._top_row + n, padding=0)

    def scroll_rows(self, rows: float) -> None:
        self._top_row += rows
        self._fit_rows()

    def _wheel(self, notches: float, x: float, zoom: bool, shift: bool) -> None:
        lo, hi = self.view.viewRange()[0]
        S = self.image_item.width()
        if zoom:
            w = min(max((hi - lo) * 0.8 ** notches, min(4, S)), S)
            lo = min(max(x - (x - lo) * w / (hi - lo), 0), S - w)
            self.view.setXRange(lo, lo + w, padding=0)
        elif shift:
            w = hi - lo
            lo = min(max(lo - notches * w / 10, 0), S - w)
            self.view.setXRange(lo, lo + w, padding=0)
        else:
            self.scroll_rows(-3 * notches)

    # ------------------------------------------------------------------ mouse

    def cell_at(self, p: QPointF) -> tuple[int, int] | None:
        """(group, step) under a point in view coordinates, or None outside the codes."""
        s, r = int(np.floor(p.x())), int(np.floor(p.y()))
        if 0 <= s < self.n_steps and 0 <= r < pc.N_GROUPS:
            return self.group_of_row(r), s
        return None

    def _scrub(self, x: float) -> None:
        last = max(self.n_frames, 1) - 1
        self.frame_requested.emit(int(min(max(np.floor(x * UNIT), 0), last)))

    def _click(self, button, p: QPointF, screen_pos) -> None:
        cell = self.cell_at(p)
        if cell is None:
            return
        g, s = cell
        if button == Qt.LeftButton:
            self.set_selection(g, s, s + 1)
            self.cell_clicked.emit(g, s)
        elif button == Qt.RightButton:
            sel = self.selection
            start, end = (sel[1], sel[2]) if sel and sel[0] == g and sel[1] <= s < sel[2] else (s, s + 1)
            self.open_code_menu(g, s, start, end, screen_pos.toPoint())

    def _drag(self, p0: QPointF, p: QPointF, finish: bool) -> None:
        cell = self.cell_at(p0)
        if cell is None:
            return
        g, s0 = cell
        s = int(min(max(np.floor(p.x()), 0), self.n_steps - 1))
        start, end = min(s0, s), max(s0, s) + 1
        self.set_selection(g, start, end)
        if finish:
            self.range_selected.emit(g, start, end)

    def code_menu(self, group: int, step: int, start: int, end: int) -> QMenu:
        """The right-click menu: the group's code names, the one active at `step` checked."""
        grp = pc.GROUPS[group]
        menu = QMenu(self)
        steps = f"step {start}" if end - start == 1 else f"steps {start}–{end - 1}"
        menu.addAction(f"{grp.name} · {steps}").setEnabled(False)
        menu.addSeparator()
        current = int(self.codes[step, group])
        for c in grp.code_ids:
            act = menu.addAction(pc.CODES[c].name)
            act.setCheckable(True)
            act.setChecked(c == current)
            act.setData(c)
        return menu

    def open_code_menu(self, group: int, step: int, start: int, end: int, screen_pos) -> QMenu:
        """Pop the code menu up (non-blocking); choosing a code emits code_chosen."""
        if self.menu is not None:
            self.menu.deleteLater()
        self.menu = menu = self.code_menu(group, step, start, end)

        def chosen(act):
            if act.data() is not None:
                menu.close()
                self.code_chosen.emit(group, int(act.data()), start, end)

        menu.triggered.connect(chosen)
        menu.popup(screen_pos)
        return menu

    def tooltip_text(self, group: int, step: int) -> str:
        code = pc.CODES[int(self.codes[step, group])].name
        return f"{pc.GROUPS[group].name} · step {step} (frame {step * UNIT}): {code}"

    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.ToolTip:
            cell = self.cell_at(self.view.mapSceneToView(self.plot_widget.mapToScene(ev.pos())))
            if cell is None:
                QToolTip.hideText()
            else:
                QToolTip.showText(ev.globalPos(), self.tooltip_text(*cell), self.plot_widget)
            return True
        return super().eventFilter(obj, ev)


def _pen(rgb, width: float, style=Qt.SolidLine) -> QPen:
    pen = QPen(QColor(*rgb), width, style)
    pen.setCosmetic(True)
    return pen
