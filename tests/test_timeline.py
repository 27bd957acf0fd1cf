"""The pose-code grid (timeline) and the code inspector, driven with real mouse events under Xvfb.

Run with `bash scripts/run-tests.sh tests/test_timeline.py`.
"""


import numpy as np
import pytest
from conftest import GUI

from core import posecodes as pc

pytestmark = GUI

S = 30
KNEE = next(g.index for g in pc.GROUPS if g.name == "left knee angle")


class FakeMotion:
    """What the widgets read from core.model.pipeline.Motion (without importing torch)."""

    def __init__(self, ids, fps=20.0):
        self.ids, self.fps, self.n_frames = ids, fps, len(ids) * 4

    def code_ids(self):
        return self.ids


def make_ids(seed=0, steps=S):
    """Piecewise-constant random codes: each group changes every few steps."""
    rng = np.random.default_rng(seed)
    ids = np.empty((steps, pc.N_GROUPS), np.int64)
    for g in pc.GROUPS:
        cat = np.repeat(rng.integers(g.n_codes, size=steps), rng.integers(2, 6, size=steps))[:steps]
        ids[:, g.index] = g.first_code + cat
    knee = pc.GROUPS[KNEE]
    ids[12, KNEE] = next(c for c in knee.code_ids if pc.CODES[c].name == "left knee bent 80–90°")
    return ids


@pytest.fixture
def motion():
    return FakeMotion(make_ids())


def make_grid(qtbot, motion, **kw):
    from pgr2m_studio.timeline import PoseCodeGrid

    w = PoseCodeGrid(**kw)
    qtbot.addWidget(w)
    w.resize(1100, 520)
    w.show()
    qtbot.waitExposed(w)
    w.set_motion(motion)
    qtbot.wait(20)
    return w


@pytest.fixture
def grid(qtbot, motion):
    """The compact layout: one row per group."""
    return make_grid(qtbot, motion, layout="groups")


@pytest.fixture
def cgrid(qtbot, motion):
    """The default layout: one row per code."""
    return make_grid(qtbot, motion)


def cell_point(grid, group, step):
    from PySide6.QtCore import QPointF

    scene = grid.view.mapViewToScene(QPointF(step + 0.5, grid.row_of_group(group) + 0.5))
    return grid.plot_widget.mapFromScene(scene)


def code_point(grid, code, step):
    from PySide6.QtCore import QPointF

    scene = grid.view.mapViewToScene(QPointF(step + 0.5, grid.row_of_code(code) + 0.5))
    return grid.plot_widget.mapFromScene(scene)


def visible_rows(grid):
    lo, hi = grid.view.viewRange()[1]
    return list(range(int(np.ceil(lo)), int(hi)))


def visible_groups(grid):
    return [grid.group_of_row(r) for r in visible_rows(grid)]


def visible_codes(grid):
    return [grid.code_of_row(r) for r in visible_rows(grid)]


def send_mouse(widget, kind, pos, buttons):
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    p = QPointF(pos)
    ev = QMouseEvent(kind, p, QPointF(widget.mapToGlobal(pos)), Qt.LeftButton, buttons, Qt.NoModifier)
    QApplication.sendEvent(widget, ev)


def test_one_image_item_holds_the_codes_in_body_part_order(grid, motion):
    import pyqtgraph as pg

    from pgr2m_studio.timeline import code_lut

    images = [i for i in grid.plot_widget.scene().items() if isinstance(i, pg.ImageItem)]
    assert images == [grid.image_item]
    assert not any(isinstance(w, pg.ImageView) for w in grid.findChildren(pg.QtWidgets.QWidget))
    img = grid.image_item.image
    assert img.shape == (pc.N_GROUPS, S)
    order = [grid.group_of_row(r) for r in range(pc.N_GROUPS)]
    assert sorted(order) == list(range(pc.N_GROUPS))
    assert all(grid.row_of_group(g) == r for r, g in enumerate(order))
    parts = [pc.BODY_PARTS.index(pc.GROUPS[g].body_part) for g in order]
    assert parts == sorted(parts) and parts[0] == 0
    assert np.array_equal(img, motion.ids[:, order].T)
    # the lookup table maps each cell's code id to its colour, exactly
    grid.image_item.render()
    lut, q = code_lut(), grid.image_item.qimage
    from PySide6.QtGui import QColor
    for r, s in [(0, 0), (5, 7), (40, 12), (69, S - 1)]:
        c = QColor(q.pixel(s, r))
        assert (c.red(), c.green(), c.blue()) == tuple(lut[img[r, s], :3])
    # rows carry readable labels
    ticks = grid.plot_widget.getPlotItem().getAxis("left")._tickLevels[0]
    assert [t[1] for t in ticks] == [pc.GROUPS[g].name for g in order]


