"""Export joint positions (HumanML3D layout, metres, Y up) as a binary glTF 2.0 file (.glb).

glTF is metres, Y up, +Z forward like HumanML3D, so no axis change. The file holds:
- a node per rig joint (translation = rest offset, rotation = first frame) and a skin;
- a skinned mesh, one tapered box per bone, rigidly weighted, so any viewer shows a figure;
  it lies in the bind pose: the rig's rest pose (identity rotations, bones along the rest
  offsets, root at the first frame's position), whose inverse world matrices are the
  skin's inverseBindMatrices;
- one animation "take": LINEAR root translation and per-joint rotations (xyzw).
Written by hand (json + struct + numpy): header, JSON chunk, BIN chunk.
"""

from __future__ import annotations

import json
import os
import struct

import numpy as np

from core.atomic import atomic_open
from core.formats.bvh_export import Rig, joints_to_rig
from core.rotations import matrix_to_quat, qfix

__all__ = ["joints_to_glb_bytes", "rig_to_glb_bytes", "save_glb"]

_FLOAT, _UBYTE, _USHORT, _UINT = 5126, 5121, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_NCOMP = {"SCALAR": 1, "VEC3": 3, "VEC4": 4, "MAT4": 16}


class _Bin:
    """Collects bufferViews and accessors over one 4-byte aligned binary buffer."""

    def __init__(self):
        self.data = bytearray()
        self.views: list[dict] = []
        self.accessors: list[dict] = []

    def view(self, array: np.ndarray, target: int | None = None) -> int:
        self.data += b"\0" * (-len(self.data) % 4)
        raw = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        v = {"buffer": 0, "byteOffset": len(self.data), "byteLength": len(raw)}
        if target is not None:
            v["target"] = target
        self.data += raw
        self.views.append(v)
        return len(self.views) - 1

    def accessor(self, array: np.ndarray, ctype: int, atype: str, *, view: int | None = None,
                 offset: int = 0, target: int | None = None, bounds: bool = False) -> int:
        """array: (count, ncomp) already in the component type; own view unless one is given."""
        a = np.asarray(array).reshape(len(array), _NCOMP[atype])
        acc = {"bufferView": self.view(a, target) if view is None else view,
               "componentType": ctype, "count": int(len(a)), "type": atype}
        if offset:
            acc["byteOffset"] = offset
        if bounds:  # exact min/max of the stored values, as the validator checks
            acc["min"] = [_num(v) for v in a.min(axis=0)]
            acc["max"] = [_num(v) for v in a.max(axis=0)]
        self.accessors.append(acc)
        return len(self.accessors) - 1


def _num(v):
    return int(v) if np.issubdtype(type(v), np.integer) else float(v)


def _rest_world(rig: Rig) -> np.ndarray:
    """(J, 3) joint positions in the bind pose: identity rotations, root at frame 0."""
    pos = np.zeros((len(rig.names), 3))
    for j, p in enumerate(rig.parents):
        pos[j] = rig.translation[0] if p < 0 else pos[p] + rig.offsets[j]
    return pos


def _box(a: np.ndarray, b: np.ndarray):
    """A box tapering from a to b: (24, 3) positions, (24, 3) normals, (36,) indices."""
    axis = b - a
    length = float(np.linalg.norm(axis))
    d = axis / length if length > 1e-9 else np.array([0.0, 1.0, 0.0])
    length = max(length, 1e-3)  # a zero-length bone still gets a small, non-degenerate box
    ref = np.eye(3)[np.argmin(np.abs(d))]
    u = np.cross(d, ref)
    u /= np.linalg.norm(u)
    v = np.cross(d, u)
    w0 = min(max(0.12 * length, 0.01), 0.04)
    ends = [(a, w0), (a + d * length, 0.6 * w0)]
    square = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    corner = np.array([c + w * (su * u + sv * v) for c, w in ends for su, sv in square])
    faces = [[0, 1, 2, 3], [4, 5, 6, 7]] + [[i, (i + 1) % 4, (i + 1) % 4 + 4, i + 4] for i in range(4)]
    centre = corner.mean(axis=0)
    pos, nrm, idx = [], [], []
    for f in faces:
        q = corner[f]
        n = np.cross(q[1] - q[0], q[2] - q[0])
        if np.dot(n, q.mean(axis=0) - centre) < 0:  # wind counter-clockwise seen from outside
            q, n = q[::-1], -n
        base = len(pos)
        pos.extend(q)
        nrm.extend([n / np.linalg.norm(n)] * 4)
        idx.extend(base + np.array([0, 1, 2, 0, 2, 3]))
    return np.array(pos), np.array(nrm), np.array(idx)


def _mesh(rig: Rig, rest: np.ndarray):
    """Boxes for each bone (parent -> child, leaf -> end site), weighted to its start joint."""
    bones = [(int(p), rest[p], rest[c]) for c, p in enumerate(rig.parents) if p >= 0]
    bones += [(j, rest[j], rest[j] + e) for j, e in enumerate(rig.end_sites) if e is not None]
    pos, nrm, idx, jnt = [], [], [], []
    for j, a, b in bones:
        p, n, i = _box(a, b)
        idx.append(i + 24 * len(pos))
        pos.append(p)
        nrm.append(n)
        jnt.append(np.full(len(p), j))
    pos, nrm, idx, jnt = (np.concatenate(x) for x in (pos, nrm, idx, jnt))
    joints = np.zeros((len(pos), 4), dtype=np.uint8 if len(rig.names) < 256 else np.uint16)
    joints[:, 0] = jnt
    weights = np.zeros((len(pos), 4), dtype=np.float32)
    weights[:, 0] = 1.0
    return pos.astype(np.float32), nrm.astype(np.float32), idx.astype(np.uint16), joints, weights


