"""Tests for the pose-guided RVQ tokenizer: configs, conv stacks, attention RVQ, losses, round trips."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core import posecodes as P
from core.model.configs import TOKENIZER_CONFIGS, TokenizerConfig, tokenizer_config
from core.model.quantizer import AttentionQuantizer, ResidualAttentionVQ
from core.model.tokenizer import PoseGuidedTokenizer, TokenizerOutput

# six stages like the paper, everything else tiny so a forward takes milliseconds
TINY = TokenizerConfig(width=32, code_dim=16, depth=1, n_codes=8)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def random_codes(B: int, T: int, seed: int = 0) -> torch.Tensor:
    """(B, T, 392) valid 70-hot frames, one random category per group."""
    rng = np.random.default_rng(seed)
    sizes = np.diff(P.GROUP_START)
    cats = (rng.random((B, T, P.N_GROUPS)) * sizes).astype(np.int64)
    out = np.zeros((B, T, P.N_CODES), dtype=bool)
    np.put_along_axis(out, P.GROUP_START[:-1] + cats, True, axis=-1)
    return torch.from_numpy(out)


def batch(cfg: TokenizerConfig, B: int = 2, T: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, T, cfg.motion_dim, generator=g), random_codes(B, T, seed)


def warmed(cfg: TokenizerConfig = TINY, **changes) -> PoseGuidedTokenizer:
    """A tokenizer whose codebooks went through the first-batch initialisation, in eval mode."""
    tok = PoseGuidedTokenizer(cfg, **changes)
    tok.train()
    tok(*batch(tok.config, B=4, T=32, seed=99), residual_dropout=False)
    return tok.eval()


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# --------------------------------------------------------------------------
# configs


def test_config_json_round_trip_and_validation():
    for name, cfg in TOKENIZER_CONFIGS.items():
        d = json.loads(json.dumps(cfg.to_dict()))
        assert TokenizerConfig.from_dict(d) == cfg, name
    assert TOKENIZER_CONFIGS["paper"] == TokenizerConfig()
    assert tokenizer_config("small", n_codes=64).n_codes == 64
    with pytest.raises(ValueError, match="unknown"):
        TokenizerConfig.from_dict({"widht": 3})
    with pytest.raises(ValueError, match="probability"):
        TokenizerConfig(residual_dropout=1.5)
    with pytest.raises(ValueError, match="codebook_init"):
        TokenizerConfig(codebook_init="kmeans")
    with pytest.raises(KeyError, match="known"):
        tokenizer_config("huge")
    with pytest.raises(dataclasses.FrozenInstanceError):
        TokenizerConfig().width = 3


def test_config_position_block_and_unit():
    assert TokenizerConfig().pos_slice == slice(4, 67)            # HumanML3D: 21 joints x 3
    assert TokenizerConfig(motion_dim=251).pos_slice == slice(4, 64)  # KIT: 20 joints x 3
    assert TokenizerConfig().unit == 4
    cfg = TOKENIZER_CONFIGS["small"]
    assert cfg.n_stages == 6 and cfg.down_t == 2


# --------------------------------------------------------------------------
# shapes and sizes


def check_output(out: TokenizerOutput, cfg: TokenizerConfig, B: int, T: int):
    assert out.recon.shape == (B, T, cfg.motion_dim)
    assert out.recon.dtype == torch.float32
    assert out.indices.shape == (B, cfg.n_stages, T // 4)
    assert out.indices.dtype == torch.long
    assert set(out.losses) == {"rvq", "entropy"}
    assert all(v.shape == () for v in out.losses.values())
    assert out.perplexity.shape == (cfg.n_stages,)
    assert isinstance(out.residual_dropped, bool)


@pytest.mark.parametrize("name", ["small", "tiny", "tiny-kit"])
@pytest.mark.parametrize("B", [1, 3])
def test_shapes(name, B):
    cfg = {"tiny": TINY, "tiny-kit": TINY.replace(motion_dim=251)}.get(name) or TOKENIZER_CONFIGS[name]
    tok = PoseGuidedTokenizer(cfg)
    m, c = batch(cfg, B=B, T=16)
    for mode in (True, False):
        tok.train(mode)
        for rd in (False, True):
            out = tok(m, c, residual_dropout=rd)
            check_output(out, cfg, B, 16)
            assert out.residual_dropped is rd
    pose, idx = tok.encode(m, c)
    assert pose.shape == (B, 4, 392) and pose.dtype == torch.bool
    assert idx.shape == (B, 6, 4) and ((idx >= 0) & (idx < cfg.n_codes)).all()
    assert tok.decode(pose, idx).shape == (B, 16, cfg.motion_dim)
    assert tok.pose_latents(pose).shape == (B, 4, cfg.code_dim)
    assert tok.residual_latents(idx).shape == (B, 4, cfg.code_dim)
    assert tok.codebook_values().shape == (6, cfg.n_codes, cfg.code_dim)


def test_paper_config_size_and_shapes():
    cfg = TOKENIZER_CONFIGS["paper"]
    tok = PoseGuidedTokenizer(cfg)
    total = n_params(tok)
    assert abs(total - 25.9e6) / 25.9e6 < 0.05, total
    # method-facts §1.3/1.4 breakdown: encoder 9.59 M, decoder 9.85 M, RVQ 6.31 M, pose codebook 0.20 M
    for part, expect in [(tok.encoder, 9.59e6), (tok.decoder, 9.85e6), (tok.rvq, 6.31e6)]:
        assert abs(n_params(part) - expect) / expect < 0.01
    assert tok.pose_codebook.shape == (392, 512)
    m, c = batch(cfg, B=2, T=16)
    tok.train()
    check_output(tok(m, c, residual_dropout=False), cfg, 2, 16)


def conv_layout(module: torch.nn.Module) -> list[tuple]:
    """(in, out, kernel, stride, dilation) per Conv1d and ("up", mode) per Upsample, in order."""
    out = []
    for m in module.modules():
        if isinstance(m, torch.nn.Conv1d):
            out.append((m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.dilation[0]))
        elif isinstance(m, torch.nn.Upsample):
            out.append(("up", m.mode, m.scale_factor))
    return out


def test_conv_layout_matches_reference():
    tok = PoseGuidedTokenizer(TOKENIZER_CONFIGS["paper"])
    W = 512
    # pre-activation blocks: dilated k3 then k1, dilations 9, 3, 1
    res = [x for d in (9, 3, 1) for x in ((W, W, 3, 1, d), (W, W, 1, 1, 1))]
    down = [(W, W, 4, 2, 1)] + res
    assert conv_layout(tok.encoder) == [(263, W, 3, 1, 1)] + down + down + [(W, W, 3, 1, 1)]
    up = res + [("up", "nearest", 2.0), (W, W, 3, 1, 1)]
    assert conv_layout(tok.decoder) == ([(W, W, 3, 1, 1)] + up + up
                                        + [(W, W, 3, 1, 1), (W, 263, 3, 1, 1)])
    # same padding everywhere except the stride-2 convs: time is exactly divided by 4
    x = torch.randn(1, 8, 263)
    assert tok.encoder(x).shape == (1, 2, 512)
    assert tok.decoder(torch.randn(1, 2, 512)).shape == (1, 8, 263)


def test_pose_codebook_init_quirk():
    w = PoseGuidedTokenizer(TINY).pose_codebook
    # uniform(-1/392, 1/code_dim): asymmetric around zero
    assert w.min() >= -1 / 392 and w.max() <= 1 / TINY.code_dim
    assert w.max() > 1 / 392


def test_rejects_bad_inputs():
    tok = PoseGuidedTokenizer(TINY)
    m, c = batch(TINY, T=16)
    with pytest.raises(ValueError, match="multiple of 4"):
        tok(m[:, :14], c[:, :14])
    with pytest.raises(ValueError, match="multiple of 4"):
        tok.encode(m[:, :10], c[:, :10])
    with pytest.raises(ValueError, match="same batch and frame count"):
        tok(m, c[:, :12])
    with pytest.raises(ValueError, match="263"):
        tok(m[..., :100], c)
    pose, idx = tok.encode(m, c)
    with pytest.raises(ValueError, match="-1"):
        tok.decode(pose, idx + TINY.n_codes)
    with pytest.raises(ValueError, match="n_stages"):
        tok.decode(pose, idx, n_stages=7)
    with pytest.raises(ValueError, match="needs indices"):
        tok.decode(pose, None, n_stages=2)
    with pytest.raises(ValueError, match="do not match"):
        tok.decode(pose, idx[:, :, :3])


def test_pose_latent_is_sum_of_active_rows_of_frame_4t():
    tok = PoseGuidedTokenizer(TINY)
    _, c = batch(TINY, B=1, T=16)
    pose, _ = tok.encode(*batch(TINY, B=1, T=16))
    assert torch.equal(pose, c[:, ::4])
    lat = tok.pose_latents(pose)
    w = tok.pose_codebook.detach().numpy()
    for t in range(4):
        rows = np.flatnonzero(c[0, 4 * t].numpy())
        assert len(rows) == 70
        np.testing.assert_allclose(lat[0, t].detach().numpy(), w[rows].sum(0), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------
# inference round trips


def test_encode_decode_round_trip_equals_forward():
    tok = warmed()
    m, c = batch(TINY, B=3, T=32, seed=5)
    out = tok(m, c, residual_dropout=False)
    pose, idx = tok.encode(m, c)
    assert torch.equal(idx, out.indices)
    # the forward's straight-through value equals the sum of value embeddings
    torch.testing.assert_close(tok.decode(pose, idx), out.recon, rtol=1e-5, atol=1e-5)
    # and the raw codebook rows are not what decoding adds
    raw = sum(s.codebook[idx[:, l]] for l, s in enumerate(tok.rvq.stages))
    assert not torch.allclose(tok.residual_latents(idx), raw, atol=1e-3)


def test_residual_latents_are_value_embedding_sums():
    tok = warmed()
    _, idx = tok.encode(*batch(TINY, B=2, T=16, seed=2))
    vals = tok.codebook_values().detach().numpy()
    got = tok.residual_latents(idx).detach().numpy()
    i = idx.numpy()
    expect = np.zeros_like(got)
    for b in range(2):
        for t in range(4):
            for l in range(6):
                expect[b, t] += vals[l, i[b, l, t]]
    np.testing.assert_allclose(got, expect, rtol=1e-5, atol=1e-6)
    # the values are the value projection of the codebook
    s0 = tok.rvq.stages[0]
    torch.testing.assert_close(tok.codebook_values()[0], s0.codebook @ s0.to_v.weight.T + s0.to_v.bias)


def test_decode_with_fewer_stages():
    tok = warmed()
    m, c = batch(TINY, B=2, T=16, seed=3)
    pose, idx = tok.encode(m, c)
    with torch.no_grad():
        pose_only = tok.decoder(tok.pose_latents(pose))
        outs = [tok.decode(pose, idx, n_stages=n) for n in range(7)]
    assert torch.equal(outs[0], pose_only)
    assert torch.equal(tok.decode(pose), pose_only)
    assert torch.equal(tok.decode(pose, idx), outs[6])
    assert not torch.allclose(outs[0], outs[6], atol=1e-4)
    for n in range(1, 7):
        assert not torch.allclose(outs[n], outs[n - 1], atol=1e-6), f"stage {n - 1} changed nothing"
    # given fewer stages than the tokenizer has: defaults to all of those
    assert torch.equal(tok.decode(pose, idx[:, :2]), outs[2])


# --------------------------------------------------------------------------
# one quantizer stage against hand arithmetic


def smooth_l1(d: np.ndarray) -> np.ndarray:
    a = np.abs(d)
    return np.where(a < 1.0, 0.5 * d * d, a - 0.5)


def hand_stage(x, C, Wv, bv, beta, temp, eps=1e-5):
    """Everything one stage computes, in plain numpy (identity query/key projections)."""
    D = x.shape[1]
    q = x / np.sqrt((x ** 2).mean(1, keepdims=True) + eps)
    k = C / np.sqrt((C ** 2).mean(1, keepdims=True) + eps)
    s = q @ k.T / np.sqrt(D)
    idx = s.argmax(1)
    V = C @ Wv.T + bv
    z = V[idx]
    # the three terms have equal values: z_soft == z_hard in value
    mse = ((z - x) ** 2).mean()
    stage_loss = mse + mse + beta * mse
    # entropy
    st = s / temp
    st = st - st.max(1, keepdims=True)
    p = np.exp(st) / np.exp(st).sum(1, keepdims=True)
    logp = st - np.log(np.exp(st).sum(1, keepdims=True))
    sample_entropy = -(p * logp).sum(1).mean()
    avg = p.mean(0)
    usage_entropy = -(avg * np.log(avg + 1e-5)).sum()
    return idx, z, stage_loss, sample_entropy - usage_entropy


def hand_quantizer(C, Wv, bv, beta, temp) -> AttentionQuantizer:
    K, D = C.shape
    qz = AttentionQuantizer(dim=D, codebook_size=K, beta=beta, entropy_temperature=temp, init="random")
    with torch.no_grad():
        qz.codebook.copy_(torch.tensor(C, dtype=torch.float32))
        for lin in (qz.to_q, qz.to_k):
            lin.weight.copy_(torch.eye(D))
            lin.bias.zero_()
        qz.to_v.weight.copy_(torch.tensor(Wv, dtype=torch.float32))
        qz.to_v.bias.copy_(torch.tensor(bv, dtype=torch.float32))
    return qz


@pytest.mark.parametrize("temp", [0.5, 0.01])
def test_stage_loss_and_entropy_by_hand(temp):
    C = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.5], [-1.0, -1.0, 0.0]])
    Wv = np.array([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
    bv = np.array([0.1, -0.2, 0.0])
    x = np.array([[0.9, 0.1, 0.0], [0.2, 1.1, 0.3], [-0.5, -0.7, 0.1], [0.3, 0.2, -0.4]])
    beta = 0.25
    idx, z, loss, ent = hand_stage(x, C, Wv, bv, beta, temp)
    assert sorted(set(idx.tolist())) == [0, 1, 2]   # every code used: a meaningful usage entropy

    qz = hand_quantizer(C, Wv, bv, beta, temp).train()
    xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    out = qz(xt)
    np.testing.assert_array_equal(out.indices.numpy(), idx)
    np.testing.assert_allclose(out.quantized.detach().numpy(), z, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out.loss.item(), loss, rtol=1e-5)
    np.testing.assert_allclose(out.entropy.item(), ent, rtol=1e-4, atol=1e-6)
    # perplexity of indices [0, 1, 2, ?] by hand
    counts = np.bincount(idx, minlength=3) / len(idx)
    nz = counts[counts > 0]
    np.testing.assert_allclose(out.perplexity.item(), np.exp(-(nz * np.log(nz)).sum()), rtol=1e-6)

    # value bias gradient: the soft term and the beta term reach V, the detached middle term does not
    out.loss.backward()
    N, D = x.shape
    expect = (1.0 + beta) * 2.0 / (N * D) * (z - x).sum(0)
    np.testing.assert_allclose(qz.to_v.bias.grad.numpy(), expect, rtol=1e-5, atol=1e-7)
    # the output passes an identity gradient to its input
    xt.grad = None
    qz.zero_grad()
    qz(xt).quantized.sum().backward()
    np.testing.assert_array_equal(xt.grad.numpy(), np.ones_like(x))
    assert qz.codebook.grad is None or not qz.codebook.grad.any()


def test_stage_gradients_match_the_one_hot_formula():
    """Every parameter's gradient equals that of the literal (onehot - sg(pi) + pi) @ V stage."""
    torch.manual_seed(3)
    qz = AttentionQuantizer(dim=6, codebook_size=5, beta=0.25, init="random").train()
    x = torch.randn(7, 6, requires_grad=True)
    w_out = torch.randn(7, 6)   # a downstream use of the output

    def literal(x):
        q = F.rms_norm(x @ qz.to_q.weight.T + qz.to_q.bias, (6,), qz.q_norm.weight, 1e-5)
        k = F.rms_norm(qz.codebook @ qz.to_k.weight.T + qz.to_k.bias, (6,), qz.k_norm.weight, 1e-5)
        s = q @ k.T / math.sqrt(6)
        pi = s.softmax(-1)
        onehot = F.one_hot(s.argmax(-1), 5).float()
        V = qz.codebook @ qz.to_v.weight.T + qz.to_v.bias
        z_q = (onehot - pi.detach() + pi) @ V
        z_q2 = onehot @ V
        loss = ((z_q - x) ** 2).mean() + ((z_q2.detach() - x) ** 2).mean() + 0.25 * ((z_q2 - x.detach()) ** 2).mean()
        out = x + (z_q - x).detach()
        return loss, out

    def all_grads(objective):
        qz.zero_grad()
        x.grad = None
        objective.backward()
        return [x.grad.clone()] + [p.grad.clone() if p.grad is not None else torch.zeros_like(p)
                                   for p in qz.parameters()]

    out = qz(x)
    ref_loss, ref_out = literal(x)
    torch.testing.assert_close(out.loss, ref_loss)
    torch.testing.assert_close(out.quantized, ref_out)
    got = all_grads(out.loss + (out.quantized * w_out).sum())
    ref_loss, ref_out = literal(x)
    expect = all_grads(ref_loss + (ref_out * w_out).sum())
    for g, e in zip(got, expect):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-6)


