"""The .pgr2m project file, and autosave / recovery.

A .pgr2m file is a deflated ZIP archive with two members:

* ``project.json``: {"format": "pgr2m-project", "version": 1, "app_version", "created",
  "modified" (ISO 8601, UTC), "settings": {prompt, length, n_samples, seed, model_dir},
  "current": index or -1, "samples": [{prompt, seed, fps, frames, steps, has_cond}, ...]}
* ``motions.npz``: per sample i the arrays ``s{i}_joints`` (T,22,3) float, ``s{i}_features``
  (T,263) float, ``s{i}_pose_codes`` (S,392) bool, ``s{i}_residual_codes`` (n_stages,S) int64
  and ``s{i}_cond`` (12,D) float when has_cond.

Files are untrusted input: sizes are checked from the ZIP directories before anything is
decompressed, arrays are read with allow_pickle=False after their .npy headers are checked,
and every field is validated before a Document is built. Saves are atomic (core.atomic).
"""

from __future__ import annotations

import io
import json
import logging
import math
import tokenize
import zipfile
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

import core
from core import posecodes as pc
from core.atomic import atomic_open, write_text
from core.document import SETTINGS, Document, now_iso, validate_settings
from core.limits import MAX_SAMPLES, seed_in_range
from core.motion import Motion

log = logging.getLogger(__name__)

FORMAT, VERSION = "pgr2m-project", 1
SUFFIX = ".pgr2m"
HEADER, ARRAYS = "project.json", "motions.npz"
MAX_MEMBERS = 64                    # outer archive
MAX_ARRAYS = 5 * MAX_SAMPLES        # inner npz
# 64 samples of 196 frames are ~35 MB uncompressed; 256 MiB leaves room and bounds memory
MAX_BYTES = 256 * 2**20
MAX_HEADER_BYTES = 4 * 2**20
N_TEXT_TOKENS = 12
_REQUIRED = ("joints", "features", "pose_codes", "residual_codes")


class ProjectError(ValueError):
    """A project file that cannot be read: the message says why."""


def _key(i: int, name: str) -> str:
    return f"s{i}_{name}"


# --------------------------------------------------------------------------
# saving

def _header(doc: Document) -> dict:
    return {
        "format": FORMAT, "version": VERSION, "app_version": getattr(core, "__version__", None),
        "created": doc.created, "modified": now_iso(),
        "settings": doc.settings(), "current": doc.current,
        "samples": [{"prompt": m.prompt, "seed": None if m.seed is None else int(m.seed),
                     "fps": float(m.fps), "frames": m.n_frames, "steps": m.n_steps,
                     "has_cond": m.cond is not None} for m in doc.samples],
    }


def _arrays(doc: Document) -> dict[str, np.ndarray]:
    out = {}
    for i, m in enumerate(doc.samples):
        for name in _REQUIRED + ("cond",):
            a = getattr(m, name)
            if a is not None:
                out[_key(i, name)] = np.asarray(a)
    return out


def _write(path: Path, doc: Document) -> None:
    # ASCII escapes: a prompt with a lone surrogate must not make saving fail
    header = json.dumps(_header(doc), indent=1).encode("ascii")
    arrays = _arrays(doc)
    # everything is written inside atomic_open, so any failure leaves the old file in place
    with atomic_open(path, "wb", clean=True) as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(HEADER, header)
        with zf.open(ARRAYS, "w") as member:
            np.savez(member, allow_pickle=False, **arrays)     # stored; the outer zip deflates


def save_project(path: str | Path, doc: Document) -> Path:
    """Write doc to path atomically. The caller then calls doc.mark_saved(path) (kept
    separate so a save never emits events by surprise, e.g. from a worker thread)."""
    path = Path(path)
    _write(path, doc)
    return path


# --------------------------------------------------------------------------
# loading

def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_members(infos: list[zipfile.ZipInfo], what: str, max_members: int) -> None:
    if len(infos) > max_members:
        raise ProjectError(f"{what} has {len(infos)} members (at most {max_members} allowed)")
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        raise ProjectError(f"{what} has duplicate member names")
    total = sum(i.file_size for i in infos)
    if total > MAX_BYTES:
        raise ProjectError(f"{what} would unpack to {total / 2**20:.0f} MiB "
                           f"(at most {MAX_BYTES // 2**20} MiB allowed)")
    if any(i.flag_bits & 1 for i in infos):
        raise ProjectError(f"{what} is encrypted")


