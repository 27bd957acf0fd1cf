"""Registry of training stages: a name, or ``package.module:Class`` for your own."""

from __future__ import annotations

import importlib

STAGE_ORDER = ("tokenizer", "evaluator", "base", "refine")     # the order of `pgr2m train all`
MODEL_STAGES = ("tokenizer", "base", "refine")                  # what generating needs

STAGES = {
    "tokenizer": "core.train.tokenizer_stage:TokenizerStage",
    "evaluator": "core.train.evaluator_stage:EvaluatorStage",
    "base": "core.train.base_stage:BaseStage",
    "refine": "core.train.refine_stage:RefineStage",
}


def get_stage(name: str):
    spec = STAGES.get(name, name)
    if ":" not in spec:
        raise ValueError(f"unknown training stage {name!r}; choose one of {', '.join(STAGES)}")
    module, _, cls = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"training stage {name!r} could not be loaded ({exc})") from None


def default_config(name: str, preset: str) -> dict:
    """Training settings the stage recommends for a preset (TrainConfig fields)."""
    stage = get_stage(name)
    presets = getattr(stage, "PRESETS", {})
    if preset not in presets:
        raise ValueError(f"stage {name!r} has no preset {preset!r}; choose one of {', '.join(presets) or 'none'}")
    return dict(presets[preset])
