"""Live training curves: one pyqtgraph curve per named series, appended as points arrive;
series of one group (a stage) share a colour, dashed ones (validation) beside solid ones.
Memory and drawing stay bounded: a series longer than ``max_points`` keeps every other point."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

COLOURS = [(90, 170, 255), (255, 140, 80), (110, 210, 120), (220, 110, 220), (240, 210, 90), (120, 220, 220)]


class LossPlot(pg.PlotWidget):
    def __init__(self, parent=None, max_points: int = 2000):
        super().__init__(parent)
        self.max_points = max_points
        self.setLabel("bottom", "step")
        self.setLabel("left", "loss")
        self.showGrid(x=True, y=True, alpha=0.25)
        self.addLegend(offset=(-10, 10), brush=pg.mkBrush(25, 25, 25, 210))
        self._series: dict[str, tuple[pg.PlotDataItem, list, list]] = {}
        self._colours: dict[str, tuple] = {}
        self.setMinimumHeight(180)

    def add_points(self, name: str, steps, values, group: str | None = None, dashed: bool = False) -> None:
        """Append points to the series ``name`` (created on first use, coloured by ``group``)."""
        if name not in self._series:
            colour = self._colours.setdefault(group or name, COLOURS[len(self._colours) % len(COLOURS)])
            pen = pg.mkPen(colour, width=2, style=Qt.DashLine if dashed else Qt.SolidLine)
            self._series[name] = (self.plot([], [], pen=pen, name=name), [], [])
        item, xs, ys = self._series[name]
        xs.extend(float(s) for s in steps)
        ys.extend(float(v) for v in values)
        if len(xs) > self.max_points:       # thin out the history, keep the newest point
            tail = len(xs) % 2 == 0
            xs[:] = xs[::2] + xs[-1:] * tail
            ys[:] = ys[::2] + ys[-1:] * tail
        item.setData(np.asarray(xs), np.asarray(ys))

    def clear_series(self, prefix: str = "") -> None:
        """Forget the series whose name starts with ``prefix`` (all by default)."""
        for name in [n for n in self._series if n.startswith(prefix)]:
            item, xs, ys = self._series[name]
            xs.clear()
            ys.clear()
            item.setData([], [])

    def names(self) -> list[str]:
        return list(self._series)

    def point_count(self, name: str | None = None) -> int:
        if name is not None:
            return len(self._series[name][1]) if name in self._series else 0
        return sum(len(xs) for _, xs, _ in self._series.values())
