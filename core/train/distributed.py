"""Data-parallel training when started by torchrun; a no-op otherwise.

The same command runs on one CPU, one GPU or many: torchrun sets RANK / WORLD_SIZE /
LOCAL_RANK, and we join the group with nccl on GPUs and gloo on CPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as td


@dataclass
class World:
    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        if not self.active:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        # residual dropout skips the encoder and RVQ on some steps: allow unused parameters
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=True)

    def barrier(self) -> None:
        if self.active:
            td.barrier()

    def agree(self, flag: bool) -> bool:
        """True on every rank if any rank says so (a cancel seen by one stops all)."""
        if not self.active:
            return bool(flag)
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        td.all_reduce(t, op=td.ReduceOp.MAX)
        return bool(t.item() > 0)

    def mean_dict(self, logs: dict) -> dict:
        if not self.active:
            return logs
        keys = sorted(k for k, v in logs.items() if isinstance(v, (int, float)))
        t = torch.tensor([float(logs[k]) for k in keys], device=self.device, dtype=torch.float64)
        td.all_reduce(t)
        return {**logs, **{k: float(v) / self.world_size for k, v in zip(keys, t.tolist())}}

    def teardown(self) -> None:
        if self.active and td.is_initialized():
            td.destroy_process_group()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def setup() -> World:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return World()
    rank = int(os.environ["RANK"])
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        torch.cuda.set_device(local)
        device, backend = torch.device("cuda", local), "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    if not td.is_initialized():
        td.init_process_group(backend=backend)
    return World(rank, world_size, device)
