"""Inference precision of the transformers: float32, bfloat16, int8 or int4 weights.

Sampling one motion at a time reads every weight once per step, so on a CPU the time is
set by memory traffic, not arithmetic: int8 weights (one scale per output channel, bf16
activations) read a quarter of the bytes of float32, int4 (groups of 32 along the input,
a scale and an offset each) an eighth. Only for inference; never trained.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

PRECISIONS = ("float32", "bfloat16", "int8", "int4")
INT4_GROUP = 32


def int8_available() -> bool:
    return hasattr(torch, "_weight_int8pack_mm")


def int4_available() -> bool:
    return hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu")


def fast_bfloat16() -> bool:
    """True where the CPU multiplies bf16 natively (AVX512-BF16); elsewhere bf16 is emulated and slow."""
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    try:
        return bool(check()) if check else False
    except RuntimeError:
        return False


INT4_MIN_PARAMS = 100_000_000


def auto_precision(device: torch.device, base_params: int = 0) -> tuple[str, str]:
    """(Base, Refine) precision for inference on a device.

    The Base samples one step at a time and so reads every weight per step: int8 weights on a
    CPU, int4 for a Base of 100 M parameters or more (paper size: its 228 M weights no longer
    fit in any cache, and half the bytes is 1.4x faster; on the small model int4 keeps 99.4 % of
    the float32 greedy choices, int8 99.8 %). The Refine runs whole sequences (compute-bound):
    bf16 where the CPU has native bf16."""
    if device.type != "cpu":
        return "float32", "float32"
    base = "int8" if int8_available() else "float32"
    if base == "int8" and base_params >= INT4_MIN_PARAMS and int4_available():
        base = "int4"
    return base, ("bfloat16" if fast_bfloat16() else "float32")


_PACKED_OK: bool | None = None


def packed_bfloat16_available() -> bool:
    """True where oneDNN can hold bf16 linear weights in its own blocked layout (checked once on a
    small layer against the plain product; any failure means the plain bf16 path)."""
    global _PACKED_OK
    if _PACKED_OK is None:
        _PACKED_OK = False
        if fast_bfloat16() and torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise"):
            try:
                gen = torch.Generator().manual_seed(0)
                lin = nn.Linear(64, 48).to(torch.bfloat16)
                x = torch.randn(3, 64, generator=gen).to(torch.bfloat16)
                got = PackedLinear(lin)(x).float()
                want = torch.nn.functional.linear(x, lin.weight, lin.bias).float()
                _PACKED_OK = bool(torch.allclose(got, want, rtol=2e-2, atol=2e-2))
            except (RuntimeError, AttributeError, NotImplementedError):
                _PACKED_OK = False
    return _PACKED_OK


class PackedLinear(nn.Module):
    """bf16 y = x W^T + b with W reordered once into oneDNN's blocked layout.

    The plain bf16 product re-blocks the weight on every call; for the few rows an edit or a
    sampling step runs, that costs as much as the product (measured: the paper-size Refine's
    linear layers, 10 rows, 14 -> 7.4 ms in benchmarks/linear_kernels.py). oneDNN's single-row path is pathologically slow
    (1.5 s), so one row is padded to two."""

    def __init__(self, linear: nn.Linear, rows_hint: int = 16):
        super().__init__()
        # the packed tensor is opaque: kept as a plain attribute, out of state_dict and .to()
        self.packed = torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach().to(torch.bfloat16), rows_hint)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().to(torch.bfloat16))
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        flat = x.reshape(-1, shape[-1]).to(torch.bfloat16)
        n = flat.shape[0]
        if n == 0:
            return x.new_zeros(*shape[:-1], self.out_features, dtype=torch.bfloat16)
        if n == 1:
            flat = torch.cat([flat, flat.new_zeros(1, shape[-1])])
        y = torch.ops.mkldnn._linear_pointwise(flat, self.packed, self.bias, "none", [], "")
        return y[:n].reshape(*shape[:-1], self.out_features)


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


class Int4Linear(nn.Module):
    """y = x W^T + b with W in 4 bits: per group of 32 inputs, w = (q - 8) * scale + zero."""

    def __init__(self, linear: nn.Linear, group: int = INT4_GROUP):
        super().__init__()
        w = linear.weight.detach().float()
        n, k = w.shape
        g = w.reshape(n, k // group, group)
        low, high = g.amin(dim=-1), g.amax(dim=-1)
        scale = ((high - low) / 15.0).clamp(min=1e-12)
        q = torch.round((g - low[..., None]) / scale[..., None]).clamp(0, 15).to(torch.int32).reshape(n, k)
        self.register_buffer("weight", torch.ops.aten._convert_weight_to_int4pack_for_cpu(q, 1))
        zeros = low + 8.0 * scale                       # the kernel centres q on 8
        self.register_buffer("scales_zeros", torch.stack([scale.t(), zeros.t()], dim=-1).to(torch.bfloat16).contiguous())
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().to(torch.bfloat16))
        self.group, self.in_features, self.out_features = group, k, n

    def forward(self, x: Tensor) -> Tensor:
        shape = x.shape
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(x.reshape(-1, shape[-1]).to(torch.bfloat16), self.weight,
                                                       self.group, self.scales_zeros)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features)


def _swap_linears(model: nn.Module, convert) -> None:
    """Replace each nn.Linear by convert(linear), unless that returns None."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear) and (new := convert(child)) is not None:
                setattr(parent, name, new)


def set_precision(model: nn.Module, precision: str) -> nn.Module:
    """Convert an eval-mode transformer in place for inference; returns it."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "float32":
        return model.float()
    model.to(torch.bfloat16)
    if precision == "bfloat16":
        if next(model.parameters()).device.type == "cpu" and packed_bfloat16_available():
            _swap_linears(model, PackedLinear)
        return model
    if not int8_available() or (precision == "int4" and not int4_available()):
        raise ValueError(f"{precision} weights need a newer torch (its CPU weight-only kernels); "
                         "use bfloat16")
    if next(model.parameters()).device.type != "cpu":
        raise ValueError(f"{precision} weights are for CPU inference; on a GPU use bfloat16 or float32")

    def low_bit(lin: nn.Linear) -> nn.Module | None:
        if lin.in_features % 8:
            return None
        four = precision == "int4" and lin.in_features % INT4_GROUP == 0 and lin.out_features % 16 == 0
        return Int4Linear(lin) if four else Int8Linear(lin)

    _swap_linears(model, low_bit)
    return model
