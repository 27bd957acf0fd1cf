"""Model calls off the GUI thread: one background thread runs jobs in order and relays
results, errors and progress as Qt signals. A cancelled job's result is dropped."""

from __future__ import annotations

import itertools
import queue
import threading
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

_lingering: list["JobRunner"] = []         # shut down during a job: kept alive until its thread ends


class JobRunner(QObject):
    """Runs callables on one worker thread (the pipeline is not re-entrant anyway)."""

    started = Signal(int, str)              # job id, description
    finished = Signal(int, object)          # job id, result
    failed = Signal(int, str, str)          # job id, message, details (traceback)
    idle = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._jobs: queue.Queue = queue.Queue()
        self._ids = itertools.count(1)
        self._cancelled: set[int] = set()
        self._lock = threading.Lock()
        self._busy = 0
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="pgr2m-jobs", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._busy > 0

    def submit(self, fn: Callable[[], Any], description: str = "") -> int:
        job = next(self._ids)
        with self._lock:
            self._busy += 1
        self._jobs.put((job, fn, description))
        return job

    def cancel(self, job: int) -> None:
        """The job still runs to its end (model calls are short) but its result is dropped."""
        with self._lock:
            self._cancelled.add(job)

    def is_cancelled(self, job: int) -> bool:
        with self._lock:
            return self._closed or job in self._cancelled

    def shutdown(self, timeout: float = 5.0) -> bool:
        """Stop for good: queued jobs never start and no signal is sent any more (the running
        job cannot be interrupted; its result is dropped). Waits up to ``timeout`` seconds for the
        thread; if it is still in a job, the runner leaves its parent and stays alive until the
        thread ends, so deleting the parent (the window) cannot delete it under the thread.
        Returns whether the thread has ended."""
        with self._lock:
            self._closed = True
        self._jobs.put(None)
        self._thread.join(timeout)
        _lingering[:] = [r for r in _lingering if r._thread.is_alive()]
        if not self._thread.is_alive():
            return True
        if self not in _lingering:
            self.setParent(None)
            _lingering.append(self)
        return False

    def _loop(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, fn, description = item
            if not self.is_cancelled(job):
                self.started.emit(job, description)
                try:
                    result = fn()
                except Exception as exc:        # noqa: BLE001 - relayed to the window, never fatal
                    if not self.is_cancelled(job):
                        self.failed.emit(job, _message(exc), traceback.format_exc())
                else:
                    if not self.is_cancelled(job):
                        self.finished.emit(job, result)
            with self._lock:
                self._busy -= 1
                self._cancelled.discard(job)
                now_idle = self._busy == 0 and not self._closed
            if now_idle:
                self.idle.emit()


def _message(exc: BaseException) -> str:
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return "Out of memory: try fewer samples or a shorter motion."
    text = str(exc) or type(exc).__name__
    return text if isinstance(exc, (ValueError, OSError)) else f"{type(exc).__name__}: {text}"
