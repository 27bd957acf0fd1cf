"""The tokenizer and evaluator stages end to end on a tiny imported dataset."""

import json

import numpy as np
import pytest
import torch

from core.cli import main as cli
from core.eval.tokenizer_eval import evaluate_tokenizer, format_table
from core.model.io import load_tokenizer


def test_tokenizer_stage_trains_exports_and_evaluates(tiny_dataset, tmp_path, capsys):
    run = tmp_path / "tok"
    rc = cli(["train", "tokenizer", "--data", str(tiny_dataset), "--out", str(run), "--quiet",
              "--max-steps", "30", "--set", "window=16", "--set", "batch_size=4", "--set", "val_every=15",
              "--set", "warmup_steps=5", "--set", "lr=1e-3", "--set", "model.width=32", "--set", "model.code_dim=32",
              "--set", "model.n_codes=16", "--set", "threads=1"])
    assert rc == 0
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    vals = [e for e in log if e["kind"] == "val"]
    assert len(vals) == 2 and all(np.isfinite(v["val_mpjpe_mm"]) for v in vals)
    model, mean, std = load_tokenizer(run)
    assert model.config.width == 32 and mean.shape == (263,)
    result = evaluate_tokenizer(run, tiny_dataset, split="test")
    assert [r["stages"] for r in result["rows"]] == list(range(7))
    assert all(r["mpjpe_mm"] > 0 for r in result["rows"])
    assert len(result["stages"]) == 6 and result["clips"] == 3
    assert "pose codes only" in format_table(result)


@pytest.mark.slow
def test_evaluator_stage_trains_and_embeds(tiny_dataset, tmp_path):
    run = tmp_path / "ev"
    rc = cli(["train", "evaluator", "--data", str(tiny_dataset), "--out", str(run), "--quiet",
              "--max-steps", "6", "--set", "batch_size=4", "--set", "val_every=6", "--set", "threads=1"])
    assert rc == 0
    from core.eval.evaluator import TextMotionEvaluator

    ev = TextMotionEvaluator.load(run / "model")
    t = ev.encode_texts(["a person walks forward", "someone kicks"])
    assert t.shape == (2, ev.config.embed_dim) and torch.isfinite(t).all()
    assert (run / "text_features.safetensors").is_file()
    # with an evaluator the tokenizer table gains FID and R-precision columns
    tok = tmp_path / "tok"
    cli(["train", "tokenizer", "--data", str(tiny_dataset), "--out", str(tok), "--quiet", "--max-steps", "2",
         "--set", "window=16", "--set", "batch_size=2", "--set", "model.width=16", "--set", "model.code_dim=16"])
    result = evaluate_tokenizer(tok, tiny_dataset, evaluator_dir=run / "model")
    assert "fid" in result["rows"][0] and "real" in result


def test_train_errors_are_clear(tmp_path, capsys):
    assert cli(["train", "tokenizer", "--out", str(tmp_path / "x")]) == 2
    assert "--data is required" in capsys.readouterr().err
    assert cli(["train", "nonsense", "--data", str(tmp_path), "--out", str(tmp_path / "y")]) == 2
    assert "unknown training stage" in capsys.readouterr().err
    assert cli(["train", "tokenizer", "--data", str(tmp_path), "--out", str(tmp_path / "z"), "--config", "huge"]) == 2
    assert "no preset 'huge'" in capsys.readouterr().err


def test_evaluate_with_the_original_t2m_evaluator(tiny_dataset, tmp_path):
    from test_evaluator import _write_fake_glove, _write_fake_t2m

    from core import atomic

    _write_fake_t2m(tmp_path / "t2m")
    meta = tmp_path / "t2m" / "Comp_v6_KLD005" / "meta"
    atomic.save_npy(meta / "mean.npy", np.zeros(263, np.float32))
    atomic.save_npy(meta / "std.npy", np.ones(263, np.float32))
    _write_fake_glove(tmp_path / "glove")
    tok = tmp_path / "tok"
    cli(["train", "tokenizer", "--data", str(tiny_dataset), "--out", str(tok), "--quiet", "--max-steps", "2",
         "--set", "window=16", "--set", "batch_size=2", "--set", "model.width=16", "--set", "model.code_dim=16"])
    result = evaluate_tokenizer(tok, tiny_dataset, t2m_dir=tmp_path / "t2m", glove_dir=tmp_path / "glove")
    assert "fid" in result["rows"][6] and np.isfinite(result["rows"][6]["fid"]) and "real" in result
    with pytest.raises(ValueError, match="GloVe"):
        evaluate_tokenizer(tok, tiny_dataset, t2m_dir=tmp_path / "t2m")
