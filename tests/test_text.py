"""Tests for core.text: MiniLM / CLIP encoders, the factory, cleaning and keywords."""

import json
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from core.text.cleaning import clean_text  # noqa: E402
from core.text.encoders import CLIPTextEncoder, MiniLMEncoder, TextEncoderError, TextFeatures, load_text_encoder  # noqa: E402
from core.text.keywords import N_KEYWORDS, keywords  # noqa: E402

TEXTS = [
    "a person walks forward and waves the right hand",
    "someone kicks with the left leg, then spins around twice quickly",
    "Ein Mensch springt hoch 🙂",
    "一个人向前走",
    "a",
]


@pytest.fixture(scope="module")
def minilm():
    return load_text_encoder()


# --------------------------------------------------------------------------
# MiniLM


@pytest.mark.slow
def test_minilm_matches_sentence_transformers(minilm):
    st = pytest.importorskip("sentence_transformers")
    ref = st.SentenceTransformer(str(minilm.path), device="cpu", local_files_only=True)
    want = torch.as_tensor(ref.encode(TEXTS, normalize_embeddings=True))
    got = minilm.encode(TEXTS).sentence
    assert got.shape == (len(TEXTS), 384)
    assert torch.allclose(got, want, atol=1e-5)


def test_minilm_shapes_and_norms(minilm):
    f = minilm.encode(TEXTS)
    assert isinstance(f, TextFeatures) and len(f) == len(TEXTS)
    b, n, d = f.tokens.shape
    assert (b, d) == (len(TEXTS), 384) and f.mask.shape == (b, n) and f.mask.dtype == torch.bool
    assert torch.allclose(f.sentence.norm(dim=1), torch.ones(b), atol=1e-5)
    # masks are left-aligned and padded token rows are zero
    assert torch.equal(f.mask, torch.arange(n)[None] < f.lengths[:, None])
    assert float(f.tokens[~f.mask].abs().sum()) == 0.0
    assert minilm.dim == 384 and minilm.name == "minilm"


def test_minilm_batch_does_not_change_a_sentence(minilm):
    alone = minilm.encode([TEXTS[1]])
    batched = minilm.encode(TEXTS)
    assert torch.allclose(alone.sentence[0], batched.sentence[1], atol=1e-5)
    n = int(alone.lengths[0])
    assert torch.allclose(alone.tokens[0, :n], batched.tokens[1, :n], atol=1e-4)


def test_empty_long_and_odd_strings(minilm):
    texts = ["", "   \t\n", "walk " * 5000, "a\x00 person\x07 jumps\ud800 \u200d🙂", "\x1b\x07\x00"]
    f = minilm.encode(texts, max_length=32)
    # empty after cleaning -> zero vectors, all-False mask (the keyword padding convention)
    for i in (0, 1, 4):
        assert float(f.sentence[i].abs().sum()) == 0.0 and not f.mask[i].any()
    assert int(f.lengths[2]) == 32                   # truncated to max_length
    assert f.tokens.shape[1] == 32
    assert torch.allclose(f.sentence[3].norm(), torch.tensor(1.0), atol=1e-5)
    # control characters are stripped before tokenising
    assert torch.allclose(f.sentence[3], minilm.encode(["a person jumps \u200d🙂"]).sentence[0], atol=1e-5)


def test_encode_accepts_single_string_and_empty_list(minilm):
    assert len(minilm.encode("a person runs")) == 1
    f = minilm.encode([])
    assert f.sentence.shape == (0, 384)


def test_non_string_is_rejected(minilm):
    with pytest.raises(TypeError):
        minilm.encode(["ok", 3])


def test_clean_text():
    assert clean_text("  a\tb\n\nc\x00d\x7f ") == "a b cd"
    assert clean_text("x" * 50, max_chars=10) == "x" * 10
    assert clean_text("🙂 привет") == "🙂 привет"


def test_features_cat_index_trim(minilm):
    a, b = minilm.encode(["a person walks"]), minilm.encode([TEXTS[1]])
    c = TextFeatures.cat([a, b])
    assert len(c) == 2 and c.tokens.shape[1] == b.tokens.shape[1]
    assert not c.mask[0, a.tokens.shape[1]:].any()
    t = c[[0]].trim()
    assert t.tokens.shape[1] == int(a.lengths[0])
    assert torch.equal(c[1].sentence, b.sentence)


# --------------------------------------------------------------------------
# factory


def test_factory_caches_and_validates(tmp_path):
    assert load_text_encoder() is load_text_encoder("minilm")
    assert isinstance(load_text_encoder(None), MiniLMEncoder)
    with pytest.raises(TextEncoderError):
        load_text_encoder("bert-large")
    with pytest.raises(TextEncoderError, match=str(tmp_path / "nope")):
        load_text_encoder(f"clip:{tmp_path / 'nope'}")


# --------------------------------------------------------------------------
# CLIP (tiny random model, built offline)


def _bytes_to_unicode() -> list[str]:
    # GPT-2 style byte -> printable character table, the alphabet of CLIP's BPE
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = [], 0
    for b in range(256):
        if b in keep:
            chars.append(chr(b))
        else:
            chars.append(chr(256 + extra))
            extra += 1
    return chars


