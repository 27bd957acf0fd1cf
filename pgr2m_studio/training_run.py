"""A training run started from the app: its settings, the command lines that carry it out
(``pgr2m import-bvh`` for a BVH folder, then ``pgr2m train all``) in a separate process, and
a reader of each stage's ``metrics.jsonl`` as the process appends to it."""

from __future__ import annotations

import json
import os
import sys
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from core import atomic
from core.train.stages import MODEL_STAGES
from core.train.stages import STAGE_ORDER as STAGES

SETTINGS_FILE = "studio_training.json"                     # in the output folder, for Resume
SOURCE_ROOT = Path(__file__).resolve().parents[1]           # holds the core package
SMALL_IMPORT = 16                                          # BVH files converted in one process


@dataclass
class TrainSettings:
    data: str
    out: str
    kind: str = "humanml3d"              # humanml3d | bvh (imported into OUT/dataset first)
    stages: list = field(default_factory=lambda: list(MODEL_STAGES))
    config: str = "small"                # small | paper
    device: str = "cpu"
    max_steps: int = 0                   # per stage; 0 keeps the preset's
    extra: list = field(default_factory=list)     # `--set` items: key=value or stage:key=value
    templates: str = ""                  # BVH: caption template file (optional)

    def dataset(self) -> str:
        return str(Path(self.out) / "dataset") if self.kind == "bvh" else self.data

    def commands(self, python: str = sys.executable) -> list[list[str]]:
        cli = [python, "-m", "core.cli"]
        steps = []
        if self.kind == "bvh":
            step = [*cli, "import-bvh", self.data, self.dataset()]
            if sum(1 for _ in zip(range(SMALL_IMPORT), Path(self.data).rglob("*.bvh"))) < SMALL_IMPORT:
                step += ["--workers", "1"]          # a process pool costs more than it saves here
            steps.append(step + (["--templates", self.templates] if self.templates else []))
        train = [*cli, "train", "all", "--data", self.dataset(), "--out", self.out, "--quiet",
                 "--stages", ",".join(self.stages), "--config", self.config, "--device", self.device]
        if self.max_steps:
            train += ["--max-steps", str(self.max_steps)]
        for item in self.extra:
            train += ["--set", item]
        return steps + [train]

    def save(self) -> None:
        atomic.write_text(Path(self.out) / SETTINGS_FILE, json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, out: str | Path) -> "TrainSettings | None":
        """The settings a run in ``out`` was started with, or None."""
        try:
            d = json.loads((Path(out) / SETTINGS_FILE).read_text(encoding="utf-8"))
            return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})
        except (OSError, ValueError, TypeError):
            return None


def holds_run(out: str | Path) -> bool:
    out = Path(out)
    return (out / SETTINGS_FILE).is_file() or any((out / s / "checkpoint.safetensors").is_file() for s in STAGES)


def is_model_folder(out: str | Path) -> bool:
    return all((Path(out) / s / "model").is_dir() for s in MODEL_STAGES)


class MetricsTail:
    """New complete lines of a JSON-lines file another process appends to. A rewritten file
    (a resume trims its log) is noticed and read again from the start."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._offset, self._id, self._partial = 0, None, b""

    def read(self) -> tuple[bool, list[dict]]:
        """(whether the file was rewritten since the last read, new events)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return False, []
        ident = (st.st_dev, st.st_ino)
        reset = self._id is not None and (ident != self._id or st.st_size < self._offset)
        if reset:
            self._offset, self._partial = 0, b""
        self._id = ident
        if st.st_size == self._offset:
            return reset, []
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read()
        except OSError:
            return reset, []
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        events = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue                      # a line torn by a kill
            if isinstance(event, dict):
                events.append(event)
        return reset, events


