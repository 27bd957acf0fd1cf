"""1-D convolutional motion encoder and decoder (T2M-GPT / MoMask layout, method-facts §1.3).

Both take and return channels-last tensors (B, T, C); the transposes to the
(B, C, T) layout of Conv1d happen inside.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ResBlock", "ResStack", "Encoder", "Decoder"]


class ResBlock(nn.Module):
    """Pre-activation residual block: relu, dilated conv k3, relu, conv k1, plus the input."""

    def __init__(self, dim: int, dilation: int = 1):
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, 3, padding=dilation, dilation=dilation)
        self.proj = nn.Conv1d(dim, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.proj(F.relu(self.conv(F.relu(x))))


class ResStack(nn.Sequential):
    """`depth` residual blocks with dilations growth**i, largest first (9, 3, 1)."""

    def __init__(self, dim: int, depth: int, dilation_growth: int):
        super().__init__(*[ResBlock(dim, dilation_growth ** i) for i in reversed(range(depth))])


class Encoder(nn.Module):
    """Motion features (B, T, in_dim) -> latents (B, T / 2**down_t, out_dim)."""

    def __init__(
        self,
        *,
        in_dim: int = 263,          # motion features per frame
        out_dim: int = 512,         # latent width
        width: int = 512,           # conv channels
        down_t: int = 2,            # stride-2 convs, each halving time
        depth: int = 3,             # residual blocks per stack
        dilation_growth: int = 3,   # dilation ratio between consecutive blocks
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(in_dim, width, 3, padding=1), nn.ReLU()]
        for _ in range(down_t):
            layers += [nn.Conv1d(width, width, 4, stride=2, padding=1),
                       ResStack(width, depth, dilation_growth)]
        layers.append(nn.Conv1d(width, out_dim, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x.transpose(1, 2)).transpose(1, 2)


class Decoder(nn.Module):
    """Latents (B, S, in_dim) -> motion features (B, S * 2**down_t, out_dim)."""

    def __init__(
        self,
        *,
        in_dim: int = 512,          # latent width
        out_dim: int = 263,         # motion features per frame
        width: int = 512,           # conv channels
        down_t: int = 2,            # nearest x2 upsamplings, mirroring the encoder
        depth: int = 3,             # residual blocks per stack
        dilation_growth: int = 3,   # dilation ratio between consecutive blocks
    ):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(in_dim, width, 3, padding=1), nn.ReLU()]
        for _ in range(down_t):
            layers += [ResStack(width, depth, dilation_growth),
                       nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv1d(width, width, 3, padding=1)]
        layers += [nn.Conv1d(width, width, 3, padding=1), nn.ReLU(),
                   nn.Conv1d(width, out_dim, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z.transpose(1, 2)).transpose(1, 2)
