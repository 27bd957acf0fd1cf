"""SMPL-family body models (SMPL, SMPL-H, SMPL-X as .npz) posed from our joints and skinned in numpy.

Only .npz files are read, with ``allow_pickle=False``: the official SMPL files are Python pickles,
and unpickling a file can run any code, so .pkl files are refused (docs/smpl.md shows how to
convert one). The model's first 22 joints are the HumanML3D joints in the same order, so a motion
drives the body through rotations fitted to its bone directions; the other joints (hands, jaw,
eyes) keep their rest pose relative to their parents.

Linear blend skinning (Loper et al., SMPL, 2015), column vectors, per frame t:
  v_shaped = v_template + shapedirs . betas           J = J_regressor @ v_shaped
  v_posed  = v_shaped + posedirs . (R[1:] - I)         (pose blend shapes, when the file has them)
  G_j = G_parent R_j,  p_j = p_parent + G_parent (J_j - J_parent),  p_root = J_root
  v    = sum_j weights[v, j] (G_j (v_posed - J_j) + p_j) + translation
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.rotations import qbetween, quat_to_matrix
from core.skeleton import T2M

__all__ = ["SmplError", "SmplModel", "body_vertices", "fit_betas", "pose_from_joints", "posed_joints",
           "rest_joints", "skin"]

BODY_JOINTS = T2M.n_joints          # the first 22 joints of every SMPL-family model
MAX_BETAS = 10                      # shape coefficients kept (SMPL-X also stores expressions after 300)
SHAPES = {"v_template": "(V, 3)", "shapedirs": "(V, 3, B)", "J_regressor": "(J, V)",
          "kintree_table": "(2, J)", "weights": "(V, J)", "f": "(F, 3)"}
POSEDIRS_SHAPE = "(V, 3, (J - 1) * 9)"
PICKLE_MESSAGE = (
    "{path}: this is a Python pickle (.pkl). Loading a pickle can run any code hidden in it, so "
    "PGR²M Studio never opens one. Convert it once to .npz with the short script in docs/smpl.md "
    "(run it yourself, on a file you trust), then choose the .npz file.")
# hips and shoulders: (child, grandchild, hinge axis of the child joint in the rest pose)
HINGES = {1: (4, 7, (1.0, 0.0, 0.0)), 2: (5, 8, (1.0, 0.0, 0.0)),
          16: (18, 20, (0.0, -1.0, 0.0)), 17: (19, 21, (0.0, 1.0, 0.0))}
HINGE_FULL_SIN = 0.3                # the limb's bend (sine) from which its hinge fixes the twist
SHAPE_STIFFNESS = 1e-4              # fit_betas: ridge weight, in metres squared per unit beta
BETA_LIMIT = 4.0                    # fit_betas: larger coefficients make implausible bodies


class SmplError(ValueError):
    """A body model file that cannot be used, with the reason."""


@dataclass(frozen=True, eq=False)
class SmplModel:
    v_template: np.ndarray      # (V, 3) float32
    shapedirs: np.ndarray       # (V, 3, B) float32, B <= MAX_BETAS
    posedirs: np.ndarray | None  # ((J - 1) * 9, V * 3) float32, laid out for one matmul
    J_regressor: np.ndarray     # (J, V) float32
    weights: np.ndarray         # (V, J) float32
    faces: np.ndarray           # (F, 3) int32
    parents: np.ndarray         # (J,) int64, -1 for the root; parents precede children
    path: str = ""

    @property
    def n_vertices(self) -> int:
        return len(self.v_template)

    @property
    def n_joints(self) -> int:
        return len(self.parents)

    @property
    def n_betas(self) -> int:
        return self.shapedirs.shape[2]

    @classmethod
    def load(cls, path) -> "SmplModel":
        """Read and check an .npz model; raises SmplError with the reason."""
        p = Path(path)
        if not p.exists():
            raise SmplError(f"{p}: no such file")
        if not p.is_file():
            raise SmplError(f"{p}: not a file")
        try:
            with open(p, "rb") as fh:
                head = fh.read(4)
        except OSError as exc:
            raise SmplError(f"{p}: cannot read it ({exc})") from None
        if p.suffix.lower() in (".pkl", ".pickle") or head[:1] == b"\x80":
            raise SmplError(PICKLE_MESSAGE.format(path=p))
        if head != b"PK\x03\x04":
            raise SmplError(f"{p}: not an .npz file (a zip of .npy arrays, as numpy.savez writes)")
        arrays = {}
        try:
            with np.load(p, allow_pickle=False) as z:
                missing = [k for k in SHAPES if k not in z.files]
                if missing:
                    raise SmplError(f"{p}: not an SMPL-family model; missing arrays: {', '.join(missing)} "
                                    f"(needs {', '.join(SHAPES)})")
                for key in (*SHAPES, "posedirs"):
                    if key in z.files:
                        try:
                            arrays[key] = z[key]
                        except ValueError:
                            raise SmplError(f"{p}: the array '{key}' is stored as pickled Python objects, "
                                            "which are never loaded; save it as a plain numeric array "
                                            "(docs/smpl.md)") from None
        except (OSError, zipfile.BadZipFile, EOFError, ValueError) as exc:
            if isinstance(exc, SmplError):
                raise
            raise SmplError(f"{p}: cannot read it as .npz ({exc})") from None
        return cls.from_arrays(arrays, str(p))

    @classmethod
    def from_arrays(cls, a: dict, path: str = "") -> "SmplModel":
        """Check shapes and types of the model arrays (keys as in the files) and build the model."""
        where = path or "model"

        def numeric(key, ndim, shape_text=None):
            x = np.asarray(a[key])
            if x.dtype.kind not in "fiub":
                raise SmplError(f"{where}: '{key}' must be numeric, got dtype {x.dtype}")
            if x.ndim != ndim:
                raise SmplError(f"{where}: '{key}' must have shape {shape_text or SHAPES[key]}, got {x.shape}")
            if x.dtype.kind == "f" and not np.isfinite(x).all():
                raise SmplError(f"{where}: '{key}' contains NaN or infinite values")
            return x

        def expect(key, x, shape, text=None):
            if x.shape != shape:
                raise SmplError(f"{where}: '{key}' must have shape {text or SHAPES[key]} = {shape}, "
                                f"got {x.shape}")

        v = numeric("v_template", 2)
        n_v = len(v)
        expect("v_template", v, (n_v, 3))
        kt = numeric("kintree_table", 2)
        n_j = kt.shape[1]
        expect("kintree_table", kt, (2, n_j))
        parents = kt[0].astype(np.int64)
        parents[0] = -1                     # the root's entry is 4294967295 or -1
        if n_j < BODY_JOINTS or np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, n_j)):
            raise SmplError(f"{where}: 'kintree_table' is not a tree of at least {BODY_JOINTS} joints "
                            "with parents listed before children")
        if not np.array_equal(parents[:BODY_JOINTS], T2M.parents):
            raise SmplError(f"{where}: its first {BODY_JOINTS} joints are not the SMPL body joints "
                            "(pelvis, left_hip, ... right_wrist)")
        sd = numeric("shapedirs", 3)
        if sd.shape[:2] != (n_v, 3) or sd.shape[2] < 1:
            raise SmplError(f"{where}: 'shapedirs' must have shape (V, 3, B) = ({n_v}, 3, B), got {sd.shape}")
        jr = numeric("J_regressor", 2)
        expect("J_regressor", jr, (n_j, n_v))
        w = numeric("weights", 2)
        expect("weights", w, (n_v, n_j))
        f = numeric("f", 2)
        if f.shape[1:] != (3,) or f.dtype.kind not in "iu":
            raise SmplError(f"{where}: 'f' must be integer triangles of shape (F, 3), got {f.shape} {f.dtype}")
        if f.size and (f.min() < 0 or f.max() >= n_v):
            raise SmplError(f"{where}: 'f' indexes vertices outside 0..{n_v - 1}")
        pd = None
        if "posedirs" in a:
            pd = numeric("posedirs", 3, POSEDIRS_SHAPE)
            expect("posedirs", pd, (n_v, 3, (n_j - 1) * 9), POSEDIRS_SHAPE)
            pd = np.ascontiguousarray(pd.reshape(n_v * 3, -1).T, dtype=np.float32)
        return cls(
            v_template=np.ascontiguousarray(v, dtype=np.float32),
            shapedirs=np.ascontiguousarray(sd[:, :, :MAX_BETAS], dtype=np.float32),
            posedirs=pd,
            J_regressor=np.ascontiguousarray(jr, dtype=np.float32),
            weights=np.ascontiguousarray(w, dtype=np.float32),
            faces=np.ascontiguousarray(f, dtype=np.int32),
            parents=parents,
            path=path,
        )


# shape

def _betas(model: SmplModel, betas) -> np.ndarray:
    if betas is None:
        return np.zeros(0)
    b = np.asarray(betas, dtype=np.float64).reshape(-1)
    if len(b) > model.n_betas or not np.isfinite(b).all():
        raise SmplError(f"betas must be at most {model.n_betas} finite numbers, got {len(b)}")
    return b


def _shaped(model: SmplModel, betas) -> np.ndarray:
    b = _betas(model, betas)
    v = model.v_template.astype(np.float64)
    return v + model.shapedirs[:, :, :len(b)] @ b if len(b) else v


def rest_joints(model: SmplModel, betas=None) -> np.ndarray:
    """(J, 3) joint positions of the rest pose for these shape coefficients."""
    return model.J_regressor.astype(np.float64) @ _shaped(model, betas)


def _check_joints(joints) -> np.ndarray:
    x = np.asarray(joints, dtype=np.float64)
    if x.ndim != 3 or x.shape[1:] != (BODY_JOINTS, 3) or len(x) == 0:
        raise ValueError(f"expected joints of shape (T, {BODY_JOINTS}, 3), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("joints contain NaN or infinite values")
    return x


def fit_betas(model: SmplModel, joints, n_betas: int = MAX_BETAS) -> np.ndarray:
    """Shape coefficients whose rest bone lengths best match the motion's median bone lengths.

    Gauss-Newton on the 21 bone lengths with a small ridge, within +-BETA_LIMIT, so the body stays plausible.
    """
    x = _check_joints(joints)
    target = np.median(T2M.measure_offsets(x), axis=0)[1:]
    n_b = min(int(n_betas), model.n_betas)
    if n_b <= 0:
        return np.zeros(0)
    child = np.arange(1, BODY_JOINTS)
    parent = model.parents[child]
    jr = model.J_regressor.astype(np.float64)
    j0 = jr @ model.v_template
    dj = np.einsum("jv,vcb->jcb", jr, model.shapedirs[:, :, :n_b].astype(np.float64))
    b0, e = j0[child] - j0[parent], dj[child] - dj[parent]
    beta = np.zeros(n_b)
    for _ in range(6):
        bone = b0 + e @ beta
        length = np.maximum(np.linalg.norm(bone, axis=-1), 1e-9)
        jac = np.einsum("kc,kcb->kb", bone / length[:, None], e)
        a = jac.T @ jac + SHAPE_STIFFNESS * np.eye(n_b)
        step = np.linalg.solve(a, jac.T @ (length - target) + SHAPE_STIFFNESS * beta)
        beta = np.clip(beta - step, -BETA_LIMIT, BETA_LIMIT)
        if np.abs(step).max() < 1e-6:
            break
    return beta


# pose

def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _kabsch(rest: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotations (T, 3, 3) best taking rest vectors (K, 3) onto target vectors (T, K, 3)."""
    u, _, vt = np.linalg.svd(np.einsum("tki,kj->tij", target, rest))
    d = np.sign(np.linalg.det(u @ vt))
    d[d == 0] = 1.0
    u[..., :, 2] *= d[:, None]          # no reflections
    return u @ vt


