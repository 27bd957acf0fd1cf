"""The original HumanML3D (T2M) evaluator, for users who have its files.

Networks re-implemented from the published description (method-facts §5.2);
their parameter names mirror the original module layout (attribute names and
``nn.Sequential`` indices), so the state dicts in ``finest.tar`` load as is:

    movement_encoder: main.0 (Conv1d), main.3 (Conv1d), out_net (Linear)
    motion_encoder:   input_emb, gru.*, output_net.0 (Linear), output_net.1 (LayerNorm),
                      output_net.3 (Linear), hidden (learned initial GRU state)
    text_encoder:     pos_emb, input_emb, gru.*, output_net.{0,1,3}, hidden

Files (as the T2M / T2M-GPT / CoMo downloads lay them out)::

    checkpoints/t2m/text_mot_match/model/finest.tar     # evaluator weights
    checkpoints/t2m/Comp_v6_KLD005/meta/{mean,std}.npy  # evaluator normalisation
    glove/our_vab_data.npy, our_vab_words.pkl, our_vab_idx.pkl

Safety: ``finest.tar`` is read only with ``torch.load(weights_only=True)``; the
GloVe ``.pkl`` files are read with an unpickler that refuses every global (see
``safe_unpickle``); ``.npy`` files with ``allow_pickle=False``. Nothing here ever runs plain
``pickle.load``.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence

from core import atomic

__all__ = [
    "T2MEvaluatorError", "T2MFilesMissing", "UnsafePickleError",
    "MovementConvEncoder", "MotionEncoderBiGRUCo", "TextEncoderBiGRUCo", "T2MEvaluator",
    "load_t2m_evaluator", "load_t2m_meta", "find_checkpoint",
    "safe_unpickle", "load_glove", "WordVectorizer",
    "POS_CLASSES", "VIP_WORDS", "MAX_TEXT_LEN", "UNIT_LENGTH",
]

MAX_TEXT_LEN = 20      # words per caption; + sos/eos = 22 tokens
UNIT_LENGTH = 4        # frames per motion GRU step
CHECKPOINT = Path("text_mot_match") / "model" / "finest.tar"

POS_CLASSES = ("VERB", "NOUN", "DET", "ADP", "NUM", "AUX", "PRON", "ADJ", "ADV",
               "Loc_VIP", "Body_VIP", "Obj_VIP", "Act_VIP", "Desc_VIP", "OTHER")
_POS_INDEX = {p: i for i, p in enumerate(POS_CLASSES)}

# words whose POS class is overridden (checked in this order), as in the original vectorizer
VIP_WORDS: dict[str, frozenset[str]] = {
    "Loc_VIP": frozenset("left right clockwise counterclockwise anticlockwise forward back "
                         "backward up down straight curve".split()),
    "Body_VIP": frozenset("arm chin foot feet face hand mouth leg waist eye knee shoulder "
                          "thigh".split()),
    "Obj_VIP": frozenset("stair dumbbell chair window floor car ball handrail baseball "
                         "basketball".split()),
    "Act_VIP": frozenset("walk run swing pick bring kick put squat throw hop dance jump turn "
                         "stumble stop sit lift lower raise wash stand kneel stroll rub bend "
                         "balance flap jog shuffle lean rotate spin spread climb".split()),
    "Desc_VIP": frozenset("slowly carefully fast careful slow quickly happy angry sad happily "
                          "angrily sadly".split()),
}


class T2MEvaluatorError(RuntimeError):
    """The original evaluator files are unusable (format, shapes or safety)."""


class T2MFilesMissing(T2MEvaluatorError, FileNotFoundError):
    """A required original evaluator / GloVe file does not exist."""


class UnsafePickleError(T2MEvaluatorError, pickle.UnpicklingError):
    """A pickle asked for a global (class/function) or held a non-plain object."""


# --------------------------------------------------------------------------
# networks


class MovementConvEncoder(nn.Module):
    """(B, T, dim_pose−4) -> (B, T//4, output_size)."""

    def __init__(self, input_size: int, hidden_size: int = 512, output_size: int = 512):
        super().__init__()
        # indices 0 and 3 are the convolutions (Dropout, LeakyReLU between), as in the checkpoint
        self.main = nn.Sequential(
            nn.Conv1d(input_size, hidden_size, 4, 2, 1), nn.Dropout(0.2), nn.LeakyReLU(0.2),
            nn.Conv1d(hidden_size, output_size, 4, 2, 1), nn.Dropout(0.2), nn.LeakyReLU(0.2),
        )
        self.out_net = nn.Linear(output_size, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_net(self.main(x.transpose(1, 2)).transpose(1, 2))


class _BiGRUCo(nn.Module):
    """Shared body: input_emb -> BiGRU (learned h0) -> output_net on [h_fwd; h_bwd]."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int):
        super().__init__()
        self.input_emb = nn.Linear(input_size, hidden_size)
        self.gru = nn.GRU(hidden_size, hidden_size, batch_first=True, bidirectional=True)
        self.output_net = nn.Sequential(
            nn.Linear(2 * hidden_size, hidden_size), nn.LayerNorm(hidden_size), nn.LeakyReLU(0.2),
            nn.Linear(hidden_size, output_size),
        )
        self.hidden = nn.Parameter(torch.zeros(2, 1, hidden_size))

    def _run(self, x: torch.Tensor, lengths) -> torch.Tensor:
        lengths = torch.as_tensor(lengths).to("cpu", torch.int64).reshape(-1).clamp(min=1, max=x.shape[1])
        packed = pack_padded_sequence(self.input_emb(x), lengths, batch_first=True, enforce_sorted=False)
        _, last = self.gru(packed, self.hidden.expand(-1, x.shape[0], -1).contiguous())
        return self.output_net(torch.cat([last[0], last[1]], dim=-1))


class MotionEncoderBiGRUCo(_BiGRUCo):
    """Movement latents (B, T/4, 512) and step counts (m_len // 4) -> (B, 512)."""

    def forward(self, movements: torch.Tensor, steps) -> torch.Tensor:
        return self._run(movements, steps)


class TextEncoderBiGRUCo(_BiGRUCo):
    """GloVe word vectors (B, 22, 300) + POS one-hots (B, 22, 15), caption lengths -> (B, 512)."""

    def __init__(self, word_size: int = 300, pos_size: int = 15, hidden_size: int = 512,
                 output_size: int = 512):
        super().__init__(word_size, hidden_size, output_size)
        self.pos_emb = nn.Linear(pos_size, word_size)

    def forward(self, word_embs: torch.Tensor, pos_onehot: torch.Tensor, cap_lens) -> torch.Tensor:
        return self._run(word_embs + self.pos_emb(pos_onehot), cap_lens)


class T2MEvaluator(nn.Module):
    """The three original networks with the evaluation-time wrapper logic.

    Motions must be normalised with the EVALUATOR's mean/std (``load_t2m_meta``),
    padded with anything (frames beyond each length are zeroed, as the original
    loaders pad with zeros).
    """

    def __init__(self, dim_pose: int = 263, movement_hidden: int = 512, movement_latent: int = 512,
                 motion_hidden: int = 1024, text_hidden: int = 512, word_size: int = 300,
                 pos_size: int = 15, embed_dim: int = 512):
        super().__init__()
        self.dim_pose = dim_pose
        self.movement_encoder = MovementConvEncoder(dim_pose - 4, movement_hidden, movement_latent)
        self.motion_encoder = MotionEncoderBiGRUCo(movement_latent, motion_hidden, embed_dim)
        self.text_encoder = TextEncoderBiGRUCo(word_size, pos_size, text_hidden, embed_dim)

    @torch.no_grad()
    def embed_motion(self, motions: torch.Tensor, lengths) -> torch.Tensor:
        """(B, T, dim_pose) evaluator-normalised features, (B,) frame counts -> (B, 512)."""
        if motions.ndim != 3 or motions.shape[-1] != self.dim_pose:
            raise ValueError(f"motions must be (B, T, {self.dim_pose}), got {tuple(motions.shape)}")
        dev = next(self.parameters()).device
        x = motions.to(dev, torch.float32)[..., :-4]           # foot contacts are not used
        lengths = torch.as_tensor(lengths, device=dev).to(torch.int64).reshape(-1).clamp(1, x.shape[1])
        x = x * (torch.arange(x.shape[1], device=dev)[None, :] < lengths[:, None])[..., None]
        return self.motion_encoder(self.movement_encoder(x), (lengths // UNIT_LENGTH).clamp(min=1))

    @torch.no_grad()
    def embed_text(self, word_embs, pos_onehot, cap_lens) -> torch.Tensor:
        """(B, 22, 300), (B, 22, 15), (B,) -> (B, 512)."""
        dev = next(self.parameters()).device
        w = torch.as_tensor(word_embs, dtype=torch.float32, device=dev)
        p = torch.as_tensor(pos_onehot, dtype=torch.float32, device=dev)
        return self.text_encoder(w, p, cap_lens)

    @staticmethod
    def sizes_from_state(states: dict) -> dict:
        """Network widths read off the checkpoint's tensor shapes (T2M or KIT)."""
        mv, mo, tx = states["movement_encoder"], states["motion_encoder"], states["text_encoder"]
        return dict(
            dim_pose=int(mv["main.0.weight"].shape[1]) + 4,
            movement_hidden=int(mv["main.0.weight"].shape[0]),
            movement_latent=int(mv["main.3.weight"].shape[0]),
            motion_hidden=int(mo["input_emb.weight"].shape[0]),
            text_hidden=int(tx["input_emb.weight"].shape[0]),
            word_size=int(tx["pos_emb.weight"].shape[0]),
            pos_size=int(tx["pos_emb.weight"].shape[1]),
            embed_dim=int(mo["output_net.3.weight"].shape[0]),
        )


def find_checkpoint(checkpoint_dir: str | Path) -> Path:
    """Locate finest.tar given checkpoints/t2m, .../text_mot_match, its model/ folder or the file."""
    p = Path(checkpoint_dir).expanduser()
    for cand in (p, p / "finest.tar", p / "model" / "finest.tar", p / CHECKPOINT):
        if cand.is_file():
            return cand
    raise T2MFilesMissing(
        f"T2M evaluator checkpoint not found: expected {p / CHECKPOINT} "
        "(from the T2M / CoMo evaluator download)")


def load_t2m_evaluator(checkpoint_dir: str | Path, device="cpu") -> T2MEvaluator:
    """Load the original evaluator from ``checkpoint_dir`` (e.g. ``checkpoints/t2m``), in eval mode.

    The file is read with ``torch.load(weights_only=True)`` only: any pickled
    object other than tensors and plain containers is refused.
    """
    path = find_checkpoint(checkpoint_dir)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:     # torch's own text suggests weights_only=False: not shown
        raise T2MEvaluatorError(
            f"{path} holds objects other than tensors and plain containers; refusing to load it") from None
    except Exception as e:  # noqa: BLE001 - corrupt or foreign file
        raise T2MEvaluatorError(f"could not read {path}: {e}") from e
    if not isinstance(ckpt, dict):
        raise T2MEvaluatorError(f"{path} is not a checkpoint dict")
    need = ("movement_encoder", "text_encoder", "motion_encoder")
    missing = [k for k in need if not isinstance(ckpt.get(k), dict)]
    if missing:
        raise T2MEvaluatorError(f"{path} lacks state dicts: {', '.join(missing)}")
    try:
        model = T2MEvaluator(**T2MEvaluator.sizes_from_state(ckpt))
        for k in need:
            getattr(model, k).load_state_dict(ckpt[k], strict=True)
    except (KeyError, RuntimeError) as e:
        raise T2MEvaluatorError(f"{path} does not match the T2M evaluator layout: {e}") from e
    return model.to(device).eval()


def load_t2m_meta(checkpoint_dir: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The evaluator's (mean, std) from ``Comp_v6_KLD005/meta`` (or the VQVAEV3 copy)."""
    p = Path(checkpoint_dir).expanduser()
    for sub in ("Comp_v6_KLD005/meta", "VQVAEV3_CB1024_CMT_H1024_NRES3/meta", "meta", "."):
        m, s = p / sub / "mean.npy", p / sub / "std.npy"
        if m.is_file() and s.is_file():
            return atomic.load_npy(m), atomic.load_npy(s)
    raise T2MFilesMissing(f"evaluator mean.npy/std.npy not found under {p}/Comp_v6_KLD005/meta")


# --------------------------------------------------------------------------
# restricted unpickling


class _NoGlobals(pickle.Unpickler):
    # Every opcode that calls code (REDUCE, BUILD, NEWOBJ, INST, OBJ) needs a
    # callable, and callables only come from find_class (GLOBAL, STACK_GLOBAL;
    # EXT* too, and copyreg registers no extension codes by default) or from
    # persistent_load. Refusing both leaves str/bytes/int/float/bool/None/list/
    # tuple/dict built directly by opcodes; _check_plain re-checks the result.
    def find_class(self, module, name):
        raise UnsafePickleError(f"refused global {module}.{name}")

    def persistent_load(self, pid):
        raise UnsafePickleError("refused persistent id")


_PLAIN = (str, bytes, int, float, bool, type(None))


def _check_plain(obj, depth: int = 0) -> None:
    if depth > 50:
        raise UnsafePickleError("pickle nests too deeply")
    if isinstance(obj, _PLAIN):
        return
    if type(obj) in (list, tuple, set, frozenset):
        for x in obj:
            _check_plain(x, depth + 1)
        return
    if type(obj) is dict:
        for k, v in obj.items():
            _check_plain(k, depth + 1)
            _check_plain(v, depth + 1)
        return
    raise UnsafePickleError(f"non-plain object of type {type(obj).__name__}")


def safe_unpickle(data: bytes | str | Path):
    """Unpickle plain data only (lists, dicts, str, numbers); anything else raises UnsafePickleError.

    Accepts the raw bytes or a file path. Safe for untrusted files because no
    global can be resolved, so no constructor or function can run.
    """
    where = ""
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.is_file():
            raise T2MFilesMissing(f"file not found: {path}")
        data, where = path.read_bytes(), f"{path}: "
    try:
        obj = _NoGlobals(io.BytesIO(data), encoding="latin1").load()
        _check_plain(obj)
    except UnsafePickleError as e:
        raise UnsafePickleError(f"{where}{e}") from None
    except Exception as e:  # noqa: BLE001 - malformed stream
        raise UnsafePickleError(f"{where}not a plain-data pickle: {e}") from e
    return obj


# --------------------------------------------------------------------------
# GloVe + word vectorizer


def load_glove(glove_dir: str | Path, prefix: str = "our_vab") -> dict[str, np.ndarray]:
    """word -> 300-d float32 vector from ``{prefix}_data.npy``/``_words.pkl``/``_idx.pkl``."""
    d = Path(glove_dir).expanduser()
    files = [d / f"{prefix}_data.npy", d / f"{prefix}_words.pkl", d / f"{prefix}_idx.pkl"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise T2MFilesMissing(f"GloVe files missing: {', '.join(missing)}")
    vectors = atomic.load_npy(files[0]).astype(np.float32)
    words = safe_unpickle(files[1])
    idx = safe_unpickle(files[2])
    if not isinstance(words, (list, tuple)) or not isinstance(idx, dict):
        raise T2MEvaluatorError("GloVe words must be a list and the index a dict")
    if vectors.ndim != 2:
        raise T2MEvaluatorError(f"{files[0]} must be a 2-D array, got {vectors.shape}")
    out = {}
    for w in words:
        if not isinstance(w, str):
            raise T2MEvaluatorError(f"GloVe word list holds a non-string: {w!r}")
        i = idx.get(w)
        if not isinstance(i, int) or not 0 <= i < len(vectors):
            raise T2MEvaluatorError(f"GloVe index for {w!r} is invalid: {i!r}")
        out[w] = vectors[i]
    for special in ("sos", "eos", "unk"):
        if special not in out:
            raise T2MEvaluatorError(f"GloVe vocabulary lacks the special word {special!r}")
    return out


def _pos_onehot(pos: str) -> np.ndarray:
    v = np.zeros(len(POS_CLASSES), dtype=np.float32)
    v[_POS_INDEX.get(pos, _POS_INDEX["OTHER"])] = 1.0
    return v


@dataclass
class EncodedCaptions:
    """Batch ready for ``T2MEvaluator.embed_text``."""

    word_embs: np.ndarray     # (B, 22, 300) float32
    pos_onehot: np.ndarray    # (B, 22, 15) float32
    cap_lens: np.ndarray      # (B,) int64, tokens incl. sos/eos


class WordVectorizer:
    """Turns HumanML3D token strings ("word/POS") into GloVe vectors and POS one-hots.

    A known word takes its vector and its POS, unless it is in a VIP list, whose
    class wins; an unknown word becomes ``unk`` with POS OTHER. Captions are
    wrapped as sos + words + eos (at most 20 words) and padded with ``unk`` to 22.
    """

    def __init__(self, glove_dir: str | Path | None = None, prefix: str = "our_vab",
                 word2vec: dict[str, np.ndarray] | None = None):
        self.word2vec = word2vec if word2vec is not None else load_glove(glove_dir, prefix)
        self.dim = len(next(iter(self.word2vec.values())))

    def __len__(self) -> int:
        return len(self.word2vec)

    def __getitem__(self, item: str) -> tuple[np.ndarray, np.ndarray]:
        word, _, pos = item.rpartition("/") if "/" in item else (item, "", "OTHER")
        vec = self.word2vec.get(word)
        if vec is None:
            return self.word2vec["unk"], _pos_onehot("OTHER")
        for cls, ws in VIP_WORDS.items():
            if word in ws:
                pos = cls
                break
        return vec, _pos_onehot(pos)

    def encode_tokens(self, tokens: Sequence[str] | str, max_text_len: int = MAX_TEXT_LEN):
        """One caption's tokens -> (22, 300) word vectors, (22, 15) one-hots, length."""
        if isinstance(tokens, str):
            tokens = tokens.split()
        toks = ["sos/OTHER"] + list(tokens)[:max_text_len] + ["eos/OTHER"]
        n = len(toks)
        toks += ["unk/OTHER"] * (max_text_len + 2 - n)
        pairs = [self[t] for t in toks]
        return (np.stack([p[0] for p in pairs]).astype(np.float32),
                np.stack([p[1] for p in pairs]), n)

    def encode_batch(self, captions: Sequence[Sequence[str] | str],
                     max_text_len: int = MAX_TEXT_LEN) -> EncodedCaptions:
        rows = [self.encode_tokens(c, max_text_len) for c in captions]
        return EncodedCaptions(np.stack([r[0] for r in rows]), np.stack([r[1] for r in rows]),
                               np.array([r[2] for r in rows], dtype=np.int64))
