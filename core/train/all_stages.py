"""`train all`: every stage in order into OUT/<stage>, so that OUT becomes a model folder.
A finished stage is skipped and an interrupted one resumed; the CLI and the app (which runs the
CLI in a separate process) share this plan."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from core.train.checkpoint import checkpoint_state
from core.train.stages import STAGE_ORDER


@dataclass(frozen=True)
class StageRun:
    stage: str
    folder: Path            # OUT/<stage>
    overrides: list         # `--set` items for this stage alone
    resume: bool            # a checkpoint is there: continue it


def stage_list(text: str | None) -> list[str]:
    """Stages from "tokenizer,base" (default: all, in order); unknown names are an error."""
    stages = [s.strip() for s in (text or ",".join(STAGE_ORDER)).split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGE_ORDER]
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGE_ORDER)}")
    return stages


def stage_overrides(stage: str, overrides: list[str], out: Path) -> list[str]:
    """The `--set` items that apply to one stage: "key=value" to all, "stage:key=value" to that
    stage only (model sizes differ between stages). The refine stage learns the codes of the
    tokenizer trained beside it unless told otherwise."""
    mine = [a.split(":", 1)[1] if ":" in a.split("=", 1)[0] else a for a in overrides
            if ":" not in a.split("=", 1)[0] or a.split(":", 1)[0] == stage]
    if stage == "refine" and not any(a.startswith("extra.tokenizer=") for a in mine):
        mine.append(f"extra.tokenizer={out / 'tokenizer'}")
    return mine


def plan(out: str | Path, stages: list[str], overrides: list[str] | None = None) -> list[StageRun]:
    out = Path(out)
    return [StageRun(s, out / s, stage_overrides(s, list(overrides or []), out),
                     (out / s / "checkpoint.safetensors").is_file()) for s in stages]


def stage_done(run: Path, max_steps: int) -> bool:
    """The stage in ``run`` reached max_steps and exported its model."""
    ckpt = Path(run) / "checkpoint.safetensors"
    return ckpt.is_file() and (Path(run) / "model").is_dir() and checkpoint_state(ckpt)["step"] >= max_steps
