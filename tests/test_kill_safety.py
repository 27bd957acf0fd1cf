"""Kills at random moments: a project being saved, a training run, the app with unsaved work.

Each case runs the real work in a subprocess, SIGKILLs it many times and checks what is left:
a readable project (the previous or the new one), a training run that resumes with nothing lost
or repeated, and autosaved work that a new window offers back."""

import json
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ENV = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{HERE}", "OMP_NUM_THREADS": "1"}
SAMPLES, STEPS = 10, 49                 # 10 motions of 196 frames: ~2.8 MB per project


def make_doc(version: int):
    """Version `version` of a project: its prompt says which, its arrays are seeded by it."""
    from test_document import fake_motion

    from core.document import Document

    doc = Document(prompt=f"v{version}", length=196, n_samples=3, seed=version)
    doc.set_samples([fake_motion(seed=1000 * version + i, steps=STEPS, prompt=f"v{version}")
                     for i in range(SAMPLES)], current=0)
    return doc


def version_of(path: Path) -> int:
    from core.project import load_project

    doc = load_project(path)
    v = int(doc.prompt[1:])
    want = make_doc(v).samples
    assert len(doc.samples) == SAMPLES
    for a, b in zip(doc.samples, want):
        assert np.array_equal(a.joints, b.joints) and np.array_equal(a.pose_codes, b.pose_codes)
    return v


