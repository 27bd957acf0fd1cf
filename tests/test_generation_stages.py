"""Base and Refine training stages, `pgr2m train all` and the generation evaluation, end to end
on the three-clip fixture dataset with tiny models."""

import json

import numpy as np
import torch

from core.cli import main as cli
from core.model.io import load_base, load_refine
from core.pipeline import Pipeline
from core.train.base_stage import clean_probability

TINY = ["--set", "batch_size=4", "--set", "threads=1", "--set", "warmup_steps=2", "--set", "lr=1e-3"]
TINY_TRANSFORMER = ["--set", "model.dim=32", "--set", "model.layers=1", "--set", "model.heads=2"]


def _log(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_scheduled_corruption_decays_to_its_floor():
    assert clean_probability(0) == 1.0
    assert 0.1 < clean_probability(100) < 0.5
    assert clean_probability(5000) == 0.1


def test_base_stage_trains_validates_and_exports(tiny_dataset, tmp_path):
    run = tmp_path / "base"
    assert cli(["train", "base", "--data", str(tiny_dataset), "--out", str(run), "--quiet", "--max-steps", "40",
                "--set", "val_every=20", *TINY, *TINY_TRANSFORMER]) == 0
    log = _log(run)
    losses = [e["loss"] for e in log if e["kind"] == "log"]
    vals = [e for e in log if e["kind"] == "val"]
    assert len(vals) == 2 and 0 <= vals[-1]["val_code_acc"] <= 1
    assert losses[-1] < losses[0]
    assert any(e.get("corrupted") for e in log if e["kind"] == "log")       # corruption kicks in
    model = load_base(run)
    assert model.config.dim == 32 and model.config.text_dim == 384
    assert (run / "text_conditions.safetensors").is_file()


def test_refine_stage_needs_a_tokenizer_and_learns_its_codes(tiny_dataset, tmp_path, capsys):
    run = tmp_path / "refine"
    assert cli(["train", "refine", "--data", str(tiny_dataset), "--out", str(run), "--quiet"]) == 2
    assert "needs a trained tokenizer" in capsys.readouterr().err
    tok = tmp_path / "tok"
    assert cli(["train", "tokenizer", "--data", str(tiny_dataset), "--out", str(tok), "--quiet", "--max-steps", "4",
                "--set", "window=16", "--set", "model.width=32", "--set", "model.code_dim=32",
                "--set", "model.n_codes=16", *TINY]) == 0
    assert cli(["train", "refine", "--data", str(tiny_dataset), "--out", str(run), "--quiet", "--max-steps", "40",
                "--tokenizer", str(tok), "--set", "val_every=40", "--set", "model.n_codes=16",
                *TINY, *TINY_TRANSFORMER]) == 0
    val = [e for e in _log(run) if e["kind"] == "val"][-1]
    assert {f"val_loss_{q}" for q in range(6)} <= set(val)
    assert val["val_loss"] < np.log(16)          # better than guessing among 16 codes
    assert load_refine(run).config.n_codes == 16


def test_train_all_builds_a_usable_model_folder_and_resumes(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "all"
    args = ["train", "all", "--data", str(tiny_dataset), "--out", str(out), "--quiet", "--max-steps", "6",
            "--stages", "tokenizer,base,refine", *TINY,
            "--set", "tokenizer:window=16", "--set", "tokenizer:model.width=32", "--set", "tokenizer:model.code_dim=32",
            "--set", "tokenizer:model.n_codes=16", "--set", "refine:model.n_codes=16",
            "--set", "base:model.dim=32", "--set", "base:model.layers=1", "--set", "base:model.heads=2",
            "--set", "refine:model.dim=32", "--set", "refine:model.layers=1", "--set", "refine:model.heads=2"]
    assert cli(args) == 0
    assert "model folder" in capsys.readouterr().out
    m = Pipeline(out).generate("a person kicks", seed=0, length=32)[0]
    assert m.joints.shape == (32, 22, 3) and np.isfinite(m.joints).all()
    assert cli(args) == 0                       # everything finished: every stage is skipped
    assert capsys.readouterr().out.count("already trained") == 3


def test_generation_evaluation_reports_every_metric(tiny_dataset, tmp_path):
    from model_factory import make_model_folder

    from core import atomic
    from core.eval.evaluator import EvaluatorConfig, TextMotionEvaluator
    from core.pipeline_eval import evaluate_edits, evaluate_generation, format_generation

    model = make_model_folder(tmp_path / "model")
    torch.manual_seed(0)
    ev = TextMotionEvaluator(EvaluatorConfig(movement_hidden=16, movement_latent=16, motion_hidden=16,
                                             text_hidden=16, embed_dim=16))
    ev.save(model / "evaluator")
    atomic.save_npy(model / "evaluator" / "mean.npy", np.zeros(263, np.float32))
    atomic.save_npy(model / "evaluator" / "std.npy", np.ones(263, np.float32))
    r = evaluate_generation(model, tiny_dataset, repeats=2, mm_captions=2, mm_samples=6)
    assert r["clips"] == 3 and r["repeats"] == 2
    for key in ("base", "full"):
        assert np.isfinite(r[key]["fid"][0]) and 0 <= r[key]["top3"][0] <= 1
        assert r[key]["multimodality"][0] >= 0
    assert "Base + Refine" in format_generation(r)
    e = evaluate_edits(model, tiny_dataset, n_edits=3)
    assert 0 <= e["summary"]["refine_shown"] <= 1 and len(e["rows"]) == 3