def test_entropy_loss_prefers_confident_and_spread_assignments():
    C = np.eye(3)
    Wv = np.eye(3)
    bv = np.zeros(3)
    qz = hand_quantizer(C, Wv, bv, 0.25, 0.01)
    spread = torch.tensor(np.eye(3) * 5, dtype=torch.float32)
    collapsed = torch.tensor([[5.0, 0, 0]] * 3)
    e_spread, e_collapsed = qz(spread).entropy.item(), qz(collapsed).entropy.item()
    # confident one-hot choices: sample entropy ~0; usage entropy log 3 vs 0
    assert e_spread == pytest.approx(-math.log(3), abs=1e-3)
    assert e_collapsed == pytest.approx(0.0, abs=1e-3)


# --------------------------------------------------------------------------
# the total loss against hand arithmetic


@pytest.mark.parametrize("dropped", [False, True])
def test_total_loss_by_hand(dropped):
    tok = PoseGuidedTokenizer(TINY)
    rng = np.random.default_rng(1)
    recon = rng.normal(size=(2, 8, 263)).astype(np.float32)
    target = (recon + rng.normal(scale=1.5, size=recon.shape)).astype(np.float32)
    ppl = np.array([3.0, 2.5, 1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    out = TokenizerOutput(
        recon=torch.from_numpy(recon), indices=torch.zeros(2, 6, 2, dtype=torch.long),
        losses={"rvq": torch.tensor(0.7), "entropy": torch.tensor(-1.3)},
        perplexity=torch.from_numpy(ppl), residual_dropped=dropped)
    total, logs = tok.loss(out, torch.from_numpy(target))

    d = recon.astype(np.float64) - target
    rec = smooth_l1(d).mean()
    pos = smooth_l1(d[..., 4:67]).mean()
    expect = rec + 0.5 * pos + (0.0 if dropped else 0.02 * 0.7 + 0.01 * -1.3)
    assert total.item() == pytest.approx(expect, rel=1e-5)
    assert logs["rec"] == pytest.approx(rec, rel=1e-5)
    assert logs["pos"] == pytest.approx(pos, rel=1e-5)
    assert logs["total"] == pytest.approx(expect, rel=1e-5)
    assert logs["rvq"] == pytest.approx(0.7) and logs["entropy"] == pytest.approx(-1.3)
    assert [logs[f"perplexity_{i}"] for i in range(6)] == pytest.approx(ppl.tolist())


def test_rvq_losses_average_active_stages():
    rvq = ResidualAttentionVQ(dim=8, n_stages=4, codebook_size=5, init="random").train()
    x = torch.randn(2, 3, 8)
    out = rvq(x, n_active=2)
    r0 = x
    s0 = rvq.stages[0](r0)
    s1 = rvq.stages[1](r0 - s0.quantized)
    torch.testing.assert_close(out.loss, (s0.loss + s1.loss) / 2)
    torch.testing.assert_close(out.entropy, (s0.entropy + s1.entropy) / 2)
    torch.testing.assert_close(out.quantized, s0.quantized + s1.quantized)
    assert (out.indices[:, 2:] == -1).all() and (out.indices[:, :2] >= 0).all()
    assert out.perplexity[2:].eq(0).all() and out.perplexity[:2].ge(1).all()


# --------------------------------------------------------------------------
# gradient routing


def grads(module: torch.nn.Module) -> dict[str, bool]:
    """Which parameters got a non-zero gradient."""
    return {n: p.grad is not None and bool(p.grad.abs().sum() > 0) for n, p in module.named_parameters()}


def test_gradient_routing():
    tok = warmed(quantizer_dropout=0.0).train()
    m, c = batch(TINY, B=2, T=16, seed=4)

    # reconstruction: reaches the encoder only through the straight-through output, and the pose codebook
    out = tok(m, c, residual_dropout=False)
    F.smooth_l1_loss(out.recon, m).backward()
    assert all(grads(tok.encoder).values())
    assert all(grads(tok.decoder).values())
    assert tok.pose_codebook.grad.abs().sum() > 0
    assert not any(grads(tok.rvq).values()), "codebook and projections must learn from their losses only"

    # quantizer losses: reach the codebooks and the encoder, never the pose codebook (r = z - sg(p))
    tok.zero_grad(set_to_none=True)
    out = tok(m, c, residual_dropout=False)
    (out.losses["rvq"] + out.losses["entropy"]).backward()
    assert tok.pose_codebook.grad is None or not tok.pose_codebook.grad.any()
    assert any(grads(tok.encoder).values())
    g = grads(tok.rvq)
    for l in range(6):
        for name in ("codebook", "to_q.weight", "to_k.weight", "to_v.weight", "q_norm.weight", "k_norm.weight"):
            assert g[f"stages.{l}.{name}"], f"stages.{l}.{name}"
    assert not any(grads(tok.decoder).values())


# --------------------------------------------------------------------------
# residual dropout and quantizer dropout


def test_residual_dropout_decodes_pose_codes_only():
    tok = warmed()
    m, c = batch(TINY, B=2, T=16, seed=6)
    m2 = torch.randn_like(m)
    for mode in (True, False):
        tok.train(mode)
        a = tok(m, c, residual_dropout=True)
        b = tok(m2, c, residual_dropout=True)
        assert a.residual_dropped and b.residual_dropped
        assert torch.equal(a.recon, b.recon)
        assert (a.indices == -1).all()
        assert a.losses["rvq"].item() == 0.0 and a.losses["entropy"].item() == 0.0
        assert not a.perplexity.any()
        # the same as decoding the pose codes alone
        torch.testing.assert_close(a.recon, tok.decode(c[:, ::4]))
        # with residuals the motion matters
        assert not torch.equal(tok(m, c, residual_dropout=False).recon,
                               tok(m2, c, residual_dropout=False).recon)
    total, logs = tok.loss(a, m)
    assert total.item() == pytest.approx(logs["rec"] + 0.5 * logs["pos"], rel=1e-6)


def test_residual_dropout_frequency():
    cfg = TINY.replace(width=8, code_dim=8, n_codes=4, residual_dropout=0.5, quantizer_dropout=0.0)
    tok = PoseGuidedTokenizer(cfg)
    m, c = batch(cfg, B=1, T=4)
    torch.manual_seed(1234)
    tok.train()
    with torch.no_grad():
        hits = sum(tok(m, c).residual_dropped for _ in range(400))
    # binomial(400, 0.5): sd 10
    assert 160 <= hits <= 240, hits
    tok.eval()
    with torch.no_grad():
        assert not any(tok(m, c).residual_dropped for _ in range(100))
    tok = PoseGuidedTokenizer(cfg, residual_dropout=0.0).train()
    with torch.no_grad():
        assert not any(tok(m, c).residual_dropped for _ in range(100))


def test_quantizer_dropout_marks_and_decoding_ignores_dropped_stages():
    tok = warmed(quantizer_dropout=1.0).train()
    m, c = batch(TINY, B=2, T=16, seed=7)
    seen = set()
    with torch.no_grad():
        for _ in range(60):
            out = tok(m, c, residual_dropout=False)
            active = (out.indices >= 0).all(dim=(0, 2))
            k = int(active.sum())
            assert active[:k].all() and (out.indices[:, k:] == -1).all(), "kept stages must be a prefix"
            assert out.perplexity[k:].eq(0).all() and out.perplexity[:k].gt(0).all()
            seen.add(k)
            pose = c[:, ::4]
            dec = tok.decode(pose, out.indices)
            torch.testing.assert_close(dec, tok.decode(pose, out.indices, n_stages=k))
            torch.testing.assert_close(dec, out.recon, rtol=1e-5, atol=1e-5)
    assert seen == {1, 2, 3, 4, 5, 6}
    # never in eval mode
    tok.eval()
    with torch.no_grad():
        assert all((tok(m, c).indices >= 0).all() for _ in range(20))


# --------------------------------------------------------------------------
# codebook initialisation


def test_codebook_initialised_from_first_training_batch():
    tok = PoseGuidedTokenizer(TINY)
    m, c = batch(TINY, B=2, T=16)          # 8 residual vectors for 8 codes
    assert not tok.rvq.initialized
    tok.eval()
    tok(m, c)
    assert not tok.rvq.initialized, "eval forwards must not initialise"
    tok.train()
    with torch.no_grad():
        residual = tok.encoder(m) - tok.pose_latents(c[:, ::4])
    tok(m, c, residual_dropout=False)
    assert tok.rvq.initialized
    rows = tok.rvq.stages[0].codebook.detach()
    dist = torch.cdist(rows, residual.reshape(-1, TINY.code_dim))
    assert (dist.min(dim=1).values < 1e-5).all()
    # once set, a later batch does not re-seed
    before = [s.codebook.detach().clone() for s in tok.rvq.stages]
    tok(*batch(TINY, B=2, T=16, seed=1), residual_dropout=False)
    assert all(torch.equal(a, s.codebook) for a, s in zip(before, tok.rvq.stages))


def test_codebook_init_tiles_small_batches_with_noise():
    tok = PoseGuidedTokenizer(TINY).train()
    m, c = batch(TINY, B=1, T=8)           # 2 vectors for 8 codes
    with torch.no_grad():
        residual = (tok.encoder(m) - tok.pose_latents(c[:, ::4])).reshape(-1, TINY.code_dim)
    tok(m, c, residual_dropout=False)
    rows = tok.rvq.stages[0].codebook.detach()
    dist = torch.cdist(rows, residual)
    noise = 0.01 / math.sqrt(TINY.code_dim)
    assert (dist.min(dim=1).values < 8 * noise * math.sqrt(TINY.code_dim)).all()
    assert torch.unique(rows, dim=0).shape[0] == 8, "tiled copies must be jittered apart"


def test_residually_dropped_first_batch_leaves_codebook_uninitialised():
    tok = PoseGuidedTokenizer(TINY).train()
    tok(*batch(TINY), residual_dropout=True)
    assert not tok.rvq.initialized


# --------------------------------------------------------------------------
# persistence and determinism


def test_safetensors_round_trip(tmp_path):
    safetensors = pytest.importorskip("safetensors.torch")
    tok = warmed()
    opt = torch.optim.AdamW(tok.parameters(), lr=1e-3)
    tok.train()
    for seed in range(3):
        m, c = batch(TINY, seed=seed)
        loss, _ = tok.loss(tok(m, c, residual_dropout=False), m)
        opt.zero_grad()
        loss.backward()
        opt.step()
    tok.eval()
    path = tmp_path / "tok.safetensors"
    safetensors.save_file(tok.state_dict(), str(path))

    fresh = PoseGuidedTokenizer(TokenizerConfig.from_dict(TINY.to_dict()))
    assert not fresh.rvq.initialized
    fresh.load_state_dict(safetensors.load_file(str(path)))
    fresh.eval()
    assert fresh.rvq.initialized

    m, c = batch(TINY, B=3, T=24, seed=11)
    assert torch.equal(tok(m, c).recon, fresh(m, c).recon)
    pose, idx = tok.encode(m, c)
    assert torch.equal(fresh.encode(m, c)[1], idx)
    assert torch.equal(tok.decode(pose, idx, n_stages=3), fresh.decode(pose, idx, n_stages=3))
    # loaded codebooks survive the next training forward
    fresh.train()
    before = fresh.rvq.stages[0].codebook.detach().clone()
    fresh(m, c, residual_dropout=False)
    assert torch.equal(before, fresh.rvq.stages[0].codebook)


def test_deterministic_given_rng_state():
    def run():
        torch.manual_seed(42)
        tok = PoseGuidedTokenizer(TINY).train()
        m, c = batch(TINY, B=2, T=16)
        outs = [tok(m, c) for _ in range(5)]
        return [(o.recon.detach(), o.indices, o.residual_dropped) for o in outs]
    for (ra, ia, da), (rb, ib, db) in zip(run(), run()):
        assert torch.equal(ra, rb) and torch.equal(ia, ib) and da == db


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    tok = warmed()
    m, c = batch(TINY, B=2, T=16, seed=8)
    cpu = tok(m, c)
    gpu = tok.cuda()
    out = gpu(m.cuda(), c.cuda())
    torch.testing.assert_close(out.recon.cpu(), cpu.recon, rtol=1e-4, atol=1e-4)
    pose, idx = gpu.encode(m.cuda(), c.cuda())
    torch.testing.assert_close(gpu.decode(pose, idx).cpu(), cpu.recon, rtol=1e-4, atol=1e-4)
    gpu.train()
    total, _ = gpu.loss(gpu(m.cuda(), c.cuda()), m.cuda())
    total.backward()


# --------------------------------------------------------------------------
# learning


def synthetic_dataset(n: int = 8, T: int = 32, seed: int = 0):
    """Smooth low-rank motions whose pose codes are binned from the same latent state."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[None, :, None] / T
    freq = rng.uniform(0.5, 2.0, size=(n, 1, 4))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1, 4))
    state = np.sin(2 * np.pi * freq * t + phase)                         # (n, T, 4)
    motion = state @ rng.normal(size=(4, 263)) + 0.2 * np.cos(4 * np.pi * t) * rng.normal(size=(n, 1, 263))
    proj = state @ rng.normal(size=(4, P.N_GROUPS))                       # (n, T, 70)
    sizes = np.diff(P.GROUP_START)
    u = 1 / (1 + np.exp(-proj))                                           # (0, 1)
    cats = np.minimum((u * sizes).astype(np.int64), sizes - 1)
    codes = np.zeros((n, T, P.N_CODES), dtype=bool)
    np.put_along_axis(codes, P.GROUP_START[:-1] + cats, True, axis=-1)
    return torch.tensor(motion, dtype=torch.float32), torch.from_numpy(codes)


def test_training_reduces_reconstruction_loss():
    torch.manual_seed(0)
    motion, codes = synthetic_dataset()
    cfg = TokenizerConfig(width=48, code_dim=32, depth=1, n_codes=16, residual_dropout=0.2)
    tok = PoseGuidedTokenizer(cfg)
    opt = torch.optim.AdamW(tok.parameters(), lr=2e-3, betas=(0.9, 0.99))

    def evaluate():
        tok.eval()
        with torch.no_grad():
            full = F.smooth_l1_loss(tok(motion, codes).recon, motion).item()
            pose_only = F.smooth_l1_loss(tok.decode(codes[:, ::4]), motion).item()
        tok.train()
        return full, pose_only

    tok.train()
    tok(motion, codes, residual_dropout=False)      # seed the codebooks before measuring
    full0, pose0 = evaluate()
    for _ in range(300):
        total, logs = tok.loss(tok(motion, codes), motion)
        opt.zero_grad()
        total.backward()
        opt.step()
    full1, pose1 = evaluate()
    assert full1 < 0.25 * full0, (full0, full1)
    # the pose codes alone still decode to something close: residual dropout trains that path
    assert pose1 < 0.25 * pose0, (pose0, pose1)
