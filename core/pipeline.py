"""The generate / edit API the app and the CLI share."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from core import limits
from core import posecodes as pc
from core.features import denormalize, extract_features, normalize, recover_joints
from core.limits import FPS, UNIT, PipelineError, check_seed, show, whole
from core.model.blocks import KVCache
from core.model.conditioning import encode_conditions
from core.model.edit_guidance import guide_residuals
from core.model.io import load_base, load_refine, load_tokenizer
from core.model.precision import auto_precision, set_precision
from core.motion import Edit, Motion, parsed_steps, resolve_code, steps_showing
from core.text.encoders import load_text_encoder

__all__ = ["DEFAULT_MODEL", "FPS", "UNIT", "Edit", "Motion", "Pipeline", "PipelineError", "parsed_steps",
           "resolve_code", "steps_showing"]

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "resources" / "models" / "bandai-namco-small"

_OUT_OF_MEMORY = (getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError), MemoryError)


@contextmanager
def _out_of_memory_is_an_error(device, doing: str, advice: str):
    """Turn running out of (device) memory into a PipelineError: the app stays up and the
    user learns what to reduce."""
    try:
        yield
    except Exception as exc:
        # other backends (MPS, older CUDA paths) report it as a plain RuntimeError
        if not (isinstance(exc, _OUT_OF_MEMORY)
                or (isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())):
            raise
        raise PipelineError(f"out of memory on {device} while {doing}; {advice}") from None


def _new_seed() -> int:
    return int.from_bytes(os.urandom(4), "little") & 0x7FFFFFFF


class Pipeline:
    """Text -> motion and pose-code edits, on one model folder (tokenizer/, base/, refine/).

    Thread-safe: one call runs at a time (the app calls it from a worker thread)."""

    MAX_SAMPLES = limits.MAX_SAMPLES
    MAX_BATCH = limits.MAX_BATCH
    MAX_PROMPT_CHARS = limits.MAX_PROMPT_CHARS
    MAX_EDITS = limits.MAX_EDITS
    MAX_INPUT_FRAMES = limits.MAX_INPUT_FRAMES

    def __init__(self, model_dir: str | Path | None = None, device: str = "cpu", *,
                 text_encoder: str | None = None, temperature: float = 1.0, top_k: int | None = None,
                 refine_temperature: float = 0.0, min_steps: int = 4, precision: str = "auto"):
        self.model_dir = Path(model_dir) if model_dir else DEFAULT_MODEL
        if not self.model_dir.is_dir():
            raise PipelineError(f"{self.model_dir}: model folder not found")
        self.device = torch.device(device)
        try:
            self.tokenizer, self.mean, self.std = load_tokenizer(self.model_dir / "tokenizer", self.device)
            self.base = load_base(self.model_dir / "base", self.device)
            self.refine = load_refine(self.model_dir / "refine", self.device)
        except FileNotFoundError as exc:
            raise PipelineError(f"{self.model_dir} is not a complete model folder: {exc}") from None
        if precision == "auto":
            base_p, refine_p = auto_precision(self.device, sum(w.numel() for w in self.base.parameters()))
        else:
            base_p = refine_p = precision
        set_precision(self.base, base_p)
        set_precision(self.refine, refine_p)
        self.precision = {"base": base_p, "refine": refine_p}
        if self.refine.config.text_encoder != self.base.config.text_encoder:
            raise PipelineError(f"{self.model_dir}: base and refine were trained with different text encoders")
        if (self.refine.config.n_stages, self.refine.config.n_codes) != (self.tokenizer.config.n_stages,
                                                                       self.tokenizer.config.n_codes):
            raise PipelineError(f"{self.model_dir}: the refine transformer does not match the tokenizer")
        self.text_encoder_spec = text_encoder or self.base.config.text_encoder
        self.temperature, self.top_k = temperature, top_k
        self.refine_temperature, self.min_steps = refine_temperature, min_steps
        self.edit_guidance = 20     # search iterations that make an edit show (0: refine only)
        self._encoder = None
        self._cond_cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._edit_contexts: OrderedDict[bytes, KVCache] = OrderedDict()
        self._lock = threading.RLock()

    @property
    def max_frames(self) -> int:
        return (self.base.config.max_tokens - 1) * UNIT

    # -- text ----------------------------------------------------------------

    def _check_prompts(self, prompts: list) -> None:
        for p in prompts:
            if not isinstance(p, str):
                raise PipelineError(f"a prompt must be text, got {type(p).__name__}")
            if len(p) > self.MAX_PROMPT_CHARS:
                raise PipelineError(f"the prompt is {len(p)} characters long; at most {self.MAX_PROMPT_CHARS} "
                                    "are accepted (the model reads only its first sentence or two)")

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """(B, 12, text_dim) conditions; recent prompts are cached."""
        self._check_prompts(prompts)
        missing = [p for p in dict.fromkeys(prompts) if p not in self._cond_cache]
        if missing:
            if self._encoder is None:
                self._encoder = load_text_encoder(self.text_encoder_spec)
            for p, c in zip(missing, encode_conditions(self._encoder, missing)):
                self._cond_cache[p] = c
        for p in prompts:
            self._cond_cache.move_to_end(p)
        cond = torch.stack([self._cond_cache[p] for p in prompts])
        while len(self._cond_cache) > 256:          # after use: a batch may hold more prompts
            self._cond_cache.popitem(last=False)
        if cond.shape[-1] != self.base.config.text_dim:
            raise PipelineError(f"the text encoder gives {cond.shape[-1]}-d vectors; this model was trained "
                                f"on {self.base.config.text_dim}-d ({self.base.config.text_encoder})")
        return cond.to(self.device)

    # -- decoding --------------------------------------------------------------

    @torch.no_grad()
    def decode(self, pose_codes: np.ndarray, residual_codes: np.ndarray | None,
               n_stages: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(S, 392) pose codes and (n_stages, S) residual codes -> (features (4S, 263), joints (4S, 22, 3))."""
        pose = torch.from_numpy(np.asarray(pose_codes, dtype=np.float32))[None].to(self.device)
        idx = None
        if residual_codes is not None and n_stages != 0:
            idx = torch.from_numpy(np.asarray(residual_codes, dtype=np.int64))[None].to(self.device)
        out = self.tokenizer.decode(pose, idx, n_stages=n_stages if idx is not None else None)
        features = denormalize(out[0].float().cpu().numpy(), self.mean, self.std)
        return features, recover_joints(features).astype(np.float32)

    def _motion(self, pose, idx, prompt, seed, cond) -> Motion:
        features, joints = self.decode(pose, idx)
        return Motion(joints=joints, features=features, pose_codes=pose, residual_codes=idx, fps=FPS,
                      prompt=prompt, seed=seed, cond=cond)

    # -- generate --------------------------------------------------------------

    def _steps(self, length: int | None) -> int | None:
        if length is None:
            return None
        length = whole("length", length)
        if not UNIT <= length <= self.max_frames:
            raise PipelineError(f"length must be {UNIT}..{self.max_frames} frames "
                                f"({self.max_frames / FPS:.1f} s at {FPS:g} fps), got {show(length)}")
        return max(1, round(length / UNIT))

    @torch.no_grad()
    def generate(self, prompt: str | list[str], n_samples: int = 1, seed: int | None = None,
                 length: int | None = None, *, cond: torch.Tensor | None = None,
                 residuals: bool = True) -> list[Motion]:
        """Motions for a prompt (or each of several), n_samples each, in one batch.

        length: frames wanted (rounded to 4), or None to let the model end the motion.
        seed: the same seed gives the same motions; None draws one (kept in Motion.seed).
        residuals=False decodes the pose codes alone (the Base Transformer's output)."""
        try:
            prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        except TypeError:
            raise PipelineError(f"prompt must be text or a list of texts, got {type(prompt).__name__}") from None
        if not prompts:
            raise PipelineError("no prompt given")
        if len(prompts) > self.MAX_BATCH:
            raise PipelineError(f"{len(prompts)} prompts in one request; at most {self.MAX_BATCH}")
        self._check_prompts(prompts)
        n_samples = whole("n_samples", n_samples)
        if not 1 <= n_samples <= self.MAX_SAMPLES:
            raise PipelineError(f"n_samples must be 1..{self.MAX_SAMPLES}, got {show(n_samples)}")
        if len(prompts) * n_samples > self.MAX_BATCH:
            raise PipelineError(f"{len(prompts)} prompts x {n_samples} samples is {len(prompts) * n_samples} "
                                f"motions; at most {self.MAX_BATCH} in one request")
        steps = self._steps(length)
        seed = check_seed(seed)
        cfg = self.base.config
        if cond is not None and (not isinstance(cond, torch.Tensor)
                                 or tuple(cond.shape) != (len(prompts), cfg.n_text_tokens, cfg.text_dim)):
            got = tuple(cond.shape) if isinstance(cond, torch.Tensor) else f"a {type(cond).__name__}"
            raise PipelineError(f"cond must be a ({len(prompts)}, {cfg.n_text_tokens}, {cfg.text_dim}) tensor, "
                                f"got {got}")
        frames = f"{steps * UNIT} frames" if steps else f"up to {self.max_frames} frames"
        with self._lock, _out_of_memory_is_an_error(
                self.device, f"generating {len(prompts) * n_samples} motion(s) of {frames}",
                "ask for fewer samples or prompts, or a shorter length"):
            seed = _new_seed() if seed is None else int(seed)
            gen = torch.Generator().manual_seed(seed)
            if cond is None:
                cond = self.encode_text(prompts)
            cond = cond.to(self.device).repeat_interleave(int(n_samples), dim=0)
            B = cond.shape[0]
            lengths = None if steps is None else torch.full((B,), steps, dtype=torch.long)
            base = self.base.sample(cond, lengths, temperature=self.temperature, top_k=self.top_k,
                                    min_steps=self.min_steps, generator=gen)
            pose = base.tokens[..., :pc.N_CODES] > 0.5
            if residuals:
                idx = self.refine.sample(cond, pose, base.lengths, temperature=self.refine_temperature,
                                         generator=gen)
            out = []
            for b in range(B):
                n = int(base.lengths[b])
                p = pose[b, :n].cpu().numpy()
                r = (idx[b, :, :n].cpu().numpy() if residuals
                     else np.zeros((self.refine.config.n_stages, n), np.int64))
                m = self._motion(p, r if residuals else None, prompts[b // int(n_samples)], seed,
                                 cond[b].cpu().numpy())
                if not residuals:
                    m.residual_codes = r
                out.append(m)
            return out

    # -- edit ----------------------------------------------------------------

    @torch.no_grad()
    def edit(self, motion: Motion, edits: list[Edit], keep_residuals_outside: bool = True,
             seed: int | None = 0, guided: bool = True) -> Motion:
        """Set pose codes over step ranges, re-predict the residual codes with the Refine
        Transformer and decode. keep_residuals_outside keeps the residual codes of unedited
        steps (they still condition the edited ones), so the rest of the motion stays put.
        guided then searches the edited steps' residual codes until the decoded joints show
        the asked codes (core.model.edit_guidance; ``edit_guidance`` iterations, 0 = off)."""
        edits = list(edits)
        if not edits:
            raise PipelineError("no edit given")
        if len(edits) > self.MAX_EDITS:
            raise PipelineError(f"{len(edits)} edits in one request; at most {self.MAX_EDITS}")
        if not all(isinstance(e, Edit) for e in edits):
            raise PipelineError("edits must be Edit(code, start, end) items")
        self._check_motion(motion)
        seed = check_seed(seed)
        S = motion.n_steps
        pose = np.array(motion.pose_codes, dtype=bool, copy=True)
        changed = np.zeros(S, bool)
        for e in edits:
            code, start, end = e.resolve(S)
            g = pc.GROUPS[pc.CODES[code].group]
            pose[start:end, g.first_code:g.first_code + g.n_codes] = False
            pose[start:end, code] = True
            changed[start:end] = True
        with self._lock, _out_of_memory_is_an_error(
                self.device, f"editing a {motion.n_frames}-frame motion",
                "keep the residual codes outside the edit, or edit a shorter motion"):
            cond = self._condition(motion)
            gen = torch.Generator().manual_seed(_new_seed() if seed is None else int(seed))
            edited = torch.from_numpy(pose)[None].to(self.device)
            known = torch.from_numpy(np.asarray(motion.residual_codes, dtype=np.int64))[None].to(self.device)
            if keep_residuals_outside:
                # one pass per stage over the edited steps alone, against the unedited motion
                steps = torch.from_numpy(np.flatnonzero(changed)).to(self.device)
                idx = self.refine.sample_steps(cond, edited, known, steps, self._edit_context(motion, cond),
                                               temperature=self.refine_temperature, generator=gen)
            else:
                idx = self.refine.sample(cond, edited, temperature=self.refine_temperature, generator=gen)
            res = idx[0].cpu().numpy()
            if guided and self.edit_guidance > 0:
                res = guide_residuals(
                    self.tokenizer, torch.as_tensor(self.mean, dtype=torch.float32, device=self.device),
                    torch.as_tensor(self.std, dtype=torch.float32, device=self.device),
                    torch.from_numpy(pose).to(self.device), torch.from_numpy(res).to(self.device),
                    [e.resolve(S) for e in edits], iterations=self.edit_guidance).cpu().numpy()
            return self._motion(pose, res, motion.prompt, motion.seed, cond[0].cpu().numpy())

    EDIT_CONTEXTS = 4       # motions whose Refine keys and values are kept for their next edit

    def _condition(self, motion: Motion) -> torch.Tensor:
        """(1, 12, text_dim): the motion's stored text condition, else its prompt encoded."""
        if motion.cond is not None:
            return torch.from_numpy(np.asarray(motion.cond, dtype=np.float32))[None].to(self.device)
        return self.encode_text([motion.prompt])[:1]

    def _edit_context(self, motion: Motion, cond: torch.Tensor) -> KVCache:
        """The unedited motion's Refine keys and values (RefineTransformer.context), cached by
        content: the same motion always gets the same context, so edits stay deterministic."""
        pose = np.ascontiguousarray(motion.pose_codes, dtype=bool)
        res = np.ascontiguousarray(motion.residual_codes, dtype=np.int64)
        key = hashlib.blake2b(b"".join([np.packbits(pose).tobytes(), res.tobytes(), str(res.shape).encode(),
                                        cond.float().cpu().numpy().tobytes()]), digest_size=16).digest()
        ctx = self._edit_contexts.get(key)
        if ctx is None:
            ctx = self.refine.context(cond, torch.from_numpy(pose)[None].to(self.device),
                                      torch.from_numpy(res)[None].to(self.device))
            self._edit_contexts[key] = ctx
            while len(self._edit_contexts) > self.EDIT_CONTEXTS:
                self._edit_contexts.popitem(last=False)
        self._edit_contexts.move_to_end(key)
        return ctx

    @torch.no_grad()
    def prepare_edit(self, motion: Motion) -> None:
        """Compute now what an edit of this motion needs (the Refine Transformer's keys and
        values over the whole motion, one batched pass), e.g. while the user looks at it; the
        edit itself then costs one pass per stage over the edited steps only."""
        self._check_motion(motion)
        with self._lock, _out_of_memory_is_an_error(self.device, "preparing an edit", "edit a shorter motion"):
            self._edit_context(motion, self._condition(motion))

    def _check_motion(self, motion: Motion) -> None:
        """A motion this model can edit: a Motion from another model or a damaged file would
        otherwise fail deep inside the transformers."""
        pose, res, cond = motion.pose_codes, motion.residual_codes, motion.cond
        shape, limit = np.shape(pose), self.base.config.max_tokens - 1
        S = shape[0] if len(shape) == 2 else 0
        n, n_codes = self.tokenizer.config.n_stages, self.tokenizer.config.n_codes
        if len(shape) != 2 or shape[1] != pc.N_CODES or not 1 <= S <= limit:
            raise PipelineError(f"the motion's pose codes must be (1..{limit} steps, {pc.N_CODES}), "
                                f"got {np.shape(pose)}")
        if np.shape(res) != (n, S) or np.min(res) < 0 or np.max(res) >= n_codes:
            raise PipelineError(f"the motion's residual codes must be ({n}, {S}) in 0..{n_codes - 1} for this model, "
                                f"got shape {np.shape(res)}")
        want = (self.base.config.n_text_tokens, self.refine.config.text_dim)
        if cond is not None and np.shape(cond) != want:
            raise PipelineError(f"the motion's text condition is {np.shape(cond)}, this model expects {want} "
                                "(made with another text encoder?)")

    def from_codes(self, pose_codes: np.ndarray, residual_codes: np.ndarray | None, prompt: str = "",
                   seed: int | None = 0) -> Motion:
        """A motion from saved codes; missing residual codes are predicted by the Refine Transformer."""
        pose = np.asarray(pose_codes, dtype=bool)
        S, limit = len(pose), self.base.config.max_tokens - 1
        if not 1 <= S <= limit:
            raise PipelineError(f"a motion must have 1..{limit} steps, got {S}")
        with self._lock, torch.no_grad():
            cond = self.encode_text([prompt])[0]
            if residual_codes is None:
                gen = torch.Generator().manual_seed(int(seed or 0))
                residual_codes = self.refine.sample(cond[None], torch.from_numpy(pose)[None].to(self.device),
                                                    temperature=self.refine_temperature, generator=gen)[0].cpu().numpy()
            res = np.asarray(residual_codes, np.int64)
            n = self.tokenizer.config.n_stages
            if res.shape != (n, S) or res.min() < 0 or res.max() >= self.tokenizer.config.n_codes:
                raise PipelineError(f"residual codes must be ({n}, {S}) in 0..{self.tokenizer.config.n_codes - 1}")
            return self._motion(pose, res, prompt, None, cond.cpu().numpy())

    def from_joints(self, joints: np.ndarray, prompt: str = "") -> Motion:
        """Tokenize any motion (T, 22, 3) so it can be edited: features, pose codes, residuals."""
        try:
            joints = np.asarray(joints, np.float32)
        except (TypeError, ValueError) as exc:
            raise PipelineError(f"joints must be a numeric (T, 22, 3) array ({exc})") from None
        if joints.ndim != 3 or joints.shape[1:] != (22, 3):
            raise PipelineError(f"joints must be (T, 22, 3), got {joints.shape}")
        if len(joints) > self.MAX_INPUT_FRAMES:
            raise PipelineError(f"the motion has {len(joints)} frames; at most {self.MAX_INPUT_FRAMES} "
                                f"({self.MAX_INPUT_FRAMES / FPS / 60:.0f} min at {FPS:g} fps) are accepted, and only "
                                f"the first {self.max_frames} are used: trim it first")
        if not np.isfinite(joints).all():
            raise PipelineError("joints contain NaN or infinite values (or numbers too large for float32)")
        feats = extract_features(joints)
        n = min(len(feats), self.max_frames) // UNIT * UNIT
        if n < UNIT:
            raise PipelineError(f"the motion is too short to tokenize ({len(joints)} frames)")
        codes = pc.parse(joints[:n])
        with self._lock, torch.no_grad():
            m = torch.from_numpy(normalize(feats[:n], self.mean, self.std).astype(np.float32))[None].to(self.device)
            pose, idx = self.tokenizer.encode(m, torch.from_numpy(codes.astype(np.float32))[None].to(self.device))
            cond = self.encode_text([prompt])[0].cpu().numpy()
        return self._motion(pose[0].cpu().numpy(), idx[0].cpu().numpy(), prompt, None, cond)