def _read(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    info = zf.getinfo(name)
    if info.file_size > limit:
        raise ProjectError(f"{name} is too large ({info.file_size} bytes)")
    with zf.open(info) as f:
        data = f.read(info.file_size + 1)   # never more than declared (+1 to see a lie)
    if len(data) != info.file_size:
        raise ProjectError(f"{name} is damaged (size does not match the archive directory)")
    return data


def _check_npy_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    """Refuse object dtypes and shapes that disagree with the member size, before np.load."""
    fmt = np.lib.format
    with zf.open(info) as f:
        version = fmt.read_magic(f)
        try:
            if version == (1, 0):
                shape, _, dtype = fmt.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, dtype = fmt.read_array_header_2_0(f)
            else:
                raise ProjectError(f"{info.filename}: unsupported .npy version {version}")
        except (tokenize.TokenError, SyntaxError) as exc:
            # numpy retries a header it cannot parse with the tokenizer, which raises these
            raise ProjectError(f"{info.filename}: unreadable array header ({exc})") from None
        offset = f.tell()
    if dtype.hasobject:
        raise ProjectError(f"{info.filename}: object arrays (pickled data) are not allowed")
    if offset + math.prod(shape) * dtype.itemsize != info.file_size:
        raise ProjectError(f"{info.filename}: array data does not match its shape {shape}")


def _load_arrays(raw: bytes, expected: set[str]) -> dict[str, np.ndarray]:
    zf = zipfile.ZipFile(io.BytesIO(raw))
    infos = zf.infolist()
    _check_members(infos, ARRAYS, MAX_ARRAYS)
    if any(not i.filename.endswith(".npy") for i in infos):
        raise ProjectError(f"{ARRAYS} holds something other than .npy arrays")
    names = {i.filename[:-4] for i in infos}
    if names != expected:
        missing, extra = sorted(expected - names), sorted(names - expected)
        raise ProjectError(f"{ARRAYS} does not match the samples in {HEADER} "
                           f"(missing: {', '.join(missing) or '-'}; unexpected: {', '.join(extra) or '-'})")
    for info in infos:
        _check_npy_header(zf, info)
    out = {}
    with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
        for key in expected:
            try:
                out[key] = npz[key]
            except ValueError as exc:       # what allow_pickle=False raises on object arrays
                raise ProjectError(f"{key}: {exc}") from None
    return out


def _float_array(key: str, a: np.ndarray, shape: tuple) -> np.ndarray:
    if a.dtype.kind != "f" or a.dtype.itemsize not in (4, 8):
        raise ProjectError(f"{key} must be float32 or float64, got {a.dtype}")
    _shape(key, a, shape)
    if not np.isfinite(a).all():
        raise ProjectError(f"{key} holds NaN or infinite values")
    return a


def _shape(key: str, a: np.ndarray, shape: tuple) -> None:
    # None in shape: any size
    if a.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, a.shape)):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ProjectError(f"{key} has shape {a.shape}, expected {want}")


