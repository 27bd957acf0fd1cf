"""The open work: prompt, settings and generated samples, observable without Qt.

Motions are immutable by convention (copy-on-write): the Document never changes a Motion's
arrays and nobody else may either; an edit makes a new Motion and hands it to
``replace_motion``. That keeps undo cheap and safe: a command just holds the old Motion
object (``old = doc.replace_motion(new)``; undo is ``doc.replace_motion(old, index)``).

Events, passed to subscribers as one string, after the state has changed:
"samples" (the list of samples), "motion" (the current Motion), "settings",
"dirty" (the flag flipped), "path". Callbacks run on the calling thread.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from core.limits import MAX_LENGTH, MAX_SAMPLES, MIN_LENGTH, seed_in_range
from core.motion import Motion

SETTINGS = ("prompt", "length", "n_samples", "seed", "model_dir")


def _int(name: str, value, lo: int, hi: int, unit: str = "") -> int:
    # bool is an int subclass; True as a length is a bug, not a request
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be {lo}..{hi}{unit}, got {value}")
    return int(value)


def validate_settings(**kw) -> dict:
    """Checked and normalised settings; ValueError names the bad one, TypeError an unknown key."""
    unknown = sorted(set(kw) - set(SETTINGS))
    if unknown:
        raise TypeError(f"unknown setting(s): {', '.join(unknown)}")
    out = {}
    for key, v in kw.items():
        if key == "prompt":
            if not isinstance(v, str):
                raise ValueError(f"prompt must be text, got {type(v).__name__}")
        elif key == "length":
            v = None if v is None else _int("length", v, MIN_LENGTH, MAX_LENGTH, " frames")
        elif key == "n_samples":
            v = _int("n_samples", v, 1, MAX_SAMPLES)
        elif key == "seed":
            if v is not None and not seed_in_range(v):
                raise ValueError(f"seed must be a whole number -2**63..2**64-1, got {v!r}")
        elif key == "model_dir":
            if v is not None and not isinstance(v, (str, Path)):
                raise ValueError(f"model_dir must be a folder path or None, got {type(v).__name__}")
            v = None if v is None or str(v) == "" else str(v)
        out[key] = v
    return out


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Document:
    def __init__(self, prompt: str = "", length: int | None = None, n_samples: int = 1,
                 seed: int | None = None, model_dir: str | None = None, *, uid: str | None = None):
        s = validate_settings(prompt=prompt, length=length, n_samples=n_samples, seed=seed, model_dir=model_dir)
        self._settings = s
        self._samples: list[Motion] = []
        self._current = -1
        self._path: Path | None = None
        self._dirty = False
        self.uid = uid or uuid.uuid4().hex
        self.created = now_iso()            # kept across saves; load_project restores it
        self._subscribers: list[Callable[[str], None]] = []

    # -- observing -----------------------------------------------------------

    def subscribe(self, callback: Callable[[str], None]) -> Callable[[], None]:
        self._subscribers.append(callback)

        def unsubscribe():
            if callback in self._subscribers:
                self._subscribers.remove(callback)
        return unsubscribe

    def _emit(self, *events: str) -> None:
        # every subscriber sees every event even if one raises; the first error is re-raised
        error = None
        for event in events:
            for cb in list(self._subscribers):
                try:
                    cb(event)
                except Exception as exc:        # noqa: BLE001
                    error = error or exc
        if error is not None:
            raise error

    def _set_dirty(self, dirty: bool) -> list[str]:
        if self._dirty == dirty:
            return []
        self._dirty = dirty
        return ["dirty"]

    # -- state ---------------------------------------------------------------

    prompt = property(lambda self: self._settings["prompt"])
    length = property(lambda self: self._settings["length"])
    n_samples = property(lambda self: self._settings["n_samples"])
    seed = property(lambda self: self._settings["seed"])
    model_dir = property(lambda self: self._settings["model_dir"])
    current = property(lambda self: self._current)
    path = property(lambda self: self._path)
    dirty = property(lambda self: self._dirty)

    @property
    def samples(self) -> list[Motion]:
        return list(self._samples)          # a copy: the list is changed only through methods

    @property
    def motion(self) -> Motion | None:
        return self._samples[self._current] if self._current >= 0 else None

    def settings(self) -> dict:
        return dict(self._settings)

    # -- changing ------------------------------------------------------------

    def set_settings(self, **kw) -> None:
        """Validate all first, so a bad value changes nothing."""
        new = validate_settings(**kw)
        changed = {k: v for k, v in new.items() if self._settings[k] != v}
        if not changed:
            return
        self._settings.update(changed)
        self._emit("settings", *self._set_dirty(True))

    def set_samples(self, motions: list[Motion], current: int = 0) -> None:
        motions = list(motions)
        if not all(isinstance(m, Motion) for m in motions):
            raise TypeError("samples must be Motion objects")
        if not motions:
            current = -1
        elif isinstance(current, bool) or not isinstance(current, int) or not 0 <= current < len(motions):
            raise ValueError(f"current must be 0..{len(motions) - 1}, got {current!r}")
        self._samples, self._current = motions, current
        self._emit("samples", "motion", *self._set_dirty(True))

    def pick(self, i: int) -> None:
        """Show another sample; viewing is not editing, so it does not mark the document dirty."""
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(self._samples):
            raise IndexError(f"no sample {i!r} (there are {len(self._samples)})")
        if i != self._current:
            self._current = i
            self._emit("motion")

    def replace_motion(self, motion: Motion, index: int | None = None) -> Motion:
        """Put motion in place of the current sample (or of sample ``index``, which becomes
        current: undo must show what it restores). Returns the Motion it replaced."""
        if not isinstance(motion, Motion):
            raise TypeError("replace_motion needs a Motion")
        if not self._samples:
            raise ValueError("there is no sample to replace")
        if index is None:
            index = self._current
        elif isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self._samples):
            raise IndexError(f"no sample {index!r} (there are {len(self._samples)})")
        old = self._samples[index]
        self._samples[index] = motion
        self._current = index
        self._emit("motion", *self._set_dirty(True))
        return old

    def mark_saved(self, path: str | Path) -> None:
        path = Path(path)
        events = [] if path == self._path else ["path"]
        self._path = path
        self._emit(*events, *self._set_dirty(False))

    def mark_dirty(self) -> None:
        self._emit(*self._set_dirty(True))

    def _restore(self, samples: list[Motion], current: int, path: Path | None, dirty: bool,
                 created: str) -> None:
        """Fill a fresh Document from a file without events (nobody is subscribed yet)."""
        self._samples, self._current, self._path, self._dirty = list(samples), current, path, dirty
        self.created = created
