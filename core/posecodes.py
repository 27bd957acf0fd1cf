"""The pose parser: 70 pose-code groups / 392 named codes, and joints -> 70-hot per frame.

Follows the PoseScript-derived parser used by CoMo and PGR²M (method-facts §2.1):
the same joints, virtual joints, operators, thresholds, group order and global
code ids, so code sequences are interchangeable with those models.  One
deliberate difference is the default geometry frame (see ``parse``).

Joints are HumanML3D's 22 ("t2m") joints in metres, Y up.  In the canonical
frame a character faces +Z with its left side at +X.

Typical use::

    onehot = parse(joints)            # (T, 392) bool, one True per group
    ids = to_indices(onehot)          # (T, 70) global code ids
    tokens = to_tokens(subsample(onehot))   # (T//4 + 1, 394) float32, END row
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "JOINT_NAMES", "KINDS", "BODY_PARTS", "THRESHOLDS", "JITTER",
    "N_GROUPS", "N_CODES", "END", "PAD", "N_TOKENS",
    "PoseGroup", "PoseCode", "GROUPS", "CODES", "CODE_GROUP", "GROUP_START",
    "group_of", "code_by_name", "find_codes",
    "heading", "measure", "bin_values", "parse",
    "to_indices", "from_indices", "to_tokens", "subsample",
    "catalogue_markdown",
]

# --------------------------------------------------------------------------
# joints

JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee",
    "spine2", "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot",
    "neck", "left_collar", "right_collar", "head", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)
_VIRTUAL = ("left_middle2", "right_middle2", "left_hand", "right_hand", "torso")
_J = {name: i for i, name in enumerate(JOINT_NAMES + _VIRTUAL)}

# prosthetic middle finger, in line with the forearm (PoseScript's constant)
_MIDDLE2_OFFSET = 0.1367

# --------------------------------------------------------------------------
# operators

KINDS = ("angle", "distance", "relX", "relY", "relZ", "relV", "ground")

# category i = smallest i with value <= THRESHOLDS[kind][i], else len(...)
THRESHOLDS: dict[str, np.ndarray] = {
    "angle": np.arange(10.0, 171.0, 10.0),          # degrees, 180 = straight
    "distance": np.round(np.arange(0.1, 0.91, 0.1), 2),  # metres
    "relX": np.array([-0.15, 0.15]),
    "relY": np.array([-0.15, 0.15]),
    "relZ": np.array([-0.15, 0.15]),
    "relV": np.array([10.0, 80.0]),                 # degrees from vertical
    "ground": np.array([0.10]),                     # metres above lowest joint
}

# half-width of the uniform noise the original adds to each measured value
JITTER: dict[str, float] = {
    "angle": 5.0, "distance": 0.05, "relX": 0.05, "relY": 0.05, "relZ": 0.05,
    "relV": 5.0, "ground": 0.05,
}

# row groups for the GUI grid, in display order
BODY_PARTS = ("torso", "left arm", "right arm", "arms",
              "left leg", "right leg", "legs", "arms & legs")

# --------------------------------------------------------------------------
# group specification, in the parser's order (method-facts §2.1)
# (joints, body part[, label]); joints are names from JOINT_NAMES + virtual

_SPEC: dict[str, list[tuple]] = {
    "angle": [
        (("left_hip", "left_knee", "left_ankle"), "left leg"),
        (("right_hip", "right_knee", "right_ankle"), "right leg"),
        (("left_shoulder", "left_elbow", "left_wrist"), "left arm"),
        (("right_shoulder", "right_elbow", "right_wrist"), "right arm"),
    ],
    "distance": [
        (("left_elbow", "right_elbow"), "arms"),
        (("left_hand", "right_hand"), "arms"),
        (("left_knee", "right_knee"), "legs"),
        (("left_foot", "right_foot"), "legs"),
        (("left_hand", "left_shoulder"), "left arm"),
        (("left_hand", "right_shoulder"), "arms"),
        (("right_hand", "right_shoulder"), "right arm"),
        (("right_hand", "left_shoulder"), "arms"),
        (("left_hand", "right_elbow"), "arms"),
        (("right_hand", "left_elbow"), "arms"),
        (("left_hand", "left_knee"), "arms & legs"),
        (("left_hand", "right_knee"), "arms & legs"),
        (("right_hand", "right_knee"), "arms & legs"),
        (("right_hand", "left_knee"), "arms & legs"),
        (("left_hand", "left_foot"), "arms & legs"),
        (("left_hand", "right_foot"), "arms & legs"),
        (("right_hand", "right_foot"), "arms & legs"),
        (("right_hand", "left_foot"), "arms & legs"),
    ],
    "relX": [
        (("left_hand", "right_hand"), "arms"),
        (("neck", "pelvis"), "torso"),
        (("left_hand", "left_shoulder"), "left arm"),
        (("right_hand", "right_shoulder"), "right arm"),
        (("left_foot", "left_hip"), "left leg"),
        (("right_foot", "right_hip"), "right leg"),
    ],
    # the captioning_data filter order (knees before the ankle/neck pairs),
    # not the display order of CoMo's codebook.py name list
    "relY": [
        (("left_shoulder", "right_shoulder"), "torso"),
        (("left_elbow", "right_elbow"), "arms"),
        (("left_hand", "right_hand"), "arms"),
        (("left_knee", "right_knee"), "legs"),
        (("left_ankle", "neck"), "left leg"),
        (("right_ankle", "neck"), "right leg"),
        (("left_hip", "left_knee"), "left leg"),
        (("right_hip", "right_knee"), "right leg"),
        (("left_hand", "left_shoulder"), "left arm"),
        (("right_hand", "right_shoulder"), "right arm"),
        (("left_foot", "left_hip"), "left leg"),
        (("right_foot", "right_hip"), "right leg"),
        (("left_wrist", "neck"), "left arm"),
        (("right_wrist", "neck"), "right arm"),
        (("left_hand", "left_hip"), "left arm"),
        (("right_hand", "right_hip"), "right arm"),
    ],
    "relZ": [
        (("left_shoulder", "right_shoulder"), "torso"),
        (("left_elbow", "right_elbow"), "arms"),
        (("left_hand", "right_hand"), "arms"),
        (("left_knee", "right_knee"), "legs"),
        (("neck", "pelvis"), "torso"),
        (("left_hand", "torso"), "left arm"),
        (("right_hand", "torso"), "right arm"),
        (("left_foot", "torso"), "left leg"),
        (("right_foot", "torso"), "right leg"),
    ],
    "relV": [
        (("left_hip", "left_knee"), "left leg", "left thigh"),
        (("right_hip", "right_knee"), "right leg", "right thigh"),
        (("left_knee", "left_ankle"), "left leg", "left calf"),
        (("right_knee", "right_ankle"), "right leg", "right calf"),
        (("left_shoulder", "left_elbow"), "left arm", "left upper arm"),
        (("right_shoulder", "right_elbow"), "right arm", "right upper arm"),
        (("left_elbow", "left_wrist"), "left arm", "left forearm"),
        (("right_elbow", "right_wrist"), "right arm", "right forearm"),
        (("pelvis", "left_shoulder"), "torso", "pelvis–left shoulder line"),
        (("pelvis", "right_shoulder"), "torso", "pelvis–right shoulder line"),
        (("pelvis", "neck"), "torso", "torso"),
        (("left_hand", "right_hand"), "arms", "hand-to-hand line"),
        (("left_foot", "right_foot"), "legs", "foot-to-foot line"),
    ],
    "ground": [
        (("left_knee",), "left leg"),
        (("right_knee",), "right leg"),
        (("left_foot",), "left leg"),
        (("right_foot",), "right leg"),
    ],
}

_DISTANCE_WORDS = (
    "very close", "slightly close", "close", "almost shoulder width apart",
    "shoulder width apart", "almost spread", "spread", "slightly wide", "wide",
    "very wide",
)
_PLURAL = {"elbow": "elbows", "hand": "hands", "knee": "knees", "foot": "feet"}
_AXIS_WORD = {"relX": "left/right", "relY": "above/below", "relZ": "front/behind"}


def _say(joint: str) -> str:
    return joint.replace("_", " ")


def _pair_subject(a: str, b: str) -> str:
    # "hands" reads better than "left hand and right hand" in a list
    if a.startswith("left_") and b == "right_" + a[5:] and a[5:] in _PLURAL:
        return _PLURAL[a[5:]]
    return f"{_say(a)} and {_say(b)}"


def _fmt(x: float) -> str:
    return f"{x:g}"


def _code_names(kind: str, joints: tuple[str, ...], label: str | None) -> tuple[str, ...]:
    thr = THRESHOLDS[kind]
    if kind == "angle":
        j = _say(joints[1])
        names = [f"{j} fully bent (≤{_fmt(thr[0])}°)"]
        names += [f"{j} bent {_fmt(lo)}–{_fmt(hi)}°" for lo, hi in zip(thr[:-1], thr[1:])]
        names.append(f"{j} straight (>{_fmt(thr[-1])}°)")
        return tuple(names)
    if kind == "distance":
        s = _pair_subject(*joints)
        ranges = [f"≤{_fmt(thr[0])} m"]
        ranges += [f"{_fmt(lo)}–{_fmt(hi)} m" for lo, hi in zip(thr[:-1], thr[1:])]
        ranges.append(f">{_fmt(thr[-1])} m")
        return tuple(f"{s} {w} ({r})" for w, r in zip(_DISTANCE_WORDS, ranges))
    if kind in ("relX", "relY", "relZ"):
        a, b = _say(joints[0]), _say(joints[1])
        low, mid, high = {
            "relX": ("at the right of", "at similar left/right position", "at the left of"),
            "relY": ("below", "at similar height", "above"),
            "relZ": ("behind", "at similar front/back position", "in front of"),
        }[kind]
        return (f"{a} {low} {b}", f"{a} and {b} {mid}", f"{a} {high} {b}")
    if kind == "relV":
        return (f"{label} vertical", f"{label} oblique", f"{label} horizontal")
    j = _say(joints[0])
    return (f"{j} on the ground", f"{j} not on the ground")


def _group_name(kind: str, joints: tuple[str, ...], label: str | None) -> str:
    if kind == "angle":
        return f"{_say(joints[1])} angle"
    if kind == "distance":
        return f"{_say(joints[0])} – {_say(joints[1])} distance"
    if kind in _AXIS_WORD:
        return f"{_say(joints[0])} vs {_say(joints[1])} ({_AXIS_WORD[kind]})"
    if kind == "relV":
        return f"{label} direction"
    return f"{_say(joints[0])} on ground"


# --------------------------------------------------------------------------
# catalogue


@dataclass(frozen=True)
class PoseGroup:
    """One measured quantity of the pose; exactly one of its codes is active per frame."""

    index: int
    kind: str
    name: str
    body_part: str
    joints: tuple[str, ...]
    first_code: int
    n_codes: int
    code_names: tuple[str, ...]

    @property
    def code_ids(self) -> range:
        return range(self.first_code, self.first_code + self.n_codes)

    @property
    def thresholds(self) -> np.ndarray:
        return THRESHOLDS[self.kind]


@dataclass(frozen=True)
class PoseCode:
    """One category of one group; ``index`` is the global id (0..391)."""

    index: int
    group: int
    category: int
    name: str
    body_part: str


def _build_catalogue() -> tuple[tuple[PoseGroup, ...], tuple[PoseCode, ...]]:
    groups: list[PoseGroup] = []
    codes: list[PoseCode] = []
    for kind in KINDS:
        n = len(THRESHOLDS[kind]) + 1
        for entry in _SPEC[kind]:
            joints, part = entry[0], entry[1]
            label = entry[2] if len(entry) > 2 else None
            names = _code_names(kind, joints, label)
            g = PoseGroup(len(groups), kind, _group_name(kind, joints, label), part,
                          joints, len(codes), n, names)
            groups.append(g)
            codes.extend(PoseCode(g.first_code + c, g.index, c, nm, part)
                         for c, nm in enumerate(names))
    return tuple(groups), tuple(codes)


GROUPS, CODES = _build_catalogue()
N_GROUPS = len(GROUPS)      # 70
N_CODES = len(CODES)        # 392
END = N_CODES               # 392: end-of-motion token
PAD = N_CODES + 1           # 393: padding token
N_TOKENS = N_CODES + 2      # 394: K-hot width with END and PAD
CODE_GROUP = np.array([c.group for c in CODES], dtype=np.int64)
GROUP_START = np.array([g.first_code for g in GROUPS] + [N_CODES], dtype=np.int64)

_GROUP_KIND = np.array([KINDS.index(g.kind) for g in GROUPS])
_JITTER_AMP = np.array([JITTER[g.kind] for g in GROUPS])
_BY_NAME = {c.name.casefold(): c for c in CODES}
assert len(_BY_NAME) == N_CODES, "code names must be unique"


def group_of(code: int) -> PoseGroup:
    """The group a global code id belongs to."""
    code = int(code)
    if not 0 <= code < N_CODES:
        raise IndexError(f"code id {code} outside 0..{N_CODES - 1}")
    return GROUPS[CODE_GROUP[code]]


def code_by_name(name: str) -> PoseCode:
    """Look a code up by its exact name (case-insensitive); KeyError if unknown."""
    try:
        return _BY_NAME[name.strip().casefold()]
    except KeyError:
        raise KeyError(f"no pose code named {name!r}") from None


def find_codes(text: str) -> tuple[PoseCode, ...]:
    """Codes whose name, or whose group's name, contains ``text`` (case-insensitive)."""
    t = text.strip().casefold()
    return tuple(c for c in CODES
                 if t in c.name.casefold() or t in GROUPS[c.group].name.casefold())


