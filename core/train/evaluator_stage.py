"""Training stage of the text–motion evaluator (contrastive, on frozen MiniLM token features)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save as st_save

from core import atomic
from core.data.batches import train_and_val
from core.eval.evaluator import EvaluatorConfig, TextMotionEvaluator, contrastive_loss
from core.eval.metrics import matching_score, r_precision
from core.text.encoders import TextFeatures, load_text_encoder
from core.train.checkpoint import read_cache
from core.train.distributed import unwrap
from core.train.loop import Stage

# Paper (§5.2): Adam 1e-4, batch 32, margin 10. Small: fewer, wider steps for a 2-core CPU.
PRESETS = {
    "paper": dict(batch_size=32, window=196, lr=1e-4, betas=(0.9, 0.999), weight_decay=0.0, warmup_steps=0,
                  max_steps=200_000, milestones=[], grad_clip=0.0, log_every=50, val_every=2000,
                  ckpt_every=1000),
    "small": dict(batch_size=32, window=196, lr=3e-4, betas=(0.9, 0.999), weight_decay=0.0, warmup_steps=200,
                  max_steps=4_000, milestones=[3_200], gamma=0.1, grad_clip=1.0, log_every=25,
                  val_every=500, ckpt_every=250),
}
MARGIN = 10.0


def _crop_length(n: int, unit: int, rng: np.random.Generator) -> int:
    """HumanML3D's evaluation rule: 2/3 of the time n//unit*unit, else one unit less."""
    full = n // unit * unit
    return max(unit, full - unit) if rng.random() < 1 / 3 else max(unit, full)


class EvaluatorStage(Stage):
    name = "evaluator"
    best_metric = "val_top3"
    best_mode = "max"
    PRESETS = PRESETS

    def __init__(self, config, device):
        super().__init__(config, device)
        train, val = train_and_val(config.data)
        self.mean, self.std = train.mean, train.std
        self.max_frames = config.window
        self.train = [(train.normalized(train[s.record].features[s.start:s.end]), s.caption.text)
                      for s in train.segments()]
        self.val = [(val.normalized(val[s.record].features[s.start:s.end]), s.caption.text)
                    for s in val.segments()][: config.extra.get("val_pairs", 1024)]
        texts = sorted({t for _, t in self.train} | {t for _, t in self.val})
        self.text_index = {t: i for i, t in enumerate(texts)}
        self.text_features = self._text_cache(texts)

    def model_config(self):
        return EvaluatorConfig.named(self.config.preset, dim_pose=int(self.mean.shape[0]), **self.config.model)

    def _text_cache(self, texts: list[str]):
        """MiniLM token features of every caption, computed once per run folder."""
        key = hashlib.sha1(json.dumps(texts).encode()).hexdigest()
        path = Path(self.config.out) / "text_features.safetensors"
        data = read_cache(path) or {}
        if {"key", "sentence", "tokens", "mask"} <= set(data) and bytes(data["key"].tolist()) == key.encode():
            return TextFeatures(data["sentence"].float(), data["tokens"].float(), data["mask"].bool())
        enc = load_text_encoder(self.model_config().text_encoder)
        parts = [enc.encode(texts[i:i + 128]) for i in range(0, len(texts), 128)]
        tf = TextFeatures.cat(parts)
        atomic.write_bytes(path, st_save({"sentence": tf.sentence.half(), "tokens": tf.tokens.half(),
                                          "mask": tf.mask.to(torch.uint8),
                                          "key": torch.tensor(list(key.encode()), dtype=torch.uint8)}))
        return tf

    def build_model(self):
        return TextMotionEvaluator(self.model_config())

    def _collate(self, pairs, rng):
        unit = self.model_config().unit_length
        lengths = [_crop_length(min(len(f), self.max_frames), unit, rng) for f, _ in pairs]
        x = np.zeros((len(pairs), max(lengths), self.mean.shape[0]), np.float32)
        for i, ((f, _), n) in enumerate(zip(pairs, lengths)):
            start = int(rng.integers(0, len(f) - n + 1))
            x[i, :n] = f[start:start + n]
        idx = torch.tensor([self.text_index[t] for _, t in pairs])
        return (self.text_features[idx].trim().to(self.device), torch.from_numpy(x).to(self.device),
                torch.tensor(lengths, device=self.device))

    def get_batch(self, step, generator):
        pick = torch.randint(len(self.train), (self.config.batch_size,), generator=generator).tolist()
        rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=generator)))
        return self._collate([self.train[i] for i in pick], rng)

    def training_step(self, model, batch, step):
        text, motion, lengths = batch
        t, m = model(text, motion, lengths)
        loss = contrastive_loss(t, m, margin=MARGIN)
        return loss, {"pos_dist": float((t - m).norm(dim=-1).mean().detach())}

    def validate(self, model):
        model = unwrap(model)
        rng = np.random.default_rng(0)
        order = rng.permutation(len(self.val))
        bs = min(32, len(order))      # batches of 32 as the protocol; fewer only for tiny sets
        ts, ms = [], []
        for i in range(0, len(order) - bs + 1, bs):
            text, motion, lengths = self._collate([self.val[j] for j in order[i:i + bs]], rng)
            t, m = model(text, motion, lengths)
            ts.append(t.cpu().numpy())
            ms.append(m.cpu().numpy())
        if not ts:
            return {}
        t, m = np.concatenate(ts), np.concatenate(ms)
        top = r_precision(t, m, top_k=3, batch_size=bs)
        return {"val_top1": float(top[0]), "val_top2": float(top[1]), "val_top3": float(top[2]),
                "val_matching": float(matching_score(t, m, batch_size=bs))}

    def export(self, model, folder: Path):
        unwrap(model).save(folder)
        atomic.save_npy(folder / "mean.npy", self.mean)
        atomic.save_npy(folder / "std.npy", self.std)