def _sample(i: int, meta, arrays: dict[str, np.ndarray]) -> Motion:
    if not isinstance(meta, dict):
        raise ProjectError(f"sample {i}: not a JSON object")
    prompt, seed, fps = meta.get("prompt"), meta.get("seed"), meta.get("fps")
    T, S = meta.get("frames"), meta.get("steps")
    if not isinstance(prompt, str):
        raise ProjectError(f"sample {i}: prompt must be text")
    if seed is not None and not seed_in_range(seed):
        raise ProjectError(f"sample {i}: seed must be a whole number or null")
    if not (isinstance(fps, (int, float)) and not isinstance(fps, bool) and 0 < fps <= 1000):
        raise ProjectError(f"sample {i}: fps must be a number in (0, 1000]")
    if not (_is_int(T) and T >= 1 and _is_int(S) and S >= 1):
        raise ProjectError(f"sample {i}: frames and steps must be positive whole numbers")
    a = {name: arrays.get(_key(i, name)) for name in _REQUIRED + ("cond",)}
    for name, arr in a.items():
        if arr is not None and not arr.dtype.isnative:
            a[name] = arr.astype(arr.dtype.newbyteorder("="))     # torch needs native order
    joints = _float_array(_key(i, "joints"), a["joints"], (T, 22, 3))
    features = _float_array(_key(i, "features"), a["features"], (T, 263))
    pose = a["pose_codes"]
    if pose.dtype != np.bool_:
        raise ProjectError(f"{_key(i, 'pose_codes')} must be bool, got {pose.dtype}")
    _shape(_key(i, "pose_codes"), pose, (S, pc.N_CODES))
    try:
        pc.to_indices(pose)
    except ValueError as exc:
        raise ProjectError(f"{_key(i, 'pose_codes')}: {exc}") from None
    res = a["residual_codes"]
    if res.dtype != np.int64:
        raise ProjectError(f"{_key(i, 'residual_codes')} must be int64, got {res.dtype}")
    _shape(_key(i, "residual_codes"), res, (None, S))
    if not 1 <= res.shape[0] <= 64 or (res < 0).any():
        raise ProjectError(f"{_key(i, 'residual_codes')}: 1..64 stages of non-negative codes expected")
    cond = a["cond"]
    if cond is not None:
        _float_array(_key(i, "cond"), cond, (N_TEXT_TOKENS, None))
        if not 1 <= cond.shape[1] <= 8192:
            raise ProjectError(f"{_key(i, 'cond')} has an implausible width {cond.shape[1]}")
    return Motion(joints=joints, features=features, pose_codes=pose, residual_codes=res, fps=float(fps),
                  prompt=prompt, seed=seed, cond=cond)


def _parse_header(raw: bytes) -> dict:
    try:
        h = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ProjectError(f"{HEADER} is not valid JSON ({exc})") from None
    if not isinstance(h, dict) or h.get("format") != FORMAT:
        raise ProjectError(f"{HEADER} does not describe a PGR²M project")
    v = h.get("version")
    if not _is_int(v) or v < 1:
        raise ProjectError(f"{HEADER}: invalid format version {v!r}")
    if v > VERSION:
        raise ProjectError(f"made by a newer PGR²M Studio (project format {v}; this version reads {VERSION}); "
                           "please update the app")
    settings = h.get("settings")
    if not isinstance(settings, dict) or set(settings) != set(SETTINGS):
        raise ProjectError(f"{HEADER}: settings must have exactly {', '.join(SETTINGS)}")
    try:
        h["settings"] = validate_settings(**settings)
    except ValueError as exc:
        raise ProjectError(f"{HEADER}: {exc}") from None
    samples = h.get("samples")
    if not isinstance(samples, list) or len(samples) > MAX_SAMPLES:
        raise ProjectError(f"{HEADER}: samples must be a list of at most {MAX_SAMPLES}")
    cur = h.get("current")
    if not _is_int(cur) or not (cur == -1 if not samples else 0 <= cur < len(samples)):
        raise ProjectError(f"{HEADER}: current sample {cur!r} does not fit {len(samples)} samples")
    if not isinstance(h.get("created"), str) or not isinstance(h.get("modified"), str):
        raise ProjectError(f"{HEADER}: created and modified must be timestamps")
    if any(not isinstance(s, dict) or not isinstance(s.get("has_cond"), bool) for s in samples):
        raise ProjectError(f"{HEADER}: each sample needs has_cond true or false")
    return h


def _read_project(file) -> tuple[dict, list[Motion]]:
    with zipfile.ZipFile(file) as zf:
        _check_members(zf.infolist(), "the archive", MAX_MEMBERS)
        names = set(zf.namelist())
        missing = [n for n in (HEADER, ARRAYS) if n not in names]
        if missing:
            raise ProjectError(f"not a PGR²M project: {', '.join(missing)} missing")
        h = _parse_header(_read(zf, HEADER, MAX_HEADER_BYTES))
        expected = {_key(i, n) for i, s in enumerate(h["samples"])
                    for n in _REQUIRED + (("cond",) if s["has_cond"] else ())}
        arrays = _load_arrays(_read(zf, ARRAYS, MAX_BYTES), expected)
    return h, [_sample(i, s, arrays) for i, s in enumerate(h["samples"])]