def test_click_cell_emits_group_and_step(grid, qtbot):
    from PySide6.QtCore import Qt

    vis = visible_groups(grid)
    for g, s in [(vis[0], 0), (vis[7], 13), (vis[-1], S - 1)]:
        with qtbot.waitSignal(grid.cell_clicked, timeout=1000) as sig:
            qtbot.mouseClick(grid.plot_widget.viewport(), Qt.LeftButton, pos=cell_point(grid, g, s))
        assert sig.args == [g, s]
        assert grid.selection == (g, s, s + 1)
        qtbot.wait(300)                             # no double click


def test_drag_along_a_row_selects_a_range(grid, qtbot):
    from PySide6.QtCore import QEvent, Qt

    vp, g = grid.plot_widget.viewport(), visible_groups(grid)[4]
    ranges = grid.view.viewRange()
    with qtbot.waitSignal(grid.range_selected, timeout=1000) as sig:
        send_mouse(vp, QEvent.MouseButtonPress, cell_point(grid, g, 9), Qt.LeftButton)
        for s in (8, 7, 6, 4):                      # drag leftwards; the row stays the press's row
            qtbot.wait(30)
            p = cell_point(grid, g, s)
            p.setY(p.y() + 4)
            send_mouse(vp, QEvent.MouseMove, p, Qt.LeftButton)
        qtbot.wait(30)
        send_mouse(vp, QEvent.MouseButtonRelease, cell_point(grid, g, 4), Qt.NoButton)
    assert sig.args == [g, 4, 10]
    assert grid.selection == (g, 4, 10) and grid.selection_item.isVisible()
    assert grid.view.viewRange() == ranges          # no pan by pyqtgraph's default handler


def test_context_menu_lists_codes_and_emits_choice(grid, qtbot, motion):
    from PySide6.QtCore import Qt

    def right_click(g, s):
        qtbot.mouseClick(grid.plot_widget.viewport(), Qt.RightButton, pos=cell_point(grid, g, s))
        qtbot.waitUntil(lambda: grid.menu is not None and grid.menu.isVisible(), timeout=1000)
        return [a for a in grid.menu.actions() if a.data() is not None]

    g, s = visible_groups(grid)[2], 5
    grp = pc.GROUPS[g]
    acts = right_click(g, s)
    assert [a.text() for a in acts] == list(grp.code_names)
    assert [a.isChecked() for a in acts] == [c == motion.ids[s, g] for c in grp.code_ids]
    with qtbot.waitSignal(grid.code_chosen, timeout=1000) as sig:
        acts[-1].trigger()
    assert sig.args == [g, grp.first_code + grp.n_codes - 1, s, s + 1]
    qtbot.waitUntil(lambda: not grid.menu.isVisible(), timeout=1000)
    # inside a selection, the choice applies to the whole selection
    grid.set_selection(g, 3, 9)
    qtbot.wait(300)
    acts = right_click(g, 6)
    with qtbot.waitSignal(grid.code_chosen, timeout=1000) as sig:
        acts[0].trigger()
    assert sig.args == [g, grp.first_code, 3, 9]


def test_tooltip_names_group_step_frame_and_code(grid, qtbot, monkeypatch):
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QApplication, QToolTip

    assert grid.tooltip_text(KNEE, 12) == "left knee angle · step 12 (frame 48): left knee bent 80–90°"
    texts = []
    monkeypatch.setattr(QToolTip, "showText", lambda pos, text, *a: texts.append(text))
    grid.scroll_rows(grid.row_of_group(KNEE) - 3)
    qtbot.wait(20)
    assert KNEE in visible_groups(grid)
    vp = grid.plot_widget.viewport()
    p = cell_point(grid, KNEE, 12)
    QApplication.sendEvent(vp, QHelpEvent(QEvent.ToolTip, p, vp.mapToGlobal(p)))
    assert texts == ["left knee angle · step 12 (frame 48): left knee bent 80–90°"]


