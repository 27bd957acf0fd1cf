"""Property-based fuzzing of the prompt path: clean_text, keywords, encode_conditions with the real
(offline) MiniLM encoder, and Pipeline.generate on a tiny random model.

Any text a user can type or paste must give a motion (or, past the prompt length limit, a
PipelineError saying so): empty, whitespace, 10,000 characters, emoji, other scripts, control
characters, NUL, lone surrogates.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from core.model.conditioning import N_TEXT_TOKENS, encode_conditions, phrases  # noqa: E402
from core.pipeline import Pipeline, PipelineError  # noqa: E402
from core.text.cleaning import clean_text  # noqa: E402
from core.text.encoders import load_text_encoder
from core.text.keywords import keywords

SLOW_OK = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large,
           HealthCheck.large_base_example]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fuzz(n):
    return settings(max_examples=n, deadline=None, suppress_health_check=SLOW_OK)


ANY_CHAR = st.characters(exclude_categories=())      # lone surrogates and controls included
SPECIAL = {
    "empty": "",
    "whitespace": " \t\n\r\u3000\u2028 ",
    "10,000 characters": "a person walks forward and waves " * 303 + "a",
    "one 10,000-character word": "x" * 10_000,
    "emoji": "🕺 a person dances 💃🏽 then 🙋‍♀️ waves 👋🏿",
    "only emoji": "😀🕺💃🏽‍♀️🎉",
    "CJK": "一个人向前走，然后挥手。人が歩いてジャンプする",
    "Arabic": "شخص يمشي إلى الأمام ثم يلوح بيده",
    "Devanagari": "एक व्यक्ति आगे चलता है और हाथ हिलाता है",
    "control characters": "a person\x01\x02 walks\x1b[31m\x7f forward\x08\x0c",
    "NUL": "a person\x00walks\x00",
    "only NUL": "\x00" * 50,
    "lone surrogates": "a person \ud800walks\udfff forward \ud83d",
    "zero-width and bidi": "\u200b\u200d\ufeff\u202ewalk\u202c",
    "combining marks": "a\u0301" * 2000,
    "case-mapping tricks": "İſK ß ﬃ" * 100,
    "private use and unassigned": "\ue000\U0010ffff\U000e0001\u0378",
}
PROMPTS = st.one_of(
    st.sampled_from(list(SPECIAL.values())),
    st.text(ANY_CHAR, max_size=300),
    st.lists(st.sampled_from(list(SPECIAL.values())) | st.text(ANY_CHAR, max_size=20), max_size=4).map("".join),
)


@fuzz(1500)
@given(text=PROMPTS, max_chars=st.none() | st.integers(0, 400))
def test_clean_text(text, max_chars):
    s = clean_text(text, max_chars)
    s.encode("utf-8")                               # no lone surrogates: the tokenizer needs UTF-8
    assert s == s.strip() and "  " not in s
    assert all(c == " " or not c.isspace() for c in s)
    assert not any(0xD800 <= ord(c) <= 0xDFFF or ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in s)
    assert max_chars is None or len(s) <= max_chars
    assert clean_text(s) == s                       # idempotent
    assert (s == "") == (clean_text(text) == "" or max_chars == 0)


def test_clean_text_found_by_fuzzing():
    # truncation could leave a trailing space ("a b"[:2] == "a "), so cleaning was not idempotent
    assert clean_text("a b", max_chars=2) == "a"


@fuzz(1500)
@given(prompt=PROMPTS, n=st.integers(0, 20))
def test_keywords(prompt, n):
    out = keywords(prompt, n)
    assert len(out) == n and all(isinstance(k, str) for k in out)
    filled = [k for k in out if k]
    assert out == filled + [""] * (n - len(filled))            # padding only at the end
    assert len(set(filled)) == len(filled)
    for k in filled:
        k.encode("utf-8")
        assert clean_text(k) == k
    assert bool(filled) == (n > 0 and clean_text(prompt) != "")
    assert keywords(prompt, n) == out                          # deterministic


def test_keywords_refuse_negative_counts():
    with pytest.raises(ValueError, match="n must be"):
        keywords("walk", -1)


@pytest.fixture(scope="module")
def encoder():
    return load_text_encoder().load()


@fuzz(300)
@given(prompts=st.lists(PROMPTS, min_size=1, max_size=3))
def test_encode_conditions(encoder, prompts):
    cond = encode_conditions(encoder, prompts)
    assert cond.shape == (len(prompts), N_TEXT_TOKENS, 384) and cond.dtype == torch.float32
    assert torch.isfinite(cond).all()
    norms = cond.norm(dim=-1)
    for b, p in enumerate(prompts):
        filled = torch.tensor([t != "" for t in phrases(p)])
        assert torch.all(norms[b][~filled] == 0)                    # empty slots are zero
        assert torch.allclose(norms[b][filled], torch.ones(int(filled.sum())), atol=1e-4)
        first = prompts.index(p)
        assert torch.equal(cond[b], cond[first])                    # the same prompt, the same rows


@pytest.mark.parametrize("name", list(SPECIAL))
def test_encode_every_special_prompt(encoder, name):
    cond = encode_conditions(encoder, [SPECIAL[name]])
    assert cond.shape == (1, N_TEXT_TOKENS, 384) and torch.isfinite(cond).all()
    assert (cond.abs().sum() == 0) == (clean_text(SPECIAL[name]) == "")


@pytest.fixture(scope="module")
def pipe(model_dir):
    return Pipeline(model_dir)


def check_motions(out, prompts, n_samples, length):
    assert len(out) == len(prompts) * n_samples
    for i, m in enumerate(out):
        assert m.prompt == prompts[i // n_samples]                 # kept exactly, surrogates and all
        assert m.joints.shape == (length, 22, 3) and np.isfinite(m.joints).all()
        assert m.cond.shape == (N_TEXT_TOKENS, 384) and np.isfinite(m.cond).all()
        assert (m.code_ids().shape[0], m.n_frames) == (length // 4, length)


@pytest.mark.parametrize("name", list(SPECIAL))
def test_generate_every_special_prompt(pipe, name):
    check_motions(pipe.generate(SPECIAL[name], seed=1, length=8), [SPECIAL[name]], 1, 8)


# prompts just under and just over Pipeline.MAX_PROMPT_CHARS
AROUND_THE_LIMIT = st.tuples(st.text(ANY_CHAR, min_size=1, max_size=5), st.integers(19_995, 20_005)).map(
    lambda t: (t[0] * t[1])[:t[1]])


@fuzz(400)
@given(prompt=PROMPTS | AROUND_THE_LIMIT,
       length=st.sampled_from([4, 8]), seed=st.integers(0, 2**32 - 1))
def test_generate_any_prompt(pipe, prompt, length, seed):
    try:
        out = pipe.generate(prompt, seed=seed, length=length)
    except PipelineError as err:
        assert len(prompt) > Pipeline.MAX_PROMPT_CHARS and "characters" in str(err)
        return
    assert len(prompt) <= Pipeline.MAX_PROMPT_CHARS
    check_motions(out, [prompt], 1, length)


@fuzz(100)
@given(prompts=st.lists(PROMPTS, min_size=1, max_size=4), n_samples=st.integers(1, 2))
def test_generate_any_batch_of_prompts(pipe, prompts, n_samples):
    if max(map(len, prompts)) > Pipeline.MAX_PROMPT_CHARS:
        with pytest.raises(PipelineError, match="characters"):
            pipe.generate(prompts, n_samples=n_samples, seed=3, length=4)
        return
    out = pipe.generate(prompts, n_samples=n_samples, seed=3, length=4)
    check_motions(out, prompts, n_samples, 4)
