"""A tiny regression stage for testing the training loop (importable by torchrun workers)."""

import torch

from core.train.distributed import unwrap
from core.train.loop import Stage, _seed


class ToyStage(Stage):
    name = "toy"
    best_metric = "val_loss"
    PRESETS = {"small": {"batch_size": 8, "lr": 0.05, "warmup_steps": 2, "max_steps": 20, "log_every": 1,
                         "val_every": 5, "ckpt_every": 5, "window": 4, "weight_decay": 0.0}}

    def __init__(self, config, device):
        super().__init__(config, device)
        g = torch.Generator().manual_seed(0)
        self.w_true = torch.randn(6, 1, generator=g)
        self.val_x = torch.randn(64, 6, generator=g)

    def build_model(self):
        p = self.config.extra.get("dropout", 0.0)
        return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.Dropout(p), torch.nn.Linear(16, 1))

    def _batch(self, generator):
        x = torch.randn(self.config.batch_size, 6, generator=generator)
        return x, x @ self.w_true + 0.01 * torch.randn(len(x), 1, generator=generator)

    def get_batch(self, step, generator):
        sim = self.config.extra.get("simulate_world", 1)
        if sim == 1:
            return self._batch(generator)
        # the batches every rank of a `sim`-process run would draw at this step, concatenated
        parts = [self._batch(torch.Generator().manual_seed(_seed(self.config.seed, step, r, 2))) for r in range(sim)]
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def training_step(self, model, batch, step):
        import time

        time.sleep(self.config.extra.get("sleep", 0))
        x, y = batch
        loss = torch.nn.functional.mse_loss(model(x), y)
        return loss, {"mse": float(loss.detach())}

    def validate(self, model):
        y = self.val_x @ self.w_true
        return {"val_loss": float(torch.nn.functional.mse_loss(unwrap(model)(self.val_x), y))}
