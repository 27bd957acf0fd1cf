"""Export joint positions (HumanML3D layout, metres, Y up) as a binary FBX 7.4 skeleton animation.

The skeleton is the shared Rig (see core.formats.bvh_export.joints_to_rig): per joint a
LimbNode Model with its Skeleton NodeAttribute, the root at the top of the scene (no extra
armature Null: Blender makes the armature itself, and ufbx and game engines read a bare
LimbNode tree as the skeleton). One AnimationStack "Take 001" with one layer; the root gets
translation and rotation curves, the other joints rotation curves, one linear key per frame.

Rotations are Euler angles in degrees. Each joint keeps FBX's default order eEulerXYZ
(R = Rz @ Ry @ Rx for column vectors) unless the clip takes its middle angle within 30 degrees
of gimbal lock; then the joint gets the order farthest from lock, written as its RotationOrder
(a turning root, whose yaw is XYZ's middle angle, gets a yaw-outermost order). Near lock the
outer angles swing fast, so curves interpolated between keys (resampling importers) would
wobble. Angles are kept continuous: at each frame the equivalent triple (first + 180,
180 - middle, last + 180) is taken when nearer the previous frame, and whole turns unwrapped.

Units: lengths are metres x ``scale``; the default 100 writes centimetres, with
GlobalSettings UnitScaleFactor 1 (FBX's "1 unit = 1 cm"), which Blender, Maya and Unity
import at the right size. Other scales set UnitScaleFactor = 100 / scale accordingly.
Axes: Y up, Z front, X right (right-handed), as in the input.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import os

import numpy as np

from core.atomic import atomic_open
from core.formats import fbx_binary as fb
from core.formats.bvh_export import Rig, joints_to_rig
from core.formats.fbx_binary import Node, i64
from core.rotations import matrix_to_euler

__all__ = ["KTIME_PER_SECOND", "ROTATION_ORDERS", "fbx_euler", "joints_to_fbx_bytes", "rig_to_fbx_bytes",
           "rotation_orders", "save_fbx"]

KTIME_PER_SECOND = 46_186_158_000
TAKE = "Take 001"
CREATOR = "PGR2M Studio FBX export"
# FbxTime::EMode values for rates that have one; anything else is eCustom + CustomFrameRate
_TIME_MODES = {120: 1, 100: 2, 60: 3, 50: 4, 48: 5, 30: 6, 25: 10, 24: 11, 1000: 12, 96: 15, 72: 16}
_TIME_MODE_CUSTOM = 14
# EFbxRotationOrder by value; each name lists the axes in the order they apply to a vector,
# so eEulerXYZ (0, the default) is R = Rz @ Ry @ Rx for column vectors
ROTATION_ORDERS = ["XYZ", "XZY", "YZX", "YXZ", "ZXY", "ZYX"]
_LINEAR_KEY = 0x4  # KeyAttrFlags: eInterpolationLinear
# KeyAttrDataFloat: right slope, next left slope, the two tangent weights (1/3 each, stored
# as int16 3333 and packed into one float's bits), velocity
_KEY_DATA = np.array([0, 0, np.array([0x0D050D05], np.int32).view(np.float32)[0], 0], np.float32)


def _angles(local: np.ndarray, order: str) -> np.ndarray:
    """(T, 3, 3) -> (T, 3) degrees about X, Y, Z for an FBX order (first-applied axis first)."""
    abc = matrix_to_euler(local, order[::-1])  # R = R_C R_B R_A, angles for C, B, A
    out = np.empty_like(abc)
    out[..., ["XYZ".index(a) for a in order[::-1]]] = abc
    return out


def rotation_orders(local: np.ndarray) -> list[str]:
    """Per joint, the FBX rotation order for its (T, J, 3, 3) rotations: XYZ (the default)
    unless the clip brings its middle angle within 30 degrees of gimbal lock, else the order
    whose middle angle stays farthest from it (a turning root gets a yaw-outermost order)."""
    orders = []
    for j in range(local.shape[1]):
        worst = {o: np.abs(_angles(local[:, j], o)[:, "XYZ".index(o[1])]).max() for o in ROTATION_ORDERS}
        orders.append("XYZ" if worst["XYZ"] <= 60.0 else min(ROTATION_ORDERS, key=worst.__getitem__))
    return orders


def fbx_euler(local: np.ndarray, orders: list[str]) -> np.ndarray:
    """Rotations (T, J, 3, 3) -> Euler degrees (T, J, 3) about X, Y, Z in each joint's FBX
    order, continuous in time."""
    a = np.stack([_angles(local[:, j], o) for j, o in enumerate(orders)], axis=1)
    # the same rotation as (first + 180, 180 - middle, last + 180)
    mid = np.array(["XYZ".index(o[1]) for o in orders])
    b = a + 180.0
    rows = np.arange(len(orders))
    b[:, rows, mid] = 180.0 - a[:, rows, mid]
    out = np.empty_like(a)
    prev = a[0]
    for t in range(a.shape[0]):
        ca = prev + (a[t] - prev + 180.0) % 360.0 - 180.0  # nearest whole-turn equivalents
        cb = prev + (b[t] - prev + 180.0) % 360.0 - 180.0
        use_b = np.abs(cb - prev).sum(-1) < np.abs(ca - prev).sum(-1)
        out[t] = prev = np.where(use_b[..., None], cb, ca)
    return out


def _p(props: Node, name: str, kind: str, label: str, flags: str, *values) -> None:
    props.add("P", name, kind, label, flags, *values)


def _vec(props: Node, name: str, v) -> None:
    _p(props, name, name, "", "A", *(float(x) for x in v))


def _header(fps: float, unit_cm: float, stop: int) -> list[Node]:
    ext = Node("FBXHeaderExtension")
    ext.add("FBXHeaderVersion", 1003)
    ext.add("FBXVersion", fb.VERSION)
    ext.add("EncryptionType", 0)
    now = _dt.datetime.now()
    stamp = ext.add("CreationTimeStamp")
    for key, value in [("Version", 1000), ("Year", now.year), ("Month", now.month), ("Day", now.day),
                       ("Hour", now.hour), ("Minute", now.minute), ("Second", now.second),
                       ("Millisecond", now.microsecond // 1000)]:
        stamp.add(key, value)
    ext.add("Creator", CREATOR)

    settings = Node("GlobalSettings")
    settings.add("Version", 1000)
    props = settings.add("Properties70")
    for name, value in [("UpAxis", 1), ("UpAxisSign", 1), ("FrontAxis", 2), ("FrontAxisSign", 1),
                        ("CoordAxis", 0), ("CoordAxisSign", 1), ("OriginalUpAxis", 1),
                        ("OriginalUpAxisSign", 1)]:
        _p(props, name, "int", "Integer", "", value)
    _p(props, "UnitScaleFactor", "double", "Number", "", unit_cm)
    _p(props, "OriginalUnitScaleFactor", "double", "Number", "", unit_cm)
    rounded = round(fps)
    mode = _TIME_MODES.get(rounded, _TIME_MODE_CUSTOM) if abs(fps - rounded) < 1e-9 else _TIME_MODE_CUSTOM
    _p(props, "TimeMode", "enum", "", "", mode)
    _p(props, "TimeSpanStart", "KTime", "Time", "", i64(0))
    _p(props, "TimeSpanStop", "KTime", "Time", "", i64(stop))
    _p(props, "CustomFrameRate", "double", "Number", "", float(fps))
    return [ext, Node("FileId", [fb.FILE_ID]), Node("CreationTime", [fb.CREATION_TIME]),
            Node("Creator", [CREATOR]), settings]


def rig_to_fbx_bytes(rig: Rig, unit_cm: float = 1.0) -> bytes:
    """The rig as a binary FBX; ``unit_cm`` is how many centimetres one rig unit is."""
    n_t, n_j = rig.n_frames, len(rig.names)
    step = KTIME_PER_SECOND / rig.fps
    times = np.rint(np.arange(n_t) * step).astype(np.int64)
    stop = int(times[-1])
    orders = rotation_orders(rig.local)
    euler = fbx_euler(rig.local, orders)  # (T, J, 3)
    new_id = itertools.count(1_000_000).__next__  # deterministic ids; 0 is the scene root

    objects, links = Node("Objects"), Node("Connections")
    models = []
    for j, name in enumerate(rig.names):
        attr, model = new_id(), new_id()
        models.append(model)
        na = objects.add("NodeAttribute", i64(attr), f"{name}\x00\x01NodeAttribute", "LimbNode")
        _p(na.add("Properties70"), "Size", "double", "Number", "", 1.0)
        na.add("TypeFlags", "Skeleton")
        m = objects.add("Model", i64(model), f"{name}\x00\x01Model", "LimbNode")
        m.add("Version", 232)
        props = m.add("Properties70")
        _p(props, "DefaultAttributeIndex", "int", "Integer", "", 0)
        if orders[j] != "XYZ":
            _p(props, "RotationOrder", "enum", "", "", ROTATION_ORDERS.index(orders[j]))
        root = rig.parents[j] < 0
        _vec(props, "Lcl Translation", rig.translation[0] if root else rig.offsets[j])
        _vec(props, "Lcl Rotation", euler[0, j])
        _vec(props, "Lcl Scaling", (1.0, 1.0, 1.0))
        m.add("Culling", "CullingOff")
        parent = 0 if root else models[rig.parents[j]]
        links.add("C", "OO", i64(model), i64(parent))
        links.add("C", "OO", i64(attr), i64(model))

    stack, layer = new_id(), new_id()
    st = objects.add("AnimationStack", i64(stack), f"{TAKE}\x00\x01AnimStack", "")
    props = st.add("Properties70")
    for name in ("LocalStart", "LocalStop", "ReferenceStart", "ReferenceStop"):
        _p(props, name, "KTime", "Time", "", i64(stop if name.endswith("Stop") else 0))
    objects.add("AnimationLayer", i64(layer), "BaseLayer\x00\x01AnimLayer", "")
    links.add("C", "OO", i64(layer), i64(stack))

    channels = [(0, "T", "Lcl Translation", rig.translation)]
    channels += [(j, "R", "Lcl Rotation", euler[:, j]) for j in range(n_j)]
    for j, short, prop, values in channels:
        node_id = new_id()
        cn = objects.add("AnimationCurveNode", i64(node_id), f"{short}\x00\x01AnimCurveNode", "")
        props = cn.add("Properties70")
        links.add("C", "OO", i64(node_id), i64(layer))
        links.add("C", "OP", i64(node_id), i64(models[j]), prop)
        for axis in range(3):
            channel = f"d|{'XYZ'[axis]}"
            _p(props, channel, "Number", "", "A", float(values[0, axis]))
            curve = new_id()
            c = objects.add("AnimationCurve", i64(curve), "\x00\x01AnimCurve", "")
            c.add("Default", float(values[0, axis]))
            c.add("KeyVer", 4008)
            c.add("KeyTime", times)
            c.add("KeyValueFloat", values[:, axis].astype(np.float32))
            c.add("KeyAttrFlags", np.array([_LINEAR_KEY], np.int32))  # one attribute for all keys
            c.add("KeyAttrDataFloat", _KEY_DATA)
            c.add("KeyAttrRefCount", np.array([n_t], np.int32))
            links.add("C", "OP", i64(curve), i64(node_id), channel)

    counts = {"GlobalSettings": 1, "NodeAttribute": n_j, "Model": n_j, "AnimationStack": 1,
              "AnimationLayer": 1, "AnimationCurveNode": len(channels),
              "AnimationCurve": 3 * len(channels)}
    definitions = Node("Definitions")
    definitions.add("Version", 100)
    definitions.add("Count", sum(counts.values()))
    for kind, count in counts.items():
        definitions.add("ObjectType", kind).add("Count", count)

    documents = Node("Documents")
    documents.add("Count", 1)
    doc = documents.add("Document", i64(new_id()), "Scene", "Scene")
    props = doc.add("Properties70")
    _p(props, "SourceObject", "object", "", "")
    _p(props, "ActiveAnimStackName", "KString", "", "", TAKE)
    doc.add("RootNode", i64(0))

    takes = Node("Takes")
    takes.add("Current", TAKE)
    take = takes.add("Take", TAKE)
    take.add("FileName", TAKE.replace(" ", "_") + ".tak")
    take.add("LocalTime", i64(0), i64(stop))
    take.add("ReferenceTime", i64(0), i64(stop))

    nodes = _header(rig.fps, unit_cm, stop)
    nodes += [documents, Node("References"), definitions, objects, links, takes]
    return fb.to_bytes(nodes)


def joints_to_fbx_bytes(joints, fps: float = 20.0, *, target_fps: float | None = None,
                        scale: float = 100.0) -> bytes:
    """Joint positions (T, 22, 3) in metres, Y up, at ``fps`` -> binary FBX 7.4 bytes.

    ``target_fps`` resamples in time. ``scale`` multiplies lengths: the default 100 writes
    centimetres with UnitScaleFactor 1, what Blender, Maya and Unity expect. Raises
    ValueError for bad shapes, NaN/inf values or non-positive rates/scale.
    """
    rig = joints_to_rig(joints, fps, target_fps=target_fps, scale=scale)
    return rig_to_fbx_bytes(rig, unit_cm=100.0 / float(scale))


def save_fbx(path: str | os.PathLike, joints, fps: float = 20.0, *, target_fps: float | None = None,
             scale: float = 100.0) -> None:
    """Build the FBX (see joints_to_fbx_bytes; default centimetres) and write it atomically.

    Nothing is written when the input is refused.
    """
    data = joints_to_fbx_bytes(joints, fps, target_fps=target_fps, scale=scale)
    with atomic_open(path, "wb") as f:
        f.write(data)
