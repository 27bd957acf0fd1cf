"""The transport bar under the viewport: play/pause, step, loop, frame slider, time label, follow."""

from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QStyle, QToolButton, QWidget

from pgr2m_studio.playback import Playback


def frame_text(frame: int, n_frames: int, fps: float) -> str:
    seconds = frame / fps if fps > 0 else 0.0
    return f"frame {frame} / {n_frames} · {seconds:.2f} s"


class TransportBar(QWidget):
    """Controls wired to a Playback; the follow toggle is relayed as ``follow_toggled``."""

    follow_toggled = Signal(bool)

    def __init__(self, playback: Playback, parent=None):
        super().__init__(parent)
        self.playback = playback
        style = self.style()

        def button(icon, tip, checkable=False, text=""):
            b = QToolButton(self)
            if icon is not None:
                b.setIcon(style.standardIcon(icon))
            b.setText(text)
            b.setToolTip(tip)
            b.setCheckable(checkable)
            b.setAutoRaise(True)
            return b

        self.back_button = button(QStyle.SP_MediaSeekBackward, "Step back one frame")
        self.play_button = button(QStyle.SP_MediaPlay, "Play / pause")
        self.forward_button = button(QStyle.SP_MediaSeekForward, "Step forward one frame")
        self.loop_button = button(None, "Loop playback", True, "Loop")
        self.follow_button = button(None, "Camera follows the character", True, "Follow")
        self.slider = QSlider(Qt.Horizontal, self)
        self.slider.setToolTip("Frame")
        self.label = QLabel(self)
        self.label.setMinimumWidth(self.label.fontMetrics().horizontalAdvance(
            frame_text(9999, 9999, 1.0)))

        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        for w in (self.back_button, self.play_button, self.forward_button, self.loop_button):
            layout.addWidget(w)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)
        layout.addWidget(self.follow_button)

        self.back_button.clicked.connect(lambda: playback.step(-1))
        self.forward_button.clicked.connect(lambda: playback.step(1))
        self.play_button.clicked.connect(playback.toggle)
        self.loop_button.toggled.connect(playback.set_loop)
        self.follow_button.toggled.connect(self.follow_toggled)
        self.slider.valueChanged.connect(playback.seek)
        playback.frame_changed.connect(self._on_frame)
        playback.state_changed.connect(self._on_state)
        self._on_state()

    def set_follow(self, on: bool) -> None:
        """Show the follow state (e.g. when the viewport turned it off)."""
        self.follow_button.setChecked(bool(on))

    def _on_frame(self, frame: int) -> None:
        with QSignalBlocker(self.slider):  # a seek back would re-anchor the clock every tick
            self.slider.setValue(frame)
        pb = self.playback
        self.label.setText(frame_text(frame, pb.n_frames, pb.fps))

    def _on_state(self) -> None:
        pb = self.playback
        with QSignalBlocker(self.slider):
            self.slider.setRange(0, max(pb.n_frames - 1, 0))
        with QSignalBlocker(self.loop_button):
            self.loop_button.setChecked(pb.loop)
        icon = QStyle.SP_MediaPause if pb.playing else QStyle.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(icon))
        self.play_button.setToolTip("Pause" if pb.playing else "Play")
        for w in (self.slider, self.play_button, self.back_button, self.forward_button):
            w.setEnabled(pb.n_frames > 0)
        self._on_frame(pb.frame)
