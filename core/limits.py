"""The limits every entry point shares (pipeline, document, project files, CLI), in one place,
and the checks that turn a bad number into one clear message."""

from __future__ import annotations

UNIT = 4                        # frames per token step (one pose code per group per step)
FPS = 20.0                      # frames per second of every motion the model makes
MAX_STEPS = 49                  # token steps the built-in and paper models make at most (196 frames)
MIN_LENGTH, MAX_LENGTH = UNIT, MAX_STEPS * UNIT     # frames a user may ask for

MAX_SAMPLES = 64                # per prompt; also what a project file holds
MAX_BATCH = 256                 # motions per generate call (prompts x samples)
SEED_MIN, SEED_MAX = -2**63, 2**64 - 1              # what torch.Generator.manual_seed takes
# the encoder reads ~77 tokens (a few hundred characters); this still takes a pasted
# paragraph but not megabytes of text to clean and cache
MAX_PROMPT_CHARS = 20_000
MAX_EDITS = 4096                # edits per request: more than one per group and step (70 x 49)
# from_joints uses only the first max_frames; an hour at 20 fps bounds the memory
# the features of the whole input take before that cut
MAX_INPUT_FRAMES = 72_000


class PipelineError(ValueError):
    """A request the pipeline cannot serve (bad prompt, length, edit, model folder)."""


def show(value) -> str:
    """A short repr for messages (repr itself refuses ints of more than 4300 digits)."""
    try:
        text = repr(value)
    except ValueError:
        text = "a number too long to show"
    return text if len(text) <= 40 else text[:37] + "..."


def whole(name: str, value) -> int:
    """int(value), or a PipelineError naming the argument (NaN, infinity, text, None)."""
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise PipelineError(f"{name} must be a whole number, got {show(value)}") from None


def check_seed(seed):
    """None, or the seed as an int in SEED_MIN..SEED_MAX."""
    if seed is None:
        return None
    seed = whole("seed", seed)
    if not SEED_MIN <= seed <= SEED_MAX:
        raise PipelineError(f"seed must be -2**63..2**64-1, got {show(seed)}")
    return seed


def seed_in_range(seed) -> bool:
    return isinstance(seed, int) and not isinstance(seed, bool) and SEED_MIN <= seed <= SEED_MAX
