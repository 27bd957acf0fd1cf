"""Base and Refine Transformers: sampling rules, the cache, masking and the stage loop."""

import numpy as np
import pytest
import torch
from model_factory import TINY_BASE, TINY_REFINE

from core import posecodes as pc
from core.model.base_transformer import (
    BaseTransformer,
    bce_loss,
    corrupt,
    group_logits,
    khot,
    pick_codes,
    project_valid,
    token_sequence,
)
from core.model.refine_transformer import RefineTransformer
from core.train.refine_stage import sample_stages


def one_per_group(tokens: torch.Tensor) -> bool:
    codes = tokens[..., :pc.N_CODES]
    per_group = torch.stack([codes[..., g.first_code:g.first_code + g.n_codes].sum(-1) for g in pc.GROUPS], -1)
    return bool((per_group == 1).all())


def test_picked_codes_are_one_per_group_and_respect_temperature_and_top_k():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 394, generator=g) * 3
    sampled = pick_codes(logits, 1.0, generator=g)
    assert sampled.shape == (16, 70)
    tok = khot(sampled)
    assert one_per_group(tok) and tok[:, pc.END:].sum() == 0 and tok.sum() == 16 * 70
    greedy = group_logits(logits).argmax(-1)
    assert torch.equal(pick_codes(logits, 0.0), greedy)
    assert torch.equal(pick_codes(logits, 5.0, top_k=1, generator=g), greedy)   # top-1 is the argmax
    # high temperature spreads choices: some differ from the argmax
    assert (pick_codes(logits, 50.0, generator=g) != greedy).any()
    # a dominant code is always taken
    big = logits.clone()
    big[:, 5] = 1e4
    assert (pick_codes(big, 1.0, generator=g)[:, pc.CODES[5].group] == pc.CODES[5].category).all()


def test_projection_and_corruption_give_valid_tokens():
    seq, n = token_sequence(pc.parse(np.random.default_rng(0).normal(size=(12, 22, 3)))[:8], 12)
    tok = torch.from_numpy(seq)
    assert n == 8 and tok[8, pc.END] == 1 and tok[9:, pc.PAD].all() and tok[:8, pc.END:].sum() == 0
    assert torch.equal(project_valid(tok), tok)
    g = torch.Generator().manual_seed(1)
    assert torch.equal(corrupt(tok, 1.0, g), tok)
    noisy = corrupt(tok[:8], 0.0, g)
    assert one_per_group(noisy) and not torch.equal(noisy, tok[:8])


def _model(**kw):
    torch.manual_seed(0)
    return BaseTransformer(TINY_BASE.replace(**kw)).eval()


def test_cached_sampling_equals_full_recomputation_and_is_seeded():
    model = _model()
    cond = torch.randn(3, 12, 384)
    a = model.sample(cond, generator=torch.Generator().manual_seed(7))
    b = model.sample(cond, generator=torch.Generator().manual_seed(7), use_cache=False)
    c = model.sample(cond, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.lengths, b.lengths)
    assert not torch.equal(a.tokens, c.tokens)
    assert one_per_group(a.tokens[0, :a.lengths[0]])


def test_base_is_causal_and_teacher_forcing_matches_the_cache():
    model = _model()
    cond = torch.randn(1, 12, 384)
    toks = khot(pick_codes(torch.randn(6, 394), 1.0))[None]
    full = model(cond, toks)                              # (1, 7, 394)
    changed = toks.clone()
    changed[0, 4] = khot(pick_codes(torch.randn(1, 394), 1.0))[0]
    after = model(cond, changed)
    assert torch.allclose(full[:, :5], after[:, :5], atol=1e-6)     # rows 0..4 see steps < 4 only
    assert not torch.allclose(full[:, 5:], after[:, 5:])


def _force_end(model, steps_until=None):
    """Make the END logit large everywhere by a constant final state."""
    with torch.no_grad():
        model.ln_f.weight.zero_()
        model.ln_f.bias.fill_(1.0)
        model.head.weight.zero_()
        model.head.weight[pc.END] = 1.0


def test_sampling_stops_at_end_and_honours_lengths_and_min_steps():
    model = _model()
    _force_end(model)
    cond = torch.randn(2, 12, 384)
    out = model.sample(cond, min_steps=3, generator=torch.Generator().manual_seed(0))
    assert out.lengths.tolist() == [3, 3] and out.tokens.shape[1] == 3
    fixed = model.sample(cond, lengths=torch.tensor([5, 9]), generator=torch.Generator().manual_seed(0))
    assert fixed.lengths.tolist() == [5, 9] and fixed.tokens.shape[1] == 9
    assert fixed.tokens[0, 5:].sum() == 0 and one_per_group(fixed.tokens[1])
    with pytest.raises(ValueError, match="lengths"):
        model.sample(cond, lengths=torch.tensor([0, 60]))
    # an END that never fires runs to the longest motion
    never = _model()
    with torch.no_grad():
        never.head.weight[pc.END] = 0.0
        never.ln_f.bias.zero_()
    assert never.sample(cond[:1], generator=torch.Generator().manual_seed(0)).lengths.item() == TINY_BASE.max_tokens - 1