def _tiny_clip(folder, projection: bool):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    chars = _bytes_to_unicode()
    vocab = {}
    for c in chars:
        vocab[c] = len(vocab)
    for c in chars:
        vocab[c + "</w>"] = len(vocab)
    merges = ["w a", "wa l", "wal k</w>", "h a", "ha n", "han d</w>"]
    for m in ("wa", "wal", "walk</w>", "ha", "han", "hand</w>"):
        vocab[m] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    torch.manual_seed(0)
    cfg = CLIPTextConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=37,
                         num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=16,
                         projection_dim=24, bos_token_id=vocab["<|startoftext|>"],
                         eos_token_id=vocab["<|endoftext|>"], pad_token_id=vocab["<|endoftext|>"])
    model = (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg).eval()
    model.save_pretrained(str(folder))
    return model


@pytest.mark.parametrize("projection", [False, True])
def test_clip_from_local_folder(tmp_path, projection):
    from transformers import CLIPTokenizer

    folder = tmp_path / ("proj" if projection else "plain")
    model = _tiny_clip(folder, projection)
    enc = load_text_encoder(f"clip:{folder}")
    assert isinstance(enc, CLIPTextEncoder) and load_text_encoder(str(folder)) is enc
    assert enc.dim == (24 if projection else 32) and enc.token_dim == 32
    texts = ["walk", "hand walk 🙂", "", "walk " * 40]
    f = enc.encode(texts)
    assert f.sentence.shape == (4, enc.dim) and f.tokens.shape[0] == 4 and f.tokens.shape[2] == 32
    assert f.tokens.shape[1] <= 16                   # clipped to the model's positions
    assert float(f.sentence[2].abs().sum()) == 0.0 and not f.mask[2].any()
    # reference: the model run directly on the same tokens
    tok = CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)
    ids = tok(texts[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**ids)
    ref = out.text_embeds if projection else out.pooler_output
    assert torch.allclose(f.sentence[:2], torch.nn.functional.normalize(ref, dim=1), atol=1e-5)
    assert torch.allclose(f.tokens[0, : int(f.lengths[0])], out.last_hidden_state[0, : int(f.lengths[0])],
                          atol=1e-5)


def test_clip_full_model_folder(tmp_path):
    # a whole CLIP checkpoint (text + vision towers): the text side and projection load
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    folder = tmp_path / "full"
    _tiny_clip(folder, projection=False)
    for f in folder.glob("model*"):
        f.unlink()
    vocab = json.loads((folder / "vocab.json").read_text())
    eos = vocab["<|endoftext|>"]
    text = dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                num_attention_heads=2, max_position_embeddings=16,
                bos_token_id=vocab["<|startoftext|>"], eos_token_id=eos, pad_token_id=eos)
    vision = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=2,
                  image_size=32, patch_size=16)
    full = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=24)).eval()
    full.save_pretrained(str(folder))
    enc = load_text_encoder(str(folder))
    assert enc.dim == 24
    ids = CLIPTokenizer.from_pretrained(str(folder), local_files_only=True)(
        ["walk", "hand"], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = full.text_model(**ids)
        ref = full.text_projection(out.pooler_output)
    assert torch.allclose(enc.encode(["walk", "hand"]).sentence,
                          torch.nn.functional.normalize(ref, dim=1), atol=1e-5)


def test_clip_missing_files_named(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "clip_text_model"}')
    with pytest.raises(TextEncoderError) as e:
        CLIPTextEncoder(folder)
    assert str(folder) in str(e.value) and "tokenizer" in str(e.value)


# --------------------------------------------------------------------------
# keywords


def test_keywords_body_parts_and_style():
    k = keywords("a person waves the right hand happily")
    assert len(k) == N_KEYWORDS
    assert "waves the right hand" in k and "right hand" in k and "happily" in k
    assert k[-1] == ""


def test_keywords_several_prompts():
    k = keywords("A man walks forward, then turns left and waves both hands above his head.")
    for p in ("walks forward", "turns left", "waves both hands", "both hands", "head"):
        assert p in k
    k = keywords("someone kicks a ball with the left leg")
    assert "kicks a ball" in k and "left leg" in k
    k = keywords("the figure bends its knees and stretches the upper body carefully")
    assert {"bends its knees", "knees", "upper body", "carefully"} <= set(k)
    k = keywords("a person lowers his left arm and rubs the lower back")
    assert {"left arm", "lower back", "rubs the lower back"} <= set(k)


def test_keywords_edge_cases():
    assert keywords("") == [""] * N_KEYWORDS
    assert keywords("\x00\x07") == [""] * N_KEYWORDS
    assert keywords("🙂 привет")[0] == "🙂 привет"          # unmatched prompt: its start is kept
    long = " and ".join(f"raises the {s} {p}" for s in ("left", "right") for p in ("arm", "leg", "hand", "foot"))
    k = keywords(long + " happily")
    assert len(k) == N_KEYWORDS and all(k)
    assert keywords("a person waves", n=3) == ["waves", "", ""]
    # deterministic
    assert keywords("a person jumps up and down on one leg") == keywords("a person jumps up and down on one leg")


def test_keyword_padding_encodes_to_zero(minilm):
    k = keywords("a person waves the right hand happily")
    f = minilm.encode(k)
    n_real = sum(1 for x in k if x)
    assert float(f.sentence[n_real:].abs().sum()) == 0.0
    assert torch.all(f.sentence[:n_real].norm(dim=1) > 0.99)