def test_playhead_follows_set_frame_and_stays_in_view(grid):
    grid.set_frame(50)
    assert grid.playhead.value() == pytest.approx(12.625)
    assert int(grid.playhead.value()) == 50 // 4
    grid.view.setXRange(0, 8, padding=0)           # zoomed in: the playhead scrolls into view
    grid.set_frame(100)
    lo, hi = grid.view.viewRange()[0]
    assert lo <= grid.playhead.value() <= hi and hi - lo == pytest.approx(8)


def test_ruler_click_requests_a_frame(grid, qtbot):
    from PySide6.QtCore import QPointF, Qt

    for frame in (0, 37, S * 4 - 1):
        x = grid.view.mapViewToScene(QPointF((frame + 0.5) / 4, 0)).x()
        pt = grid.plot_widget.mapFromScene(QPointF(x, grid.ruler.sceneBoundingRect().center().y()))
        with qtbot.waitSignal(grid.frame_requested, timeout=1000) as sig:
            qtbot.mouseClick(grid.plot_widget.viewport(), Qt.LeftButton, pos=pt)
        assert sig.args == [frame]
        qtbot.wait(300)


def test_wheel_scrolls_rows_and_ctrl_wheel_zooms_time(grid, qtbot):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    vp = grid.plot_widget.viewport()
    p = QPointF(cell_point(grid, visible_groups(grid)[3], 10))

    def wheel(mods):
        ev = QWheelEvent(p, QPointF(vp.mapToGlobal(p.toPoint())), QPoint(), QPoint(0, -120),
                         Qt.NoButton, mods, Qt.NoScrollPhase, False)
        QApplication.sendEvent(vp, ev)

    (x0, y0) = grid.view.viewRange()
    wheel(Qt.NoModifier)
    x1, y1 = grid.view.viewRange()
    assert y1[0] == pytest.approx(y0[0] + 3) and x1 == x0
    grid.view.setXRange(5, 15, padding=0)
    wheel(Qt.ControlModifier)                       # wheel down with Ctrl: zoom out in time
    x2, y2 = grid.view.viewRange()
    assert x2[1] - x2[0] > 10 and y2 == y1


def test_edited_overlay_and_selection(grid):
    g = visible_groups(grid)[1]
    grid.mark_edited(g, 2, 6)
    r = grid.edited_item.path().boundingRect()
    assert (r.left(), r.top(), r.width(), r.height()) == (2, grid.row_of_group(g), 4, 1)
    grid.clear_edited()
    assert grid.edited_item.path().isEmpty()
    grid.clear_selection()
    assert not grid.selection_item.isVisible()


# ---------------------------------------------------------------------- codes layout (the default)

KNEE_80 = next(c for c in pc.GROUPS[KNEE].code_ids if pc.CODES[c].name == "left knee bent 80–90°")
KNEE_90 = KNEE_80 + 1


def one_hot_rows(grid, ids):
    """The expected codes-layout image mask: (392, S), row r lit where its code is active."""
    order = [grid.code_of_row(r) for r in range(pc.N_CODES)]
    return pc.from_indices(ids)[:, order].T


