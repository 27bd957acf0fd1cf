"""The playback clock: which frame to show, driven by elapsed real time.

Frames are computed from the time since play() (or the last seek), so a slow redraw drops
frames instead of slowing the motion down.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, Qt, QTimer, Signal

TICK_MS = 10  # timer period; the shown frame follows the clock, not the tick count


class Playback(QObject):
    frame_changed = Signal(int)
    state_changed = Signal()  # playing, loop, length or fps changed

    def __init__(self, n_frames: int = 0, fps: float = 20.0, parent=None):
        super().__init__(parent)
        self._frame = 0
        self._n = max(0, int(n_frames))
        self._fps = float(fps)
        self._loop = False
        self._t0 = 0.0      # clock time at the anchor frame
        self._f0 = 0        # anchor frame
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.PreciseTimer)
        self._timer.setInterval(TICK_MS)
        self._timer.timeout.connect(self._tick)

    # properties

    @property
    def frame(self) -> int:
        return self._frame

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def n_frames(self) -> int:
        return self._n

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    @property
    def loop(self) -> bool:
        return self._loop

    @loop.setter
    def loop(self, on: bool) -> None:
        self.set_loop(on)

    @property
    def seconds(self) -> float:
        return self._frame / self._fps if self._fps > 0 else 0.0

    # control

    def set_loop(self, on: bool) -> None:
        if bool(on) != self._loop:
            self._loop = bool(on)
            self.state_changed.emit()

    def set_length(self, n_frames: int, fps: float | None = None) -> None:
        self._n = max(0, int(n_frames))
        if fps is not None:
            if fps <= 0:
                raise ValueError(f"fps must be positive, got {fps}")
            self._fps = float(fps)
        if self._n == 0:
            self._timer.stop()
        self._set_frame(self._clamp(self._frame))
        self._anchor()
        self.state_changed.emit()

    def play(self) -> None:
        if self.playing or self._n < 2:
            return
        if self._frame >= self._n - 1 and not self._loop:
            self._set_frame(0)  # play at the end starts again
        self._anchor()
        self._timer.start()
        self.state_changed.emit()

    def pause(self) -> None:
        if self.playing:
            self._timer.stop()
            self.state_changed.emit()

    def toggle(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def seek(self, i: int) -> None:
        self._set_frame(self._clamp(i))
        self._anchor()

    def step(self, n: int = 1) -> None:
        """Pause and move n frames (clamped)."""
        self.pause()
        self.seek(self._frame + int(n))

    # internals

    def _clamp(self, i: int) -> int:
        return min(max(int(i), 0), max(self._n - 1, 0))

    def _anchor(self) -> None:
        self._t0, self._f0 = time.perf_counter(), self._frame

    def _set_frame(self, i: int) -> None:
        if i != self._frame:
            self._frame = i
            self.frame_changed.emit(i)

    def _tick(self) -> None:
        target = self._f0 + int((time.perf_counter() - self._t0) * self._fps)
        if target >= self._n:
            if not self._loop:
                self._set_frame(self._n - 1)
                self.pause()
                return
            # wrap, and move the anchor by whole loops so the clock keeps its phase
            loops = target // self._n
            self._t0 += loops * self._n / self._fps
            target -= loops * self._n
        self._set_frame(target)
