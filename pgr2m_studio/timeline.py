"""The pose-code grid: one pyqtgraph ImageItem of pose codes over token steps, in two layouts.

``layout="codes"`` (the default): one row per code (392 rows), the codes of a group in
consecutive rows (category order), groups in blocks by body part. A cell is lit, in its body
part's colour, when its code is active at that step; the inactive cells of a group's block are
shaded lightly (alternating blocks) so groups read apart, thin lines separate groups and thicker
ones body parts; the left axis names the codes, the right axis names each group at its block's
first row. A click makes that code the active one of its group at that step (``code_clicked``),
a drag along a row covers a range (``code_range``).

``layout="groups"``: the compact grid, one row per group (70 rows); each cell's value is the
active global code id and a lookup table colours it by its category through a colormap per kind.

Mouse handling is our own (no pan / zoom by drag): click, drag along a row, right-click menu,
hover tooltip, wheel scrolls rows, Ctrl+wheel zooms time, Shift+wheel pans time, the top ruler
scrubs.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsPathItem, QGraphicsRectItem, QMenu, QToolTip, QVBoxLayout, QWidget

from core import posecodes as pc

UNIT = 4            # frames per token step
FPS = 20.0
LAYOUTS = ("codes", "groups")
ROW_PX = 18         # groups layout: row height in pixels (the wheel scrolls the rest)
CODE_ROW_PX = 15    # codes layout: row height in pixels (9 pt labels stay readable)
EMPTY = pc.N_CODES  # groups layout: image value of a cell with no code (placeholder grid)
LABEL_MAX_PX = 400  # codes layout: longer code names are elided in the middle (the tooltip has them)

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

# codes layout: colour of an active code, by body part (left side cool, right side warm)
PART_COLOURS = {
    "torso": (240, 205, 85),
    "left arm": (85, 165, 255),
    "right arm": (255, 125, 95),
    "arms": (185, 130, 255),
    "left leg": (60, 210, 195),
    "right leg": (255, 175, 55),
    "legs": (125, 220, 85),
    "arms & legs": (245, 120, 205),
}
_DARK = (np.array((28, 31, 37), float), np.array((46, 50, 60), float))  # inactive: even / odd block

# display row -> group: blocks in BODY_PARTS order, parser order inside a block
ROW_ORDER = np.array(sorted(range(pc.N_GROUPS), key=lambda g: pc.BODY_PARTS.index(pc.GROUPS[g].body_part)))
_ROW_OF = np.argsort(ROW_ORDER)

# codes layout: display row -> global code id (a group's codes consecutive, groups as ROW_ORDER)
CODE_ROW_ORDER = np.concatenate([np.arange(pc.GROUP_START[g], pc.GROUP_START[g + 1]) for g in ROW_ORDER])
_ROW_OF_CODE = np.argsort(CODE_ROW_ORDER)
BLOCK_START = _ROW_OF_CODE[pc.GROUP_START[:-1]]     # first code row of each group (by group index)
_GROUP_OF_CODE_ROW = pc.CODE_GROUP[CODE_ROW_ORDER]

# codes layout image values: 0..7 an active code (its body part), 8.. an inactive one
N_PARTS = len(pc.BODY_PARTS)
_PART_OF_CODE_ROW = np.array([pc.BODY_PARTS.index(pc.CODES[c].body_part) for c in CODE_ROW_ORDER], np.uint8)
_PARITY_OF_CODE_ROW = (_ROW_OF[_GROUP_OF_CODE_ROW] % 2).astype(np.uint8)
CODE_ROW_ON = _PART_OF_CODE_ROW                                      # (392,) value when active
CODE_ROW_OFF = (N_PARTS + _PARITY_OF_CODE_ROW * N_PARTS + _PART_OF_CODE_ROW).astype(np.uint8)

# separator lines (rows above which a line is drawn): body parts thick, groups thin
_parts = np.array([pc.BODY_PARTS.index(pc.GROUPS[g].body_part) for g in ROW_ORDER])
_GROUP_PART_BOUNDS = np.flatnonzero(_parts[1:] != _parts[:-1]) + 1
_CODE_PART_BOUNDS = BLOCK_START[ROW_ORDER[_GROUP_PART_BOUNDS]]
_CODE_GROUP_BOUNDS = np.setdiff1d(BLOCK_START[ROW_ORDER[1:]], _CODE_PART_BOUNDS)
WHEEL_ROWS = {"groups": 3, "codes": 5}   # rows scrolled per wheel notch


def code_lut() -> np.ndarray:
    """(N_CODES + 1, 4) uint8 colour of each global code id; the last entry is EMPTY."""
    lut = np.zeros((pc.N_CODES + 1, 4), np.uint8)
    for g in pc.GROUPS:
        cmap = pg.ColorMap(np.linspace(0, 1, len(_KIND_STOPS[g.kind])), _KIND_STOPS[g.kind])
        t = np.arange(g.n_codes) / max(g.n_codes - 1, 1)
        lut[g.first_code:g.first_code + g.n_codes] = cmap.map(t, mode="byte")
    lut[EMPTY] = (40, 43, 50, 255)
    return lut


def codes_lut() -> np.ndarray:
    """(3 * N_PARTS, 4) uint8 colours of the codes layout's image values: an active code by body
    part, then an inactive cell of an even and of an odd group block (dark, lightly tinted)."""
    lut = np.zeros((3 * N_PARTS, 4), np.uint8)
    rgb = np.array([PART_COLOURS[p] for p in pc.BODY_PARTS], float)
    lut[:N_PARTS, :3] = rgb
    for i, (dark, tint) in enumerate(zip(_DARK, (0.06, 0.13))):
        lut[(i + 1) * N_PARTS:(i + 2) * N_PARTS, :3] = np.round(dark + tint * (rgb - dark))
    lut[:, 3] = 255
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
    """Pose codes over time; signals carry group indices (0..69), global code ids (0..391) and
    token steps (end bounds exclusive).

    The layout decides what a row is and what a left click / drag emits: ``"codes"`` (default)
    emits ``code_clicked`` / ``code_range``, ``"groups"`` emits ``cell_clicked`` /
    ``range_selected``. Both emit ``code_chosen`` from the right-click menu and ``frame_requested``
    from the ruler. Selections and edit marks are (group, start, end) in both layouts.
    """

    cell_clicked = Signal(int, int)                 # groups layout: group, step
    range_selected = Signal(int, int, int)          # groups layout: group, start, end
    code_clicked = Signal(int, int)                 # codes layout: code id, step
    code_range = Signal(int, int, int)              # codes layout: code id, start, end
    code_chosen = Signal(int, int, int, int)        # group, code id, start, end
    frame_requested = Signal(int)

    def __init__(self, parent=None, layout: str = "codes"):
        super().__init__(parent)
        _check_layout(layout)
        self._layout = layout
        self.fps, self.n_frames = FPS, 0
        self.codes = np.zeros((0, pc.N_GROUPS), np.int64)       # (S, 70) code ids
        self.selection: tuple[int, int, int] | None = None
        self.edited: list[tuple[int, int, int]] = []
        self.menu: QMenu | None = None              # the last code menu
        self._top_row = 0.0
        self._n_cols = 0
        self._luts = {"groups": code_lut(), "codes": codes_lut()}
        self._font = QFont()
        self._font.setPointSize(9)
        self._bold = QFont(self._font)
        self._bold.setBold(True)

        self.view = _GridView(self)
        self.ruler = _FrameAxis(self)
        self.plot_widget = pg.PlotWidget(viewBox=self.view, axisItems={"top": self.ruler},
                                         background="#1e2127")
        plot = self.plot_widget.getPlotItem()
        plot.setMenuEnabled(False)
        plot.hideButtons()
        plot.showAxes((True, True, True, False), showValues=(True, True, True, False))
        plot.layout.setContentsMargins(2, 2, 4, 2)
        self.ruler.setStyle(tickFont=self._font)
        self.view.invertY(True)
        self.view.disableAutoRange()

        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.image_item.setLookupTable(self._luts[layout])
        self.view.addItem(self.image_item)
        self.group_lines = pg.PlotCurveItem(pen=pg.mkPen((120, 126, 140), width=1), connect="pairs")
        self.separators = pg.PlotCurveItem(pen=pg.mkPen((235, 238, 245), width=2), connect="pairs")
        self.edited_item = QGraphicsPathItem()
        self.edited_item.setPen(_pen((255, 255, 255), 1.5, Qt.DashLine))
        self.edited_item.setBrush(QBrush(QColor(255, 255, 255, 150), Qt.BDiagPattern))
        self.selection_item = QGraphicsRectItem()
        self.selection_item.setPen(_pen((80, 230, 255), 2.5))
        self.selection_item.setBrush(QColor(80, 230, 255, 50))
        self.selection_item.hide()
        self.playhead = pg.InfiniteLine(0.0, angle=90, movable=False, pen=pg.mkPen((255, 60, 60), width=3))
        for item in (self.group_lines, self.separators, self.edited_item, self.selection_item,
                     self.playhead):
            self.view.addItem(item, ignoreBounds=True)
        self._apply_axes()

        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.plot_widget)
        self.setMinimumHeight(120)
        self.plot_widget.viewport().installEventFilter(self)
        self.plot_widget.viewport().setMouseTracking(True)
        self.view.sigResized.connect(self._fit_rows)
        self.clear()

    # ------------------------------------------------------------------ layout

    @property
    def layout_name(self) -> str:
        """"codes" (one row per code) or "groups" (one row per group)."""
        return self._layout

    def set_layout(self, layout: str) -> None:
        """Switch between "codes" and "groups" keeping the codes, the time range, the selection,
        the edit marks and the group at the top of the view."""
        _check_layout(layout)
        if layout == self._layout:
            return
        top = self.group_of_row(int(min(max(self._top_row, 0), self.n_rows - 1)))
        self._layout = layout
        self.image_item.setLookupTable(self._luts[layout])
        self._apply_axes()
        self._render()
        self._top_row = float(self.row_of_group(top))
        self._configure()

    def _apply_axes(self) -> None:
        plot = self.plot_widget.getPlotItem()
        left, right = plot.getAxis("left"), plot.getAxis("right")
        fm = QFontMetrics(self._font)
        if self._layout == "groups":
            names = [pc.GROUPS[g].name for g in ROW_ORDER]
            parts = np.array([pc.GROUPS[g].body_part for g in ROW_ORDER])
            right_ticks = [(np.flatnonzero(parts == p).mean() + 0.5, p) for p in pc.BODY_PARTS]
            right_font, right_w = self._font, fm.horizontalAdvance("arms & legs") + 12
        else:
            names = [fm.elidedText(pc.CODES[c].name, Qt.ElideMiddle, LABEL_MAX_PX) for c in CODE_ROW_ORDER]
            # the group's name at its block's first row; a body part's first group also names
            # the body part, on a line above (every block has two rows at least)
            first = set(ROW_ORDER[np.r_[0, _GROUP_PART_BOUNDS]].tolist())
            right_ticks = [(BLOCK_START[g] + 1.0, f"{pc.GROUPS[g].body_part.upper()}\n{pc.GROUPS[g].name}")
                           if g in first else (BLOCK_START[g] + 0.5, pc.GROUPS[g].name) for g in ROW_ORDER]
            right_font = self._bold
            bold = QFontMetrics(self._bold)
            right_w = max(bold.horizontalAdvance(pc.GROUPS[g].name) for g in ROW_ORDER) + 12
        left.setTicks([[(r + 0.5, n) for r, n in enumerate(names)], []])
        left.setStyle(tickFont=self._font, tickLength=0, textFillLimits=[(0, 1.0)])
        left.setWidth(max(fm.horizontalAdvance(n) for n in names) + 14)
        right.setTicks([right_ticks, []])
        right.setStyle(tickFont=right_font, tickLength=0)
        right.setWidth(right_w)

    # ------------------------------------------------------------------ rows

    @property
    def n_steps(self) -> int:
        return len(self.codes)

    @property
    def n_rows(self) -> int:
        return pc.N_CODES if self._layout == "codes" else pc.N_GROUPS

    def row_of_group(self, g: int) -> int:
        """The group's row (groups layout) or the first row of its block (codes layout)."""
        return int(BLOCK_START[g] if self._layout == "codes" else _ROW_OF[g])

    def rows_of_group(self, g: int) -> range:
        """The display rows of a group: one (groups layout) or its codes' block (codes layout)."""
        first = self.row_of_group(g)
        return range(first, first + (pc.GROUPS[g].n_codes if self._layout == "codes" else 1))

    def group_of_row(self, r: int) -> int:
        return int(_GROUP_OF_CODE_ROW[r] if self._layout == "codes" else ROW_ORDER[r])

    def row_of_code(self, c: int) -> int:
        """The code's row (codes layout) or its group's row (groups layout)."""
        return int(_ROW_OF_CODE[c]) if self._layout == "codes" else self.row_of_group(pc.CODE_GROUP[c])

    def code_of_row(self, r: int) -> int:
        """The code of a row; codes layout only."""
        if self._layout != "codes":
            raise ValueError("code_of_row needs the codes layout")
        return int(CODE_ROW_ORDER[r])

    # ------------------------------------------------------------------ data

    def clear(self, n_steps: int = 49) -> None:
        """An empty grid (no codes) of n_steps columns."""
        self._show(np.zeros((0, pc.N_GROUPS), np.int64), n_steps)

    def set_motion(self, motion) -> None:
        self.fps, n_frames = float(motion.fps), motion.n_frames
        self.set_codes(motion.code_ids())
        self.n_frames = n_frames

    def set_codes(self, code_ids) -> None:
        """Show (S, 70) global code ids (column g holds a code of group g)."""
        ids = np.asarray(code_ids)
        if ids.ndim != 2 or ids.shape[1] != pc.N_GROUPS or len(ids) == 0:
            raise ValueError(f"code ids must have shape (S, {pc.N_GROUPS}), got {ids.shape}")
        self._show(ids.astype(np.int64), len(ids))

    def _show(self, codes: np.ndarray, n_cols: int) -> None:
        resized = n_cols != self._n_cols
        self.codes, self._n_cols, self.n_frames = codes, n_cols, len(codes) * UNIT
        self._render()
        if resized:
            self.view.setXRange(0, n_cols, padding=0)
            self.selection, self.edited = None, []
            self._configure()

    def _render(self) -> None:
        """Build the layout's image from self.codes with numpy (no loop over cells) and show it."""
        S, ids = self._n_cols, self.codes
        if self._layout == "groups":
            if len(ids):
                image = ids[:, ROW_ORDER].T.astype(np.uint16)
            else:
                image = np.full((pc.N_GROUPS, S), EMPTY, np.uint16)
        else:
            image = np.repeat(CODE_ROW_OFF[:, None], S, axis=1)     # (392, S) inactive shades
            if len(ids):
                rows = _ROW_OF_CODE[ids]                              # (S, 70) row of each active code
                image[rows, np.arange(S)[:, None]] = CODE_ROW_ON[rows]
        self.image_item.setImage(image, levels=(0, len(self._luts[self._layout])), autoLevels=False)

    def _configure(self) -> None:
        """Limits, separator lines, overlays and visible rows for the layout and column count."""
        S = self._n_cols
        self.view.setLimits(xMin=0, xMax=max(S, 1), yMin=0, yMax=self.n_rows)
        if self._layout == "groups":
            part, group = _GROUP_PART_BOUNDS, np.zeros(0)
        else:
            part, group = _CODE_PART_BOUNDS, _CODE_GROUP_BOUNDS
        for item, rows in ((self.separators, part), (self.group_lines, group)):
            item.setData(np.tile([0.0, S], len(rows)), np.repeat(rows, 2).astype(float))
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
        """Hatch the cells of an edit (steps start..end-1 of a group; its whole block in code rows)."""
        self.edited.append((int(group), int(start), int(end)))
        self._update_overlays()

    def clear_edited(self) -> None:
        self.edited = []
        self._update_overlays()

    def _cell_rect(self, group: int, start: int, end: int) -> QRectF:
        rows = self.rows_of_group(group)
        return QRectF(start, rows.start, end - start, len(rows))

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
        """Show as many rows as fit at the layout's row height, from the current top row."""
        h, N = self.view.height(), self.n_rows
        n = N if h <= 0 else min(N, max(1.0, h / (CODE_ROW_PX if self._layout == "codes" else ROW_PX)))
        self._top_row = min(max(self._top_row, 0.0), N - n)
        self.view.setYRange(self._top_row, self._top_row + n, padding=0)

    def scroll_rows(self, rows: float) -> None:
        self._top_row += rows
        self._fit_rows()

    def scroll_to_group(self, g: int) -> None:
        """Scroll so that the group's row (its block's first row) is the top row, as far as the
        rows below allow."""
        self._top_row = float(self.row_of_group(g))
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
            self.scroll_rows(-WHEEL_ROWS[self._layout] * notches)

    # ------------------------------------------------------------------ mouse

    def _row_step(self, p: QPointF) -> tuple[int, int] | None:
        s, r = int(np.floor(p.x())), int(np.floor(p.y()))
        if 0 <= s < self.n_steps and 0 <= r < self.n_rows:
            return r, s
        return None

    def cell_at(self, p: QPointF) -> tuple[int, int] | None:
        """(group, step) under a point in view coordinates, or None outside the codes."""
        hit = self._row_step(p)
        return None if hit is None else (self.group_of_row(hit[0]), hit[1])

    def code_at(self, p: QPointF) -> tuple[int, int] | None:
        """(code id, step) under a point: the row's code (codes layout) or the code active in the
        cell (groups layout); None outside the codes."""
        hit = self._row_step(p)
        if hit is None:
            return None
        r, s = hit
        if self._layout == "codes":
            return self.code_of_row(r), s
        return int(self.codes[s, self.group_of_row(r)]), s

    def _scrub(self, x: float) -> None:
        last = max(self.n_frames, 1) - 1
        self.frame_requested.emit(int(min(max(np.floor(x * UNIT), 0), last)))

    def _click(self, button, p: QPointF, screen_pos) -> None:
        hit = self._row_step(p)
        if hit is None:
            return
        r, s = hit
        g = self.group_of_row(r)
        code = self.code_of_row(r) if self._layout == "codes" else None
        if button == Qt.LeftButton:
            self.set_selection(g, s, s + 1)
            if code is None:
                self.cell_clicked.emit(g, s)
            else:
                self.code_clicked.emit(code, s)
        elif button == Qt.RightButton:
            sel = self.selection
            start, end = (sel[1], sel[2]) if sel and sel[0] == g and sel[1] <= s < sel[2] else (s, s + 1)
            self.open_code_menu(g, s, start, end, screen_pos.toPoint(), code)

    def _drag(self, p0: QPointF, p: QPointF, finish: bool) -> None:
        hit = self._row_step(p0)
        if hit is None:
            return
        r, s0 = hit
        g = self.group_of_row(r)
        s = int(min(max(np.floor(p.x()), 0), self.n_steps - 1))
        start, end = min(s0, s), max(s0, s) + 1
        self.set_selection(g, start, end)
        if finish:
            if self._layout == "codes":
                self.code_range.emit(self.code_of_row(r), start, end)
            else:
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

    def open_code_menu(self, group: int, step: int, start: int, end: int, screen_pos,
                       code: int | None = None) -> QMenu:
        """Pop the code menu up (non-blocking); choosing a code emits code_chosen. `code` (the
        right-clicked code row) is highlighted."""
        if self.menu is not None:
            self.menu.deleteLater()
        self.menu = menu = self.code_menu(group, step, start, end)

        def chosen(act):
            if act.data() is not None:
                menu.close()
                self.code_chosen.emit(group, int(act.data()), start, end)

        menu.triggered.connect(chosen)
        menu.popup(screen_pos)
        if code is not None:
            menu.setActiveAction(next(a for a in menu.actions() if a.data() == code))
        return menu

    def tooltip_text(self, group: int, step: int) -> str:
        """Groups layout: the group, step, frame and active code of a cell."""
        code = pc.CODES[int(self.codes[step, group])].name
        return f"{pc.GROUPS[group].name} · step {step} (frame {step * UNIT}): {code}"

    def code_tooltip_text(self, code: int, step: int) -> str:
        """Codes layout: the group, step, frame and code of a cell, and whether it is active."""
        g = int(pc.CODE_GROUP[code])
        state = "active" if self.codes[step, g] == code else "not active; click to make it active"
        return f"{pc.GROUPS[g].name} · step {step} (frame {step * UNIT}): {pc.CODES[code].name} ({state})"

    def eventFilter(self, obj, ev):
        if ev.type() == QEvent.ToolTip:
            hit = self._row_step(self.view.mapSceneToView(self.plot_widget.mapToScene(ev.pos())))
            if hit is None:
                QToolTip.hideText()
            else:
                r, s = hit
                text = (self.code_tooltip_text(self.code_of_row(r), s) if self._layout == "codes"
                        else self.tooltip_text(self.group_of_row(r), s))
                QToolTip.showText(ev.globalPos(), text, self.plot_widget)
            return True
        return super().eventFilter(obj, ev)


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")

def _pen(rgb, width: float, style=Qt.SolidLine) -> QPen:
    pen = QPen(QColor(*rgb), width, style)
    pen.setCosmetic(True)
    return pen