def temps(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.*.tmp"))


def save_loop(path: str, start: int) -> None:
    """The child: save versions start, start+1, ... to path until killed."""
    from core.project import save_project

    doc = make_doc(start)                  # built before "ready": saving is what gets killed
    print("ready", flush=True)
    v = start
    while True:
        save_project(path, doc)
        print(f"saved {v}", flush=True)
        v += 1
        doc = make_doc(v)


def read_until(proc, word: str, timeout: float) -> list[str]:
    lines, deadline = [], time.time() + timeout
    while time.time() < deadline:
        if select.select([proc.stdout], [], [], 0.1)[0]:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
            if line.startswith(word):
                return lines
    raise AssertionError(f"the child never said {word!r}: {lines}")


@pytest.mark.slow
def test_killing_a_project_save_leaves_the_old_or_the_new_file(tmp_path):
    from core.project import save_project

    path = tmp_path / "work.pgr2m"
    save_project(path, make_doc(0))
    assert path.stat().st_size > 2_000_000
    rng = random.Random(1)
    good, seen_new, mid_save, kills = 0, 0, 0, 20
    for _ in range(kills):
        proc = subprocess.Popen([sys.executable, __file__, str(path), str(good + 1)], env=ENV,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        read_until(proc, "ready", 120)
        time.sleep(rng.uniform(0.0, 0.8))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, err
        saved = [int(line.split()[1]) for line in out.split("\n") if line.startswith("saved")]
        last_done = saved[-1] if saved else good
        v = version_of(path)                        # readable, and exactly one version
        assert v in (last_done, last_done + 1), (v, last_done)
        seen_new += v > good
        # at most the temp file of the save that was killed (older ones went on the next save)
        assert len(temps(path)) <= 1, temps(path)
        mid_save += len(temps(path))
        good = v
    # the kills did land during saves (a temp file left), and between them (a new version)
    assert mid_save >= kills // 4 and seen_new >= kills // 2, (mid_save, seen_new)
    save_project(path, make_doc(good + 1))
    assert temps(path) == [] and version_of(path) == good + 1


def test_stale_temp_files_of_dead_writers_only_are_removed(tmp_path):
    from core import atomic

    target = tmp_path / "work.pgr2m"
    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen(["sleep", "30"])
    try:
        files = {pid: tmp_path / f".work.pgr2m.{pid}.abcd1234.tmp" for pid in (dead.pid, live.pid, os.getpid())}
        others = [tmp_path / f".work.pgr2m.bak.{dead.pid}.abcd1234.tmp", tmp_path / ".other.pgr2m.1.x.tmp",
                  tmp_path / f".work.pgr2m.{dead.pid}.a.b.tmp"]
        for f in [*files.values(), *others]:
            f.write_bytes(b"partial")
        atomic.write_bytes(target, b"new", clean=True)
        assert not files[dead.pid].exists()
        assert files[live.pid].exists() and files[os.getpid()].exists()     # writes in progress
        assert all(f.exists() for f in others) and target.read_bytes() == b"new"
    finally:
        live.kill()
        live.wait()


# --------------------------------------------------------------------------
# training


def _train(out, *extra):
    return [sys.executable, "-m", "core.cli", "train", "toy_stage:ToyStage", "--out", str(out), "--quiet",
            "--max-steps", "40", "--set", "extra.dropout=0.2", *extra]


def _log(out):
    return [json.loads(line) for line in (Path(out) / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_kill_training_many_times_then_resume(tmp_path):
    """Kills at random moments (one before the first checkpoint); each resume goes on from the
    last checkpoint, and the final log holds every step exactly once, as an uninterrupted run."""
    from core.train.checkpoint import checkpoint_state

    straight = tmp_path / "straight"
    subprocess.run(_train(straight, "--set", "extra.sleep=0"), env=ENV, check=True, capture_output=True)
    run = tmp_path / "killed"
    log = run / "metrics.jsonl"
    rng = random.Random(3)
    kills = 0
    for i in range(6):
        before = len(log.read_text().splitlines()) if log.is_file() else 0
        proc = subprocess.Popen(_train(run, "--set", "extra.sleep=0.04", *(["--resume"] if i else [])),
                                env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:    # wait until this run has stepped
            if log.is_file() and len(log.read_text().splitlines()) > before:
                break
            time.sleep(0.01)
        if proc.poll() is not None:
            break                                  # it finished before the kill
        time.sleep(0 if i == 0 else rng.uniform(0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
        if i == 0:
            assert not (run / "checkpoint.safetensors").exists()    # killed before its first checkpoint
    assert kills >= 4
    r = subprocess.run(_train(run, "--set", "extra.sleep=0", "--resume"), env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    a, b = _log(straight), _log(run)
    steps = [e["step"] for e in b if e["kind"] == "log"]
    assert steps == list(range(1, 41))                              # none repeated, none missing
    assert [e["step"] for e in b if e["kind"] == "val"] == [5, 10, 15, 20, 25, 30, 35, 40]
    la = {e["step"]: e["loss"] for e in a if e["kind"] == "log"}
    assert all(e["loss"] == la[e["step"]] for e in b if e["kind"] == "log")     # bit-for-bit
    assert [e["val_loss"] for e in a if e["kind"] == "val"] == [e["val_loss"] for e in b if e["kind"] == "val"]
    assert checkpoint_state(run / "checkpoint.safetensors")["step"] == 40
    assert (run / "model" / "model.safetensors").is_file()
    assert list(run.glob(".*.tmp")) == []


# --------------------------------------------------------------------------
# the app


def autosave_loop(folder: str) -> None:
    """The child: a session with unsaved work, autosaved again and again until killed."""
    from core.project import autosave

    doc = make_doc(7)
    doc.mark_saved(Path(folder).parent / "saved-before.pgr2m")
    doc.set_samples(make_doc(8).samples, current=2)        # changed since: unsaved work
    print(f"uid {doc.uid}", flush=True)
    while True:
        autosave(doc, folder)
        print("autosaved", flush=True)


@pytest.mark.gui
@pytest.mark.skipif(sys.platform.startswith("linux") and not os.environ.get("DISPLAY"),
                    reason="no display; run under Xvfb with `bash scripts/run-tests.sh`")
def test_after_a_crash_a_new_window_offers_the_autosaved_work(qtbot, tmp_path, monkeypatch):
    from PySide6.QtCore import QCoreApplication, QSettings, QStandardPaths
    from PySide6.QtWidgets import QMessageBox

    import pgr2m_studio.main_window as mw
    from core.project import load_project

    QStandardPaths.setTestModeEnabled(True)
    QCoreApplication.setOrganizationName("PGR2M-tests")
    QSettings().clear()
    folder = tmp_path / "autosave"
    monkeypatch.setattr(mw, "autosave_folder", lambda: folder)
    proc = subprocess.Popen([sys.executable, __file__, "--autosave", str(folder)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    uid = read_until(proc, "uid", 120)[-1].split()[1]
    read_until(proc, "autosaved", 60)
    time.sleep(random.Random(5).uniform(0, 0.5))
    proc.send_signal(signal.SIGKILL)                       # the crash
    proc.communicate()
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[2]) or QMessageBox.Yes)
    win = mw.MainWindow(load_model=False)                  # the app starts again
    qtbot.addWidget(win)
    win.show()
    win.offer_recovery()
    assert asked and "“v7”" in asked[0]                       # its prompt setting
    doc = win.document
    assert doc.uid == uid and doc.dirty and doc.path == tmp_path / "saved-before.pgr2m"
    assert doc.current == 2 and [m.joints.tobytes() for m in doc.samples] == \
        [m.joints.tobytes() for m in make_doc(8).samples]
    assert win.windowTitle().startswith("saved-before.pgr2m *")
    assert win.save() and not list(folder.glob("*.pgr2m"))          # saved where it was: autosave gone
    saved = load_project(tmp_path / "saved-before.pgr2m")
    assert [m.joints.tobytes() for m in saved.samples] == [m.joints.tobytes() for m in make_doc(8).samples]
    win.close()


if __name__ == "__main__":
    sys.path[:0] = [str(REPO), str(HERE)]
    if sys.argv[1] == "--autosave":
        autosave_loop(sys.argv[2])
    else:
        save_loop(sys.argv[1], int(sys.argv[2]))