def rig_to_glb_bytes(rig: Rig) -> bytes:
    """The rig as a GLB file's bytes (metres expected; glTF has no unit field)."""
    n_j, n_t = len(rig.names), rig.n_frames
    times = np.arange(n_t) / rig.fps
    trans = np.asarray(rig.translation, dtype=np.float64)
    quat = qfix(matrix_to_quat(rig.local))[..., [1, 2, 3, 0]]  # w>=0 per frame -> continuous, xyzw
    if n_t == 1:  # the validator wants two keys: hold the pose for one frame
        times = np.array([0.0, 1.0 / rig.fps])
        trans = np.repeat(trans, 2, axis=0)
        quat = np.repeat(quat, 2, axis=0)
    rest = _rest_world(rig)
    buf = _Bin()

    pos, nrm, idx, jnt, wgt = _mesh(rig, rest)
    attributes = {
        "POSITION": buf.accessor(pos, _FLOAT, "VEC3", target=_ARRAY_BUFFER, bounds=True),
        "NORMAL": buf.accessor(nrm, _FLOAT, "VEC3", target=_ARRAY_BUFFER),
        "JOINTS_0": buf.accessor(jnt, _UBYTE if jnt.dtype == np.uint8 else _USHORT, "VEC4",
                                 target=_ARRAY_BUFFER),
        "WEIGHTS_0": buf.accessor(wgt, _FLOAT, "VEC4", target=_ARRAY_BUFFER),
    }
    indices = buf.accessor(idx, _USHORT, "SCALAR", target=_ELEMENT_ARRAY_BUFFER)

    # bind world matrices are pure translations, so their inverses are exact
    ibm = np.tile(np.eye(4), (n_j, 1, 1))
    ibm[:, :3, 3] = -rest
    ibm_acc = buf.accessor(np.swapaxes(ibm, 1, 2).reshape(n_j, 16).astype(np.float32), _FLOAT, "MAT4")

    t_acc = buf.accessor(times.astype(np.float32), _FLOAT, "SCALAR", bounds=True)
    samplers = [{"input": t_acc, "interpolation": "LINEAR",
                 "output": buf.accessor(trans.astype(np.float32), _FLOAT, "VEC3")}]
    channels = [{"sampler": 0, "target": {"node": 0, "path": "translation"}}]
    # all rotation tracks share one bufferView, joint-major
    q32 = np.ascontiguousarray(np.swapaxes(quat, 0, 1), dtype=np.float32)  # (J, K, 4)
    rot_view = buf.view(q32)
    for j in range(n_j):
        acc = buf.accessor(q32[j], _FLOAT, "VEC4", view=rot_view, offset=j * q32[j].nbytes)
        samplers.append({"input": t_acc, "interpolation": "LINEAR", "output": acc})
        channels.append({"sampler": j + 1, "target": {"node": j, "path": "rotation"}})

    nodes = []
    for j, name in enumerate(rig.names):
        node = {"name": name,
                "translation": [float(v) for v in (trans[0] if rig.parents[j] < 0 else rig.offsets[j])],
                "rotation": [float(v) for v in quat[0, j]]}
        kids = [int(c) for c in np.flatnonzero(rig.parents == j)]
        if kids:
            node["children"] = kids
        nodes.append(node)
    # the skinned mesh node sits outside the joint tree, untransformed (spec requirement)
    nodes.append({"name": "body", "mesh": 0, "skin": 0})

    doc = {
        "asset": {"version": "2.0", "generator": "PGR2M Studio"},
        "scene": 0,
        "scenes": [{"name": "motion", "nodes": [0, n_j]}],
        "nodes": nodes,
        "skins": [{"name": "skeleton", "joints": list(range(n_j)), "skeleton": 0,
                   "inverseBindMatrices": ibm_acc}],
        "meshes": [{"name": "bones", "primitives": [
            {"attributes": attributes, "indices": indices, "material": 0, "mode": 4}]}],
        "materials": [{"name": "bone", "pbrMetallicRoughness": {
            "baseColorFactor": [0.75, 0.78, 0.82, 1.0], "metallicFactor": 0.0, "roughnessFactor": 0.6}}],
        "animations": [{"name": "take", "samplers": samplers, "channels": channels}],
        "accessors": buf.accessors,
        "bufferViews": buf.views,
        "buffers": [{"byteLength": len(buf.data)}],
    }
    return _glb(doc, bytes(buf.data))


def _glb(doc: dict, binary: bytes) -> bytes:
    text = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    total = 12 + 8 + len(text) + 8 + len(binary)
    return b"".join([struct.pack("<4sII", b"glTF", 2, total),
                     struct.pack("<I4s", len(text), b"JSON"), text,
                     struct.pack("<I4s", len(binary), b"BIN\0"), binary])


def joints_to_glb_bytes(joints, fps: float = 20.0, *, target_fps: float | None = None) -> bytes:
    """Joint positions (T, 22, 3) in metres, Y up, at ``fps`` -> GLB bytes.

    ``target_fps`` resamples in time. A 1-frame motion gets two equal keys one frame apart.
    Raises ValueError for a bad shape, NaN/inf values or a non-positive rate.
    """
    return rig_to_glb_bytes(joints_to_rig(joints, fps, target_fps=target_fps))


def save_glb(path: str | os.PathLike, joints, fps: float = 20.0, *,
             target_fps: float | None = None) -> None:
    """Build the GLB (see joints_to_glb_bytes) and write it atomically; bad input writes nothing."""
    data = joints_to_glb_bytes(joints, fps, target_fps=target_fps)
    with atomic_open(path, "wb") as f:
        f.write(data)
