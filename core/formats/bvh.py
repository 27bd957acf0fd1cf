"""Biovision Hierarchy (BVH) motion files: parse, write and forward kinematics.

Conventions, with column vectors (v_parent = R @ v_local + t):

- a joint's local translation ``t`` is its OFFSET, with each X/Y/Zposition channel
  replacing that component. This matters for rigs such as Bandai Namco's, where every
  joint carries six channels and the position channels hold the bone vector.
- its local rotation ``R`` is the product of its rotation channels in the order they are
  listed (``euler_to_matrix(angles, "ZXY")`` gives Rz @ Rx @ Ry), angles in degrees.

Joints are kept in file order (depth-first, parents before children), which is also the
order of their channel columns in ``Bvh.motion``.
"""

from __future__ import annotations

import copy as _copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core import atomic
from core.rotations import euler_to_matrix

__all__ = [
    "CHANNEL_NAMES",
    "Bvh",
    "BvhError",
    "BvhJoint",
    "dumps",
    "end_site_positions",
    "forward_kinematics",
    "parse",
    "read",
    "write",
]

CHANNEL_NAMES = ("Xposition", "Yposition", "Zposition", "Xrotation", "Yrotation", "Zrotation")
_CANONICAL_CHANNEL = {c.lower(): c for c in CHANNEL_NAMES}

# Real rigs nest a few dozen joints deep; the parser recurses once per level, so a deeper
# (hostile) hierarchy would exhaust Python's stack.
MAX_DEPTH = 256
# A day at 120 fps. A hierarchy without channels has empty frames, so its count is unchecked
# by the data and a tiny file could otherwise ask for any number of frames.
MAX_FRAMES = 10_000_000

_FRAMES_RE = re.compile(r"^Frames\s*:\s*(\S*)\s*$", re.IGNORECASE)
_FRAME_TIME_RE = re.compile(r"^Frame\s+Time\s*:\s*(\S*)\s*$", re.IGNORECASE)


class BvhError(ValueError):
    """A malformed BVH file; ``path`` and ``line`` (1-based, or None) say where."""

    def __init__(self, message: str, path: str = "<string>", line: int | None = None):
        self.message = message
        self.path = str(path)
        self.line = line
        where = self.path if line is None else f"{self.path}, line {line}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self):
        return (type(self), (self.message, self.path, self.line))


