"""The completed ResNets of Sections 5.4 and 6 in PyTorch (needs the ``train`` extra).

Both models use the NTK parametrisation of the paper: every trainable tensor is a
standard-normal ``eps`` (Assumption 3.4 / 3.7 written as eq. 16-17), every scale is a
multiplication in the forward pass, and all layers (input, residual, output) are
trained, so gradients are taken with respect to the ``eps`` themselves.

* :class:`CompletedFC` is F-bar-bar_tanh (docs/figures.md, "completed FC ResNet"):
  ``x_0 = sigma_Z eps_A z`` with ``sigma_Z^2 = 1/784``; ``L`` residual layers
  ``x += tanh(sigma_w sqrt(dt/D) eps_W x + sigma_b sqrt(dt) eps_b)`` (eq. 8/26);
  ``y = (sigma_Y / sqrt(D)) eps_G x_T`` in R^10.
* :class:`CompletedConv` is C-bar-bar_tanh ("completed conv ResNet"): a 1x1 convolution
  in (``A ~ N(0, 1/C)``), ``L`` residual 3x3 convolutions (zero "same" padding,
  stride 1, ``dW = sigma_w sqrt(dt/D) eps_W``, the paper's 1/sqrt(D) scaling), a 1x1
  convolution out to 10 channels (``G ~ N(0, 1/D)``) and a global average. The 1x1
  output convolution and the average commute, so the model averages first.

Initial values come from :mod:`resdiff.rng` streams (``seed``, a purpose tag per
tensor, one stream per layer), so a seed gives the same network on any device and for
any thread count. The residual weights of all layers live in one tensor
(``eps_W[l]`` is layer ``l``): one optimizer update per tensor, not per layer.
"""
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import rng

SIGMA_W2 = 1.0     # Section 6.3
SIGMA_B2 = 0.01    # 0.1^2, Section 6.3
SIGMA_Y2 = 1.0     # docs/figures.md, completed FC ResNet
N_PIXELS = 784
N_CLASSES = 10


def init_eps(seed, purpose, shape, per_layer=False):
    """A float32 tensor of standard normals from the counter-based streams.

    With ``per_layer`` the leading axis indexes layers and layer ``l`` is stream ``l``
    (bounded float64 scratch memory, and a layer's values do not depend on L).
    """
    shape = tuple(int(s) for s in shape)
    out = torch.empty(shape, dtype=torch.float32)
    if per_layer:
        inner = int(np.prod(shape[1:]))
        for layer in range(shape[0]):
            values = rng.normals(seed, purpose, layer, inner).astype(np.float32)
            out[layer].copy_(torch.from_numpy(values.reshape(shape[1:])))
    else:
        values = rng.normals(seed, purpose, 0, int(np.prod(shape))).astype(np.float32)
        out.copy_(torch.from_numpy(values.reshape(shape)))
    return out


class _Completed(nn.Module):
    """Shared bookkeeping: sizes, variances and the multiplicative scales."""

    arch = None

    def __init__(self, width, depth, sigma_w2, sigma_b2, sigma_in2, sigma_y2):
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError("width and depth must be positive")
        self.width, self.depth = int(width), int(depth)
        self.sigma_w2, self.sigma_b2 = float(sigma_w2), float(sigma_b2)
        self.sigma_in2, self.sigma_y2 = float(sigma_in2), float(sigma_y2)
        dt = 1.0 / self.depth                                   # T = 1
        self.c_in = math.sqrt(self.sigma_in2)                   # A = sigma_Z eps_A
        self.c_w = math.sqrt(self.sigma_w2 * dt / self.width)   # dW = sigma_w sqrt(dt/D) eps_W
        self.c_b = math.sqrt(self.sigma_b2 * dt)                # db = sigma_b sqrt(dt) eps_b
        self.c_y = math.sqrt(self.sigma_y2 / self.width)        # G = (sigma_Y/sqrt(D)) eps_G

    def extra_repr(self):
        return (f"D={self.width}, L={self.depth}, sigma_w2={self.sigma_w2:g}, "
                f"sigma_b2={self.sigma_b2:g}, sigma_in2={self.sigma_in2:g}, "
                f"sigma_y2={self.sigma_y2:g}")

    def n_parameters(self):
        return sum(p.numel() for p in self.parameters())


