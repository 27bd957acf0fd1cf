"""Atomic file writes: write a temporary file beside the target, flush it to disk, rename.

A crash or kill at any moment leaves either the old file or the new one, never a torn one.
A kill also leaves the temporary file (``.<name>.<pid>.<random>.tmp``); writes with
``clean=True`` (projects, checkpoints, weights) delete those of dead processes first.
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


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:             # e.g. another user's process
        return True
    return True


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Delete the temporary files of path left by writers that were killed (their process is
    gone); a write still in progress keeps its own. Returns what was removed."""
    path = Path(path)
    if os.name != "posix":      # os.kill(pid, 0) would end the process on Windows
        return []
    prefix, removed = f".{path.name}.", []
    try:
        with os.scandir(path.parent) as entries:
            names = [e.name for e in entries if e.name.startswith(prefix) and e.name.endswith(".tmp")]
    except OSError:
        return []
    for name in names:
        pid, dot, rand = name[len(prefix):-len(".tmp")].partition(".")
        if pid.isdigit() and dot and rand and "." not in rand and not _alive(int(pid)):
            try:
                os.unlink(path.parent / name)
                removed.append(path.parent / name)
            except OSError:
                pass
    return removed


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", encoding: str | None = None, *, clean: bool = False):
    """clean: first delete temporary files that killed writers left beside path (this lists
    the folder, so it is off for bulk writes of many files into one folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if clean:
        remove_stale_temps(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
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


def write_bytes(path: str | Path, data: bytes, *, clean: bool = False) -> None:
    with atomic_open(path, "wb", clean=clean) as f:
        f.write(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def save_npy(path: str | Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    write_bytes(path, buf.getvalue())


def load_npy(path: str | Path) -> np.ndarray:
    """Load a .npy file without ever unpickling: object arrays, pickles and anything that is
    not one plain array raise ValueError naming the file."""
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):        # numpy's text suggests loading it unsafely: not shown
            raise ValueError(f"{path}: holds pickled Python objects (or is not a .npy file); "
                             "refused: only plain arrays are read") from None
        raise ValueError(f"{path}: {exc}") from None
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise ValueError(f"{path}: not a .npy array (an .npz archive?)")
    return arr
