"""Training stage of the pose-guided RVQ tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from core import atomic
from core.data.batches import MotionWindows, eval_clips, train_and_val
from core.eval.metrics import mpjpe
from core.features import denormalize, recover_joints
from core.model.configs import tokenizer_config
from core.model.io import save_weights
from core.model.tokenizer import PoseGuidedTokenizer
from core.train.distributed import unwrap
from core.train.loop import Stage

# Paper: batch 256, window 64, AdamW 1e-4 (0.9, 0.99), warm-up 1000, 300k steps, x0.05 at 200k.
# Small: about 25 minutes on one CPU core at ~0.22 s/step (see docs/tokenizer.md).
PRESETS = {
    "paper": dict(batch_size=256, window=64, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, warmup_steps=1000,
                  max_steps=300_000, milestones=[200_000], gamma=0.05, grad_clip=0.0, log_every=50,
                  val_every=1000, ckpt_every=1000),
    "small": dict(batch_size=64, window=64, lr=2e-4, betas=(0.9, 0.99), weight_decay=0.0, warmup_steps=500,
                  max_steps=6_000, milestones=[5_000], gamma=0.1, grad_clip=1.0, log_every=25,
                  val_every=1000, ckpt_every=250),
}


class TokenizerStage(Stage):
    name = "tokenizer"
    best_metric = "val_mpjpe_mm"
    best_mode = "min"
    PRESETS = PRESETS

    def __init__(self, config, device):
        super().__init__(config, device)
        self.train_set, val = train_and_val(config.data)
        self.windows = MotionWindows(self.train_set, config.window)
        self.val = eval_clips(val)[: config.extra.get("val_clips", 200)]
        self.mean, self.std = self.train_set.mean, self.train_set.std

    def model_config(self):
        return tokenizer_config(self.config.preset, motion_dim=self.mean.shape[0], **self.config.model)

    def build_model(self):
        return PoseGuidedTokenizer(self.model_config())

    def get_batch(self, step, generator):
        motion, codes = self.windows.sample(self.config.batch_size, generator)
        return motion.to(self.device), codes.to(self.device)

    def training_step(self, model, batch, step):
        motion, codes = batch
        out = model(motion, codes)
        loss, logs = unwrap(model).loss(out, motion)
        logs["residual_dropped"] = float(out.residual_dropped)
        return loss, logs

    def validate(self, model):
        model = unwrap(model)
        errs_full, errs_pose, recon, indices = [], [], [], []
        for _, feats, codes in self.val:
            m = torch.from_numpy(feats)[None].to(self.device)
            c = torch.from_numpy(codes.astype(np.float32))[None].to(self.device)
            pose, idx = model.encode(m, c)
            gt = recover_joints(denormalize(feats, self.mean, self.std))
            for n, errs in ((None, errs_full), (0, errs_pose)):
                out = model.decode(pose, idx, n_stages=n)[0].cpu().numpy()
                errs.append(mpjpe(recover_joints(denormalize(out, self.mean, self.std)), gt))
                if n is None:
                    recon.append(float(np.abs(out - feats).mean()))
            indices.append(idx[0].cpu())
        idx = torch.cat(indices, dim=1)                        # (stages, steps)
        logs = {"val_mpjpe_mm": 1000 * float(np.mean(errs_full)),
                "val_pose_only_mpjpe_mm": 1000 * float(np.mean(errs_pose)),
                "val_l1": float(np.mean(recon))}
        n_codes = model.config.n_codes
        for s in range(idx.shape[0]):
            counts = torch.bincount(idx[s], minlength=n_codes).double()
            p = counts / counts.sum()
            logs[f"val_perplexity_{s}"] = float(torch.exp(-(p[p > 0] * p[p > 0].log()).sum()))
        return logs

    def export(self, model, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        model = unwrap(model)
        save_weights(folder / "tokenizer.safetensors", model, {"stage": "tokenizer"})
        atomic.write_text(folder / "tokenizer.json", json.dumps(model.config.to_dict(), indent=1))
        atomic.save_npy(folder / "mean.npy", self.mean)
        atomic.save_npy(folder / "std.npy", self.std)