# --------------------------------------------------------------------------
# geometry

_FRAMES = ("heading", "como")
_EPS = 1e-9


def _check_joints(joints) -> tuple[np.ndarray, bool]:
    try:
        j = np.asarray(joints, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"joints must be numeric, got {type(joints).__name__}") from exc
    single = j.ndim == 2
    if single:
        j = j[None]
    if j.ndim != 3 or j.shape[1:] != (len(JOINT_NAMES), 3):
        raise ValueError(
            f"joints must have shape (T, 22, 3) or (22, 3), got {np.shape(joints)}")
    bad = ~np.isfinite(j).all(axis=(1, 2))
    if bad.any():
        frames = np.flatnonzero(bad)
        shown = ", ".join(map(str, frames[:10])) + (", ..." if len(frames) > 10 else "")
        raise ValueError(
            f"joints contain NaN or inf in {len(frames)} frame(s): {shown}")
    return j, single


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return np.where(n > _EPS, v / np.maximum(n, _EPS), 0.0)


def _heading(j: np.ndarray) -> np.ndarray:
    """Unit forward (x, z) per frame; frames with no defined heading borrow a neighbour's."""
    across = (j[:, 2] - j[:, 1]) + (j[:, 17] - j[:, 16])   # right minus left
    # forward = up x across = (across_z, 0, -across_x): +Z when left is at +X
    f = np.stack([across[:, 2], -across[:, 0]], axis=-1)
    n = np.linalg.norm(f, axis=-1)
    ok = n > 1e-6
    f = f / np.where(ok, n, 1.0)[:, None]
    if not ok.all():
        if not ok.any():
            f[:] = (0.0, 1.0)
        else:
            # previous valid frame, else the first valid one
            idx = np.where(ok, np.arange(len(f)), -1)
            idx = np.maximum.accumulate(idx)
            idx[idx < 0] = np.flatnonzero(ok)[0]
            f = f[idx]
    return f


