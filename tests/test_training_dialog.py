"""Model → Train a Model…: a tiny model trained from the dialog in a separate process, then
loaded; Cancel and Resume; a failing run reported in the dialog."""

import json
import shutil

import pytest
from conftest import GUI, TEST_DATA

pytestmark = GUI

TINY = ("batch_size=4 threads=1 warmup_steps=2 lr=1e-3 log_every=2 val_every=10 ckpt_every=1000 "
        "tokenizer:window=16 tokenizer:model.width=32 tokenizer:model.code_dim=32 tokenizer:model.n_codes=16 "
        "refine:model.n_codes=16 base:model.dim=32 base:model.layers=1 base:model.heads=2 "
        "refine:model.dim=32 refine:model.layers=1 refine:model.heads=2")
RUN_MS = 180_000


@pytest.fixture
def window(qtbot, studio_env):
    win = studio_env.MainWindow(load_model=False)
    win.show()
    yield win
    from pgr2m_studio.training_dialog import TrainingDialog

    dialog = win.findChild(TrainingDialog, "TrainingDialog")
    if dialog is not None:
        dialog.process.stop_now()
    qtbot.waitUntil(lambda: not win.runner.busy, timeout=30_000)
    win.close()
    win.deleteLater()


def open_dialog(win):
    action = next(a for a in win.menuBar().actions() if a.text() == "&Model")
    train = next(a for a in action.menu().actions() if a.text().startswith("&Train a Model"))
    train.trigger()
    from pgr2m_studio.training_dialog import TrainingDialog

    dialog = win.findChild(TrainingDialog, "TrainingDialog")
    assert dialog is not None and dialog.isVisible()
    return dialog


def fill(dialog, data, out, stages=("tokenizer", "base", "refine"), steps=20, extra=TINY, kind="humanml3d"):
    dialog.data_edit.setText(str(data))
    dialog.kind_combo.setCurrentIndex(dialog.kind_combo.findData(kind))
    for name, box in dialog.stage_boxes.items():
        box.setChecked(name in stages)
    dialog.config_combo.setCurrentText("small")
    dialog.device_combo.setCurrentText("cpu")
    dialog.out_edit.setText(str(out))
    dialog.steps_spin.setValue(steps)
    dialog.extra_edit.setText(extra)


def wait_done(qtbot, dialog, timeout=RUN_MS):
    qtbot.waitUntil(lambda: not dialog.process.running, timeout=timeout)


def log_steps(run):
    return [e for e in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if e["kind"] == "log"]


def test_train_a_tiny_model_from_the_dialog_and_load_it(window, qtbot, tiny_dataset, tmp_path):
    win = window
    dialog = open_dialog(win)
    out = tmp_path / "model"
    fill(dialog, tiny_dataset, out)
    assert not dialog.load_button.isEnabled()
    dialog.start_button.click()
    assert dialog.process.running and not dialog.start_button.isEnabled() and dialog.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.progress.value() > 0, timeout=RUN_MS)      # live progress while it runs
    wait_done(qtbot, dialog)
    assert "finished" in dialog.status.text(), dialog.log.toPlainText()
    assert dialog.progress.value() == dialog.progress.maximum()
    for stage in ("tokenizer", "base", "refine"):
        assert dialog.plot.point_count(f"{stage} loss") == 10
        assert (out / stage / "model").is_dir()
    assert dialog.plot.point_count("base val_loss") == 2
    assert "val_mpjpe_mm" not in dialog.val_label.text() and "mpjpe_mm" in dialog.val_label.text()
    assert (out / "base" / "model" / "base.safetensors").is_file()

    assert dialog.load_button.isEnabled()
    dialog.load_button.click()
    qtbot.waitUntil(lambda: win.pipeline is not None, timeout=60_000)
    assert win.pipeline.model_dir == out and win.model_dir == str(out)
    assert win.pipeline.base.config.dim == 32


