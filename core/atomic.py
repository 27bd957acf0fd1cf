"""Atomic file writes: write a temporary file beside the target, flush it to disk, rename.

A crash or kill at any moment leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import io
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

# mkstemp makes 0600 files; give new files the usual mode (read once: os.umask has no getter)
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", encoding: str | None = None):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            perms = path.stat().st_mode & 0o7777     # keep an existing file's permissions
        except FileNotFoundError:
            perms = 0o666 & ~_UMASK
        os.fchmod(fd, perms)
        with os.fdopen(fd, mode, encoding=encoding if "b" not in mode else None) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as f:
        f.write(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def save_npy(path: str | Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    write_bytes(path, buf.getvalue())


def load_npy(path: str | Path) -> np.ndarray:
    """Load a .npy file without ever unpickling (object arrays are refused)."""
    return np.load(path, allow_pickle=False)
