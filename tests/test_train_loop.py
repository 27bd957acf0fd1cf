import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from toy_stage import ToyStage

from core.model.io import CheckpointError, load_weights
from core.train.checkpoint import load_checkpoint, save_checkpoint
from core.train.config import TrainConfig, lr_at
from core.train.loop import train

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}", "OMP_NUM_THREADS": "1"}


def toy_config(out, **kw):
    return TrainConfig(stage="toy_stage:ToyStage", out=str(out), **{**ToyStage.PRESETS["small"], **kw})


def losses(out):
    return {e["step"]: e["loss"] for e in map(json.loads, (Path(out) / "metrics.jsonl").read_text().splitlines())
            if e["kind"] == "log"}


def test_lr_schedule():
    cfg = TrainConfig(lr=1.0, warmup_steps=3, milestones=[10, 20], gamma=0.1)
    assert [lr_at(s, cfg) for s in (0, 2, 3, 9, 10, 19, 20)] == pytest.approx([0.25, 0.75, 1, 1, 0.1, 0.1, 0.01])


def test_config_json_and_overrides(tmp_path):
    cfg = TrainConfig(stage="tokenizer", data="d", out="o", milestones=[5])
    cfg.save(tmp_path / "c.json")
    assert TrainConfig.load(tmp_path / "c.json") == cfg
    cfg2 = cfg.override(["lr=2e-4", "model.width=64", "extra.tau=0.5", "betas=[0.5, 0.9]"])
    assert (cfg2.lr, cfg2.model, cfg2.extra, cfg2.betas) == (2e-4, {"width": 64}, {"tau": 0.5}, (0.5, 0.9))
    with pytest.raises(ValueError, match="unknown training setting"):
        cfg.override(["lerning_rate=1"])
    with pytest.raises(ValueError, match="multiple of 4"):
        TrainConfig(window=30)


def test_checkpoint_round_trip_and_refusals(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    model[1].weight = torch.nn.Parameter(model[1].weight)   # plain
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(5, 3)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "c.safetensors", model, opt, {"step": 7, "best": 0.5})
    model2 = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    opt2 = torch.optim.AdamW(model2.parameters(), lr=0.1)
    state = load_checkpoint(tmp_path / "c.safetensors", model2, opt2)
    assert state == {"step": 7, "best": 0.5}
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert all(torch.equal(s1["state"][0][k], s2["state"][0][k]) for k in ("exp_avg", "exp_avg_sq"))
    # a pickle named like a checkpoint is refused, and its payload never runs
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "evil.safetensors").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError, match="not a PGR²M checkpoint"):
        load_checkpoint(tmp_path / "evil.safetensors", model2)
    with pytest.raises(CheckpointError):
        load_weights(tmp_path / "evil.safetensors", model2)
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path / "c.safetensors", torch.nn.Linear(3, 3))


def test_training_writes_logs_best_and_model(tmp_path):
    events = []
    result = train(ToyStage, toy_config(tmp_path), progress=events.append)
    assert result.status == "finished" and result.step == 20
    lo = losses(tmp_path)
    assert lo[20] < lo[1] / 4
    assert {"checkpoint.safetensors", "best.safetensors", "config.json", "metrics.jsonl"} <= {p.name for p in tmp_path.iterdir()}
    assert (tmp_path / "model" / "model.safetensors").is_file()
    kinds = [e["kind"] for e in events]
    assert kinds.count("val") == 4 and kinds[-1] == "done" and "checkpoint" in kinds


def test_cancel_then_resume_gives_the_same_losses(tmp_path):
    straight = tmp_path / "a"
    train(ToyStage, toy_config(straight, extra={"dropout": 0.3}))
    stopped = tmp_path / "b"
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 12

    r = train(ToyStage, toy_config(stopped, extra={"dropout": 0.3}), should_stop=stop)
    assert r.status == "cancelled" and r.step == 12
    r = train(ToyStage, toy_config(stopped, extra={"dropout": 0.3}))
    assert r.step == 20
    a, b = losses(straight), losses(stopped)
    assert sorted(b) == list(range(1, 21))
    assert all(a[s] == b[s] for s in range(1, 21))          # bit-for-bit, dropout included


def test_refuses_to_overwrite_a_run_and_checks_settings(tmp_path):
    train(ToyStage, toy_config(tmp_path, max_steps=5))
    with pytest.raises(CheckpointError, match="already holds"):
        train(ToyStage, toy_config(tmp_path, max_steps=5), resume=False)
    with pytest.raises(CheckpointError, match="same settings"):
        train(ToyStage, toy_config(tmp_path, max_steps=8, preset="paper"))


def _cli(*args, out):
    return [sys.executable, "-m", "core.cli", "train", "toy_stage:ToyStage", "--out", str(out), "--quiet", *args]


@pytest.mark.slow
def test_kill_at_any_point_then_resume(tmp_path):
    straight = tmp_path / "a"
    subprocess.run(_cli("--max-steps", "40", "--set", "extra.dropout=0.2", "--set", "extra.sleep=0", out=straight),
                   env=ENV, check=True, capture_output=True)
    killed = tmp_path / "b"
    proc = subprocess.Popen(_cli("--max-steps", "40", "--set", "extra.dropout=0.2", "--set", "extra.sleep=0.05",
                                 out=killed), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        log = killed / "metrics.jsonl"
        if log.is_file() and len(log.read_text().splitlines()) >= 17:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    r = subprocess.run(_cli("--max-steps", "40", "--set", "extra.dropout=0.2", "--set", "extra.sleep=0",
                            "--resume", out=killed), env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    a, b = losses(straight), losses(killed)
    assert sorted(b) == list(range(1, 41)) and all(a[s] == b[s] for s in a)


@pytest.mark.slow
def test_two_process_ddp_on_gloo_matches_one_process_with_both_batches(tmp_path):
    ddp = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "core.cli", "train", "toy_stage:ToyStage", "--out", str(ddp), "--quiet", "--max-steps", "10"]
    r = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    single = tmp_path / "single"
    train(ToyStage, toy_config(single, max_steps=10, extra={"simulate_world": 2}))
    m1, m2 = ToyStage(toy_config(ddp), "cpu").build_model(), ToyStage(toy_config(ddp), "cpu").build_model()
    load_weights(ddp / "model" / "model.safetensors", m1)
    load_weights(single / "model" / "model.safetensors", m2)
    for a, b in zip(m1.parameters(), m2.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert len(losses(ddp)) == 10