def heading(joints) -> np.ndarray:
    """Per-frame forward direction (T, 3) (unit, horizontal) of a (T, 22, 3) motion.

    forward = up × ((right_hip − left_hip) + (right_shoulder − left_shoulder)),
    which is +Z for a body with its left side at +X.  Frames where that is
    undefined (hips and shoulders lined up vertically) take the previous
    defined frame's heading.
    """
    j, single = _check_joints(joints)
    f = _heading(j)
    out = np.stack([f[:, 0], np.zeros(len(f)), f[:, 1]], axis=-1)
    return out[0] if single else out


def _to_frame(j: np.ndarray, frame: str, forward: np.ndarray | None) -> np.ndarray:
    if frame == "como":
        # CoMo multiplies world coordinates by diag(-1, 1, -1) and does nothing else
        return j * np.array([-1.0, 1.0, -1.0])
    fx, fz = forward[:, 0:1], forward[:, 1:2]
    x = j[..., 0] - j[:, 0:1, 0]
    z = j[..., 2] - j[:, 0:1, 2]
    # rotate about Y so forward -> +Z; left = up x forward = (fz, 0, -fx) -> +X
    return np.stack([x * fz - z * fx, j[..., 1], x * fx + z * fz], axis=-1)


def _with_virtual(j: np.ndarray) -> np.ndarray:
    lw, rw = j[:, 20], j[:, 21]
    lm = lw + _MIDDLE2_OFFSET * _unit(lw - j[:, 18])
    rm = rw + _MIDDLE2_OFFSET * _unit(rw - j[:, 19])
    torso = (j[:, 0] + j[:, 12] + j[:, 9]) / 3.0
    extra = np.stack([lm, rm, 0.5 * (lw + lm), 0.5 * (rw + rm), torso], axis=1)
    return np.concatenate([j, extra], axis=1)