def _axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    half = angle[..., None] / 2
    return quat_to_matrix(np.concatenate([np.cos(half), np.sin(half) * axis], axis=-1))


def _hinge_twist(world: np.ndarray, x: np.ndarray, j: int) -> np.ndarray:
    """Turn bone j about itself so that its child's hinge axis is the axis the limb bends about."""
    c, g, axis = HINGES[j]
    bone = _unit(x[:, c] - x[:, j])
    bend = np.cross(bone, _unit(x[:, g] - x[:, c]))         # |bend| = sine of the bend angle
    hinge = world @ np.asarray(axis)
    hinge = hinge - np.sum(hinge * bone, axis=-1, keepdims=True) * bone
    angle = np.arctan2(np.sum(bone * np.cross(hinge, bend), axis=-1), np.sum(hinge * bend, axis=-1))
    weight = np.clip(np.linalg.norm(bend, axis=-1) / HINGE_FULL_SIN, 0.0, 1.0)
    return _axis_angle(bone, weight * angle) @ world


def pose_from_joints(model: SmplModel, joints, betas=None) -> tuple[np.ndarray, np.ndarray]:
    """HumanML3D joints (T, 22, 3), metres, Y up -> (local rotations (T, J, 3, 3), translation (T, 3)).

    Each body joint turns so that its bones point where the motion's bones point: a joint with one
    child by the shortest arc from where its parent carries the rest bone (hips and shoulders then
    turn about the bone so the knee or elbow bends about its hinge), the pelvis and spine3 (three
    children) by a least-squares fit (Kabsch). Leaves and the extra joints follow their parents.
    """
    x = _check_joints(joints)
    rest = rest_joints(model, betas)
    parents = model.parents
    n_t, n_j = len(x), model.n_joints
    world = np.empty((n_t, n_j, 3, 3))
    eye = np.broadcast_to(np.eye(3), (n_t, 3, 3))
    for j in range(n_j):
        up = eye if parents[j] < 0 else world[:, parents[j]]
        kids = [c for c in range(j + 1, BODY_JOINTS) if parents[c] == j] if j < BODY_JOINTS else []
        if len(kids) > 1:
            world[:, j] = _kabsch(rest[kids] - rest[j], x[:, kids] - x[:, j:j + 1])
        elif kids:
            c = kids[0]
            carried = up @ (rest[c] - rest[j])
            world[:, j] = quat_to_matrix(qbetween(carried, x[:, c] - x[:, j])) @ up
            if j in HINGES:
                world[:, j] = _hinge_twist(world[:, j], x, j)
        else:
            world[:, j] = up
    local = world.copy()
    for j in range(1, n_j):
        local[:, j] = np.swapaxes(world[:, parents[j]], -1, -2) @ world[:, j]
    return local, x[:, 0] - rest[0]


