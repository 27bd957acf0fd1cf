"""A complete model folder with tiny random weights, for tests of the pipeline mechanics."""

import json
from pathlib import Path

import numpy as np
import torch

from core import atomic
from core.model.base_transformer import BaseTransformer
from core.model.configs import BaseConfig, RefineConfig, TokenizerConfig
from core.model.io import save_weights
from core.model.refine_transformer import RefineTransformer
from core.model.tokenizer import PoseGuidedTokenizer

TINY_TOKENIZER = TokenizerConfig(width=32, code_dim=32, depth=1, n_codes=16)
TINY_BASE = BaseConfig(dim=32, layers=2, heads=2, dropout=0.0)
TINY_REFINE = RefineConfig(dim=32, layers=2, heads=2, dropout=0.0, n_codes=16)


def make_model_folder(root: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    parts = {"tokenizer": (PoseGuidedTokenizer(TINY_TOKENIZER), "tokenizer"),
             "base": (BaseTransformer(TINY_BASE), "base"),
             "refine": (RefineTransformer(TINY_REFINE), "refine")}
    for sub, (model, name) in parts.items():
        folder = root / sub
        folder.mkdir(parents=True, exist_ok=True)
        save_weights(folder / f"{name}.safetensors", model, {"stage": name})
        atomic.write_text(folder / f"{name}.json", json.dumps(model.config.to_dict()))
    rng = np.random.default_rng(seed)
    atomic.save_npy(root / "tokenizer" / "mean.npy", np.zeros(263, np.float32))
    atomic.save_npy(root / "tokenizer" / "std.npy", (0.05 + 0.1 * rng.random(263)).astype(np.float32))
    return root
