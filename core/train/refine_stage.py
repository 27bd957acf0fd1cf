"""Training stage of the Refine Transformer (pose codes + text -> residual codes per stage).

The targets are the residual indices a frozen tokenizer gives the ground-truth motion
(``--set extra.tokenizer=DIR``, required). The reference initialises the pose-code embedding
from a trained Base Transformer and freezes it; ``extra.base=DIR`` does that, otherwise the
embedding is learned here, so the two transformers can train at the same time.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from core import atomic
from core.data.batches import train_and_val
from core.model.configs import named_config
from core.model.io import load_base, load_tokenizer, save_weights
from core.model.refine_transformer import RefineTransformer
from core.train.distributed import unwrap
from core.train.loop import Stage
from core.train.text_motion import UNIT, all_texts, crop, segments, text_conditions

# Paper: AdamW 2e-4 (0.5, 0.9), wd 1e-6, batch 64, 150k steps, warm-up 5k, x0.5 at 45k.
PRESETS = {
    "paper": dict(batch_size=64, lr=2e-4, betas=(0.5, 0.9), weight_decay=1e-6, warmup_steps=5000,
                  max_steps=150_000, milestones=[45_000], gamma=0.5, grad_clip=0.0, log_every=50,
                  val_every=10_000, ckpt_every=1000),
    "small": dict(batch_size=32, lr=3e-4, betas=(0.9, 0.95), weight_decay=1e-6, warmup_steps=200,
                  max_steps=5_000, milestones=[4_000], gamma=0.1, grad_clip=1.0, log_every=25,
                  val_every=1000, ckpt_every=250),
}


def sample_stages(n: int, n_stages: int, generator: torch.Generator) -> torch.Tensor:
    """q = round((1 - cos(u pi/2)) (n_stages - 1)), u ~ U(0, 1): low stages more often."""
    u = torch.rand(n, generator=generator)
    return torch.round((1 - torch.cos(u * math.pi / 2)) * (n_stages - 1)).long()


@torch.no_grad()
def residual_targets(tokenizer, folder, device) -> list[np.ndarray]:
    """Per record, the tokenizer's residual indices (n_stages, S) of the whole clip."""
    out = []
    for r in folder.records:
        n = r.n_frames // UNIT * UNIT
        if n < UNIT:
            out.append(np.zeros((tokenizer.config.n_stages, 0), np.int64))
            continue
        m = torch.from_numpy(folder.normalized(r.features[:n]).astype(np.float32))[None].to(device)
        c = torch.from_numpy(r.codes[:n].astype(np.float32))[None].to(device)
        _, idx = tokenizer.encode(m, c)
        out.append(idx[0].cpu().numpy())
    return out


class RefineStage(Stage):
    name = "refine"
    best_metric = "val_loss"
    best_mode = "min"
    PRESETS = PRESETS

    def __init__(self, config, device):
        super().__init__(config, device)
        tok_dir = config.extra.get("tokenizer")
        if not tok_dir:
            raise ValueError("the refine stage needs a trained tokenizer: --tokenizer DIR "
                             "(or --set extra.tokenizer=DIR)")
        tokenizer, mean, _ = load_tokenizer(tok_dir, device)
        train, val = train_and_val(config.data)
        if train.mean.shape != mean.shape:
            raise ValueError(f"{config.data}: {train.mean.shape[0]}-d features, the tokenizer expects {mean.shape[0]}-d")
        self.cfg = self.model_config()
        if (self.cfg.n_stages, self.cfg.n_codes) != (tokenizer.config.n_stages, tokenizer.config.n_codes):
            raise ValueError("the refine config's n_stages/n_codes must match the tokenizer's")
        texts = all_texts(train, val)
        index = {t: i for i, t in enumerate(texts)}
        self.cond = text_conditions(texts, self.cfg.text_encoder, config.out)
        self.train_idx = residual_targets(tokenizer, train, device)
        self.val_idx = residual_targets(tokenizer, val, device)
        self.train_codes = [r.codes[::UNIT][: i.shape[1]] for r, i in zip(train.records, self.train_idx)]
        self.val_codes = [r.codes[::UNIT][: i.shape[1]] for r, i in zip(val.records, self.val_idx)]
        self.train = segments(train, index)
        self.val = segments(val, index)[: config.extra.get("val_samples", 512)]
        if not self.train:
            raise ValueError(f"{config.data}: no captioned clip of at least 16 frames in the train split")

    def model_config(self):
        return named_config("refine", self.config.preset, **self.config.model)

    def build_model(self):
        model = RefineTransformer(self.model_config())
        base_dir = self.config.extra.get("base")
        if base_dir:
            base = load_base(base_dir)
            if base.config.dim != model.config.dim:
                raise ValueError(f"extra.base: the Base Transformer is {base.config.dim} wide, the refine {model.config.dim}")
            model.pose_emb.load_state_dict(base.tok_emb.state_dict())
            model.pose_emb.requires_grad_(False)
        return model

    def _batch(self, samples, codes, indices, rng, augment):
        S = self.cfg.max_tokens
        B, n = len(samples), self.cfg.n_stages
        pose = np.zeros((B, S, 392), np.float32)
        idx = np.zeros((B, n, S), np.int64)
        lengths = np.zeros(B, np.int64)
        for i, s in enumerate(samples):
            a, b = crop(s, S, rng, augment)
            b = min(b, indices[s.record].shape[1])
            pose[i, :b - a] = codes[s.record][a:b]
            idx[i, :, :b - a] = indices[s.record][:, a:b]
            lengths[i] = b - a
        text = torch.tensor([s.text for s in samples])
        return [t.to(self.device) for t in (self.cond[text], torch.from_numpy(pose), torch.from_numpy(idx),
                                            torch.from_numpy(lengths))]

    def get_batch(self, step, generator):
        pick = torch.randint(len(self.train), (self.config.batch_size,), generator=generator).tolist()
        rng = np.random.default_rng(int(torch.randint(2**31, (1,), generator=generator)))
        batch = self._batch([self.train[i] for i in pick], self.train_codes, self.train_idx, rng, True)
        return batch + [sample_stages(len(pick), self.cfg.n_stages, generator).to(self.device)]

    def training_step(self, model, batch, step):
        cond, pose, idx, lengths, stage = batch
        return model(cond, pose, idx, lengths, stage)

    def validate(self, model):
        model = unwrap(model)
        rng = np.random.default_rng(0)
        logs, n = {}, 0
        for i in range(0, len(self.val), 64):
            cond, pose, idx, lengths = self._batch(self.val[i:i + 64], self.val_codes, self.val_idx, rng, False)
            for q in range(self.cfg.n_stages):
                stage = torch.full((len(lengths),), q, dtype=torch.long, device=self.device)
                loss, extra = model(cond, pose, idx, lengths, stage)
                logs[f"val_loss_{q}"] = logs.get(f"val_loss_{q}", 0.0) + float(loss) * len(lengths)
                logs[f"val_acc_{q}"] = logs.get(f"val_acc_{q}", 0.0) + extra["acc"] * len(lengths)
            n += len(lengths)
        if not n:
            return {}
        logs = {k: v / n for k, v in logs.items()}
        logs["val_loss"] = float(np.mean([logs[f"val_loss_{q}"] for q in range(self.cfg.n_stages)]))
        return logs

    def export(self, model, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        model = unwrap(model)
        save_weights(folder / "refine.safetensors", model, {"stage": "refine"})
        atomic.write_text(folder / "refine.json", json.dumps(model.config.to_dict(), indent=1))
