"""Checkpoints as single safetensors files written atomically: model and optimiser tensors,
with the training state as JSON in the file's metadata. Nothing is ever unpickled."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from core import atomic
from core.model.io import CheckpointError, cpu_copy

STATE_KEY = "pgr2m_state"


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, entry in sd["state"].items():
        for k, v in entry.items():
            if torch.is_tensor(v):
                tensors[f"optim.{pid}.{k}"] = cpu_copy(v)
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict, meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        _, pid, k = key.split(".", 2)
        state.setdefault(int(pid), {})[k] = v
    for key, v in meta.get("scalars", {}).items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                    state: dict) -> None:
    tensors = {f"model.{k}": cpu_copy(v) for k, v in model.state_dict().items()}
    meta = {"state": state}
    if optimizer is not None:
        opt_tensors, opt_meta = _flatten_optimizer(optimizer)
        tensors.update(opt_tensors)
        meta["optimizer"] = opt_meta
    atomic.write_bytes(path, st_save(tensors, metadata={STATE_KEY: json.dumps(meta)}), clean=True)


def read_checkpoint(path: str | Path) -> tuple[dict, dict]:
    """(tensors, metadata) of a checkpoint file, with clear errors for anything else."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})[STATE_KEY])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, KeyError, ValueError, OSError) as exc:
        raise CheckpointError(f"{path}: not a PGR²M checkpoint ({exc})") from None
    return tensors, meta


def checkpoint_state(path: str | Path) -> dict:
    """The training state (step, best, config) of a checkpoint, without reading its tensors."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return json.loads((f.metadata() or {})[STATE_KEY])["state"]
    except (SafetensorError, KeyError, ValueError, OSError) as exc:
        raise CheckpointError(f"{path}: not a PGR²M checkpoint ({exc})") from None


def load_checkpoint(path: str | Path, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Restore model (and optimiser) in place; returns the saved training state."""
    tensors, meta = read_checkpoint(path)
    model_sd = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_sd, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: the weights do not fit this model ({str(exc).splitlines()[0]})") from None
    if optimizer is not None and "optimizer" in meta:
        opt = {k: v for k, v in tensors.items() if k.startswith("optim.")}
        optimizer.load_state_dict(_unflatten_optimizer(opt, meta["optimizer"]))
    return meta["state"]


def read_cache(path: str | Path) -> dict | None:
    """The tensors of a cache file, or None when it is missing or not a safetensors file
    (a damaged or planted cache is recomputed, never unpickled)."""
    try:
        return st_load(Path(path).read_bytes())
    except (OSError, SafetensorError):
        return None
