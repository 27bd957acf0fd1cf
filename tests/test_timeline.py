"""The pose-code grid (timeline) and the code inspector, driven with real mouse events under Xvfb.

Run with `bash scripts/run-tests.sh tests/test_timeline.py`.
"""

import os
import sys

import numpy as np
import pytest

from core import posecodes as pc

pytestmark = [
    pytest.mark.gui,
    pytest.mark.skipif(
        sys.platform.startswith("linux")
        and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")),
        reason="no display; run under Xvfb with `bash scripts/run-tests.sh`",
    ),
]

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


@pytest.fixture
def grid(qtbot, motion):
    from pgr2m_studio.timeline import PoseCodeGrid

    w = PoseCodeGrid()
    qtbot.addWidget(w)
    w.resize(1100, 520)
    w.show()
    qtbot.waitExposed(w)
    w.set_motion(motion)
    qtbot.wait(20)
    return w


def cell_point(grid, group, step):
    from PySide6.QtCore import QPointF

    scene = grid.view.mapViewToScene(QPointF(step + 0.5, grid.row_of_group(group) + 0.5))
    return grid.plot_widget.mapFromScene(scene)


def visible_groups(grid):
    lo, hi = grid.view.viewRange()[1]
    return [grid.group_of_row(r) for r in range(int(np.ceil(lo)), int(hi))]


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