def test_codes_layout_is_the_default_with_one_row_per_code(cgrid, motion):
    import pyqtgraph as pg
    from PySide6.QtGui import QColor

    from pgr2m_studio.timeline import N_PARTS, PART_COLOURS, ROW_ORDER, codes_lut

    assert cgrid.layout_name == "codes" and cgrid.n_rows == pc.N_CODES
    images = [i for i in cgrid.plot_widget.scene().items() if isinstance(i, pg.ImageItem)]
    assert images == [cgrid.image_item]
    img = cgrid.image_item.image
    assert img.shape == (pc.N_CODES, S)
    # rows: every code once; a group's codes consecutive in category order; groups by body part
    order = [cgrid.code_of_row(r) for r in range(pc.N_CODES)]
    assert sorted(order) == list(range(pc.N_CODES))
    assert all(cgrid.row_of_code(c) == r for r, c in enumerate(order))
    blocks = [pc.CODE_GROUP[c] for c in order]
    groups = [g for i, g in enumerate(blocks) if i == 0 or blocks[i - 1] != g]
    assert groups == list(ROW_ORDER) and len(groups) == pc.N_GROUPS    # each group one block
    for g in pc.GROUPS:
        first = cgrid.row_of_group(g.index)
        assert order[first:first + g.n_codes] == list(g.code_ids)
        assert cgrid.rows_of_group(g.index) == range(first, first + g.n_codes)
        assert {cgrid.group_of_row(r) for r in cgrid.rows_of_group(g.index)} == {g.index}
    # the image is the one-hot codes in row order (lit values < N_PARTS), one lit cell per group
    lit = img < N_PARTS
    assert np.array_equal(lit, one_hot_rows(cgrid, motion.ids))
    assert lit.sum() == S * pc.N_GROUPS
    # colours: an active code in its body part's colour, inactive cells dark, alternate blocks
    # shaded apart
    cgrid.image_item.render()
    lut, q = codes_lut(), cgrid.image_item.qimage
    for r in (0, 5, 100, 200, 391):
        for s in (0, 7, S - 1):
            c = QColor(q.pixel(s, r))
            rgb = (c.red(), c.green(), c.blue())
            assert rgb == tuple(lut[img[r, s], :3])
            part = pc.CODES[order[r]].body_part
            if lit[r, s]:
                assert rgb == PART_COLOURS[part]
            else:
                assert sum(rgb) < 240
    off = [tuple(lut[img[cgrid.row_of_group(g), 0] if not lit[cgrid.row_of_group(g), 0]
                     else img[cgrid.row_of_group(g) + 1, 0], :3]) for g in ROW_ORDER[:2]]
    assert off[0] != off[1]
    # left axis: the code names (long ones elided in the middle), 9 pt; right axis: group names
    # at their blocks' first rows
    plot = cgrid.plot_widget.getPlotItem()
    left, right = plot.getAxis("left"), plot.getAxis("right")
    assert left.style["tickFont"].pointSize() == 9
    ticks = left._tickLevels[0]
    assert [t[0] for t in ticks] == [r + 0.5 for r in range(pc.N_CODES)]
    labels, names = [t[1] for t in ticks], [pc.CODES[c].name for c in order]
    assert sum(a == b for a, b in zip(labels, names)) > 0.95 * pc.N_CODES
    for a, b in zip(labels, names):
        head, _, tail = a.partition("…")
        assert a == b or (b.startswith(head) and b.endswith(tail) and len(head) > 10)
    rticks = right._tickLevels[0]
    assert len(rticks) == pc.N_GROUPS
    for (y, text), g in zip(rticks, ROW_ORDER):
        assert text.split("\n")[-1] == pc.GROUPS[g].name
        assert cgrid.row_of_group(g) <= y < cgrid.row_of_group(g) + 2
    # thin lines between groups, thick ones between body parts
    ys = np.concatenate([cgrid.group_lines.yData, cgrid.separators.yData])
    assert sorted(set(ys)) == sorted(cgrid.row_of_group(g) for g in ROW_ORDER[1:])
    assert len(set(cgrid.separators.yData)) == len(pc.BODY_PARTS) - 1
    # rows readable: about 15 px each, the wheel scrolls the rest
    lo, hi = cgrid.view.viewRange()[1]
    assert 13 <= cgrid.view.height() / (hi - lo) <= 20


def test_codes_image_follows_set_codes_and_clear(cgrid):
    from pgr2m_studio.timeline import N_PARTS

    for seed, steps in ((1, S), (2, 49), (3, 13)):
        ids = make_ids(seed, steps)
        cgrid.set_codes(ids)
        assert np.array_equal(cgrid.image_item.image < N_PARTS, one_hot_rows(cgrid, ids))
        assert np.array_equal(cgrid.codes, ids)
    cgrid.clear(20)
    assert cgrid.image_item.image.shape == (pc.N_CODES, 20)
    assert (cgrid.image_item.image >= N_PARTS).all() and cgrid.n_steps == 0


