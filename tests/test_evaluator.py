"""Tests for core.eval.evaluator (our MiniLM-based evaluator) and core.eval.t2m_original."""

import json
import os
import pickle

import numpy as np
import pytest
import torch

from core.eval import metrics as M
from core.eval.evaluator import CONFIGS, EvaluatorConfig, TextMotionEvaluator, contrastive_loss
from core.eval.t2m_original import (
    POS_CLASSES,
    T2MEvaluator,
    T2MEvaluatorError,
    T2MFilesMissing,
    UnsafePickleError,
    WordVectorizer,
    load_glove,
    load_t2m_evaluator,
    safe_unpickle,
)
from core.text.encoders import TextFeatures

TINY = dict(movement_hidden=32, movement_latent=32, motion_hidden=32, text_hidden=32,
            embed_dim=16, dropout=0.0)


def _text_features(b, n=6, d=384, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(2, n + 1, (b,), generator=g)
    mask = torch.arange(n)[None] < lengths[:, None]
    tokens = torch.randn(b, n, d, generator=g) * mask[..., None]
    return TextFeatures(torch.nn.functional.normalize(torch.randn(b, d, generator=g), dim=1), tokens, mask)


# --------------------------------------------------------------------------
# our evaluator


def test_shapes_and_configs():
    m = TextMotionEvaluator(EvaluatorConfig(**TINY)).eval()
    t, mo = m(_text_features(3), torch.randn(3, 50, 263), torch.tensor([50, 41, 17]))
    assert t.shape == (3, 16) and mo.shape == (3, 16)
    kit = TextMotionEvaluator(EvaluatorConfig(dim_pose=251, **TINY)).eval()
    assert kit.embed_motion(torch.randn(2, 40, 251), [40, 12]).shape == (2, 16)
    with pytest.raises(ValueError):
        m.embed_motion(torch.randn(2, 40, 251), [40, 40])
    assert set(CONFIGS) >= {"paper", "small"}
    paper = EvaluatorConfig.named("paper")
    assert (paper.movement_hidden, paper.motion_hidden, paper.text_hidden, paper.embed_dim) == (512, 1024, 512, 512)
    small = EvaluatorConfig.named("small")
    assert EvaluatorConfig.from_dict(small.to_dict()) == small
    with pytest.raises(ValueError):
        EvaluatorConfig.from_dict({**small.to_dict(), "bogus": 1})


def test_padding_beyond_length_does_not_matter():
    torch.manual_seed(0)
    m = TextMotionEvaluator(EvaluatorConfig(**TINY)).eval()
    x = torch.randn(1, 45, 263)
    with torch.no_grad():
        ref = m.embed_motion(x, [45])
        for extra in (3, 8, 60):
            padded = torch.cat([x, 100 * torch.randn(1, extra, 263)], dim=1)
            assert torch.allclose(m.embed_motion(padded, [45]), ref, atol=1e-5)
        # inside a batch of other lengths (packed, unsorted)
        batch = torch.randn(4, 80, 263)
        batch[2, :45] = x[0]
        lens = torch.tensor([80, 23, 45, 60])
        out = m.embed_motion(batch, lens)
        assert torch.allclose(out[2], ref[0], atol=1e-5)
        # text side: tokens beyond the mask do not matter either
        tf = _text_features(3)
        noisy = TextFeatures(tf.sentence, tf.tokens + 50 * (~tf.mask)[..., None], tf.mask)
        assert torch.allclose(m.embed_text(tf), m.embed_text(noisy), atol=1e-5)
        # but the frames inside the length do
        y = x.clone()
        y[0, 40] += 1.0
        assert not torch.allclose(m.embed_motion(y, [45]), ref, atol=1e-5)


def test_contrastive_loss_by_hand():
    t = torch.tensor([[0.0], [3.0]])
    mo = torch.tensor([[1.0], [3.0]])
    # positives: (1² + 0²)/2 = 0.5; negatives (B = 2, offset 1): d = 3, 2 -> ((10−3)² + (10−2)²)/2 = 56.5
    assert float(contrastive_loss(t, mo)) == pytest.approx(57.0)
    # margin 2.5: negatives (0 + 0.5²)/2
    assert float(contrastive_loss(t, mo, margin=2.5)) == pytest.approx(0.5 + 0.125)
    # B = 3, offset 2: row i meets motion (i + 2) % 3
    t3, m3 = torch.tensor([[0.0], [1.0], [5.0]]), torch.tensor([[0.0], [2.0], [5.0]])
    # positives (0 + 1 + 0)/3; negatives d = 5, 1, 3 -> (25 + 81 + 49)/3
    assert float(contrastive_loss(t3, m3, offset=2)) == pytest.approx((1 + 155) / 3)
    with pytest.raises(ValueError):
        contrastive_loss(t3, m3, offset=0)


def test_contrastive_loss_offset_never_zero_and_gradient_finite():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(4, 3, requires_grad=True)      # every distance is 0
    loss = contrastive_loss(x, x.detach().clone(), generator=g)
    loss.backward()
    assert torch.isfinite(x.grad).all()
    # if offset 0 were drawn the negatives would be the positives (loss 0 + 0 ≠ margin²)
    e = torch.arange(5.0)[:, None] * 100
    for _ in range(20):
        assert float(contrastive_loss(e, e, generator=g)) == 0.0


def _toy_set(n=16, frames=64, seed=0):
    """Two motion types with one caption each; text features consistent per type."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(frames, dtype=torch.float32)
    x = 0.1 * torch.randn(n, frames, 263, generator=g)
    kind = torch.arange(n) % 2
    x[kind == 0, :, :40] += torch.sin(t / 3)[None, :, None]
    x[kind == 1, :, 40:80] += torch.sign(torch.cos(t / 5))[None, :, None]
    lengths = torch.randint(40, frames + 1, (n,), generator=g)
    caps = _text_features(2, seed=seed + 1)
    tf = caps[kind.tolist()]
    return x, lengths, tf, kind


@pytest.fixture
def one_thread():
    # a tiny model gains nothing from threads, and on a busy 2-core machine
    # intra-op spinning made this test 50x slower
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.slow
def test_short_training_beats_chance(one_thread):
    torch.manual_seed(0)
    x, lengths, tf, kind = _toy_set()
    m = TextMotionEvaluator(EvaluatorConfig(**{**TINY, "dropout": 0.2}))
    opt = torch.optim.Adam(m.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)

    def r1():
        m.eval()
        with torch.no_grad():
            te, me = m(tf, x, lengths)
        m.train()
        # batches of 2 alternate the two types: chance top-1 = 0.5
        return M.r_precision(te.numpy(), me.numpy(), top_k=1, batch_size=2)[0]

    before = r1()
    for _ in range(80):
        te, me = m(tf, x, lengths)
        loss = contrastive_loss(te, me, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = r1()
    assert after > 0.9 and after > before - 1e-9


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(1)
    m = TextMotionEvaluator(EvaluatorConfig(**TINY)).eval()
    m.save(tmp_path / "ev")
    files = sorted(p.name for p in (tmp_path / "ev").iterdir())
    assert files == ["config.json", "model.safetensors"]          # no temp files left
    assert json.loads((tmp_path / "ev" / "config.json").read_text())["config"]["motion_hidden"] == 32
    m2 = TextMotionEvaluator.load(tmp_path / "ev")
    assert not m2.training
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k])
    x, lens, tf = torch.randn(2, 48, 263), torch.tensor([48, 30]), _text_features(2)
    with torch.no_grad():
        a, b = m(tf, x, lens), m2(tf, x, lens)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(FileNotFoundError):
        TextMotionEvaluator.load(tmp_path / "missing")


@pytest.mark.slow
def test_encode_texts_with_minilm_matches_precomputed():
    m = TextMotionEvaluator(EvaluatorConfig(**TINY)).eval()
    caps = ["a person walks forward", "someone jumps twice"]
    feats = m.text_features(caps)
    with torch.no_grad():
        assert torch.allclose(m.encode_texts(caps), m.encode_texts(feats), atol=1e-6)


# --------------------------------------------------------------------------
# original T2M evaluator: files built here with random weights


def _write_fake_t2m(root, dim_pose=263, extra=None):
    torch.manual_seed(0)
    net = T2MEvaluator(dim_pose=dim_pose, movement_hidden=24, movement_latent=20, motion_hidden=28,
                       text_hidden=26, embed_dim=12)
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.1)
    ckpt = {"movement_encoder": net.movement_encoder.state_dict(),
            "text_encoder": net.text_encoder.state_dict(),
            "motion_encoder": net.motion_encoder.state_dict(), "epoch": 7}
    if extra:
        ckpt.update(extra)
    path = root / "text_mot_match" / "model" / "finest.tar"
    path.parent.mkdir(parents=True)
    torch.save(ckpt, path)
    return net.eval(), path


def _write_fake_glove(root, words=("sos", "eos", "unk", "a", "person", "walk", "left", "quickly")):
    root.mkdir(parents=True, exist_ok=True)
    vecs = np.random.default_rng(0).normal(size=(len(words), 300)).astype(np.float32)
    np.save(root / "our_vab_data.npy", vecs)
    (root / "our_vab_words.pkl").write_bytes(pickle.dumps(list(words)))
    (root / "our_vab_idx.pkl").write_bytes(pickle.dumps({w: i for i, w in enumerate(words)}))
    return vecs, list(words)


def test_checkpoint_key_names_mirror_the_original():
    net = T2MEvaluator()
    assert set(net.movement_encoder.state_dict()) == {
        "main.0.weight", "main.0.bias", "main.3.weight", "main.3.bias", "out_net.weight", "out_net.bias"}
    gru = {f"gru.{w}_{k}_l0{s}" for w in ("weight", "bias") for k in ("ih", "hh") for s in ("", "_reverse")}
    head = {f"output_net.{i}.{w}" for i in (0, 1, 3) for w in ("weight", "bias")}
    common = {"input_emb.weight", "input_emb.bias", "hidden"} | gru | head
    assert set(net.motion_encoder.state_dict()) == common
    assert set(net.text_encoder.state_dict()) == common | {"pos_emb.weight", "pos_emb.bias"}
    sd = net.motion_encoder.state_dict()
    assert sd["input_emb.weight"].shape == (1024, 512) and sd["hidden"].shape == (2, 1, 1024)
    assert sd["output_net.0.weight"].shape == (1024, 2048) and sd["output_net.3.weight"].shape == (512, 1024)
    assert net.movement_encoder.state_dict()["main.0.weight"].shape == (512, 259, 4)
    tx = net.text_encoder.state_dict()
    assert tx["pos_emb.weight"].shape == (300, 15) and tx["input_emb.weight"].shape == (512, 300)
    assert tx["gru.weight_ih_l0"].shape == (3 * 512, 512) and tx["output_net.0.weight"].shape == (512, 1024)


@pytest.mark.parametrize("dim_pose", [263, 251])
def test_load_fake_t2m_checkpoint_and_embed(tmp_path, dim_pose):
    net, _ = _write_fake_t2m(tmp_path, dim_pose)
    _write_fake_glove(tmp_path / "glove")
    ev = load_t2m_evaluator(tmp_path)
    assert not ev.training and ev.dim_pose == dim_pose
    for k, v in net.state_dict().items():
        assert torch.equal(v, ev.state_dict()[k])
    wv = WordVectorizer(tmp_path / "glove")
    batch = wv.encode_batch([["a/DET", "person/NOUN", "walk/VERB", "quickly/ADV"],
                             "person/NOUN walk/VERB left/ADV banana/NOUN".split()])
    assert batch.word_embs.shape == (2, 22, 300) and batch.pos_onehot.shape == (2, 22, 15)
    assert batch.cap_lens.tolist() == [6, 6]
    text = ev.embed_text(batch.word_embs, batch.pos_onehot, batch.cap_lens)
    motion = ev.embed_motion(torch.randn(2, 196, dim_pose), torch.tensor([196, 60]))
    assert text.shape == (2, 12) and motion.shape == (2, 12)
    assert torch.isfinite(text).all() and torch.isfinite(motion).all()
    # the same networks called directly give the same result (no hidden wrapper changes)
    with torch.no_grad():
        direct = net.text_encoder(torch.as_tensor(batch.word_embs), torch.as_tensor(batch.pos_onehot),
                                  torch.as_tensor(batch.cap_lens))
    assert torch.allclose(text, direct, atol=1e-6)
    # other accepted locations of the file
    assert load_t2m_evaluator(tmp_path / "text_mot_match").dim_pose == dim_pose
    assert load_t2m_evaluator(tmp_path / "text_mot_match" / "model" / "finest.tar").dim_pose == dim_pose


def test_word_vectorizer_rules(tmp_path):
    vecs, words = _write_fake_glove(tmp_path)
    wv = WordVectorizer(tmp_path)
    idx = {w: i for i, w in enumerate(words)}
    vec, pos = wv["walk/NOUN"]                        # VIP list overrides the tagged POS
    assert np.array_equal(vec, vecs[idx["walk"]]) and POS_CLASSES[int(pos.argmax())] == "Act_VIP"
    vec, pos = wv["person/NOUN"]
    assert POS_CLASSES[int(pos.argmax())] == "NOUN" and pos.sum() == 1
    vec, pos = wv["zebra/NOUN"]                       # unknown -> unk / OTHER
    assert np.array_equal(vec, vecs[idx["unk"]]) and POS_CLASSES[int(pos.argmax())] == "OTHER"
    assert POS_CLASSES[int(wv["a/WEIRD"][1].argmax())] == "OTHER"
    w, p, n = wv.encode_tokens(["a/DET"] * 30)       # 20 words kept + sos + eos
    assert n == 22 and w.shape == (22, 300)
    assert np.array_equal(w[0], vecs[idx["sos"]]) and np.array_equal(w[21], vecs[idx["eos"]])
    w, p, n = wv.encode_tokens(["person/NOUN"])
    assert n == 3 and np.array_equal(w[2], vecs[idx["eos"]])
    assert all(np.array_equal(w[i], vecs[idx["unk"]]) for i in range(3, 22))
    assert (p[3:, POS_CLASSES.index("OTHER")] == 1).all()
    assert len(POS_CLASSES) == 15


def test_missing_files_are_named(tmp_path):
    with pytest.raises(T2MFilesMissing, match="finest.tar"):
        load_t2m_evaluator(tmp_path)
    with pytest.raises(T2MFilesMissing, match="our_vab_data.npy"):
        load_glove(tmp_path)
    bad = tmp_path / "text_mot_match" / "model"
    bad.mkdir(parents=True)
    torch.save({"movement_encoder": {}, "epoch": 1}, bad / "finest.tar")
    with pytest.raises(T2MEvaluatorError, match="text_encoder"):
        load_t2m_evaluator(tmp_path)


class _Payload:
    """Pickles to a call of os.system that would create a file."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class _OpenPayload:
    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.mark.parametrize("payload", [_Payload, _OpenPayload])
def test_malicious_glove_pickle_is_refused(tmp_path, payload):
    _write_fake_glove(tmp_path)
    target = tmp_path / "pwned"
    (tmp_path / "our_vab_idx.pkl").write_bytes(pickle.dumps({"a": payload(target)}))
    with pytest.raises(UnsafePickleError):
        load_glove(tmp_path)
    assert not target.exists()
    with pytest.raises(UnsafePickleError):
        safe_unpickle(pickle.dumps(payload(target), protocol=0))
    assert not target.exists()


def test_safe_unpickle_plain_data_only():
    data = {"a": [1, 2.5, "x", None, True, (3, 4)], "b": {"c": ("d", "e")}}
    for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
        assert safe_unpickle(pickle.dumps(data, protocol=proto)) == data
    assert safe_unpickle(pickle.dumps(b"raw", protocol=3)) == b"raw"
    with pytest.raises(UnsafePickleError):
        safe_unpickle(pickle.dumps(b"raw", protocol=2))     # protocol < 3 bytes need _codecs.encode
    with pytest.raises(UnsafePickleError):
        safe_unpickle(pickle.dumps(np.int64(3)))             # needs a numpy global
    with pytest.raises(UnsafePickleError):
        safe_unpickle(b"not a pickle")


def test_checkpoint_with_object_payload_is_refused(tmp_path):
    target = tmp_path / "pwned"
    _write_fake_t2m(tmp_path, extra={"opt": _Payload(target)})
    with pytest.raises(T2MEvaluatorError, match="refusing"):
        load_t2m_evaluator(tmp_path)
    assert not target.exists()
