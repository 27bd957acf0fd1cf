"""Model weights and model folders on disk: safetensors weights with JSON configs, loaded
without unpickling anything. Used by the pipeline, training and evaluation alike."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from core import atomic
from core.model.base_transformer import BaseTransformer
from core.model.configs import BaseConfig, RefineConfig, TokenizerConfig
from core.model.refine_transformer import RefineTransformer
from core.model.tokenizer import PoseGuidedTokenizer


class CheckpointError(ValueError):
    """A weights or checkpoint file that cannot be used: the message says why."""


def cpu_copy(t: torch.Tensor) -> torch.Tensor:
    # safetensors refuses tensors that share memory (tied weights): store copies
    return t.detach().to("cpu").contiguous().clone()


def save_weights(path: str | Path, model: torch.nn.Module, metadata: dict | None = None) -> None:
    """Model weights only (an exported model or the best checkpoint)."""
    tensors = {k: cpu_copy(v) for k, v in model.state_dict().items()}
    atomic.write_bytes(path, st_save(tensors, metadata={k: json.dumps(v) for k, v in (metadata or {}).items()}),
                       clean=True)


def load_weights(path: str | Path, model: torch.nn.Module) -> None:
    path = Path(path)
    try:
        tensors = st_load(path.read_bytes())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: weights file not found") from None
    except SafetensorError as exc:
        raise CheckpointError(f"{path}: not a safetensors file ({exc})") from None
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: the weights do not fit this model ({str(exc).splitlines()[0]})") from None


# --------------------------------------------------------------------------
# model folders: an exported folder holding NAME.json + NAME.safetensors, or a run folder
# whose model/ holds them

def stage_folder(path: str | Path, config_name: str) -> Path:
    """An exported folder holding config_name, or a run folder whose model/ holds it."""
    path = Path(path)
    for cand in (path, path / "model"):
        if (cand / config_name).is_file():
            return cand
    raise FileNotFoundError(f"{path}: no {config_name}; pass an exported model folder or a run folder")


def read_config(path: Path, cls):
    try:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: invalid configuration ({exc})") from None


def load_tokenizer(folder: str | Path, device="cpu"):
    """(model, mean, std) from an exported tokenizer folder."""
    folder = Path(folder)
    if (folder / "model" / "tokenizer.json").is_file():
        folder = folder / "model"            # a run folder
    cfg_path = folder / "tokenizer.json"
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{folder}: no tokenizer.json; pass an exported tokenizer folder or a run folder")
    try:
        cfg = TokenizerConfig.from_dict(json.loads(cfg_path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{cfg_path}: invalid tokenizer config ({exc})") from None
    model = PoseGuidedTokenizer(cfg)
    load_weights(folder / "tokenizer.safetensors", model)
    mean, std = atomic.load_npy(folder / "mean.npy"), atomic.load_npy(folder / "std.npy")
    return model.to(device).eval(), mean, std


def load_base(path: str | Path, device="cpu"):
    folder = stage_folder(path, "base.json")
    model = BaseTransformer(read_config(folder / "base.json", BaseConfig))
    load_weights(folder / "base.safetensors", model)
    return model.to(device).eval()


def load_refine(path: str | Path, device="cpu"):
    folder = stage_folder(path, "refine.json")
    model = RefineTransformer(read_config(folder / "refine.json", RefineConfig))
    load_weights(folder / "refine.safetensors", model)
    return model.to(device).eval()
