"""Guided edits: the differentiable parser twin and the residual-code search."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from motion_factory import synth_motion

from core import posecodes as pc
from core.features import extract_features
from core.model import edit_guidance as G


def facing(joints: np.ndarray) -> np.ndarray:
    """Joints turned so each frame faces +Z with the pelvis over the origin (the parser's frame)."""
    f = pc.heading(joints)
    x = joints[..., 0] - joints[:, :1, 0]
    z = joints[..., 2] - joints[:, :1, 2]
    fx, fz = f[:, 0:1], f[:, 2:3]
    return np.stack([x * fz - z * fx, joints[..., 1], x * fx + z * fz], axis=-1)


def test_torch_measure_is_the_parsers_measure():
    joints = synth_motion(40, seed=3)
    got = G.measure(torch.from_numpy(facing(joints))).numpy()
    np.testing.assert_allclose(got, pc.measure(joints), atol=1e-6)


def test_features_give_the_facing_frame():
    from conftest import TEST_DATA

    from core.formats import bvh as B
    from core.formats import retarget as R

    joints = R.bvh_to_t2m(B.read(sorted((TEST_DATA / "bvh").glob("*.bvh"))[0]))
    feats = extract_features(joints)
    got = G.measure(G.facing_positions(torch.from_numpy(feats.astype(np.float64)))).numpy()
    want = pc.measure(joints[:len(feats)])
    kinds = np.array([g.kind for g in pc.GROUPS])
    # the features' root frame and the parser's per-frame heading follow the same hips and
    # shoulders rule; they differ by the root's smoothing only, seen on left/right/front codes
    turned = np.isin(kinds, ["relX", "relZ"])
    np.testing.assert_allclose(got[:, ~turned], want[:, ~turned], atol=1e-4)
    assert np.abs(got[:, turned] - want[:, turned]).mean() < 0.03


def test_code_bounds_hold_exactly_their_code():
    for code in pc.CODES:
        lo, hi = G.code_bounds(code.index)
        g = pc.GROUPS[code.group]
        for v in (lo + 1e-6, hi, (lo + hi) / 2):
            if not np.isfinite(v):
                continue
            values = np.zeros(pc.N_GROUPS)
            values[g.index] = v
            assert pc.bin_values(values)[g.index] == code.index - g.first_code, (code.name, v)
        assert lo < hi


@pytest.fixture(scope="module")
def builtin():
    from core.pipeline import Pipeline

    torch.manual_seed(0)
    return Pipeline()


def test_guided_edits_show_the_asked_code_and_keep_the_rest(builtin):
    from core.motion import Edit
    from core.pipeline_eval import edit_effect

    m = builtin.generate("a person walks forward", seed=2, length=160)[0]
    asks = [("hands close (0.2–0.3 m)", 10, 18), ("left forearm horizontal", 20, 26),
            ("left knee bent 110–120°", 4, 10), ("right elbow bent 90–100°", 12, 20),
            ("left hand in front of torso", 24, 32), ("right knee bent 130–140°", 30, 36)]
    plain, guided = [], []
    for name, start, end in asks:
        edit = Edit(pc.code_by_name(name).index, start, end)
        before = edit_effect(m, m, [edit])["shown"]
        a = builtin.edit(m, [edit], guided=False)
        b = builtin.edit(m, [edit])
        plain.append(edit_effect(m, a, [edit]))
        guided.append(edit_effect(m, b, [edit]))
        assert before < 0.5, name                    # the motion did not already do it
        # pose codes as asked; residual codes change only on the edited steps and one each side
        assert np.array_equal(b.pose_codes, a.pose_codes)
        changed = np.flatnonzero((b.residual_codes != m.residual_codes).any(axis=0))
        assert changed.min() >= start - 1 and changed.max() <= end
        assert np.array_equal(builtin.edit(m, [edit]).joints, b.joints)      # deterministic
    shown_plain = np.mean([e["shown"] for e in plain])
    shown_guided = np.mean([e["shown"] for e in guided])
    assert shown_guided >= 0.5 and shown_guided >= shown_plain + 0.4, (shown_plain, shown_guided)
    assert max(e["outside_mean_mm"] for e in guided) < 25.0
