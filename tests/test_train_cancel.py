"""`pgr2m train` stops cleanly on SIGTERM (the app's Cancel): a checkpoint at the current step,
exit status 130, and the same command resumes from there."""

import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO

TINY = ["--set", "batch_size=4", "--set", "threads=1", "--set", "log_every=1", "--set", "val_every=1000",
        "--set", "ckpt_every=1000", "--set", "window=16", "--set", "model.width=32", "--set", "model.code_dim=32",
        "--set", "model.n_codes=16"]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
def test_sigterm_checkpoints_the_current_step_and_the_run_resumes(tiny_dataset, tmp_path):
    from core.train.checkpoint import checkpoint_state

    out = tmp_path / "all"
    cmd = [sys.executable, "-m", "core.cli", "train", "all", "--stages", "tokenizer", "--data", str(tiny_dataset),
           "--out", str(out), "--quiet", "--max-steps", "150", *TINY]
    log = out / "tokenizer" / "metrics.jsonl"
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (log.is_file() and log.read_text().strip()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "cancelled at step" in stdout and "model folder" not in stdout
    stopped = checkpoint_state(out / "tokenizer" / "checkpoint.safetensors")["step"]
    assert 0 < stopped < 150
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    steps = [e["step"] for e in map(json.loads, log.read_text().splitlines()) if e["kind"] == "log"]
    assert steps == list(range(1, 151))