def _same_array(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    # bitwise: a round trip must keep -0.0 and every last bit
    return a.shape == b.shape and a.tobytes() == b.tobytes()


@dataclass(eq=False)
class BvhJoint:
    name: str
    parent: int
    offset: np.ndarray
    channels: list[str] = field(default_factory=list)
    end_site: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.offset = np.asarray(self.offset, dtype=np.float64).reshape(3)
        self.channels = list(self.channels)
        if self.end_site is not None:
            self.end_site = np.asarray(self.end_site, dtype=np.float64).reshape(3)

    def __eq__(self, other: object) -> bool:
        """Exact (bitwise) equality, as a round trip must preserve."""
        if not isinstance(other, BvhJoint):
            return NotImplemented
        return (self.name == other.name and self.parent == other.parent
                and list(self.channels) == list(other.channels)
                and _same_array(self.offset, other.offset)
                and _same_array(self.end_site, other.end_site))

    __hash__ = None  # mutable


@dataclass(eq=False)
class Bvh:
    joints: list[BvhJoint]
    frame_time: float
    motion: np.ndarray

    def __post_init__(self) -> None:
        self.frame_time = float(self.frame_time)
        self.motion = np.asarray(self.motion, dtype=np.float64)

    def __eq__(self, other: object) -> bool:
        """Exact (bitwise) equality of hierarchy, frame time and motion."""
        if not isinstance(other, Bvh):
            return NotImplemented
        return (len(self.joints) == len(other.joints)
                and all(a == b for a, b in zip(self.joints, other.joints))
                and _same_array(np.float64(self.frame_time), np.float64(other.frame_time))
                and _same_array(self.motion, other.motion))

    __hash__ = None

    @property
    def names(self) -> list[str]:
        return [j.name for j in self.joints]

    @property
    def parents(self) -> np.ndarray:
        return np.array([j.parent for j in self.joints], dtype=np.int64)

    @property
    def n_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def n_channels(self) -> int:
        return sum(len(j.channels) for j in self.joints)

    @property
    def channel_slices(self) -> list[slice]:
        """Per joint, the columns of ``motion`` holding its channels."""
        out = []
        start = 0
        for j in self.joints:
            out.append(slice(start, start + len(j.channels)))
            start += len(j.channels)
        return out

    def joint_index(self, name: str) -> int:
        for i, j in enumerate(self.joints):
            if j.name == name:
                return i
        raise KeyError(f"no joint named {name!r}")

    def copy(self) -> "Bvh":
        return _copy.deepcopy(self)


# parsing

class _Parser:
    def __init__(self, text: str, source: str):
        self.source = source
        self.lines = text.splitlines()
        self.toks: list[tuple[str, int]] = []
        self.pos = 0
        self.joints: list[BvhJoint] = []
        self.defined_at: dict[str, int] = {}

    def error(self, message: str, line: int | None) -> BvhError:
        return BvhError(message, self.source, line)

    # token stream over the hierarchy part

    def _last_line(self) -> int:
        return self.toks[-1][1] if self.toks else max(len(self.lines), 1)

    def peek(self) -> tuple[str, int] | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def next(self, what: str) -> tuple[str, int]:
        tok = self.peek()
        if tok is None:
            raise self.error(f"unexpected end of hierarchy: expected {what}", self._last_line())
        self.pos += 1
        return tok

    def rest_of_line(self, line: int) -> list[str]:
        out = []
        while self.pos < len(self.toks) and self.toks[self.pos][1] == line:
            out.append(self.toks[self.pos][0])
            self.pos += 1
        return out

    def numbers(self, words: list[str], what: str, line: int, count: int) -> np.ndarray:
        if len(words) != count:
            raise self.error(f"{what} needs {count} numbers, found {len(words)}", line)
        try:
            vals = np.array([float(w) for w in words], dtype=np.float64)
        except ValueError:
            bad = next(w for w in words if not _is_float(w))
            raise self.error(f"{what}: {bad!r} is not a number", line) from None
        if not np.all(np.isfinite(vals)):
            raise self.error(f"{what} has a non-finite value", line)
        return vals

    # grammar

    def run(self) -> Bvh:
        if not any(line.strip() for line in self.lines):
            raise self.error("empty file", 1)
        motion_at = None
        for i, line in enumerate(self.lines):
            words = line.split()
            if words and words[0].upper() == "MOTION":
                if len(words) != 1:
                    raise self.error("expected 'MOTION' alone on its line", i + 1)
                motion_at = i
                break
            self.toks.extend((w, i + 1) for w in words)

        word, line = self.next("'HIERARCHY'")
        if word.upper() != "HIERARCHY":
            raise self.error(f"expected 'HIERARCHY' at the start of the file, found {word!r}", line)
        word, line = self.next("'ROOT'")
        if word.upper() != "ROOT":
            raise self.error(f"expected 'ROOT', found {word!r}", line)
        self.joint("ROOT", line, -1, 1)
        tok = self.peek()
        if tok is not None:
            if tok[0].upper() == "ROOT":
                raise self.error("more than one ROOT hierarchy; only files with a single ROOT are supported",
                                 tok[1])
            raise self.error(f"unexpected {tok[0]!r} after the end of the ROOT hierarchy", tok[1])
        if motion_at is None:
            raise self.error("missing MOTION section (file truncated?)", max(len(self.lines), 1))
        frame_time, motion = self.motion(motion_at)
        return Bvh(self.joints, frame_time, motion)

    def joint(self, keyword: str, kw_line: int, parent: int, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise self.error(f"joints nested more than {MAX_DEPTH} deep", kw_line)
        words = self.rest_of_line(kw_line)
        brace_inline = bool(words) and words[-1] == "{"
        if brace_inline:
            words = words[:-1]
        if not words:
            raise self.error(f"{keyword} without a name", kw_line)
        name = " ".join(words)
        if name in self.defined_at:
            raise self.error(f"duplicate joint name {name!r} (first defined on line {self.defined_at[name]})",
                             kw_line)
        self.defined_at[name] = kw_line
        if not brace_inline:
            tok = self.peek()
            if tok is None or tok[0] != "{":
                raise self.error(f"expected '{{' after {keyword} {name}",
                                 tok[1] if tok is not None else kw_line)
            self.pos += 1

        index = len(self.joints)
        joint = BvhJoint(name=name, parent=parent, offset=np.zeros(3), channels=[])
        self.joints.append(joint)
        seen_offset = seen_channels = seen_child = False
        while True:
            word, line = self.next(f"'}}' to close joint {name}")
            key = word.upper()
            if key == "OFFSET":
                if seen_offset:
                    raise self.error(f"second OFFSET in joint {name}", line)
                if seen_child:
                    raise self.error(f"OFFSET of joint {name} must come before its children", line)
                joint.offset = self.numbers(self.rest_of_line(line), "OFFSET", line, 3)
                seen_offset = True
            elif key == "CHANNELS":
                if seen_channels:
                    raise self.error(f"second CHANNELS line in joint {name}", line)
                if seen_child:
                    raise self.error(f"CHANNELS of joint {name} must come before its children", line)
                joint.channels = self.channels(self.rest_of_line(line), line)
                seen_channels = True
            elif key == "JOINT":
                seen_child = True
                self.joint("JOINT", line, index, depth + 1)
            elif key == "END":
                seen_child = True
                if joint.end_site is not None:
                    raise self.error(f"second End Site in joint {name}", line)
                joint.end_site = self.end_site(line, name)
            elif word == "}":
                if not seen_offset:
                    raise self.error(f"joint {name} has no OFFSET", line)
                return
            else:
                raise self.error(f"unexpected {word!r} in joint {name} "
                                 "(expected OFFSET, CHANNELS, JOINT, End Site or '}')", line)

    def channels(self, words: list[str], line: int) -> list[str]:
        if not words:
            raise self.error("CHANNELS needs a count", line)
        try:
            count = int(words[0])
        except ValueError:
            raise self.error(f"CHANNELS count {words[0]!r} is not an integer", line) from None
        names = words[1:]
        if count != len(names):
            raise self.error(f"CHANNELS says {count} but lists {len(names)} channel names", line)
        out = []
        for n in names:
            canon = _CANONICAL_CHANNEL.get(n.lower())
            if canon is None:
                raise self.error(f"unknown channel name {n!r} (expected one of {', '.join(CHANNEL_NAMES)})",
                                 line)
            if canon in out:
                raise self.error(f"channel {canon} listed twice", line)
            out.append(canon)
        return out

    def end_site(self, end_line: int, name: str) -> np.ndarray:
        words = self.rest_of_line(end_line)
        brace_inline = bool(words) and words[-1] == "{"
        if brace_inline:
            words = words[:-1]
        if not words or words[0].upper() != "SITE":
            raise self.error(f"expected 'End Site' in joint {name}", end_line)
        if not brace_inline:
            word, line = self.next(f"'{{' after End Site of {name}")
            if word != "{":
                raise self.error(f"expected '{{' after End Site of {name}", line)
        word, line = self.next(f"OFFSET in End Site of {name}")
        if word.upper() != "OFFSET":
            raise self.error(f"expected OFFSET in End Site of {name}, found {word!r}", line)
        offset = self.numbers(self.rest_of_line(line), "OFFSET", line, 3)
        word, line = self.next(f"'}}' to close End Site of {name}")
        if word != "}":
            raise self.error(f"expected '}}' to close End Site of {name}, found {word!r}", line)
        return offset

    def _next_nonblank(self, i: int, what: str) -> int:
        while i < len(self.lines) and not self.lines[i].strip():
            i += 1
        if i >= len(self.lines):
            raise self.error(f"unexpected end of file: expected {what}", max(len(self.lines), 1))
        return i

    def motion(self, motion_at: int) -> tuple[float, np.ndarray]:
        i = self._next_nonblank(motion_at + 1, "'Frames: <count>'")
        m = _FRAMES_RE.match(self.lines[i].strip())
        if m is None:
            raise self.error("expected 'Frames: <count>'", i + 1)
        try:
            n_frames = int(m.group(1))
        except ValueError:
            raise self.error(f"frame count {m.group(1)!r} is not an integer", i + 1) from None
        if n_frames < 0:
            raise self.error(f"negative frame count {n_frames}", i + 1)
        if n_frames > MAX_FRAMES:
            raise self.error(f"frame count {n_frames} is implausibly large (at most {MAX_FRAMES})", i + 1)
        frames_line = i + 1

        i = self._next_nonblank(i + 1, "'Frame Time: <seconds>'")
        m = _FRAME_TIME_RE.match(self.lines[i].strip())
        if m is None:
            raise self.error("expected 'Frame Time: <seconds>'", i + 1)
        try:
            frame_time = float(m.group(1))
        except ValueError:
            raise self.error(f"frame time {m.group(1)!r} is not a number", i + 1) from None
        # a subnormal frame time would make the frame rate infinite
        if not np.isfinite(frame_time) or frame_time <= 0 or not np.isfinite(1.0 / frame_time):
            raise self.error(f"frame time must be a positive number of seconds, got {m.group(1)}", i + 1)

        first = i + 1  # index into self.lines of the first motion line
        data = self.lines[first:]
        n_ch = sum(len(j.channels) for j in self.joints)
        motion = None
        # all-blank input would make loadtxt warn; any() stops at the first data line
        if n_ch > 0 and n_frames > 0 and any(line.strip() for line in data):
            try:
                arr = np.loadtxt(data, dtype=np.float64, comments=None, ndmin=2)
            except ValueError:
                arr = None
            if arr is not None and arr.shape == (n_frames, n_ch) and np.isfinite(arr).all():
                motion = arr
        if motion is None:
            # slow path: walk the lines to name the bad one
            motion = self._motion_by_line(data, first, n_frames, n_ch, frames_line)
        return frame_time, motion

    def _motion_by_line(self, data: list[str], first: int, n_frames: int, n_ch: int,
                        frames_line: int) -> np.ndarray:
        if n_ch == 0:
            # no channels: frames are empty lines, so only their count is known
            for k, line in enumerate(data):
                if line.strip():
                    raise self.error("motion data given but the hierarchy has no channels", first + k + 1)
            return np.zeros((n_frames, 0))
        rows: list[list[float]] = []
        for k, line in enumerate(data):
            words = line.split()
            if not words:
                continue
            lineno = first + k + 1
            if len(rows) == n_frames:
                raise self.error(f"more motion lines than 'Frames: {n_frames}' declares", lineno)
            frame = len(rows) + 1
            if len(words) != n_ch:
                few = "few" if len(words) < n_ch else "many"
                raise self.error(f"frame {frame} has too {few} numbers: {len(words)}, expected {n_ch} "
                                 "(one per channel)", lineno)
            vals = []
            for w in words:
                try:
                    v = float(w)
                except ValueError:
                    raise self.error(f"frame {frame}: {w!r} is not a number", lineno) from None
                if v != v or v in (float("inf"), float("-inf")):
                    raise self.error(f"frame {frame}: non-finite value {w!r}", lineno)
                vals.append(v)
            rows.append(vals)
        if len(rows) < n_frames:
            raise self.error(f"truncated motion: 'Frames: {n_frames}' but only {len(rows)} frames found",
                             frames_line)
        return np.array(rows, dtype=np.float64).reshape(n_frames, n_ch)


def _is_float(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def parse(text: str, source: str = "<string>") -> Bvh:
    """Parse BVH text; ``source`` names the file in error messages."""
    return _Parser(text, str(source)).run()


def read(path: str | os.PathLike) -> Bvh:
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise BvhError("not UTF-8 or ASCII text", str(path), line) from None
    return parse(text, str(path))


# writing

def _check_writable(bvh: Bvh) -> None:
    """Reject what the writer could not round-trip, before writing anything."""
    if not bvh.joints:
        raise ValueError("a BVH needs at least one joint")
    names = set()
    ancestors: list[int] = []  # path from the root to the previous joint
    for i, j in enumerate(bvh.joints):
        if not j.name or " ".join(j.name.split()) != j.name or "{" in j.name or "}" in j.name:
            raise ValueError(f"joint name {j.name!r} cannot be written to BVH")
        if j.name in names:
            raise ValueError(f"duplicate joint name {j.name!r}")
        names.add(j.name)
        if i == 0:
            if j.parent != -1:
                raise ValueError("joint 0 must be the root (parent -1)")
        else:
            # depth-first order: the parent is on the path to the previous joint
            while ancestors and ancestors[-1] != j.parent:
                ancestors.pop()
            if not ancestors:
                raise ValueError(f"joint {j.name!r}: joints must be in depth-first order with "
                                 "a single root")
        ancestors.append(i)
        if len(set(j.channels)) != len(j.channels) or any(c not in CHANNEL_NAMES for c in j.channels):
            raise ValueError(f"joint {j.name!r} has invalid channels {j.channels!r}")
        for what, v in (("offset", j.offset), ("end site", j.end_site)):
            if v is not None and (np.shape(v) != (3,) or not np.all(np.isfinite(v))):
                raise ValueError(f"joint {j.name!r}: {what} must be 3 finite numbers")
    ft = float(bvh.frame_time)
    if not np.isfinite(ft) or ft <= 0:
        raise ValueError(f"frame time must be positive and finite, got {bvh.frame_time!r}")
    m = np.asarray(bvh.motion)
    if m.ndim != 2 or m.shape[1] != bvh.n_channels:
        raise ValueError(f"motion has shape {m.shape}, expected (frames, {bvh.n_channels})")
    if not np.all(np.isfinite(m)):
        raise ValueError("motion contains NaN or infinite values")


def _fmt(values) -> str:
    # float repr is the shortest string that reads back to the same float64
    return " ".join(map(float.__repr__, values))


def dumps(bvh: Bvh, indent: str = "\t") -> str:
    """BVH text that ``parse`` reads back to an identical ``Bvh``."""
    _check_writable(bvh)
    children: list[list[int]] = [[] for _ in bvh.joints]
    for i, j in enumerate(bvh.joints):
        if j.parent >= 0:
            children[j.parent].append(i)
    out = ["HIERARCHY"]

    def emit(i: int, depth: int) -> None:
        j = bvh.joints[i]
        pad = indent * depth
        out.append(f"{pad}{'ROOT' if depth == 0 else 'JOINT'} {j.name}")
        out.append(pad + "{")
        out.append(f"{pad}{indent}OFFSET {_fmt(np.asarray(j.offset, dtype=np.float64).tolist())}")
        out.append(f"{pad}{indent}CHANNELS {len(j.channels)}" + "".join(" " + c for c in j.channels))
        for c in children[i]:
            emit(c, depth + 1)
        if j.end_site is not None:
            out.append(f"{pad}{indent}End Site")
            out.append(f"{pad}{indent}{{")
            out.append(f"{pad}{indent}{indent}OFFSET "
                       f"{_fmt(np.asarray(j.end_site, dtype=np.float64).tolist())}")
            out.append(f"{pad}{indent}}}")
        out.append(pad + "}")

    emit(0, 0)
    motion = np.asarray(bvh.motion, dtype=np.float64)
    out.append("MOTION")
    out.append(f"Frames: {motion.shape[0]}")
    out.append(f"Frame Time: {float(bvh.frame_time)!r}")
    out.extend(map(_fmt, motion.tolist()))
    return "\n".join(out) + "\n"


def write(path: str | os.PathLike, bvh: Bvh) -> None:
    """Write atomically: a crash leaves either the old file or the new one, never half."""
    atomic.write_text(path, dumps(bvh))


# kinematics

def _frame_rows(motion: np.ndarray, frames) -> np.ndarray:
    if frames is None:
        return motion
    if isinstance(frames, slice):
        return motion[frames]
    return motion[np.asarray(frames, dtype=np.int64).reshape(-1)]


def forward_kinematics(bvh: Bvh, frames=None) -> tuple[np.ndarray, np.ndarray]:
    """World positions (F, J, 3) and rotations (F, J, 3, 3) in file units.

    ``frames``: None for all, an int, a slice or an index array.
    """
    motion = _frame_rows(np.asarray(bvh.motion, dtype=np.float64), frames)
    n = motion.shape[0]
    n_j = len(bvh.joints)
    pos = np.empty((n, n_j, 3))
    rot = np.empty((n, n_j, 3, 3))
    for j, (joint, sl) in enumerate(zip(bvh.joints, bvh.channel_slices)):
        cols = motion[:, sl]
        t = np.repeat(np.asarray(joint.offset, dtype=np.float64)[None], n, axis=0)
        order = ""
        rot_cols = []
        for k, ch in enumerate(joint.channels):
            axis = ch[0]
            if ch.endswith("position"):
                t[:, "XYZ".index(axis)] = cols[:, k]
            else:
                order += axis
                rot_cols.append(k)
        if order:
            r = euler_to_matrix(cols[:, rot_cols], order)
        else:
            r = np.broadcast_to(np.eye(3), (n, 3, 3))
        p = joint.parent
        if p < 0:
            rot[:, j] = r
            pos[:, j] = t
        else:
            rot[:, j] = rot[:, p] @ r
            pos[:, j] = np.einsum("fij,fj->fi", rot[:, p], t) + pos[:, p]
    return pos, rot


def end_site_positions(bvh: Bvh, positions: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """World positions (F, J, 3) of each joint's End Site; NaN for joints without one."""
    out = np.full(positions.shape, np.nan)
    for j, joint in enumerate(bvh.joints):
        if joint.end_site is not None:
            out[:, j] = positions[:, j] + rotations[:, j] @ np.asarray(joint.end_site, dtype=np.float64)
    return out