class CompletedFC(_Completed):
    """F-bar-bar_tanh: input ``(N, 784)`` float32 in [0, 1] -> output ``(N, 10)``."""

    arch = "fc"

    def __init__(self, width, depth=None, *, seed=0, n_in=N_PIXELS, n_out=N_CLASSES,
                 sigma_w2=SIGMA_W2, sigma_b2=SIGMA_B2, sigma_z2=None, sigma_y2=SIGMA_Y2):
        depth = width if depth is None else depth
        sigma_z2 = 1.0 / n_in if sigma_z2 is None else sigma_z2
        super().__init__(width, depth, sigma_w2, sigma_b2, sigma_z2, sigma_y2)
        D, L = self.width, self.depth
        tag = "mnist-train/fc"
        self.eps_A = nn.Parameter(init_eps(seed, f"{tag}/A", (D, n_in)))
        self.eps_W = nn.Parameter(init_eps(seed, f"{tag}/W", (L, D, D), per_layer=True))
        self.eps_b = nn.Parameter(init_eps(seed, f"{tag}/b", (L, D), per_layer=True))
        self.eps_G = nn.Parameter(init_eps(seed, f"{tag}/G", (n_out, D)))

    def embed(self, z):
        return torch.mm(z, self.eps_A.t()).mul(self.c_in)           # x_0 = A z

    def residual(self, x):
        # unbind: one stacked gradient for eps_W at the end of backward, not L
        # full-size zero tensors as eps_W[l] indexing would create
        for W, b in zip(self.eps_W.unbind(0), self.eps_b.unbind(0)):
            # x_{t+dt} = x_t + tanh(dW_t x_t + db_t), eq. 8/26
            x = x + torch.tanh(torch.addmm(b, x, W.t(), beta=self.c_b, alpha=self.c_w))
        return x

    def forward(self, z):
        return torch.mm(self.residual(self.embed(z)), self.eps_G.t()).mul(self.c_y)


class CompletedConv(_Completed):
    """C-bar-bar_tanh: input ``(N, C, U, V)`` -> output ``(N, 10)``."""

    arch = "conv"

    def __init__(self, width, depth=None, *, seed=0, in_channels=1, n_out=N_CLASSES,
                 sigma_w2=SIGMA_W2, sigma_b2=SIGMA_B2, sigma_a2=None, sigma_y2=SIGMA_Y2,
                 channels_last=False):
        depth = width if depth is None else depth
        sigma_a2 = 1.0 / in_channels if sigma_a2 is None else sigma_a2
        super().__init__(width, depth, sigma_w2, sigma_b2, sigma_a2, sigma_y2)
        D, L = self.width, self.depth
        tag = "mnist-train/conv"
        self.channels_last = bool(channels_last)
        self.eps_A = nn.Parameter(init_eps(seed, f"{tag}/A", (D, in_channels, 1, 1)))
        self.eps_W = nn.Parameter(init_eps(seed, f"{tag}/W", (L, D, D, 3, 3), per_layer=True))
        self.eps_b = nn.Parameter(init_eps(seed, f"{tag}/b", (L, D), per_layer=True))
        self.eps_G = nn.Parameter(init_eps(seed, f"{tag}/G", (n_out, D)))

    def embed(self, z):
        if self.channels_last:
            z = z.contiguous(memory_format=torch.channels_last)
        return F.conv2d(z, self.eps_A * self.c_in)                  # x_{0,p} = A z_p

    def residual(self, x):
        for W, b in zip(self.eps_W.unbind(0), self.eps_b.unbind(0)):
            # 3x3 convolution, zero "same" padding, stride 1
            x = x + torch.tanh(F.conv2d(x, W * self.c_w, b * self.c_b, padding=1))
        return x

    def forward(self, z):
        pooled = self.residual(self.embed(z)).mean(dim=(2, 3))     # (1/UV) sum_p x_{T,p}
        return torch.mm(pooled, self.eps_G.t()).mul(self.c_y)       # G (1x1 conv out)


ARCHS = {"fc": CompletedFC, "conv": CompletedConv}


def build(arch, size, *, seed=0, sigma_w2=SIGMA_W2, sigma_b2=SIGMA_B2, **kwargs):
    """The completed model ``arch`` ("fc" or "conv") with ``D = L = size``."""
    try:
        cls = ARCHS[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(ARCHS)})")
    return cls(size, size, seed=seed, sigma_w2=sigma_w2, sigma_b2=sigma_b2, **kwargs)


def as_model_input(arch, features):
    """MNIST features ``(N, 784)`` in the layout ``arch`` takes."""
    if arch == "conv":
        return features.reshape(-1, 1, 28, 28)
    return features