def test_bce_loss_ignores_padding_after_end():
    logits = torch.randn(2, 10, 394)
    target = torch.zeros(2, 10, 394)
    lengths = torch.tensor([3, 9])
    other = logits.clone()
    other[0, 4:] = 100.0                                  # beyond END of sample 0
    assert torch.allclose(bce_loss(logits, target, lengths), bce_loss(other, target, lengths))
    other[0, 3] = 100.0                                   # the END row itself counts
    assert not torch.allclose(bce_loss(logits, target, lengths), bce_loss(other, target, lengths))


def test_refine_runs_each_stage_once_in_order_and_keeps_fixed_steps():
    torch.manual_seed(0)
    model = RefineTransformer(TINY_REFINE).eval()
    calls, inputs = [], []
    real = model.logits

    def spy(cond, x, stage, mask=None):
        calls.append(int(stage[0]))
        inputs.append(x.clone())
        return real(cond, x, stage, mask)

    model.logits = spy
    cond = torch.randn(2, 12, 384)
    pose = khot(pick_codes(torch.randn(2, 7, 394), 1.0))
    idx = model.sample(cond, pose, torch.tensor([7, 5]), temperature=0.0)
    assert calls == list(range(TINY_REFINE.n_stages))
    assert idx.shape == (2, 6, 7) and idx.max() < TINY_REFINE.n_codes and (idx[1, :, 5:] == 0).all()
    # stage q sees the pose embedding plus the embeddings of the codes chosen in stages < q
    assert torch.allclose(inputs[0], model.pose_embedding(pose))
    for q in range(1, 6):
        step = inputs[q] - inputs[q - 1]
        assert torch.allclose(step[0], model.code_embedding(q - 1, idx[:, q - 1])[0], atol=1e-6)
    known = torch.randint(0, 16, (2, 6, 7))
    keep = torch.zeros(2, 7, dtype=torch.bool)
    keep[:, :3] = True
    kept = model.sample(cond, pose, temperature=1.0, keep=keep, known=known,
                        generator=torch.Generator().manual_seed(0))
    assert torch.equal(kept[:, :, :3], known[:, :, :3])