# per kind: joint index arrays, one per operand position
_IDX = {kind: [np.array([_J[e[0][k]] for e in _SPEC[kind]]) for k in range(len(_SPEC[kind][0][0]))]
        for kind in KINDS}


# frames per block: small blocks stay in cache, about 6x faster than one pass
_BLOCK = 4096


def _blocks(j: np.ndarray, frame: str):
    """(start, stop, measured values) per block of frames."""
    if frame not in _FRAMES:
        raise ValueError(f"frame must be one of {_FRAMES}, got {frame!r}")
    # headings over the whole motion, so undefined frames can borrow across blocks
    forward = _heading(j) if frame == "heading" else None
    for a in range(0, len(j), _BLOCK):
        b = min(a + _BLOCK, len(j))
        fb = None if forward is None else forward[a:b]
        yield a, b, _measure_block(j[a:b], frame, fb)


def _measure_block(j: np.ndarray, frame: str, forward: np.ndarray | None) -> np.ndarray:
    p = _with_virtual(_to_frame(j, frame, forward))
    cols = []

    a, m, b = (p[:, i] for i in _IDX["angle"])
    u, v = a - m, b - m
    ang = np.degrees(np.arctan2(np.linalg.norm(np.cross(u, v), axis=-1),
                                np.sum(u * v, axis=-1)))
    # a zero-length bone has no angle; call it straight rather than fully bent
    degenerate = (np.linalg.norm(u, axis=-1) < _EPS) | (np.linalg.norm(v, axis=-1) < _EPS)
    cols.append(np.where(degenerate, 180.0, ang))

    cols.append(np.linalg.norm(p[:, _IDX["distance"][0]] - p[:, _IDX["distance"][1]], axis=-1))

    for axis, kind in enumerate(("relX", "relY", "relZ")):
        ia, ib = _IDX[kind]
        cols.append(p[:, ia, axis] - p[:, ib, axis])

    d = p[:, _IDX["relV"][1]] - p[:, _IDX["relV"][0]]
    horiz = np.hypot(d[..., 0], d[..., 2])
    vert = np.degrees(np.arctan2(horiz, np.abs(d[..., 1])))    # 0 = vertical, 90 = level
    # a zero-length bone has no direction: put it in the "ignored" middle bin
    cols.append(np.where(horiz + np.abs(d[..., 1]) < _EPS, 45.0, vert))

    floor = p[:, :len(JOINT_NAMES), 1].min(axis=1, keepdims=True)
    cols.append(p[:, _IDX["ground"][0], 1] - floor)
    return np.concatenate(cols, axis=1)


