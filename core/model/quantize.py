"""Inference precision of the transformers: float32, bfloat16, or int8 weights.

Sampling one motion at a time reads every weight once per step, so on a CPU the time is
set by memory traffic, not arithmetic: int8 weights (one scale per output channel, bf16
activations) read a quarter of the bytes of float32. Only for inference; never trained.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

PRECISIONS = ("float32", "bfloat16", "int8")


def int8_available() -> bool:
    return hasattr(torch, "_weight_int8pack_mm")


def fast_bfloat16() -> bool:
    """True where the CPU multiplies bf16 natively (AVX512-BF16); elsewhere bf16 is emulated and slow."""
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    try:
        return bool(check()) if check else False
    except RuntimeError:
        return False


def auto_precision(device: torch.device) -> tuple[str, str]:
    """(Base, Refine) precision for inference on a device.

    The Base samples one step at a time and so reads every weight per step: int8 weights on a
    CPU. The Refine runs whole sequences (compute-bound): bf16 where the CPU has native bf16."""
    if device.type != "cpu":
        return "float32", "float32"
    return ("int8" if int8_available() else "float32"), ("bfloat16" if fast_bfloat16() else "float32")


class Int8Linear(nn.Module):
    """y = x W^T + b with W stored as int8 rows and a per-row scale."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        w = linear.weight.detach().float()
        scale = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12)
        self.register_buffer("weight", torch.round(w / scale[:, None]).clamp(-128, 127).to(torch.int8))
        self.register_buffer("scale", scale.to(torch.bfloat16))
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().to(torch.bfloat16))
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        y = torch._weight_int8pack_mm(x.reshape(-1, shape[-1]).to(torch.bfloat16), self.weight, self.scale)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features)


def set_precision(model: nn.Module, precision: str) -> nn.Module:
    """Convert an eval-mode transformer in place for inference; returns it."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "float32":
        return model.float()
    model.to(torch.bfloat16)
    if precision == "int8":
        if not int8_available():
            raise ValueError("int8 weights need torch >= 2.4 (torch._weight_int8pack_mm); use bfloat16")
        if next(model.parameters()).device.type != "cpu":
            raise ValueError("int8 weights are for CPU inference; on a GPU use bfloat16 or float32")
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Linear) and child.in_features % 8 == 0:
                    setattr(parent, name, Int8Linear(child))
    return model