def test_refine_sample_steps_matches_the_full_passes_and_touches_only_its_steps():
    torch.manual_seed(0)
    model = RefineTransformer(TINY_REFINE).eval()
    cond = torch.randn(1, 12, 384)
    pose = khot(pick_codes(torch.randn(1, 9, 394), 1.0))
    idx = model.sample(cond, pose, temperature=0.0)
    context = model.context(cond, pose, idx)
    heads = TINY_REFINE.heads
    shape = (TINY_REFINE.layers, TINY_REFINE.n_stages, heads, 13 + 9, TINY_REFINE.dim // heads)
    assert context.k.shape == shape and context.v.shape == shape
    # on the unchanged motion, re-predicting any steps against its keys and values gives the
    # codes the full stage-by-stage passes chose
    for steps in ([0], [3, 4, 5], [8], list(range(9))):
        assert torch.equal(model.sample_steps(cond, pose, idx, torch.tensor(steps), context), idx)
    # after changing the pose codes of two steps only those steps' codes can change
    edited = khot(pick_codes(torch.randn(1, 9, 394), 1.0))
    pose2 = pose.clone()
    pose2[:, 2:4] = edited[:, 2:4]
    out = model.sample_steps(cond, pose2, idx, torch.tensor([2, 3]), context)
    assert torch.equal(out[..., :2], idx[..., :2]) and torch.equal(out[..., 4:], idx[..., 4:])
    assert not torch.equal(out[..., 2:4], idx[..., 2:4])
    # all steps re-predicted with a context of the new motion is the full passes again
    full = model.sample(cond, pose2, temperature=0.0)
    assert torch.equal(model.sample_steps(cond, pose2, full, torch.arange(9), model.context(cond, pose2, full)), full)


def test_refine_is_bidirectional_and_masks_padding():
    torch.manual_seed(0)
    model = RefineTransformer(TINY_REFINE).eval()
    cond = torch.randn(1, 12, 384)
    x = torch.randn(1, 8, 32)
    stage = torch.tensor([2])
    mask = torch.tensor([[True] * 6 + [False] * 2])
    base = model.logits(cond, x, stage, mask)
    later = x.clone()
    later[0, 5] += torch.randn(32) * 3
    assert (base[0, :5] - model.logits(cond, later, stage, mask)[0, :5]).abs().max() > 1e-4   # sees the future
    pad = x.clone()
    pad[0, 6:] += torch.randn(2, 32) * 3
    assert torch.allclose(base[0, :6], model.logits(cond, pad, stage, mask)[0, :6], atol=1e-5)


def test_refine_loss_targets_the_sampled_stage_and_stage_sampling_favours_low_stages():
    torch.manual_seed(0)
    model = RefineTransformer(TINY_REFINE)
    cond = torch.randn(4, 12, 384)
    pose = khot(pick_codes(torch.randn(4, 6, 394), 1.0))
    idx = torch.randint(0, 16, (4, 6, 6))
    loss, logs = model(cond, pose, idx, torch.tensor([6, 6, 4, 2]), torch.tensor([0, 1, 5, 3]))
    assert loss.requires_grad and 0 <= logs["acc"] <= 1
    loss.backward()
    assert model.code_table.grad.abs().sum() > 0
    q = sample_stages(20000, 6, torch.Generator().manual_seed(0))
    counts = torch.bincount(q, minlength=6)
    assert q.min() == 0 and q.max() == 5 and counts[0] > counts[5] and counts[:3].sum() > counts[3:].sum()


def _converted_layer(convert, n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(converted, float32) outputs of one random linear layer on 5 random rows."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(n_in, n_out)
    x = torch.randn(5, n_in)
    return convert(lin)(x).float(), lin(x)


def test_int8_and_bfloat16_inference_stay_close_to_float32():
    from core.model.precision import Int8Linear, int8_available, set_precision

    if not int8_available():
        pytest.skip("this torch has no int8 weight kernel")
    q, ref = _converted_layer(Int8Linear, 64, 48)
    assert ((q - ref).abs().max() / ref.abs().max()) < 0.03
    cond = torch.randn(2, 12, 384)
    greedy = {}
    for precision in ("float32", "bfloat16", "int8"):
        model = set_precision(_model(), precision)
        out = model.sample(cond, lengths=torch.tensor([8, 8]), temperature=0.0)
        assert one_per_group(out.tokens)
        greedy[precision] = out.tokens
    for precision in ("bfloat16", "int8"):       # most greedy choices survive the rounding
        a, b = (group_logits(greedy[k]).argmax(-1) for k in (precision, "float32"))
        assert (a == b).float().mean() > 0.8, precision
    with pytest.raises(ValueError, match="precision"):
        set_precision(_model(), "int2")


def test_packed_bfloat16_weights_give_the_plain_bfloat16_results(monkeypatch):
    import core.model.precision as q

    if not (q.fast_bfloat16() and torch.backends.mkldnn.is_available()):
        pytest.skip("no native bf16 or no oneDNN on this CPU")
    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 48).to(torch.bfloat16)
    packed = q.PackedLinear(lin)
    for rows in (0, 1, 2, 7):       # one row takes the padded path, none returns at once
        x = torch.randn(rows, 64).to(torch.bfloat16)
        got, want = packed(x), torch.nn.functional.linear(x, lin.weight, lin.bias)
        assert got.shape == (rows, 48) and got.dtype == torch.bfloat16
        assert torch.allclose(got.float(), want.float(), rtol=1e-2, atol=1e-2)
    assert packed(torch.randn(2, 3, 64)).shape == (2, 3, 48)
    assert q.packed_bfloat16_available()
    # the whole Refine, packed or not, picks the same stage codes
    cond, pose = torch.randn(1, 12, 384), torch.rand(1, 8, pc.N_CODES) < 0.2
    refine = RefineTransformer(TINY_REFINE).eval()
    plain = RefineTransformer(TINY_REFINE).eval()
    plain.load_state_dict(refine.state_dict())
    q.set_precision(refine, "bfloat16")
    monkeypatch.setattr(q, "_PACKED_OK", False)
    q.set_precision(plain, "bfloat16")
    assert any(isinstance(m, q.PackedLinear) for m in refine.modules())
    assert not any(isinstance(m, q.PackedLinear) for m in plain.modules())
    a, b = (m.sample(cond, pose, temperature=0.0) for m in (refine, plain))
    assert (a == b).float().mean() > 0.95


def test_int4_weights_stay_close_and_large_bases_get_them():
    from core.model.precision import Int4Linear, auto_precision, int4_available, set_precision

    if not int4_available():
        pytest.skip("this torch has no int4 weight kernel")
    # 16 levels per group of 32: a few per cent of the output's range, and unbiased
    q, ref = _converted_layer(Int4Linear, 128, 64)
    assert ((q - ref).abs().max() / ref.abs().max()) < 0.08
    assert abs(float((q - ref).mean())) < 0.02
    model = set_precision(_model(), "int4")
    assert any(isinstance(m, Int4Linear) for m in model.modules())
    out = model.sample(torch.randn(2, 12, 384), lengths=torch.tensor([8, 8]), temperature=0.0)
    assert one_per_group(out.tokens)
    # memory-bound paper-size Bases get 4-bit weights on a CPU, small ones 8-bit
    cpu = torch.device("cpu")
    assert auto_precision(cpu, base_params=228_000_000)[0] == "int4"
    assert auto_precision(cpu, base_params=3_500_000)[0] == "int8"