def measure(joints, frame: str = "heading") -> np.ndarray:
    """Raw measured values (T, 70) before binning, in each group's unit.

    angle: degrees at the middle joint (180 = straight); distance: metres;
    relX/Y/Z: A − B along the axis in metres; relV: degrees between the bone
    and the vertical (0..90); ground: metres above the frame's lowest joint.
    A (22, 3) input gives (70,).
    """
    j, single = _check_joints(joints)
    vals = np.empty((len(j), N_GROUPS))
    for a, b, v in _blocks(j, frame):
        vals[a:b] = v
    return vals[0] if single else vals


def bin_values(values) -> np.ndarray:
    """Local category per group (…, 70) int: smallest i with value <= thr[i], else len(thr)."""
    v = np.asarray(values, dtype=np.float64)
    if v.shape[-1:] != (N_GROUPS,):
        raise ValueError(f"values must end with {N_GROUPS} groups, got shape {v.shape}")
    out = np.empty(v.shape, dtype=np.int64)
    for k, kind in enumerate(KINDS):
        sel = _GROUP_KIND == k
        # side="left" gives the first threshold >= value, i.e. the "<=" rule
        out[..., sel] = np.searchsorted(THRESHOLDS[kind], v[..., sel], side="left")
    return out


def parse(joints, *, jitter: bool = False, seed=None, frame: str = "heading") -> np.ndarray:
    """Pose codes of a motion: (T, 22, 3) joints -> (T, 392) bool, one True per group.

    frame="heading" (default) measures each frame in the body's own heading
    frame (pelvis at the origin in x/z, facing +Z, left at +X), so left/right
    and front/behind codes are anatomical whatever direction the character
    faces.  frame="como" reproduces CoMo's released codes: world coordinates
    times diag(−1, 1, −1), no heading alignment.  Only relX/relZ differ.

    jitter=True adds the original parser's uniform noise (``JITTER``) to each
    measured value before binning, drawn from ``np.random.default_rng(seed)``.
    A single (22, 3) frame gives (392,).
    """
    j, single = _check_joints(joints)
    rng = np.random.default_rng(seed) if jitter else None
    out = np.zeros((len(j), N_CODES), dtype=bool)
    for a, b, v in _blocks(j, frame):
        if rng is not None:
            v += rng.uniform(-1.0, 1.0, v.shape) * _JITTER_AMP
        ids = GROUP_START[:-1] + bin_values(v)
        out[np.arange(a, b)[:, None], ids] = True
    return out[0] if single else out


