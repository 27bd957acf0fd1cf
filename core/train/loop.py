"""The training loop shared by every stage, in the spirit of nanoGPT's train.py.

A stage (tokenizer, evaluator, base, refine) says how to build its model, draw a batch and
compute a loss; this loop does the rest: AdamW, warm-up and step decay, clipping, validation,
checkpoints, exact resume, progress events, cancellation, and DDP when started by torchrun.

Exact resume: each step seeds torch and its batch generator from (seed, step, rank), so a
run resumed from the checkpoint of step k computes the same step k+1 as one never stopped.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from core import atomic
from core.model.io import CheckpointError, load_weights, save_weights
from core.train import distributed as dist
from core.train.checkpoint import load_checkpoint, save_checkpoint
from core.train.config import TrainConfig, lr_at

CHECKPOINT = "checkpoint.safetensors"
BEST = "best.safetensors"
LOG = "metrics.jsonl"


class Stage:
    """What a training stage gives the loop. Subclasses override the methods below."""

    name = "stage"
    best_metric = "val_loss"     # key of validate()'s dict that picks the best weights
    best_mode = "min"

    def __init__(self, config: TrainConfig, device: torch.device):
        self.config = config
        self.device = device

    def build_model(self) -> torch.nn.Module:
        raise NotImplementedError

    def parameters(self, model: torch.nn.Module) -> list:
        """Parameter groups for AdamW: weight decay on matrices only."""
        decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
        rest = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
        return [{"params": decay, "weight_decay": self.config.weight_decay},
                {"params": rest, "weight_decay": 0.0}]

    def get_batch(self, step: int, generator: torch.Generator) -> Any:
        raise NotImplementedError

    def training_step(self, model: torch.nn.Module, batch: Any, step: int) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def validate(self, model: torch.nn.Module) -> dict[str, float]:
        return {}

    def export(self, model: torch.nn.Module, folder: Path) -> None:
        """Write the finished model for the app and the pipeline."""
        save_weights(folder / "model.safetensors", model, {"stage": self.name})

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


@dataclass
class TrainResult:
    out: Path
    step: int
    status: str                          # finished | cancelled
    best: float | None = None
    last_logs: dict = field(default_factory=dict)


def _seed(*parts) -> int:
    h = 1469598103934665603
    for p in parts:
        h = ((h ^ (int(p) & 0xFFFFFFFF)) * 1099511628211) % (1 << 63)
    return h


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {spec!r} asked for, but no CUDA GPU is available here")
    return torch.device(spec)


def _append_log(path: Path, entry: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def _trim_log(path: Path, step: int) -> None:
    """After a resume, drop log lines from steps the checkpoint does not contain."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except json.JSONDecodeError:
            continue   # a line torn by a kill
    atomic.write_text(path, "".join(k + "\n" for k in keep))


def train(stage_factory: Callable[[TrainConfig, torch.device], Stage], config: TrainConfig, *,
          progress: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None,
          resume: bool = True) -> TrainResult:
    """Run (or resume) training. ``progress`` receives event dicts (kind: log | val | checkpoint |
    done); ``should_stop`` is polled between steps and stops cleanly with a checkpoint."""
    world = dist.setup()
    device = world.device if world.active else resolve_device(config.device)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    stage = stage_factory(config, device)
    model = stage.build_model().to(device)
    optimizer = torch.optim.AdamW(stage.parameters(model), lr=config.lr, betas=config.betas,
                                  weight_decay=config.weight_decay)

    step, best, last_logs = 0, None, {}
    ckpt = out / CHECKPOINT
    if resume and ckpt.is_file():
        state = load_checkpoint(ckpt, model, optimizer)
        saved = TrainConfig.from_dict(state["config"])
        if saved.stage != config.stage or saved.preset != config.preset or saved.model != config.model:
            raise CheckpointError(f"{ckpt}: was written for stage {saved.stage!r}, preset {saved.preset!r}; "
                                  f"resume with the same settings or choose another output folder")
        step, best = state["step"], state.get("best")
        stage.load_state_dict(state.get("stage", {}))
        if world.rank == 0:
            _trim_log(out / LOG, step)
    elif not resume and ckpt.is_file():
        raise CheckpointError(f"{out}: already holds a training run; resume it or choose another folder")
    elif world.rank == 0:
        _trim_log(out / LOG, 0)         # lines of a run killed before its first checkpoint
    if world.rank == 0:
        config.save(out / "config.json")

    net = world.wrap(model)
    better = (lambda a, b: a < b) if stage.best_mode == "min" else (lambda a, b: a > b)

    def checkpoint(reason: str):
        if world.rank == 0:
            save_checkpoint(ckpt, model, optimizer, {"step": step, "best": best, "config": config.to_dict(),
                                                     "stage": stage.state_dict(), "time": time.time()})
            if progress:
                progress({"kind": "checkpoint", "step": step, "reason": reason})
        world.barrier()

    status, t_last, n_since = "finished", time.perf_counter(), 0
    while step < config.max_steps:
        if should_stop is not None and world.agree(should_stop()):
            status = "cancelled"
            checkpoint("cancelled")
            break
        lr = lr_at(step, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        torch.manual_seed(_seed(config.seed, step, world.rank, 1))
        generator = torch.Generator().manual_seed(_seed(config.seed, step, world.rank, 2))
        batch = stage.get_batch(step, generator)
        net.train()
        loss, logs = stage.training_step(net, batch, step)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"step {step}: the loss became {loss.item()}; lower the learning rate "
                                     f"or resume from the last checkpoint (step {step - step % config.ckpt_every})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            logs["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip))
        optimizer.step()
        step += 1
        n_since += 1
        last_logs = {"loss": float(loss.detach()), "lr": lr, **logs}

        if step % config.log_every == 0 or step == config.max_steps:
            last_logs = world.mean_dict(last_logs)
            now = time.perf_counter()
            entry = {"kind": "log", "step": step, "max_steps": config.max_steps,
                     "steps_per_s": n_since / max(now - t_last, 1e-9), **last_logs}
            t_last, n_since = now, 0
            if world.rank == 0:
                _append_log(out / LOG, entry)
                if progress:
                    progress(entry)
        if step % config.val_every == 0 or step == config.max_steps:
            if world.rank == 0:
                model.eval()
                with torch.no_grad():
                    val = stage.validate(model)
                value = val.get(stage.best_metric)
                if value is not None and math.isfinite(value) and (best is None or better(value, best)):
                    best = value
                    save_weights(out / BEST, model, {"step": step, stage.best_metric: value})
                entry = {"kind": "val", "step": step, "best": best, **val}
                _append_log(out / LOG, entry)
                if progress:
                    progress(entry)
            world.barrier()
        if step % config.ckpt_every == 0 or step == config.max_steps:
            checkpoint("periodic")

    if status == "finished" and world.rank == 0:
        if (out / BEST).is_file():
            load_weights(out / BEST, model)       # export the best validated weights
        model.eval()
        stage.export(model, out / "model")
        if progress:
            progress({"kind": "done", "step": step, "best": best})
    world.barrier()
    world.teardown()
    return TrainResult(out, step, status, best, last_logs)
