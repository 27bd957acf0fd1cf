"""Untrusted files: pickle payloads planted wherever a loader reads are refused, never run.

Every payload, when unpickled, creates a marker file (checked to work when loaded unsafely).
Each planted file is then read through the API, the CLI (subprocesses) and the app, and each
time the marker must not exist and the user must get a clear error."""

import io
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import GUI, REPO
from model_factory import make_model_folder

from core import atomic
from core.project import ProjectError, load_project, recoverable, save_project

ENV = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}", "OMP_NUM_THREADS": "1",
       "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
CLEAR = (ValueError, OSError, RuntimeError)   # our error classes (TextEncoderError is a RuntimeError)


class Payload:
    """Unpickling this runs code that creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def evil(kind: str, marker) -> bytes:
    """Bytes that run the payload when loaded unsafely: pickle | torch | torch-legacy | npy."""
    if kind == "pickle":
        return pickle.dumps({"weight": Payload(marker)})
    buf = io.BytesIO()
    if kind == "torch":
        torch.save({"weight": torch.zeros(2), "x": Payload(marker)}, buf)
    elif kind == "torch-legacy":
        torch.save({"weight": torch.zeros(2), "x": Payload(marker)}, buf, _use_new_zipfile_serialization=False)
    elif kind == "npy":
        arr = np.empty(2, dtype=object)
        arr[:] = [Payload(marker), 1.0]
        np.save(buf, arr, allow_pickle=True)
    else:
        raise ValueError(kind)
    return buf.getvalue()


def plant(path: Path, kind: str, marker) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(evil(kind, marker))
    return path


@pytest.fixture
def marker(tmp_path):
    m = tmp_path / "PWNED"
    yield m
    assert not m.exists(), "a pickle payload ran"


def test_the_payloads_do_run_when_loaded_unsafely(tmp_path):
    m = tmp_path / "live"
    loaders = {"pickle": pickle.loads,
               "torch": lambda b: torch.load(io.BytesIO(b), weights_only=False),
               "torch-legacy": lambda b: torch.load(io.BytesIO(b), weights_only=False),
               "npy": lambda b: np.load(io.BytesIO(b), allow_pickle=True)}
    for kind, load in loaders.items():
        load(evil(kind, m))
        assert m.exists(), kind
        m.unlink()


# --------------------------------------------------------------------------
# model folders


@pytest.fixture(scope="module")
def good_model(tmp_path_factory):
    from core.eval.evaluator import EvaluatorConfig, TextMotionEvaluator

    root = make_model_folder(tmp_path_factory.mktemp("good") / "model")
    ev = TextMotionEvaluator(EvaluatorConfig(movement_hidden=16, movement_latent=16, motion_hidden=16,
                                             text_hidden=16, embed_dim=8, dropout=0.0))
    ev.save(root / "evaluator")
    atomic.save_npy(root / "evaluator" / "mean.npy", np.zeros(263, np.float32))
    atomic.save_npy(root / "evaluator" / "std.npy", np.ones(263, np.float32))
    return root


def copy_model(good_model, tmp_path) -> Path:
    return Path(shutil.copytree(good_model, tmp_path / "model"))


def load_part(folder: Path, part: str):
    from core.eval.tokenizer_eval import OurEvaluator
    from core.model.io import load_base, load_refine, load_tokenizer

    return {"tokenizer": load_tokenizer, "base": load_base, "refine": load_refine,
            "evaluator": OurEvaluator}[part](folder / part)


# (file, payload format): the real file replaced by a pickle
REPLACED = [
    ("tokenizer/tokenizer.safetensors", "torch"),
    ("tokenizer/tokenizer.safetensors", "pickle"),
    ("tokenizer/mean.npy", "npy"),
    ("tokenizer/std.npy", "pickle"),
    ("tokenizer/tokenizer.json", "pickle"),
    ("base/base.safetensors", "pickle"),
    ("base/base.safetensors", "torch-legacy"),
    ("refine/refine.safetensors", "torch"),
    ("evaluator/model.safetensors", "torch"),
    ("evaluator/mean.npy", "npy"),
]


@pytest.mark.parametrize("rel,kind", REPLACED)
def test_model_file_replaced_by_a_pickle(good_model, tmp_path, marker, rel, kind):
    from core.pipeline import Pipeline

    folder = copy_model(good_model, tmp_path)
    plant(folder / rel, kind, marker)
    part, name = rel.split("/")
    with pytest.raises(CLEAR) as err:
        load_part(folder, part)
    assert name in str(err.value)
    if part != "evaluator":
        with pytest.raises(CLEAR) as err:
            Pipeline(folder)
        assert name in str(err.value)


@pytest.mark.parametrize("ext", [".pt", ".pth", ".bin", ".ckpt"])
def test_pickled_weights_under_other_names_are_never_read(good_model, tmp_path, marker, ext):
    from core.pipeline import Pipeline

    folder = copy_model(good_model, tmp_path)
    for part in ("tokenizer", "base", "refine", "evaluator"):      # beside the real weights: ignored
        for stem in ("model", "pytorch_model", part):
            plant(folder / part / f"{stem}{ext}", "torch", marker)
    Pipeline(folder)
    load_part(folder, "evaluator")
    # instead of the real weights: "not found", never a fallback onto the pickle
    (folder / "base" / "base.safetensors").unlink()
    with pytest.raises(CLEAR, match="base.safetensors"):
        Pipeline(folder)
    (folder / "evaluator" / "model.safetensors").unlink()
    with pytest.raises(CLEAR, match="model.safetensors"):
        load_part(folder, "evaluator")


def test_run_folder_layout(good_model, tmp_path, marker):
    """`pgr2m train all` makes OUT/<stage>/model/...: the same checks apply there."""
    from core.pipeline import Pipeline

    folder = copy_model(good_model, tmp_path)
    for part in ("tokenizer", "base", "refine"):
        inner = folder / part / "model"
        inner.mkdir()
        for f in list((folder / part).iterdir()):
            if f.is_file():
                f.rename(inner / f.name)
    Pipeline(folder)                                   # the layout itself loads
    plant(folder / "refine" / "model" / "refine.safetensors", "pickle", marker)
    with pytest.raises(CLEAR, match="refine.safetensors"):
        Pipeline(folder)


def evil_clip_folder(root: Path, marker, weights: str = "pytorch_model.bin") -> Path:
    """A CLIP text-model folder whose weights are a pickle."""
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({
        "model_type": "clip_text_model", "hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1,
        "num_attention_heads": 2, "max_position_embeddings": 77, "vocab_size": 99, "projection_dim": 32}))
    (root / "vocab.json").write_text(json.dumps({"<|startoftext|>": 0, "<|endoftext|>": 1, "a</w>": 2}))
    (root / "merges.txt").write_text("#version: 0.2\n")
    if weights == "index":                     # sharded: the index is JSON, the shard a pickle
        (root / "pytorch_model.bin.index.json").write_text(json.dumps(
            {"metadata": {}, "weight_map": {"text_model.embeddings.token_embedding.weight": "shard.bin"}}))
        plant(root / "shard.bin", "torch", marker)
    else:
        plant(root / weights, "torch", marker)
    return root


@pytest.mark.parametrize("weights", ["pytorch_model.bin", "model.safetensors", "index"])
def test_model_naming_a_pickled_text_encoder(good_model, tmp_path, marker, weights):
    """base.json / refine.json name the text encoder: a CLIP folder holding a pickle is refused."""
    from core.pipeline import Pipeline
    from core.text.encoders import TextEncoderError

    folder = copy_model(good_model, tmp_path)
    clip = evil_clip_folder(tmp_path / "clip", marker, weights)
    for part in ("base", "refine"):
        cfg = json.loads((folder / part / f"{part}.json").read_text())
        cfg["text_encoder"] = f"clip:{clip}"
        (folder / part / f"{part}.json").write_text(json.dumps(cfg))
    pipe = Pipeline(folder)                    # the encoder loads on first use
    with pytest.raises(TextEncoderError, match=str(clip)):
        pipe.generate("a person walks", seed=1, length=16)


# --------------------------------------------------------------------------
# training runs


def toy_config(out, **kw):
    from toy_stage import ToyStage

    from core.train.config import TrainConfig

    return TrainConfig(stage="toy_stage:ToyStage", out=str(out), **{**ToyStage.PRESETS["small"], **kw})


@pytest.mark.parametrize("kind", ["pickle", "torch"])
def test_pickled_training_checkpoint(tmp_path, marker, kind):
    from toy_stage import ToyStage

    from core.model.io import CheckpointError
    from core.train.checkpoint import checkpoint_state, load_checkpoint, read_checkpoint
    from core.train.loop import train

    run = tmp_path / "run"
    ckpt = plant(run / "checkpoint.safetensors", kind, marker)
    for fn in (read_checkpoint, checkpoint_state, lambda p: load_checkpoint(p, torch.nn.Linear(1, 1))):
        with pytest.raises(CheckpointError, match="not a PGR²M checkpoint"):
            fn(ckpt)
    with pytest.raises(CheckpointError, match="checkpoint.safetensors"):
        train(ToyStage, toy_config(run))                   # resumes: reads the checkpoint


def test_pickled_best_weights_of_a_finished_run(tmp_path, marker):
    from toy_stage import ToyStage

    from core.model.io import CheckpointError
    from core.train.loop import train

    run = tmp_path / "run"
    train(ToyStage, toy_config(run, max_steps=5))
    plant(run / "best.safetensors", "torch", marker)
    with pytest.raises(CheckpointError, match="best.safetensors"):
        train(ToyStage, toy_config(run, max_steps=5))     # finished: exports the best weights


def test_pickled_text_caches_in_a_run_folder_are_rebuilt(tmp_path, marker):
    from core.train.evaluator_stage import EvaluatorStage
    from core.train.text_motion import text_conditions

    run = tmp_path / "run"
    plant(run / "text_conditions.safetensors", "pickle", marker)
    cond = text_conditions(["a person walks"], "minilm", run)
    assert cond.shape[0] == 1
    assert text_conditions(["a person walks"], "minilm", run).equal(cond)      # a real cache now
    plant(run / "text_features.safetensors", "torch", marker)
    stub = SimpleNamespace(config=SimpleNamespace(out=str(run)),
                           model_config=lambda: SimpleNamespace(text_encoder="minilm"))
    assert EvaluatorStage._text_cache(stub, ["a person walks"]).sentence.shape[0] == 1


# --------------------------------------------------------------------------
# projects, datasets, motion files, the original evaluator


@pytest.fixture(scope="module")
def good_project(good_model, tmp_path_factory):
    from core.document import Document
    from core.pipeline import Pipeline

    pipe = Pipeline(good_model)
    cond = torch.zeros(1, 12, 384)
    doc = Document(prompt="a person walks", length=40, n_samples=1, seed=5)
    doc.set_samples(pipe.generate("a person walks", seed=5, length=40, cond=cond))
    return save_project(tmp_path_factory.mktemp("project") / "good.pgr2m", doc)


def evil_project(good_project: Path, path: Path, marker, how: str = "array") -> Path:
    """A copy of the good project with a pickled array in motions.npz (or motions.npz a pickle)."""
    import zipfile

    with zipfile.ZipFile(good_project) as z:
        members = {n: z.read(n) for n in z.namelist()}
    if how == "array":
        with zipfile.ZipFile(io.BytesIO(members["motions.npz"])) as z:
            inner = {n: z.read(n) for n in z.namelist()}
        inner["s0_joints.npy"] = evil("npy", marker)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for n, d in inner.items():
                z.writestr(n, d)
        members["motions.npz"] = buf.getvalue()
    else:
        members["motions.npz"] = evil("pickle", marker)
    with zipfile.ZipFile(path, "w") as z:
        for n, d in members.items():
            z.writestr(n, d)
    return path


@pytest.mark.parametrize("how", ["array", "member"])
def test_pickled_project(good_project, tmp_path, marker, how):
    load_project(good_project)
    path = evil_project(good_project, tmp_path / "evil.pgr2m", marker, how)
    with pytest.raises(ProjectError, match="evil.pgr2m"):
        load_project(path)
    # as an autosave: skipped, with the reason
    folder = tmp_path / "autosave"
    folder.mkdir()
    shutil.copy(path, folder / "0123.pgr2m")
    problems = []
    assert recoverable(folder, problems) == [] and "0123.pgr2m" in problems[0]


@pytest.fixture
def dataset(tiny_dataset, tmp_path):
    return Path(shutil.copytree(tiny_dataset, tmp_path / "data"))


def test_pickled_dataset_files(dataset, marker):
    from core.data.humanml3d import DatasetError, HumanML3DFolder

    ids = (dataset / "all.txt").read_text().split()
    # cached pose codes: recomputed; joints (read to recompute codes): the clip is skipped, with the reason
    plant(dataset / "codes" / f"{ids[0]}.npy", "npy", marker)
    plant(dataset / "new_joints" / f"{ids[1]}.npy", "npy", marker)
    (dataset / "codes" / f"{ids[1]}.npy").unlink()
    ds = HumanML3DFolder(dataset, "all")
    assert ids[0] in ds.ids and ids[1] not in ds.ids
    assert any(f"{ids[1]}.npy: holds pickled" in p for p in ds.problems)
    assert atomic.load_npy(dataset / "codes" / f"{ids[0]}.npy").dtype == bool       # rewritten
    for clip in ids:
        plant(dataset / "new_joint_vecs" / f"{clip}.npy", "npy", marker)
    with pytest.raises(DatasetError, match="no usable motions"):
        HumanML3DFolder(dataset, "all")
    plant(dataset / "Mean.npy", "pickle", marker)
    with pytest.raises(DatasetError, match="Mean.npy"):
        HumanML3DFolder(dataset, "all")


@pytest.mark.parametrize("kind", ["npy", "pickle"])
def test_pickled_motion_file(good_model, tmp_path, marker, kind):
    from core.formats.motion_files import MotionFileError, load_motion
    from core.pipeline import Pipeline

    path = plant(tmp_path / "input.npy", kind, marker)
    with pytest.raises(MotionFileError, match="input.npy"):
        load_motion(path, Pipeline(good_model))


def test_pickled_original_evaluator_files(tmp_path, marker):
    from core.eval.t2m_original import T2MEvaluatorError, load_glove, load_t2m_evaluator, load_t2m_meta

    t2m = tmp_path / "t2m"
    plant(t2m / "text_mot_match" / "model" / "finest.tar", "torch", marker)
    with pytest.raises(T2MEvaluatorError, match="finest.tar"):
        load_t2m_evaluator(t2m)
    plant(t2m / "meta" / "mean.npy", "npy", marker)
    plant(t2m / "meta" / "std.npy", "npy", marker)
    with pytest.raises(ValueError, match="mean.npy"):
        load_t2m_meta(t2m)
    glove = tmp_path / "glove"
    plant(glove / "our_vab_data.npy", "npy", marker)
    (glove / "our_vab_words.pkl").write_bytes(pickle.dumps(["a"]))
    (glove / "our_vab_idx.pkl").write_bytes(pickle.dumps({"a": 0}))
    with pytest.raises(ValueError, match="our_vab_data.npy"):
        load_glove(glove)
    np.save(glove / "our_vab_data.npy", np.zeros((1, 300), np.float32))
    plant(glove / "our_vab_idx.pkl", "pickle", marker)
    with pytest.raises(T2MEvaluatorError, match="our_vab_idx.pkl"):
        load_glove(glove)


# --------------------------------------------------------------------------
# the command line, as the user runs it


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "core.cli", *map(str, args)], env=ENV, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def assert_refused(r, *words):
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), r.stderr[-3000:]
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in last, last


def model_with_evil_clip(good_model, tmp_path, marker) -> Path:
    """A copy of the model whose Base and Refine name a CLIP folder with pickled weights."""
    folder = copy_model(good_model, tmp_path)
    clip = evil_clip_folder(tmp_path / "clip", marker)
    for part in ("base", "refine"):
        cfg = json.loads((folder / part / f"{part}.json").read_text())
        cfg["text_encoder"] = f"clip:{clip}"
        (folder / part / f"{part}.json").write_text(json.dumps(cfg))
    return folder


def bad_model(good_model, tmp_path, rel, kind, marker):
    folder = copy_model(good_model, tmp_path)
    plant(folder / rel, kind, marker)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("rel,kind", [("base/base.safetensors", "torch"), ("tokenizer/mean.npy", "npy"),
                                      ("refine/refine.safetensors", "pickle")])
def test_cli_generate_with_a_pickled_model(good_model, tmp_path, marker, rel, kind):
    folder = bad_model(good_model, tmp_path, rel, kind, marker)
    r = run_cli("generate", "a person walks", "--model", folder, "-o", tmp_path / "out.npy", "--seed", 1)
    assert_refused(r, Path(rel).name)
    assert not (tmp_path / "out.npy").exists()


@pytest.mark.slow
def test_cli_generate_with_a_pickled_text_encoder(good_model, tmp_path, marker):
    folder = model_with_evil_clip(good_model, tmp_path, marker)
    assert_refused(run_cli("generate", "a person walks", "--model", folder, "--length", 16), "pytorch_model.bin")


@pytest.mark.slow
def test_cli_edit_of_a_pickled_motion(good_model, tmp_path, marker):
    src = plant(tmp_path / "input.npy", "npy", marker)
    r = run_cli("edit", src, "-o", tmp_path / "out.npy", "--set", "0", "--model", good_model)
    assert_refused(r, "input.npy")
    bad = bad_model(good_model, tmp_path, "refine/refine.safetensors", "torch", marker)
    atomic.save_npy(tmp_path / "good.npy", np.zeros((40, 22, 3), np.float32))
    assert_refused(run_cli("edit", tmp_path / "good.npy", "-o", tmp_path / "out.npy", "--set", "0",
                           "--model", bad), "refine.safetensors")


@pytest.mark.slow
def test_cli_train_resume_from_a_pickled_checkpoint(tmp_path, marker):
    run = tmp_path / "run"
    plant(run / "checkpoint.safetensors", "torch", marker)
    r = run_cli("train", "toy_stage:ToyStage", "--out", run, "--resume", "--quiet")
    assert_refused(r, "checkpoint.safetensors", "not a PGR²M checkpoint")
    # train all: a finished stage is recognised by its checkpoint, read without unpickling
    out = tmp_path / "all"
    plant(out / "tokenizer" / "checkpoint.safetensors", "pickle", marker)
    (out / "tokenizer" / "model").mkdir()
    assert_refused(run_cli("train", "all", "--data", tmp_path / "nowhere", "--out", out, "--quiet"),
                   "checkpoint.safetensors")


@pytest.mark.slow
def test_cli_evaluate_with_pickled_models(good_model, tiny_dataset, tmp_path, marker):
    bad = bad_model(good_model, tmp_path, "tokenizer/tokenizer.safetensors", "torch", marker)
    for what, model in (("tokenizer", bad / "tokenizer"), ("generation", bad), ("edits", bad)):
        assert_refused(run_cli("evaluate", what, "--model", model, "--data", tiny_dataset), "tokenizer.safetensors")
    shutil.copy(good_model / "tokenizer" / "tokenizer.safetensors", bad / "tokenizer")     # good again
    plant(bad / "evaluator" / "model.safetensors", "torch", marker)
    assert_refused(run_cli("evaluate", "tokenizer", "--model", bad / "tokenizer", "--data", tiny_dataset,
                           "--evaluator", bad / "evaluator"), "model.safetensors")
    t2m = tmp_path / "t2m"
    plant(t2m / "text_mot_match" / "model" / "finest.tar", "torch", marker)
    assert_refused(run_cli("evaluate", "tokenizer", "--model", bad / "tokenizer", "--data", tiny_dataset,
                           "--t2m-evaluator", t2m, "--glove", tmp_path), "finest.tar")


@pytest.mark.slow
def test_cli_dataset_with_pickled_arrays(dataset, marker):
    plant(dataset / "Std.npy", "npy", marker)
    assert_refused(run_cli("dataset-info", dataset), "Std.npy")


# --------------------------------------------------------------------------
# the app


def gui(test):
    for mark in GUI:
        test = mark(test)
    return test


@pytest.fixture
def app_env(qtbot, studio_env, tmp_path):
    mw = studio_env
    windows = []

    def make(*a, **k):
        win = mw.MainWindow(*a, **k)
        windows.append(win)
        win.show()
        return win

    yield make
    for win in windows:
        qtbot.waitUntil(lambda: not win.runner.busy, timeout=30_000)
        win.document.mark_saved(tmp_path / "x.pgr2m")
        win.close()
        win.deleteLater()


def model_error_shown(qtbot, win, word):
    from PySide6.QtWidgets import QMessageBox

    qtbot.waitUntil(lambda: word in win.panel.status.text(), timeout=60_000)
    boxes = [b for b in win.findChildren(QMessageBox) if b.isVisible()]
    assert boxes and word in boxes[-1].text()
    assert "Traceback" not in boxes[-1].text()
    for b in boxes:
        b.close()
    assert win.pipeline is None and not win.panel.generate_button.isEnabled()


@gui
@pytest.mark.parametrize("rel,kind", [("base/base.safetensors", "torch"), ("tokenizer/std.npy", "npy")])
def test_app_refuses_a_pickled_model(app_env, qtbot, good_model, tmp_path, marker, rel, kind):
    win = app_env(str(bad_model(good_model, tmp_path, rel, kind, marker)))
    model_error_shown(qtbot, win, Path(rel).name)


@gui
def test_app_refuses_a_pickled_text_encoder(app_env, qtbot, good_model, tmp_path, marker):
    folder = model_with_evil_clip(good_model, tmp_path, marker)
    win = app_env(str(folder))
    model_error_shown(qtbot, win, "pytorch_model.bin")


@gui
def test_app_refuses_a_pickled_project_and_autosave(app_env, qtbot, good_project, tmp_path, marker, monkeypatch):
    from PySide6.QtWidgets import QMessageBox

    import pgr2m_studio.main_window as mw

    win = app_env(load_model=False)
    shown, asked = [], []
    monkeypatch.setattr(QMessageBox, "warning", lambda parent, title, text, *a: shown.append(text))
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.Yes)
    path = evil_project(good_project, tmp_path / "evil.pgr2m", marker)
    assert not win.open_project(str(path))
    assert shown and "evil.pgr2m" in shown[0] and "pickled" in shown[0]
    assert win.document.path is None and not win.document.samples
    # a pickled autosave: nothing is offered
    folder = mw.autosave_folder()
    folder.mkdir()
    shutil.copy(path, folder / "0123.pgr2m")
    win.offer_recovery()
    assert not asked and not win.document.samples