# --------------------------------------------------------------------------
# conversions


def _as_frames(a, width: int, what: str) -> tuple[np.ndarray, bool]:
    a = np.asarray(a)
    single = a.ndim == 1
    if single:
        a = a[None]
    if a.ndim != 2 or a.shape[1] != width:
        raise ValueError(f"{what} must have shape (T, {width}) or ({width},), got {a.shape}")
    return a, single


# group membership (392, 70), and the same weighted by code id: one matmul per
# block counts the active codes of each group and, when there is one, gives its id
_MEMBER = np.zeros((N_CODES, N_GROUPS), dtype=np.float32)
_MEMBER[np.arange(N_CODES), CODE_GROUP] = 1.0
_MEMBER_ID = np.concatenate(
    [_MEMBER, _MEMBER * np.arange(N_CODES, dtype=np.float32)[:, None]], axis=1)


def to_indices(onehot) -> np.ndarray:
    """70-hot (T, 392) -> global code ids (T, 70); ValueError unless one code per group."""
    oh, single = _as_frames(onehot, N_CODES, "onehot")
    ids = np.empty((len(oh), N_GROUPS), dtype=np.int64)
    for a in range(0, len(oh), _BLOCK):
        r = (oh[a:a + _BLOCK] != 0).astype(np.float32) @ _MEMBER_ID
        counts = r[:, :N_GROUPS]
        if (counts != 1).any():
            t, g = np.argwhere(counts != 1)[0]
            raise ValueError(f"frame {a + t}, group {g} ({GROUPS[g].name}) has "
                             f"{int(counts[t, g])} active codes, expected 1")
        ids[a:a + _BLOCK] = r[:, N_GROUPS:]     # exact: small integers in float32
    return ids[0] if single else ids