def test_cancel_then_resume_continues_from_the_checkpoint(window, qtbot, tiny_dataset, tmp_path):
    from core.train.checkpoint import checkpoint_state

    dialog = open_dialog(window)
    out = tmp_path / "run"
    fill(dialog, tiny_dataset, out, stages=("tokenizer",), steps=150,
         extra=TINY.replace("log_every=2", "log_every=1").replace("val_every=10", "val_every=100"))
    dialog.start_button.click()
    qtbot.waitUntil(lambda: dialog.progress.value() > 0, timeout=RUN_MS)
    dialog.cancel_button.click()
    wait_done(qtbot, dialog, timeout=60_000)
    assert "Cancelled" in dialog.status.text(), dialog.log.toPlainText()
    stopped = checkpoint_state(out / "tokenizer" / "checkpoint.safetensors")["step"]
    assert 0 < stopped < 150                               # a clean checkpoint at the step it stopped
    before = log_steps(out / "tokenizer")
    assert [e["step"] for e in before] == list(range(1, stopped + 1))
    assert dialog.resume_button.isEnabled() and not dialog.load_button.isEnabled()

    dialog.resume_button.click()
    assert dialog.progress.value() == round(1000 * stopped / 150)       # its history is shown at once
    wait_done(qtbot, dialog)
    assert "finished" in dialog.status.text(), dialog.log.toPlainText()
    assert checkpoint_state(out / "tokenizer" / "checkpoint.safetensors")["step"] == 150
    after = log_steps(out / "tokenizer")
    assert [e["step"] for e in after] == list(range(1, 151))          # continued, not restarted
    assert after[:stopped] == before
    assert dialog.plot.point_count("tokenizer loss") == 150
    assert dialog.progress.value() == dialog.progress.maximum()


@pytest.mark.parametrize("case", ["not a dataset", "crash"])
def test_a_failing_run_is_reported_in_the_dialog(window, qtbot, tiny_dataset, tmp_path, case):
    dialog = open_dialog(window)
    if case == "not a dataset":
        data, extra, expected = tmp_path / "empty", TINY, "does not look like a HumanML3D-format folder"
        data.mkdir()
    else:                                                  # an unexpected exception: a traceback
        data, extra, expected = tiny_dataset, TINY + " lr=oops", "TypeError"
    fill(dialog, data, tmp_path / "out", stages=("tokenizer",), steps=4, extra=extra)
    dialog.start_button.click()
    wait_done(qtbot, dialog)
    assert dialog.status.text().startswith("Training failed") and expected in dialog.status.text()
    assert expected in dialog.log.toPlainText()
    assert window.isVisible() and dialog.isVisible() and dialog.start_button.isEnabled()
    assert not dialog.load_button.isEnabled()
    dialog.start_button.click()                            # the folder now holds a run: Start says so
    assert "already holds a training run" in dialog.status.text() and not dialog.process.running


def test_a_bvh_folder_is_imported_first(window, qtbot, tmp_path):
    src = tmp_path / "bvh"
    src.mkdir()
    for f in (TEST_DATA / "bvh").glob("dataset-1_*.bvh"):
        shutil.copy(f, src / f.name)
        (src / f.name).with_suffix(".json").write_text(json.dumps({"text": f"a person does {f.stem.split('_')[1]}"}))
    dialog = open_dialog(window)
    fill(dialog, src, tmp_path / "out", stages=("tokenizer",), steps=4, kind="humanml3d")
    dialog.data_edit.editingFinished.emit()                # the kind is recognised from the folder
    assert dialog.kind_combo.currentData() == "bvh"
    dialog.start_button.click()
    wait_done(qtbot, dialog)
    assert "finished" in dialog.status.text(), dialog.log.toPlainText()
    assert "import-bvh" in dialog.log.toPlainText()
    assert (tmp_path / "out" / "dataset" / "train.txt").is_file()
    assert (tmp_path / "out" / "tokenizer" / "model").is_dir()
