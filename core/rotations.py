"""Rotation maths in numpy: quaternions (w, x, y, z), matrices, 6-D and Euler angles.

All functions broadcast over leading axes and work in float64 unless given float32.
Matrices act on column vectors: v_world = R @ v_local.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


# quaternions

def qnormalize(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), _EPS)


def qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a * b (apply b first, then a)."""
    a = np.asarray(a)
    b = np.asarray(b)
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], axis=-1)


def qinv(q: np.ndarray) -> np.ndarray:
    """Inverse of a unit quaternion (its conjugate)."""
    q = np.asarray(q)
    return q * np.array([1.0, -1.0, -1.0, -1.0], dtype=q.dtype)


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    q = np.asarray(q)
    v = np.asarray(v)
    w = q[..., :1]
    u = q[..., 1:]
    uv = np.cross(u, v)
    uuv = np.cross(u, uv)
    return v + 2.0 * (w * uv + uuv)


def qbetween(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shortest-arc rotation taking direction u to direction v (any lengths).

    Opposite vectors get a half turn about an axis perpendicular to u, so the
    result is always a valid unit quaternion (the classic formula gives 0/0).
    """
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    u, v = np.broadcast_arrays(u, v)
    un = u / np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), _EPS)
    vn = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), _EPS)
    w = 1.0 + np.sum(un * vn, axis=-1, keepdims=True)
    q = np.concatenate([w, np.cross(un, vn)], axis=-1)
    opposite = w[..., 0] < 1e-9
    if np.any(opposite):
        uo = un[opposite]
        # any axis perpendicular to u: cross with the world axis least aligned with u
        ref = np.eye(3)[np.argmin(np.abs(uo), axis=-1)]
        axis = np.cross(uo, ref)
        q[opposite] = np.concatenate([np.zeros((len(uo), 1)), axis], axis=-1)
    return qnormalize(q)


def qfix(q: np.ndarray) -> np.ndarray:
    """Flip signs along axis 0 (time) so consecutive quaternions are continuous."""
    q = np.array(q, copy=True)
    if len(q) < 2:
        return q
    dots = np.sum(q[1:] * q[:-1], axis=-1)
    flip = np.cumsum(dots < 0, axis=0) % 2 == 1
    q[1:][flip] *= -1
    return q


def yaw_quat(half_angle: np.ndarray) -> np.ndarray:
    """Quaternion of a rotation about +Y by 2 * half_angle (radians)."""
    half_angle = np.asarray(half_angle, dtype=np.float64)
    z = np.zeros_like(half_angle)
    return np.stack([np.cos(half_angle), z, np.sin(half_angle), z], axis=-1)


# matrices

def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    q = qnormalize(q)
    w, x, y, z = np.moveaxis(q, -1, 0)
    m = np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=-1)
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) to unit quaternions with w >= 0."""
    m = np.asarray(m, dtype=np.float64)
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # Four candidate magnitudes; take the largest per element for stability.
    cand = np.stack([
        1 + m00 + m11 + m22,
        1 + m00 - m11 - m22,
        1 - m00 + m11 - m22,
        1 - m00 - m11 + m22,
    ], axis=-1)
    best = np.argmax(cand, axis=-1)
    s = np.sqrt(np.maximum(np.take_along_axis(cand, best[..., None], -1)[..., 0], _EPS)) * 2
    w = np.where(best == 0, s / 4, 0.0)
    x = np.where(best == 1, s / 4, 0.0)
    y = np.where(best == 2, s / 4, 0.0)
    z = np.where(best == 3, s / 4, 0.0)
    a21, a12 = m[..., 2, 1], m[..., 1, 2]
    a02, a20 = m[..., 0, 2], m[..., 2, 0]
    a10, a01 = m[..., 1, 0], m[..., 0, 1]
    w = np.select([best == 1, best == 2, best == 3], [(a21 - a12) / s, (a02 - a20) / s, (a10 - a01) / s], w)
    x = np.select([best == 0, best == 2, best == 3], [(a21 - a12) / s, (a01 + a10) / s, (a02 + a20) / s], x)
    y = np.select([best == 0, best == 1, best == 3], [(a02 - a20) / s, (a01 + a10) / s, (a12 + a21) / s], y)
    z = np.select([best == 0, best == 1, best == 2], [(a10 - a01) / s, (a02 + a20) / s, (a12 + a21) / s], z)
    q = np.stack([w, x, y, z], axis=-1)
    q = np.where(q[..., :1] < 0, -q, q)
    return qnormalize(q)


def quat_to_cont6d(q: np.ndarray) -> np.ndarray:
    """Continuous 6-D representation: the first two columns of the matrix, interleaved
    per row as HumanML3D stores them ([m00, m01, m10, m11, m20, m21])."""
    m = quat_to_matrix(q)
    return m[..., :2].reshape(m.shape[:-2] + (6,))


def cont6d_to_matrix(d6: np.ndarray) -> np.ndarray:
    d6 = np.asarray(d6, dtype=np.float64)
    cols = d6.reshape(d6.shape[:-1] + (3, 2))
    a, b = cols[..., 0], cols[..., 1]
    x = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), _EPS)
    z = np.cross(x, b)
    z = z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), _EPS)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)