class TrainingProcess(QObject):
    """Runs the command lines one after another in a child process; never raises into the GUI."""

    output = Signal(str, bool)           # a line of output, True when from stderr
    ended = Signal(str, str)             # finished | cancelled | failed, message
    KILL_AFTER_MS = 30_000               # Cancel: SIGTERM (a clean checkpoint), then kill

    def __init__(self, parent=None):
        super().__init__(parent)
        self._proc: QProcess | None = None
        self._queue: list[list[str]] = []
        self._buffers = {False: b"", True: b""}
        self.errors: deque[str] = deque(maxlen=40)
        self._cancelling = False

    @property
    def running(self) -> bool:
        return self._proc is not None

    def start(self, commands: list[list[str]]) -> None:
        if self.running:
            raise RuntimeError("a training process is already running")
        self._queue = [list(c) for c in commands]
        self._cancelling = False
        self.errors.clear()
        self._next()

    def cancel(self) -> None:
        if self._proc is None or self._cancelling:
            return
        self._cancelling = True
        self._queue.clear()
        self._proc.terminate()
        proc = self._proc
        QTimer.singleShot(self.KILL_AFTER_MS, self, lambda: proc is self._proc and proc.kill())

    def stop_now(self, wait_ms: int = 5000) -> None:
        """Stop at once (the app is quitting)."""
        if self._proc is None:
            return
        self._cancelling = True
        self._queue.clear()
        self._proc.terminate()
        if not self._proc.waitForFinished(wait_ms):
            self._proc.kill()
            self._proc.waitForFinished(2000)

    def _next(self) -> None:
        program, *args = self._queue.pop(0)
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        path = env.value("PYTHONPATH", "")
        env.insert("PYTHONPATH", str(SOURCE_ROOT) + (os.pathsep + path if path else ""))
        env.insert("PYTHONUNBUFFERED", "1")
        proc.setProcessEnvironment(env)
        proc.readyReadStandardOutput.connect(lambda: self._read(proc, False))
        proc.readyReadStandardError.connect(lambda: self._read(proc, True))
        proc.finished.connect(lambda code, status: self._finished(proc, code, status))
        proc.errorOccurred.connect(lambda error: self._error(proc, error))
        self._proc = proc
        self.output.emit("$ " + " ".join(_quote(a) for a in [program, *args]), False)
        proc.start(program, args)

    def _read(self, proc: QProcess, err: bool, flush: bool = False) -> None:
        data = bytes(proc.readAllStandardError() if err else proc.readAllStandardOutput())
        *lines, rest = (self._buffers[err] + data).replace(b"\r", b"\n").split(b"\n")
        if flush and rest:
            lines, rest = lines + [rest], b""
        self._buffers[err] = rest
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                if err:
                    self.errors.append(line)
                self.output.emit(line, err)

    def _finished(self, proc: QProcess, code: int, status) -> None:
        if proc is not self._proc:
            return
        self._read(proc, False, flush=True)
        self._read(proc, True, flush=True)
        self._proc = None
        proc.deleteLater()
        if self._cancelling:
            self.ended.emit("cancelled", "")
        elif status == QProcess.CrashExit:
            self.ended.emit("failed", f"the training process crashed{self._last_error(': ')}")
        elif code != 0:
            self.ended.emit("failed", f"{self._last_error() or 'no error message'} (exit code {code})")
        elif self._queue:
            self._next()
        else:
            self.ended.emit("finished", "")

    def _error(self, proc: QProcess, error) -> None:
        if proc is self._proc and error == QProcess.FailedToStart:
            self._proc = None
            proc.deleteLater()
            self.ended.emit("failed", f"could not start {proc.program()}: {proc.errorString()}")

    def _last_error(self, prefix: str = "") -> str:
        """Our CLI's one-line `error:` message, else the last line (a traceback's exception)."""
        lines = list(self.errors)
        line = next((s for s in reversed(lines) if s.startswith("error:")), lines[-1] if lines else "")
        return prefix + line.removeprefix("error:").strip() if line else ""


def _quote(arg: str) -> str:
    return f'"{arg}"' if not arg or any(c in arg for c in " \t\"'") else arg