def load_project(path: str | Path, *, uid: str | None = None) -> Document:
    """A Document from a .pgr2m file, or ProjectError; nothing half-built is ever returned."""
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise ProjectError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    try:
        with f:
            h, samples = _read_project(f)
    except ProjectError as exc:
        raise ProjectError(f"{path}: {exc}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ProjectError(f"{path}: not a PGR²M project or damaged ({exc})") from None
    except OSError as exc:
        # the file opened, so this is a seek the archive asked for (a negative offset gives
        # EINVAL) or a failing disk
        raise ProjectError(f"{path}: damaged or unreadable project ({exc.strerror or exc})") from None
    except (ValueError, NotImplementedError, RuntimeError, MemoryError, OverflowError) as exc:
        raise ProjectError(f"{path}: damaged project ({type(exc).__name__}: {exc})") from None
    doc = Document(**h["settings"], uid=uid)
    doc._restore(samples, h["current"], path, False, h["created"])
    return doc


# --------------------------------------------------------------------------
# autosave

@dataclass(frozen=True)
class Autosave:
    """One recoverable autosave."""

    path: Path                  # the .pgr2m autosave
    uid: str
    original: Path | None       # where the work was saved before, None if never
    time: datetime
    prompt: str
    n_samples: int

    def load(self) -> Document:
        """The recovered Document: same uid (later autosaves and discard hit the same file),
        its original path, and dirty, since it holds unsaved work."""
        doc = load_project(self.path, uid=self.uid)
        doc._restore(doc.samples, doc.current, self.original, True, doc.created)
        return doc


def _sidecar(folder: Path, uid: str) -> Path:
    return Path(folder) / f"{uid}.json"


def autosave(doc: Document, folder: str | Path) -> Path:
    """Write <folder>/<uid>.pgr2m and a sidecar <uid>.json; the document stays dirty."""
    folder = Path(folder)
    target = folder / f"{doc.uid}{SUFFIX}"
    _write(target, doc)
    # written second: if it is lost, recoverable() falls back on the file's own time
    write_text(_sidecar(folder, doc.uid), json.dumps(
        {"uid": doc.uid, "path": None if doc.path is None else str(doc.path),
         "time": datetime.now(timezone.utc).isoformat()}))
    return target


def _side_info(path: Path) -> tuple[Path | None, datetime]:
    try:
        side = json.loads(_sidecar(path.parent, path.stem).read_text(encoding="utf-8"))
        t = datetime.fromisoformat(side["time"])
        t = t if t.tzinfo else t.replace(tzinfo=timezone.utc)
        return (Path(side["path"]) if side.get("path") else None), t
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)


def recoverable(folder: str | Path, problems: list[str] | None = None) -> list[Autosave]:
    """Autosaves in folder, newest first. Unreadable ones are skipped: logged and, when a
    list is given, appended to problems as messages."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.glob(f"*{SUFFIX}"):
        try:
            doc = load_project(path)
            original, t = _side_info(path)
        except (ProjectError, OSError) as exc:
            msg = str(exc)
            log.warning("skipping autosave: %s", msg)
            if problems is not None:
                problems.append(msg)
            continue
        found.append(Autosave(path, path.stem, original, t, doc.prompt, len(doc.samples)))
    return sorted(found, key=lambda a: a.time, reverse=True)


def discard_autosave(doc: Document | str, folder: str | Path) -> None:
    """Remove the autosave of doc (or of a uid); missing files are fine."""
    uid = doc if isinstance(doc, str) else doc.uid
    if not uid or Path(uid).name != uid:        # a uid is a bare name; never delete elsewhere
        raise ValueError(f"not an autosave id: {uid!r}")
    for p in (Path(folder) / f"{uid}{SUFFIX}", _sidecar(folder, uid)):
        p.unlink(missing_ok=True)