def _check_pose(model: SmplModel, rotations, translation) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rotations, dtype=np.float64)
    if r.ndim != 4 or r.shape[1:] != (model.n_joints, 3, 3):
        raise ValueError(f"rotations must have shape (T, {model.n_joints}, 3, 3), got {r.shape}")
    t = np.asarray(translation, dtype=np.float64)
    if t.shape != (len(r), 3):
        raise ValueError(f"translation must have shape ({len(r)}, 3), got {t.shape}")
    return r, t


def _world(parents, local: np.ndarray, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward kinematics: world rotations (T, J, 3, 3) and joint positions (T, J, 3), no translation."""
    g = np.empty_like(local)
    pos = np.empty(local.shape[:2] + (3,))
    for j, p in enumerate(parents):
        if p < 0:
            g[:, j], pos[:, j] = local[:, j], rest[j]
        else:
            g[:, j] = g[:, p] @ local[:, j]
            pos[:, j] = pos[:, p] + g[:, p] @ (rest[j] - rest[p])
    return g, pos


def posed_joints(model: SmplModel, rotations, translation, betas=None) -> np.ndarray:
    """(T, J, 3) joint positions of the posed skeleton (forward kinematics)."""
    r, t = _check_pose(model, rotations, translation)
    return _world(model.parents, r, rest_joints(model, betas))[1] + t[:, None]


def skin(model: SmplModel, rotations, translation, betas=None, *, chunk: int = 64) -> np.ndarray:
    """Linear blend skinning: local rotations (T, J, 3, 3) and translation (T, 3) -> vertices (T, V, 3)
    float32. Works ``chunk`` frames at a time to bound the temporary memory."""
    r, t = _check_pose(model, rotations, translation)
    shaped = _shaped(model, betas)
    rest = model.J_regressor.astype(np.float64) @ shaped
    shaped = shaped.astype(np.float32)
    n_t, n_v, n_j = len(r), model.n_vertices, model.n_joints
    out = np.empty((n_t, n_v, 3), np.float32)
    for s in range(0, n_t, chunk):
        lr = r[s:s + chunk]
        n = len(lr)
        g, pos = _world(model.parents, lr, rest)
        offset = pos - np.einsum("tjab,jb->tja", g, rest)
        per_joint = np.concatenate([g.reshape(n, n_j, 9), offset], axis=-1).astype(np.float32)
        m = np.matmul(model.weights, per_joint)             # (n, V, 12): transforms blended per vertex
        v = shaped
        if model.posedirs is not None:
            feature = (lr[:, 1:] - np.eye(3)).reshape(n, -1).astype(np.float32)
            v = shaped + (feature @ model.posedirs).reshape(n, n_v, 3)
        v = np.einsum("tvab,tvb->tva", m[..., :9].reshape(n, n_v, 3, 3), np.broadcast_to(v, (n, n_v, 3)))
        out[s:s + n] = v + m[..., 9:] + t[s:s + n, None].astype(np.float32)
    return out


def body_vertices(model: SmplModel, joints, fit_shape: bool = True) -> np.ndarray:
    """Our joints (T, 22, 3) -> the skinned body (T, V, 3) float32, its shape fitted to the motion."""
    betas = fit_betas(model, joints) if fit_shape else None
    rotations, translation = pose_from_joints(model, joints, betas)
    return skin(model, rotations, translation, betas)
