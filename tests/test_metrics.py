"""Tests for core.eval.metrics: every metric against a case worked out by hand."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.eval import metrics as M
from core.posecodes import GROUP_START, N_CODES, N_GROUPS

# --------------------------------------------------------------------------
# FID


def test_activation_statistics_unbiased():
    mu, cov = M.activation_statistics([[-1.0], [1.0]])
    assert mu.tolist() == [0.0] and cov.tolist() == [[2.0]]       # (1 + 1) / (2 - 1)


def test_fid_1d_by_hand():
    # a: mean 0, var 2; b: mean 3, var 8 -> 3² + 2 + 8 − 2·√(2·8) = 11
    assert M.fid([[-1.0], [1.0]], [[1.0], [5.0]]) == pytest.approx(11.0, abs=1e-9)


def test_fid_2d_by_hand():
    a = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], float)       # mean 0, cov (2/3)·I
    b = 2 * a + np.array([3.0, 1.0])                                # mean (3, 1), cov (8/3)·I
    # ‖(3, 1)‖² + 2·(2/3) + 2·(8/3) − 2·2·√(16/9) = 10 + 4/3
    assert M.fid(a, b) == pytest.approx(10 + 4 / 3, abs=1e-9)
    assert M.fid(a, a) == pytest.approx(0.0, abs=1e-9)


def test_frechet_distance_commuting_covariances():
    c, s = np.cos(0.3), np.sin(0.3)
    r = np.array([[c, -s], [s, c]])
    cov1 = r @ np.diag([1.0, 4.0]) @ r.T
    cov2 = r @ np.diag([9.0, 1.0]) @ r.T
    # (Σ₁Σ₂)^½ = R diag(3, 2) Rᵀ -> 5 + 10 − 2·5 = 5, plus ‖(1, 2)‖² = 5
    assert M.frechet_distance([0, 0], cov1, [1, 2], cov2) == pytest.approx(10.0, abs=1e-9)


def test_frechet_distance_eps_fallback():
    # the product is nilpotent: sqrtm is not finite, so eps·I is added to both factors.
    # sqrt([[e, 1+ε], [0, e]]) has trace 2√e with e = ε(1+ε) -> 0 + 2 − 4√e
    cov1 = np.array([[0.0, 1.0], [0.0, 0.0]])
    d = M.frechet_distance([0, 0], cov1, [0, 0], np.eye(2))
    assert np.isfinite(d)
    assert d == pytest.approx(2 - 4 * np.sqrt(1e-6 * (1 + 1e-6)), abs=1e-9)


# --------------------------------------------------------------------------
# R-precision and MM-Dist


def _retrieval_case():
    # 1-D motions at 0..3; texts placed so the true motion ranks 0, 2, 1, 3
    motion = np.array([[0.0], [1.0], [2.0], [3.0]])
    text = np.array([[0.0], [2.2], [5.0], [-1.0]])
    # text1: d = (2.2, 1.2, 0.2, 0.8) -> order m2, m3, m1 -> rank 2
    # text2: d = (5, 4, 3, 2)         -> order m3, m2     -> rank 1
    # text3: d = (1, 2, 3, 4)         -> m3 last          -> rank 3
    return text, motion


def test_r_precision_by_hand():
    t, m = _retrieval_case()
    assert M.r_precision(t, m, top_k=3, batch_size=4) == pytest.approx((0.25, 0.5, 0.75))


def test_matching_score_by_hand():
    t, m = _retrieval_case()
    assert M.matching_score(t, m, batch_size=4) == pytest.approx((0 + 1.2 + 3 + 4) / 4)


def test_batches_drop_last():
    t, m = _retrieval_case()
    t6 = np.vstack([t, [[100.0], [200.0]]])          # a partial second batch is ignored
    m6 = np.vstack([m, [[-100.0], [-200.0]]])
    assert M.r_precision(t6, m6, batch_size=4) == pytest.approx((0.25, 0.5, 0.75))
    assert M.matching_score(t6, m6, batch_size=4) == pytest.approx(2.05)
    with pytest.raises(ValueError):
        M.r_precision(t[:3], m[:3], batch_size=4)


def test_r_precision_batches_are_independent():
    t, m = _retrieval_case()
    # two batches: the second is a shifted copy; far-away motions of batch 1 cannot interfere
    tt, mm = np.vstack([t, t + 1000]), np.vstack([m, m + 1000])
    assert M.r_precision(tt, mm, batch_size=4) == pytest.approx((0.25, 0.5, 0.75))
    assert M.r_precision(tt, mm, batch_size=8, top_k=1) == pytest.approx((0.25,))


def test_r_precision_perfect_and_default_batch():
    e = np.random.default_rng(0).normal(size=(70, 16))
    assert M.r_precision(e, e) == (1.0, 1.0, 1.0)          # 64 pairs used, 6 dropped
    assert M.matching_score(e, e) == 0.0


# --------------------------------------------------------------------------
# diversity and multimodality


def test_diversity_equal_pair_distances():
    # one-hot points: every distinct pair is √2 apart, a pair drawn twice is 0
    n = 400
    e = np.eye(n)
    g = np.random.default_rng(7)
    a, b = g.choice(n, 300, replace=False), g.choice(n, 300, replace=False)
    want = np.sqrt(2) * np.mean(a != b)
    assert M.diversity(e, 300, rng=np.random.default_rng(7)) == pytest.approx(want)
    assert M.diversity(e, 300, rng=7) == pytest.approx(want)


def test_diversity_fallback_and_errors():
    e = np.eye(250)
    d = M.diversity(e, rng=0)                          # ≤ 300 samples -> 100 pairs
    assert 0 < d <= np.sqrt(2)
    with pytest.raises(ValueError):
        M.diversity(np.eye(100))
    assert M.diversity(np.ones((301, 3))) == 0.0


def test_multimodality_by_hand():
    # text t, generation g sits at g·(t+1) on a line: pair distance |a − b|·(t+1)
    n_texts, n_gen = 3, 30
    e = (np.arange(n_gen)[None, :, None] * (np.arange(n_texts)[:, None, None] + 1)).astype(float)
    g = np.random.default_rng(3)
    a, b = g.choice(n_gen, 5, replace=False), g.choice(n_gen, 5, replace=False)
    want = np.mean(np.abs(a - b)[None, :] * (np.arange(n_texts)[:, None] + 1))
    assert M.multimodality(e, 5, rng=np.random.default_rng(3)) == pytest.approx(want)
    assert M.multimodality(np.zeros((4, 30, 8)), 5, rng=0) == 0.0
    with pytest.raises(ValueError):
        M.multimodality(np.zeros((4, 5, 8)), 5)


# --------------------------------------------------------------------------
# reconstruction


def test_mpjpe_known_offset():
    gt = np.zeros((2, 2, 3))
    pred = gt.copy()
    pred[:, 1] += [0.03, 0.04, 0.0]                    # joint 1 off by 5 cm, root exact
    assert M.mpjpe(pred, gt) == pytest.approx(0.025)   # (0 + 0.05) / 2 joints
    assert M.mpjpe(gt + [1.0, 2.0, 3.0], gt) == pytest.approx(0.0)   # root-relative
    assert M.mpjpe(pred[None], gt[None]) == pytest.approx(0.025)     # (N, T, J, 3)


def _rot(axis, angle):
    from scipy.spatial.transform import Rotation
    return Rotation.from_rotvec(np.asarray(axis, float) / np.linalg.norm(axis) * angle).as_matrix()


def test_pa_mpjpe_similarity_copy_is_zero():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(3, 10, 22, 3))
    pred = 1.7 * gt @ _rot([1, 2, 3], 0.8).T + [0.5, -1.0, 2.0]
    assert M.pa_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-10)


def test_pa_mpjpe_non_rigid_by_hand():
    gt = np.array([[-1, 0, 0], [1, 0, 0], [0, 1, 0], [0, -1, 0]], float)[None]
    pred = np.array([[-2, 0, 0], [2, 0, 0], [0, 1, 0], [0, -1, 0]], float)[None]
    # R = I, s = tr(S)/‖X‖² = (4 + 2)/10 = 0.6 -> errors 0.2, 0.2, 0.4, 0.4
    assert M.pa_mpjpe(pred, gt) == pytest.approx(0.3)


def test_pa_mpjpe_refuses_reflections():
    gt = np.random.default_rng(1).normal(size=(4, 22, 3))
    mirrored = gt * [-1.0, 1.0, 1.0]
    assert M.pa_mpjpe(mirrored, gt) > 0.1


@settings(max_examples=25, deadline=None)
@given(st.floats(0.1, 10), st.floats(-3, 3), st.integers(0, 10_000))
def test_pa_mpjpe_invariant(scale, angle, seed):
    rng = np.random.default_rng(seed)
    gt = rng.normal(size=(5, 22, 3))
    pred = gt + 0.05 * rng.normal(size=gt.shape)
    moved = scale * pred @ _rot(rng.normal(size=3) + 1e-3, angle).T + rng.normal(size=3)
    assert M.pa_mpjpe(moved, gt) == pytest.approx(M.pa_mpjpe(pred, gt), rel=1e-6, abs=1e-9)


def test_accel_constant_acceleration():
    t = np.arange(20, dtype=float)
    a = np.array([0.0, 0.3, 0.4])                      # ‖a‖ = 0.5 m/frame²
    pred = np.broadcast_to(0.5 * t[:, None, None] ** 2 * a, (20, 22, 3)).copy()
    pred += np.random.default_rng(0).normal(size=(1, 22, 3))     # fixed offsets do not accelerate
    gt = np.zeros_like(pred)                           # at rest
    assert M.accel_error(pred, gt) == pytest.approx(0.5)
    # with lengths: only the valid frames count (here they all have error 0.5 too)
    both = np.stack([pred, pred]), np.stack([gt, gt])
    assert M.accel_error(*both, lengths=[5, 20]) == pytest.approx(0.5)
    assert M.accel_error(pred + 0.5 * t[:, None, None] ** 2 * a, pred) == pytest.approx(0.5)


def test_accel_lengths_weighting():
    # sequence 0: error 1 on valid frames, garbage after; sequence 1: error 0
    pred = np.zeros((2, 10, 1, 3))
    pred[0, :, 0, 0] = 0.5 * np.arange(10) ** 2        # second difference 1
    pred[0, 6:, 0, 0] = 1e6                             # beyond length 6: ignored
    gt = np.zeros_like(pred)
    # (4 accel frames × 1) / (4 + 8) frames
    assert M.accel_error(pred, gt, lengths=[6, 10]) == pytest.approx(4 / 12)


# --------------------------------------------------------------------------
# codebook


def test_perplexity_uniform_and_by_hand():
    k = np.array([0, 1, 2, 3, 3, 2, 1, 0, -1, -1])
    assert M.perplexity(k, 10) == pytest.approx(4.0)
    assert M.code_usage(k, 10) == pytest.approx(0.4)
    # p = (1/2, 1/4, 1/4): H = 1.5 ln 2 -> exp(H) = 2^1.5
    assert M.perplexity([[5, 5], [6, 7]], 8) == pytest.approx(2 ** 1.5)
    assert M.perplexity([-1, -1], 4) == 0.0 and M.code_usage([], 4) == 0.0
    with pytest.raises(ValueError):
        M.perplexity([4], 4)


def test_orthogonality_orthogonal_and_identical():
    d = 96
    cb = np.zeros((N_CODES, d))
    for g in range(N_GROUPS):
        cb[GROUP_START[g]:GROUP_START[g + 1], g] = 1.0 + g   # centroid along axis g
    assert M.orthogonality(cb, GROUP_START) == pytest.approx(0.0)
    assert M.orthogonality(cb) == pytest.approx(0.0)        # default: core.posecodes groups
    same = np.ones((N_CODES, d))
    assert M.orthogonality(same, GROUP_START) == pytest.approx(70 * 69)


def test_orthogonality_two_groups_by_hand():
    # centroids (1, 0) and (1, 1)/√2: G = [[1, c], [c, 1]], c = 1/√2 -> ‖G − I‖² = 2c² = 1
    cb = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    assert M.orthogonality(cb, [0, 2]) == pytest.approx(1.0)
    assert M.orthogonality(cb, [0, 2, 4]) == pytest.approx(1.0)


def test_mean_ci():
    m, ci = M.mean_ci([1, 2, 3, 4])
    assert m == 2.5 and ci == pytest.approx(1.96 * np.sqrt(1.25) / 2)
    assert M.mean_ci([3.0]) == (3.0, 0.0)


def test_inputs_are_validated():
    with pytest.raises(ValueError):
        M.fid(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError):
        M.r_precision(np.zeros((32, 4)), np.zeros((32, 5)))
    with pytest.raises(ValueError):
        M.mpjpe(np.zeros((2, 3, 3)), np.zeros((2, 4, 3)))
    with pytest.raises(ValueError):
        M.fid(np.full((3, 2), np.nan), np.zeros((3, 2)))
