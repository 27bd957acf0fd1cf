"""Training stage of the Base Transformer (text -> pose-code steps)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from core import atomic
from core.data.batches import train_and_val
from core.model.base_transformer import BaseTransformer, bce_loss, corrupt, group_logits, token_sequence
from core.model.configs import named_config
from core.model.io import save_weights
from core.train.distributed import unwrap
from core.train.loop import Stage
from core.train.text_motion import all_texts, crop, drop_keywords, segments, text_conditions, token_codes

# Paper: AdamW 1e-4 (0.5, 0.9), wd 1e-6, batch 64, 300k steps, x0.05 at 150k, no warm-up.
# Small: ~5 M parameters; a few thousand steps on a 2-core CPU.
PRESETS = {
    "paper": dict(batch_size=64, lr=1e-4, betas=(0.5, 0.9), weight_decay=1e-6, warmup_steps=0,
                  max_steps=300_000, milestones=[150_000], gamma=0.05, grad_clip=0.0, log_every=50,
                  val_every=10_000, ckpt_every=1000),
    "small": dict(batch_size=32, lr=3e-4, betas=(0.9, 0.95), weight_decay=1e-6, warmup_steps=200,
                  max_steps=5_000, milestones=[4_000], gamma=0.1, grad_clip=1.0, log_every=25,
                  val_every=1000, ckpt_every=250),
}
# scheduled input corruption (reference): probability of clean inputs decays 0.99 per step to 0.1
PKEEP, CLEAN_FLOOR = 0.5, 0.1


def clean_probability(step: int) -> float:
    return max(CLEAN_FLOOR, 0.99 ** (step + step // 200))


class BaseStage(Stage):
    name = "base"
    best_metric = "val_loss"
    best_mode = "min"
    PRESETS = PRESETS

    def __init__(self, config, device):
        super().__init__(config, device)
        train, val = train_and_val(config.data)
        texts = all_texts(train, val)
        index = {t: i for i, t in enumerate(texts)}
        self.cfg = self.model_config()
        self.cond = text_conditions(texts, self.cfg.text_encoder, config.out)
        if self.cond.shape[-1] != self.cfg.text_dim:
            raise ValueError(f"text encoder {self.cfg.text_encoder!r} gives {self.cond.shape[-1]}-d vectors, "
                             f"the model expects text_dim={self.cfg.text_dim}")
        self.train_codes, self.val_codes = token_codes(train), token_codes(val)
        self.train = segments(train, index)
        self.val = segments(val, index)[: config.extra.get("val_samples", 512)]
        if not self.train:
            raise ValueError(f"{config.data}: no captioned clip of at least 16 frames in the train split")
        self.keyword_drop = float(config.extra.get("keyword_drop", 0.2))
        self.pkeep = float(config.extra.get("pkeep", PKEEP))

    def model_config(self):
        return named_config("base", self.config.preset, **self.config.model)

    def build_model(self):
        return BaseTransformer(self.model_config())

    def _batch(self, samples, codes, rng, augment):
        T = self.cfg.max_tokens
        target = np.zeros((len(samples), T, 394), np.float32)
        lengths = np.zeros(len(samples), np.int64)
        for i, s in enumerate(samples):
            a, b = crop(s, T - 1, rng, augment)
            target[i], lengths[i] = token_sequence(codes[s.record][a:b], T)
        idx = torch.tensor([s.text for s in samples])
        return (self.cond[idx], torch.from_numpy(target), torch.from_numpy(lengths))

    def get_batch(self, step, generator):
        pick = torch.randint(len(self.train), (self.config.batch_size,), generator=generator).tolist()
        rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=generator)))
        cond, target, lengths = self._batch([self.train[i] for i in pick], self.train_codes, rng, True)
        cond = drop_keywords(cond, self.keyword_drop, generator)
        inputs = target[:, :-1]
        corrupted = torch.rand((), generator=generator).item() >= clean_probability(step)
        if corrupted:
            inputs = corrupt(inputs, self.pkeep, generator)
        d = self.device
        return cond.to(d), inputs.to(d), target.to(d), lengths.to(d), corrupted

    def training_step(self, model, batch, step):
        cond, inputs, target, lengths, corrupted = batch
        logits = model(cond, inputs)
        return bce_loss(logits, target, lengths), {"corrupted": float(corrupted)}

    def validate(self, model):
        model = unwrap(model)
        rng = np.random.default_rng(0)
        losses, hits, total, end_hits = [], 0, 0, 0
        for i in range(0, len(self.val), 64):
            cond, target, lengths = self._batch(self.val[i:i + 64], self.val_codes, rng, False)
            cond, target, lengths = cond.to(self.device), target.to(self.device), lengths.to(self.device)
            logits = model(cond, target[:, :-1])
            losses.append(float(bce_loss(logits, target, lengths)) * len(lengths))
            steps = torch.arange(target.shape[1], device=self.device)[None] < lengths[:, None]
            pred = group_logits(logits).argmax(-1)
            true = group_logits(target).argmax(-1)
            hits += int(((pred == true).float().mean(-1) * steps).sum())
            total += int(steps.sum())
            end_pos = logits[..., 392].argmax(-1)
            end_hits += int((end_pos == lengths).sum())
        n = len(self.val)
        if not n:
            return {}
        return {"val_loss": sum(losses) / n, "val_code_acc": hits / max(total, 1), "val_end_acc": end_hits / n}

    def export(self, model, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        model = unwrap(model)
        save_weights(folder / "base.safetensors", model, {"stage": "base"})
        atomic.write_text(folder / "base.json", json.dumps(model.config.to_dict(), indent=1))