def test_click_code_cell_emits_code_and_step(cgrid, qtbot, motion):
    from PySide6.QtCore import Qt

    clicked = []
    cgrid.cell_clicked.connect(lambda *a: clicked.append(a))
    vis = visible_codes(cgrid)
    codes = [vis[0], vis[9], vis[-1]]
    inactive = next(c for c in vis if c != motion.ids[13, pc.CODE_GROUP[c]])
    active = next(c for c in vis if c == motion.ids[21, pc.CODE_GROUP[c]])
    for c, s in [(codes[0], 0), (codes[1], 13), (codes[2], S - 1), (inactive, 13), (active, 21)]:
        with qtbot.waitSignal(cgrid.code_clicked, timeout=1000) as sig:
            qtbot.mouseClick(cgrid.plot_widget.viewport(), Qt.LeftButton, pos=code_point(cgrid, c, s))
        assert sig.args == [c, s]
        g = int(pc.CODE_GROUP[c])
        assert cgrid.code_at(cgrid.view.mapSceneToView(
            cgrid.plot_widget.mapToScene(code_point(cgrid, c, s)))) == (c, s)
        assert cgrid.selection == (g, s, s + 1)
        # the selection outlines the whole group block over the range
        r = cgrid.selection_item.rect()
        n = pc.GROUPS[g].n_codes
        assert (r.left(), r.top(), r.width(), r.height()) == (s, cgrid.row_of_group(g), 1, n)
        qtbot.wait(300)                             # no double click
    assert clicked == []                            # the groups layout's signal stays quiet


def test_drag_along_a_code_row_emits_code_range(cgrid, qtbot):
    from PySide6.QtCore import QEvent, Qt

    vp = cgrid.plot_widget.viewport()
    c = visible_codes(cgrid)[6]
    g = int(pc.CODE_GROUP[c])
    ranges = cgrid.view.viewRange()
    selected = []
    cgrid.range_selected.connect(lambda *a: selected.append(a))
    with qtbot.waitSignal(cgrid.code_range, timeout=1000) as sig:
        send_mouse(vp, QEvent.MouseButtonPress, code_point(cgrid, c, 3), Qt.LeftButton)
        for s in (4, 6, 9, 12):                     # drag rightwards, drifting down a row or two
            qtbot.wait(30)
            p = code_point(cgrid, c, s)
            p.setY(p.y() + 3 * s)
            send_mouse(vp, QEvent.MouseMove, p, Qt.LeftButton)
        qtbot.wait(30)
        send_mouse(vp, QEvent.MouseButtonRelease, code_point(cgrid, c, 12), Qt.NoButton)
    assert sig.args == [c, 3, 13]
    assert cgrid.selection == (g, 3, 13) and cgrid.selection_item.isVisible()
    r = cgrid.selection_item.rect()
    assert (r.left(), r.top(), r.width(), r.height()) == (3, cgrid.row_of_group(g), 10, pc.GROUPS[g].n_codes)
    assert cgrid.view.viewRange() == ranges and selected == []


def test_code_menu_lists_group_codes_and_emits_choice(cgrid, qtbot, motion):
    from PySide6.QtCore import Qt

    def right_click(c, s):
        qtbot.mouseClick(cgrid.plot_widget.viewport(), Qt.RightButton, pos=code_point(cgrid, c, s))
        qtbot.waitUntil(lambda: cgrid.menu is not None and cgrid.menu.isVisible(), timeout=1000)
        return [a for a in cgrid.menu.actions() if a.data() is not None]

    cgrid.scroll_to_group(KNEE)
    qtbot.wait(20)
    grp = pc.GROUPS[KNEE]
    acts = right_click(KNEE_90, 12)                 # a code row that is not active at step 12
    assert [a.text() for a in acts] == list(grp.code_names)
    assert [a.isChecked() for a in acts] == [c == KNEE_80 for c in grp.code_ids]
    assert cgrid.menu.activeAction().data() == KNEE_90      # the right-clicked row highlighted
    with qtbot.waitSignal(cgrid.code_chosen, timeout=1000) as sig:
        acts[-1].trigger()
    assert sig.args == [KNEE, grp.first_code + grp.n_codes - 1, 12, 13]
    qtbot.waitUntil(lambda: not cgrid.menu.isVisible(), timeout=1000)
    # inside a selection of the group (any of its code rows), the choice covers the selection
    cgrid.set_selection(KNEE, 10, 16)
    qtbot.wait(300)
    acts = right_click(grp.first_code + 3, 14)
    with qtbot.waitSignal(cgrid.code_chosen, timeout=1000) as sig:
        acts[0].trigger()
    assert sig.args == [KNEE, grp.first_code, 10, 16]