def from_indices(indices) -> np.ndarray:
    """Global code ids (T, 70) -> 70-hot (T, 392) bool; column g must hold a code of group g."""
    ids, single = _as_frames(indices, N_GROUPS, "indices")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"indices must be integers, got {ids.dtype}")
    ok = (ids >= GROUP_START[:-1]) & (ids < GROUP_START[1:])
    if not ok.all():
        t, g = np.argwhere(~ok)[0]
        raise ValueError(
            f"frame {t}: id {ids[t, g]} is not a code of group {g} ({GROUPS[g].name}, "
            f"ids {GROUP_START[g]}..{GROUP_START[g + 1] - 1})")
    out = np.zeros((len(ids), N_CODES), dtype=bool)
    out[np.arange(len(ids))[:, None], ids] = True
    return out[0] if single else out


def to_tokens(onehot, end: bool = True, pad_to: int | None = None) -> np.ndarray:
    """70-hot (T, 392) -> (T[+1][+pad], 394) float32 K-hot with END/PAD columns.

    end=True appends an END row (only column 392 set); pad_to appends PAD rows
    (only column 393 set) up to that many rows.
    """
    oh, _ = _as_frames(onehot, N_CODES, "onehot")
    n = len(oh) + bool(end)
    total = n if pad_to is None else int(pad_to)
    if total < n:
        raise ValueError(f"pad_to={pad_to} is shorter than the {n} rows to keep")
    out = np.zeros((total, N_TOKENS), dtype=np.float32)
    out[:len(oh), :N_CODES] = oh != 0
    if end:
        out[len(oh), END] = 1.0
    out[n:, PAD] = 1.0
    return out


def subsample(onehot, unit: int = 4) -> np.ndarray:
    """Token-rate codes: step t takes frame unit·t, over the first T // unit · unit frames.

    The tokenizer sees motions cropped to a multiple of ``unit`` and makes one
    latent per ``unit`` frames, so a partial last block gets no step.
    """
    if unit < 1:
        raise ValueError(f"unit must be >= 1, got {unit}")
    a = np.asarray(onehot)
    return a[: (len(a) // unit) * unit: unit]


# --------------------------------------------------------------------------
# documentation


def catalogue_markdown() -> str:
    """The pose-code catalogue as Markdown (docs/posecodes.md is this output)."""
    lines = [
        "# Pose-code catalogue",
        "",
        "Generated by `core.posecodes.catalogue_markdown()`; do not edit by hand.",
        "Regenerate with `python -m core.posecodes > docs/posecodes.md`.",
        "",
        f"{N_GROUPS} groups, {N_CODES} codes; END = {END}, PAD = {PAD}, token width {N_TOKENS}.",
        "A value v gets category i = the smallest i with v ≤ threshold[i], else the last one.",
        "Left/right and front/behind are the character's own (heading frame: left = +X,",
        "front = +Z); `parse(..., frame=\"como\")` reproduces CoMo's world-axis labels instead.",
        "\"hand\" is a virtual joint 6.8 cm past the wrist along the forearm; \"torso\" is the",
        "mean of pelvis, neck and spine3.",
        "",
        "| kind | groups | code ids | thresholds | jitter (±) |",
        "|---|---|---|---|---|",
    ]
    for kind in KINDS:
        gs = [g for g in GROUPS if g.kind == kind]
        thr = ", ".join(_fmt(t) for t in THRESHOLDS[kind])
        lines.append(f"| {kind} | {gs[0].index}–{gs[-1].index} | "
                     f"{gs[0].first_code}–{gs[-1].first_code + gs[-1].n_codes - 1} | "
                     f"{thr} | {_fmt(JITTER[kind])} |")
    lines += ["", "## Groups", "",
              "| group | kind | name | body part | joints | code ids |",
              "|---|---|---|---|---|---|"]
    for g in GROUPS:
        lines.append(f"| {g.index} | {g.kind} | {g.name} | {g.body_part} | "
                     f"{', '.join(g.joints)} | {g.first_code}–{g.first_code + g.n_codes - 1} |")
    lines += ["", "## Codes", "", "| id | group | category | name |", "|---|---|---|---|"]
    for c in CODES:
        lines.append(f"| {c.index} | {c.group} | {c.category} | {c.name} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys
    # bytes, so the file is UTF-8 with LF whatever the console's locale
    sys.stdout.buffer.write(catalogue_markdown().encode("utf-8"))
