"""CPU matmul kernels for the paper-size Refine's edit passes: one pass = its 24 linear layers
(6 blocks x qkv, proj, fc1, fc2 at width 1024), weights cold (too many to stay in cache).

    python benchmarks/linear_kernels.py [--rows 1 4 10 16] [--threads 2] [--repeats 10]

An edit runs 6 such passes over the edited steps only (a few rows), so this is what bounds
the paper-size edit (docs/speed.md). Kernels: bf16 weights as nn.Linear holds them, bf16 weights
packed once into oneDNN's layout (quantize.PackedLinear: what the Refine uses on a CPU with native
bf16), int8 and int4 weight-only (quantize.Int8Linear / Int4Linear), int8 weights x int8
activations (torch._int_mm, activations quantized per row, that cost included), and
torch.utils.mkldnn's bf16 linear (inputs converted to oneDNN tensors beforehand).
Prints ms per pass, never asserts.
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.model.precision import (  # noqa: E402
    Int4Linear,
    Int8Linear,
    PackedLinear,
    int4_available,
    int8_available,
    packed_bfloat16_available,
)

SHAPES = [(3072, 1024), (1024, 1024), (4096, 1024), (1024, 4096)] * 6     # (out, in) per layer


class IntMatmul(torch.nn.Module):
    """int8 weights (per-row scale) x int8 activations (per-row scale), int32 sums."""

    def __init__(self, lin: torch.nn.Linear):
        super().__init__()
        w = lin.weight.detach()
        self.scale = (w.abs().amax(1) / 127).clamp(min=1e-12)
        self.weight = torch.round(w / self.scale[:, None]).to(torch.int8).t().contiguous()
        self.bias = lin.bias.detach()

    def forward(self, x):
        x = x.float()
        sx = (x.abs().amax(1, keepdim=True) / 127).clamp(min=1e-12)
        y = torch._int_mm(torch.round(x / sx).to(torch.int8), self.weight).float() * (sx * self.scale)
        return (y + self.bias).to(torch.bfloat16)


def kernels() -> dict:
    torch.manual_seed(0)
    lins = [torch.nn.Linear(k, n) for n, k in SHAPES]
    out = {"bf16, nn.Linear": lambda: [torch.nn.Linear(k, n).to(torch.bfloat16) for n, k in SHAPES]}
    if packed_bfloat16_available():
        out["bf16 packed (used)"] = lambda: [PackedLinear(torch.nn.Linear(k, n)) for n, k in SHAPES]
    if int8_available():
        out["int8 weights"] = lambda: [Int8Linear(l) for l in lins]
    if int4_available():
        out["int4 weights"] = lambda: [Int4Linear(l) for l in lins]
    if hasattr(torch, "_int_mm"):
        out["int8 x int8 (_int_mm)"] = lambda: [IntMatmul(l) for l in lins]
    if torch.backends.mkldnn.is_available():
        import torch.utils.mkldnn as mk

        out["torch.utils.mkldnn bf16"] = lambda: [mk.to_mkldnn(torch.nn.Sequential(torch.nn.Linear(k, n)),
                                                             torch.bfloat16)[0] for n, k in SHAPES]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, nargs="+", default=[1, 4, 10, 16])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"one paper-size Refine pass (24 linears, cold weights), {args.threads} threads; ms per pass, "
          f"median of {args.repeats}")
    for name, build in kernels().items():
        layers = build()
        onednn = name.startswith("torch.utils.mkldnn")
        cells = []
        for m in args.rows:
            x = {k: torch.randn(m, k).bfloat16() for k in (1024, 4096)}
            if onednn:
                x = {k: v.float().to_mkldnn(torch.bfloat16) for k, v in x.items()}
            times = []
            with torch.inference_mode():
                for r in range(args.repeats + 2):
                    t = time.perf_counter()
                    for layer, (_, k) in zip(layers, SHAPES):
                        layer(x[k])
                    if r >= 2:
                        times.append(time.perf_counter() - t)
            cells.append(f"{m:3d} rows {1000 * sorted(times)[len(times) // 2]:6.1f}")
        print(f"  {name:24s} " + " | ".join(cells))


if __name__ == "__main__":
    main()