def test_code_tooltip_says_whether_the_code_is_active(cgrid, qtbot, monkeypatch):
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QApplication, QToolTip

    on = "left knee angle · step 12 (frame 48): left knee bent 80–90° (active)"
    off = ("left knee angle · step 12 (frame 48): left knee bent 90–100° "
           "(not active; click to make it active)")
    assert cgrid.code_tooltip_text(KNEE_80, 12) == on
    assert cgrid.code_tooltip_text(KNEE_90, 12) == off
    texts = []
    monkeypatch.setattr(QToolTip, "showText", lambda pos, text, *a: texts.append(text))
    cgrid.scroll_to_group(KNEE)
    qtbot.wait(20)
    assert {KNEE_80, KNEE_90} <= set(visible_codes(cgrid))
    vp = cgrid.plot_widget.viewport()
    for c in (KNEE_80, KNEE_90):
        p = code_point(cgrid, c, 12)
        QApplication.sendEvent(vp, QHelpEvent(QEvent.ToolTip, p, vp.mapToGlobal(p)))
    assert texts == [on, off]


def test_scroll_to_group_and_wheel_in_code_rows(cgrid, qtbot):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    from pgr2m_studio.timeline import ROW_ORDER, WHEEL_ROWS

    for g in (KNEE, int(ROW_ORDER[30]), int(ROW_ORDER[0])):
        cgrid.scroll_to_group(g)
        assert cgrid.view.viewRange()[1][0] == pytest.approx(cgrid.row_of_group(g))
        assert set(cgrid.rows_of_group(g)) <= set(visible_rows(cgrid))
    last = int(ROW_ORDER[-1])                       # the last block: scrolled as far as it goes
    cgrid.scroll_to_group(last)
    assert cgrid.view.viewRange()[1][1] == pytest.approx(pc.N_CODES)
    assert set(cgrid.rows_of_group(last)) <= set(visible_rows(cgrid))

    cgrid.scroll_to_group(int(ROW_ORDER[20]))
    vp = cgrid.plot_widget.viewport()
    p = QPointF(code_point(cgrid, visible_codes(cgrid)[3], 10))

    def wheel(mods, dy=-120):
        ev = QWheelEvent(p, QPointF(vp.mapToGlobal(p.toPoint())), QPoint(), QPoint(0, dy),
                         Qt.NoButton, mods, Qt.NoScrollPhase, False)
        QApplication.sendEvent(vp, ev)

    x0, y0 = cgrid.view.viewRange()
    wheel(Qt.NoModifier)
    x1, y1 = cgrid.view.viewRange()
    assert y1[0] == pytest.approx(y0[0] + WHEEL_ROWS["codes"]) and x1 == x0
    wheel(Qt.NoModifier, 120)
    assert cgrid.view.viewRange()[1][0] == pytest.approx(y0[0])
    cgrid.view.setXRange(5, 15, padding=0)
    wheel(Qt.ControlModifier)                       # zoom out in time, rows untouched
    x2, y2 = cgrid.view.viewRange()
    assert x2[1] - x2[0] > 10 and y2[0] == pytest.approx(y0[0])


def test_codes_layout_overlays_cover_group_blocks(cgrid):
    g = visible_groups(cgrid)[1]
    n = pc.GROUPS[g].n_codes
    cgrid.mark_edited(g, 2, 6)
    r = cgrid.edited_item.path().boundingRect()
    assert (r.left(), r.top(), r.width(), r.height()) == (2, cgrid.row_of_group(g), 4, n)
    cgrid.set_frame(50)
    assert cgrid.playhead.value() == pytest.approx(12.625)
    cgrid.clear_edited()
    assert cgrid.edited_item.path().isEmpty()


def test_ruler_click_requests_a_frame_in_code_rows(cgrid, qtbot):
    from PySide6.QtCore import QPointF, Qt

    for frame in (0, 61):
        x = cgrid.view.mapViewToScene(QPointF((frame + 0.5) / 4, 0)).x()
        pt = cgrid.plot_widget.mapFromScene(QPointF(x, cgrid.ruler.sceneBoundingRect().center().y()))
        with qtbot.waitSignal(cgrid.frame_requested, timeout=1000) as sig:
            qtbot.mouseClick(cgrid.plot_widget.viewport(), Qt.LeftButton, pos=pt)
        assert sig.args == [frame]
        qtbot.wait(300)