# Euler angles (BVH convention)

def _axis_matrix(axis: str, rad: np.ndarray) -> np.ndarray:
    c, s = np.cos(rad), np.sin(rad)
    o, z = np.ones_like(rad), np.zeros_like(rad)
    if axis == "X":
        rows = [o, z, z, z, c, -s, z, s, c]
    elif axis == "Y":
        rows = [c, z, s, z, o, z, -s, z, c]
    elif axis == "Z":
        rows = [c, -s, z, s, c, z, z, z, o]
    else:
        raise ValueError(f"unknown rotation axis {axis!r}")
    return np.stack(rows, axis=-1).reshape(rad.shape + (3, 3))


def euler_to_matrix(degrees: np.ndarray, order: str) -> np.ndarray:
    """Euler angles (..., len(order)) in degrees to matrices, BVH style.

    ``order`` lists the axes as the channels appear, e.g. "ZXY": R = Rz @ Rx @ Ry,
    so the last axis is applied to the vector first.
    """
    rad = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    order = order.upper()
    out = None
    for i, axis in enumerate(order):
        m = _axis_matrix(axis, rad[..., i])
        out = m if out is None else out @ m
    if out is None:
        out = np.broadcast_to(np.eye(3), rad.shape[:-1] + (3, 3)).copy()
    return out


def matrix_to_euler(m: np.ndarray, order: str) -> np.ndarray:
    """Inverse of euler_to_matrix for a three-axis order of distinct axes (degrees)."""
    m = np.asarray(m, dtype=np.float64)
    order = order.upper()
    if len(order) != 3 or len(set(order)) != 3:
        raise ValueError(f"matrix_to_euler needs three distinct axes, got {order!r}")
    idx = {"X": 0, "Y": 1, "Z": 2}
    i, j, k = (idx[a] for a in order)
    # sign of the permutation (i, j, k): +1 for cyclic orders XYZ, YZX, ZXY
    sign = 1.0 if (j - i) % 3 == 1 else -1.0
    # R = Ri(a) Rj(b) Rk(c); the generic solution for Tait-Bryan angles
    sb = np.clip(sign * m[..., i, k], -1.0, 1.0)
    b = np.arcsin(sb)
    a = np.arctan2(-sign * m[..., j, k], m[..., k, k])
    c = np.arctan2(-sign * m[..., i, j], m[..., i, i])
    # gimbal lock: cos(b) ~ 0; put all of the remaining turn on the first axis
    lock = np.abs(sb) > 1 - 1e-9
    if np.any(lock):
        c = np.where(lock, 0.0, c)
        a_lock = np.arctan2(sign * m[..., k, j], m[..., j, j])
        a = np.where(lock, a_lock, a)
    return np.rad2deg(np.stack([a, b, c], axis=-1))
