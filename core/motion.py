"""The value types every layer passes around: a Motion, an Edit of its pose codes, and
code-name resolution. numpy only, so a project file can be read without torch."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core import posecodes as pc
from core.limits import FPS, UNIT, PipelineError, show, whole

__all__ = ["FPS", "UNIT", "Edit", "Motion", "PipelineError", "parsed_steps", "resolve_code", "steps_showing"]


@dataclass
class Motion:
    """One motion with everything needed to show, edit and export it."""

    joints: np.ndarray              # (T, 22, 3) metres, Y up
    features: np.ndarray            # (T, 263) HumanML3D features, not normalised
    pose_codes: np.ndarray          # (S, 392) bool, one code per group per token step (4 frames)
    residual_codes: np.ndarray      # (n_stages, S) int64
    fps: float = FPS
    prompt: str = ""
    seed: int | None = None
    cond: np.ndarray | None = field(default=None, repr=False)   # (12, text_dim) text condition

    @property
    def n_frames(self) -> int:
        return int(self.joints.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.pose_codes.shape[0])

    def code_ids(self) -> np.ndarray:
        """(S, 70) global code id of each group at each step."""
        return pc.to_indices(self.pose_codes)

    def codes_json(self) -> dict:
        """The pose codes with their names, per token step (the CLI's .json output)."""
        ids = self.code_ids()
        return {
            "prompt": self.prompt, "seed": self.seed, "fps": self.fps, "frames": self.n_frames,
            "frames_per_step": UNIT, "groups": [g.name for g in pc.GROUPS],
            "steps": [{"step": s, "frame": s * UNIT,
                       "codes": [{"id": int(c), "name": pc.CODES[c].name} for c in ids[s]]}
                      for s in range(len(ids))],
            "residual_codes": self.residual_codes.tolist(),
        }


@dataclass(frozen=True)
class Edit:
    """Make ``code`` the active code of its group on token steps start..end-1."""

    code: int | str                 # global code id (0..391) or code name
    start: int = 0
    end: int | None = None          # None: to the last step

    def resolve(self, n_steps: int) -> tuple[int, int, int]:
        code = resolve_code(self.code)
        end = n_steps if self.end is None else whole("edit end", self.end)
        start = whole("edit start", self.start)
        if not 0 <= start < end <= n_steps:
            raise PipelineError(f"edit range {show(start)}:{show(end)} is not inside the motion's {n_steps} steps")
        return code, start, end


def parsed_steps(motion: Motion) -> np.ndarray:
    """(n_steps, 392) pose codes parsed again from the motion's joints, frame UNIT*t for step t:
    what the body shows, whatever codes the motion holds."""
    return pc.parse(motion.joints)[::UNIT][: motion.n_steps]


def steps_showing(motion: Motion, edit: Edit, parsed: np.ndarray | None = None) -> tuple[int, int]:
    """(steps that show the edit's code, steps edited): whether an edit took, as the eye sees it.
    ``parsed``: parsed_steps(motion), when the caller has it already."""
    code, start, end = edit.resolve(motion.n_steps)
    parsed = parsed_steps(motion) if parsed is None else parsed
    return int(parsed[start:end, code].sum()), end - start


def _plain(name: str) -> str:
    return " ".join(name.casefold().replace("–", "-").replace("°", "").replace("deg", "").split())


_PLAIN = {_plain(c.name): c.index for c in pc.CODES}


def resolve_code(code: int | str) -> int:
    """A code id or name (case, dashes and degree signs forgiven; a unique part of a name works)."""
    # isdecimal, not isdigit: int() refuses digits such as "²"
    if isinstance(code, (int, np.integer)) or (isinstance(code, str) and code.strip().isdecimal()):
        try:
            i = int(code)
        except ValueError:                  # more digits than int() converts
            raise PipelineError(f"pose code id {show(code)} is out of range 0..{pc.N_CODES - 1}") from None
        if not 0 <= i < pc.N_CODES:
            raise PipelineError(f"pose code id {show(i)} is out of range 0..{pc.N_CODES - 1}")
        return i
    key = _plain(str(code))
    if key in _PLAIN:
        return _PLAIN[key]
    hits = [i for n, i in _PLAIN.items() if key and key in n]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise PipelineError(f"no pose code named {code!r}; `pgr2m codes` lists them")
    shown = ", ".join(repr(pc.CODES[i].name) for i in hits[:8])
    raise PipelineError(f"{code!r} matches {len(hits)} pose codes ({shown}{', ...' if len(hits) > 8 else ''}); "
                        "be more specific")