def test_set_layout_switches_keeping_the_motion(cgrid, qtbot, motion):
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor

    from pgr2m_studio.timeline import N_PARTS, ROW_ORDER, code_lut, codes_lut

    with pytest.raises(ValueError):
        cgrid.set_layout("rows")
    with pytest.raises(ValueError):
        type(cgrid)(layout="rows")
    cgrid.set_selection(KNEE, 4, 9)
    cgrid.mark_edited(KNEE, 1, 3)
    cgrid.scroll_to_group(KNEE)
    cgrid.view.setXRange(2, 20, padding=0)
    qtbot.wait(20)
    # to the compact layout
    cgrid.set_layout("groups")
    qtbot.wait(20)
    assert cgrid.layout_name == "groups" and cgrid.n_rows == pc.N_GROUPS
    img = cgrid.image_item.image
    assert np.array_equal(img, motion.ids[:, ROW_ORDER].T)
    cgrid.image_item.render()
    c = QColor(cgrid.image_item.qimage.pixel(7, 5))
    assert (c.red(), c.green(), c.blue()) == tuple(code_lut()[img[5, 7], :3])
    assert cgrid.n_frames == motion.n_frames and np.array_equal(cgrid.codes, motion.ids)
    assert cgrid.view.viewRange()[0] == [2, 20]
    assert KNEE in visible_groups(cgrid)            # the top group stays in view
    assert cgrid.selection == (KNEE, 4, 9)
    r = cgrid.selection_item.rect()
    assert (r.top(), r.height()) == (cgrid.row_of_group(KNEE), 1)
    assert cgrid.edited_item.path().boundingRect().height() == 1
    assert [t[1] for t in cgrid.plot_widget.getPlotItem().getAxis("left")._tickLevels[0]] == \
        [pc.GROUPS[g].name for g in ROW_ORDER]
    assert len(cgrid.group_lines.yData) == 0
    with qtbot.waitSignal(cgrid.cell_clicked, timeout=1000) as sig:
        qtbot.mouseClick(cgrid.plot_widget.viewport(), Qt.LeftButton, pos=cell_point(cgrid, KNEE, 10))
    assert sig.args == [KNEE, 10]
    qtbot.wait(300)
    # and back
    cgrid.set_layout("codes")
    qtbot.wait(20)
    assert cgrid.layout_name == "codes"
    img = cgrid.image_item.image
    assert np.array_equal(img < N_PARTS, one_hot_rows(cgrid, motion.ids))
    cgrid.image_item.render()
    row = cgrid.row_of_code(motion.ids[7, KNEE])
    c = QColor(cgrid.image_item.qimage.pixel(7, row))
    assert (c.red(), c.green(), c.blue()) == tuple(codes_lut()[img[row, 7], :3])
    assert cgrid.view.viewRange()[1][0] == pytest.approx(cgrid.row_of_group(KNEE))
    assert cgrid.selection_item.rect().height() == pc.GROUPS[KNEE].n_codes
    with qtbot.waitSignal(cgrid.code_clicked, timeout=1000) as sig:
        qtbot.mouseClick(cgrid.plot_widget.viewport(), Qt.LeftButton, pos=code_point(cgrid, KNEE_90, 10))
    assert sig.args == [KNEE_90, 10]
    cgrid.set_layout("codes")                       # no-op


def test_inspector_lists_active_codes_and_changes(qtbot, motion):
    from pgr2m_studio.inspector import CodeInspector

    ins = CodeInspector()
    qtbot.addWidget(ins)
    ins.set_motion(motion)
    ids = motion.ids
    for frame in (0, 13, 48, S * 4 - 1):
        ins.set_frame(frame)
        s = frame // 4
        rows = ins.rows()
        assert len(rows) == pc.N_GROUPS
        order = sorted(range(70), key=lambda g: pc.BODY_PARTS.index(pc.GROUPS[g].body_part))
        assert [r[1] for r in rows] == [pc.GROUPS[g].name for g in order]
        by_name = {r[1]: r for r in rows}
        for g in pc.GROUPS:
            _, _, code, changed = by_name[g.name]
            assert code == pc.CODES[ids[s, g.index]].name
            assert changed == (s > 0 and ids[s, g.index] != ids[s - 1, g.index])
            assert ins._items[g.index].font(1).bold() == changed
    assert any(r[3] for r in rows) and f"step {S - 1}" in ins.header.text()
    ins.filter_box.setText("knee")
    rows = ins.rows()
    assert 0 < len(rows) < 20 and all("knee" in (r[1] + r[2]).casefold() for r in rows)
