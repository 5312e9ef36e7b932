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

Initial values come from :mod:`resdiff.rng_xoshiro` streams (``seed``, a purpose tag per
tensor, one stream per layer), so a seed gives the same network on any device and for
any thread count. The residual weights of all layers live in one tensor
(``eps_W[l]`` is layer ``l``): one optimizer update per tensor, not per layer.

Speed: the FC residual stack is one :class:`ResidualStack` autograd function over all
``L`` layers (the same maths as the per-layer autograd graph, without its per-layer
bookkeeping): the forward keeps ``x_l`` and ``tanh(.)`` of every layer in two float32
buffers; the backward does per layer one ``tanh_backward`` and one GEMM for the input
gradient, then the weight gradient of each layer as one GEMM over the whole batch. The
conv residual stack on CPU is :class:`ConvResidualStack`: channels-last, the batch cut
into blocks of ``CONV_BLOCK`` images that run on the thread pool, oneDNN's direct
convolution on one thread per op (docs/training.md, "Conv on a CPU").

Precision (``precision``): ``fp32`` (the reference) and ``tf32`` (CUDA's TF32 matmuls,
switched on by the training loop; the same as fp32 on a CPU) compute in float32.
``bf16`` rounds the operands of every matmul/convolution (weights, activations and, in
the backward, the incoming gradients) to bfloat16 and accumulates in float32; the
residual stream, the tanh, the loss and the weights stay float32. The rounding is done
explicitly (``round_bf16``), so the numbers are the same on hardware with and without
native bf16 arithmetic (up to the float32 summation order).
"""

import math

import numpy as np
import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from .. import constraints
from .. import rng_xoshiro as rng  # the training runs' own, frozen streams
from ..constraints import MNIST_SIGMA_B2 as SIGMA_B2
from ..constraints import MNIST_SIGMA_W2 as SIGMA_W2
from ..constraints import PRECISIONS

SIGMA_Y2 = 1.0  # docs/figures.md, completed FC ResNet
N_PIXELS = 784
N_CLASSES = 10


def round_bf16(t):
    """``t`` rounded to the nearest bfloat16 (ties to even), in ``t``'s dtype."""
    return t.to(torch.bfloat16).to(t.dtype)


ROW_BLOCK = 100  # rows per block of the residual stack on CPU (fixed, see ResidualStack)
_pool = None


def set_cpu_threads(n):
    """Run the residual stack's row blocks on ``n`` threads, each op single-threaded.

    PyTorch itself is then set to one thread: the parallelism is over independent
    blocks of the batch, with no synchronisation per layer (on a shared machine a
    2-thread GEMM of one layer was 10x slower than a 1-thread one, waiting for the
    other thread). The blocks do not depend on ``n``, so neither do the results.
    """
    global _pool
    import concurrent.futures

    torch.set_num_threads(1)
    if _pool is not None:
        _pool.shutdown()
    _pool = None
    if n > 1:
        _pool = concurrent.futures.ThreadPoolExecutor(
            n, thread_name_prefix="resdiff-stack", initializer=torch.set_num_threads, initargs=(1,)
        )


def _each(fn, items):
    """``fn(item)`` for every item (no autograd), on the thread pool when there is one."""

    def run(item):
        with torch.no_grad():  # grad mode is per thread
            fn(item)

    if _pool is None or len(items) < 2:
        for item in items:
            run(item)
    else:
        for future in [_pool.submit(run, item) for item in items]:
            future.result()


def _row_blocks(x):
    if x.device.type != "cpu":
        return [slice(0, x.shape[0])]
    return [slice(i, i + ROW_BLOCK) for i in range(0, x.shape[0], ROW_BLOCK)]


def residual_forward(x0, eps_W, eps_b, c_w, c_b, bf16, X=None, T=None):
    """``x_L`` from ``x_0``: ``L`` layers ``x += tanh(c_w W_l x + c_b b_l)`` (eq. 8/26).

    ``bf16``: each ``x_l`` is rounded before its product; ``eps_W`` comes rounded
    (once per pass, not once per block and layer). With buffers ``X`` ``(L + 1, N, D)``
    and ``T`` ``(L, N, D)`` every ``x_l`` and every ``tanh(.)`` is kept (for the
    backward); without, one block of rows of work space per thread.
    """
    L = eps_W.shape[0]
    keep = X is not None

    def block(rows):
        x = x0[rows] if keep else x0[rows].clone()
        for l in range(L):
            x_in = round_bf16(x) if bf16 else x
            t = T[l, rows] if keep else None
            t = torch.addmm(eps_b[l], x_in, eps_W[l].t(), beta=c_b, alpha=c_w, out=t)
            torch.tanh(t, out=t)
            if keep:
                x = torch.add(x, t, out=X[l + 1, rows])
            else:
                x.add_(t)
        if not keep:
            out[rows] = x

    if keep:
        X[0].copy_(x0)
        x0 = X[0]
    else:
        out = torch.empty_like(x0)
    _each(block, _row_blocks(x0))
    return X[L] if keep else out


class ResidualStack(torch.autograd.Function):
    """The residual stack as one autograd node; gradients for ``x0``, ``eps_W``, ``eps_b``.

    ``apply(x0, eps_W, eps_b, c_w, c_b, bf16)``. Memory: two ``(L, N, D)`` buffers of
    ``x0``'s dtype, a third during the backward. On CPU the batch is split into blocks
    of ``ROW_BLOCK`` rows, run in parallel (:func:`set_cpu_threads`); a weight gradient
    is one GEMM over the whole batch per layer, so the numbers do not depend on the
    thread count.
    """

    @staticmethod
    def forward(ctx, x0, eps_W, eps_b, c_w, c_b, bf16):
        L = eps_W.shape[0]
        X = x0.new_empty((L + 1,) + x0.shape)  # x_0 .. x_L
        T = x0.new_empty((L,) + x0.shape)  # tanh(c_w W_l x_l + c_b b_l)
        W = round_bf16(eps_W) if bf16 else eps_W
        out = residual_forward(x0, W, eps_b, c_w, c_b, bf16, X, T)
        ctx.save_for_backward(X, T, W)
        ctx.c_w, ctx.c_b, ctx.bf16 = c_w, c_b, bf16
        return out.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        X, T, eps_W = ctx.saved_tensors  # eps_W: rounded under bf16
        c_w, bf16 = ctx.c_w, ctx.bf16
        L = eps_W.shape[0]
        G = torch.empty_like(T)  # gradients of the pre-activations
        grad_x = grad_out.contiguous().clone()  # dLoss/dx_l, updated in place

        def block(rows):
            g = grad_x[rows]
            for l in range(L - 1, -1, -1):
                torch.ops.aten.tanh_backward.grad_input(g, T[l, rows], grad_input=G[l, rows])
                if bf16:  # G = g (1 - t^2)
                    G[l, rows] = round_bf16(G[l, rows])
                g.addmm_(G[l, rows], eps_W[l], alpha=c_w)  # identity + W^T path to x_l

        _each(block, _row_blocks(grad_x))
        grad_W = torch.empty_like(eps_W)

        def weights(layers):
            for l in layers:
                x = round_bf16(X[l]) if bf16 else X[l]
                torch.addmm(grad_W[l], G[l].t(), x, beta=0.0, alpha=c_w, out=grad_W[l])

        n = 1 if _pool is None else _pool._max_workers
        _each(weights, [range(i, L, n) for i in range(n)])
        grad_b = G.sum(dim=1).mul_(ctx.c_b)
        return grad_x, grad_W, grad_b, None, None, None


CONV_BLOCK = 50  # images per block of the conv residual stack on CPU (fixed)


def _image_blocks(x):
    return [slice(i, i + CONV_BLOCK) for i in range(0, x.shape[0], CONV_BLOCK)]


def conv_residual_forward(x0, W, b, X=None, T=None):
    """``x_L`` from ``x_0`` (channels-last ``(N, D, U, V)``): ``L`` layers
    ``x += tanh(conv3x3(x, W_l) + b_l)`` (eq. 8/26, zero "same" padding, stride 1), with
    ``W``, ``b`` already scaled (``c_w eps_W``, ``c_b eps_b``).

    The batch is cut into blocks of ``CONV_BLOCK`` images, each block's layers run on
    one thread (:func:`set_cpu_threads`). With buffers ``X`` ``(L + 1, N, D, U, V)`` and
    ``T`` ``(L, N, D, U, V)`` (channels-last) every ``x_l`` and every ``tanh(.)`` is kept
    for the backward; without, only a block's work space.
    """
    L = W.shape[0]
    keep = X is not None

    def block(rows):
        x = x0[rows] if keep else x0[rows].clone()
        for l in range(L):
            t = F.conv2d(x, W[l], b[l], padding=1)
            if keep:
                torch.tanh(t, out=T[l, rows])
                x = torch.add(x, T[l, rows], out=X[l + 1, rows])
            else:
                x.add_(t.tanh_())
        if not keep:
            out[rows] = x

    if keep:
        X[0].copy_(x0)
        x0 = X[0]
    else:
        out = torch.empty_like(x0, memory_format=torch.channels_last)
    _each(block, _image_blocks(x0))
    return X[L] if keep else out


def _channels_last_buffer(like, layers):
    """``(layers, N, D, U, V)`` whose every ``[l]`` is a channels-last ``(N, D, U, V)``."""
    n, d, u, v = like.shape
    return like.new_empty((layers, n, u, v, d)).permute(0, 1, 4, 2, 3)


class ConvResidualStack(torch.autograd.Function):
    """The conv residual stack as one autograd node (CPU, fp32 / float64).

    ``apply(x0, eps_W, eps_b, c_w, c_b)`` with ``x0`` channels-last ``(N, D, U, V)``;
    gradients for ``x0``, ``eps_W`` and ``eps_b``. The forward keeps ``x_l`` and
    ``tanh(.)`` of every layer; the backward does per block of ``CONV_BLOCK`` images
    and per layer one ``tanh_backward`` and one ``convolution_backward`` (input,
    weight and bias gradients together). The blocks run in parallel, each op on one
    thread; the blocks' weight and bias gradients are summed in block order, so the
    numbers do not depend on the thread count.
    """

    @staticmethod
    def forward(ctx, x0, eps_W, eps_b, c_w, c_b):
        L = eps_W.shape[0]
        W, b = eps_W * c_w, eps_b * c_b  # as the per-layer graph scales them
        X = _channels_last_buffer(x0, L + 1)  # x_0 .. x_L
        T = _channels_last_buffer(x0, L)  # tanh(conv(x_l, W_l) + b_l)
        out = conv_residual_forward(x0, W, b, X, T)
        ctx.save_for_backward(X, T, W)
        ctx.c_w, ctx.c_b = c_w, c_b
        return out.clone(memory_format=torch.channels_last)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        X, T, W = ctx.saved_tensors
        L, D = W.shape[0], W.shape[1]
        grad_x = grad_out.contiguous(memory_format=torch.channels_last).clone(
            memory_format=torch.channels_last
        )  # dLoss/dx_l, updated in place
        blocks = _image_blocks(grad_x)
        grad_W = W.new_empty((len(blocks),) + W.shape)
        grad_b = W.new_empty((len(blocks), L, D))

        def block(k_rows):
            k, rows = k_rows
            g = grad_x[rows]
            for l in range(L - 1, -1, -1):
                G = torch.ops.aten.tanh_backward(g, T[l, rows])  # g (1 - t^2)
                gx, gw, gb = torch.ops.aten.convolution_backward(
                    G,
                    X[l, rows],
                    W[l],
                    [D],
                    [1, 1],
                    [1, 1],
                    [1, 1],
                    False,
                    [0, 0],
                    1,
                    [True, True, True],
                )
                g.add_(gx)  # identity + conv path
                grad_W[k, l] = gw
                grad_b[k, l] = gb

        _each(block, list(enumerate(blocks)))
        gW, gb = grad_W[0].clone(), grad_b[0].clone()
        for k in range(1, len(blocks)):  # fixed order
            gW += grad_W[k]
            gb += grad_b[k]
        return grad_x, gW.mul_(ctx.c_w), gb.mul_(ctx.c_b), None, None


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

    def __init__(self, width, depth, sigma_w2, sigma_b2, sigma_in2, sigma_y2, precision):
        super().__init__()
        if width < 1 or depth < 1:
            raise ValueError("width and depth must be positive")
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.precision = precision
        self.bf16 = precision == "bf16"
        self.width, self.depth = int(width), int(depth)
        self.sigma_w2, self.sigma_b2 = float(sigma_w2), float(sigma_b2)
        self.sigma_in2, self.sigma_y2 = float(sigma_in2), float(sigma_y2)
        dt = 1.0 / self.depth  # T = 1
        self.c_in = math.sqrt(self.sigma_in2)  # A = sigma_Z eps_A
        self.c_w = math.sqrt(self.sigma_w2 * dt / self.width)  # dW = sigma_w sqrt(dt/D) eps_W
        self.c_b = math.sqrt(self.sigma_b2 * dt)  # db = sigma_b sqrt(dt) eps_b
        self.c_y = math.sqrt(self.sigma_y2 / self.width)  # G = (sigma_Y/sqrt(D)) eps_G

    def extra_repr(self):
        return (
            f"D={self.width}, L={self.depth}, sigma_w2={self.sigma_w2:g}, "
            f"sigma_b2={self.sigma_b2:g}, sigma_in2={self.sigma_in2:g}, "
            f"sigma_y2={self.sigma_y2:g}, precision={self.precision}"
        )

    def n_parameters(self):
        return sum(p.numel() for p in self.parameters())


class CompletedFC(_Completed):
    """F-bar-bar_tanh: input ``(N, 784)`` float32 in [0, 1] -> output ``(N, 10)``."""

    arch = "fc"

    def __init__(
        self,
        width,
        depth=None,
        *,
        seed=0,
        n_in=N_PIXELS,
        n_out=N_CLASSES,
        sigma_w2=SIGMA_W2,
        sigma_b2=SIGMA_B2,
        sigma_z2=None,
        sigma_y2=SIGMA_Y2,
        precision="fp32",
        fused=True,
    ):
        depth = width if depth is None else depth
        sigma_z2 = 1.0 / n_in if sigma_z2 is None else sigma_z2
        super().__init__(width, depth, sigma_w2, sigma_b2, sigma_z2, sigma_y2, precision)
        self.fused = bool(fused)  # False: the per-layer autograd graph (tests compare)
        D, L = self.width, self.depth
        tag = "mnist-train/fc"
        self.eps_A = nn.Parameter(init_eps(seed, f"{tag}/A", (D, n_in)))
        self.eps_W = nn.Parameter(init_eps(seed, f"{tag}/W", (L, D, D), per_layer=True))
        self.eps_b = nn.Parameter(init_eps(seed, f"{tag}/b", (L, D), per_layer=True))
        self.eps_G = nn.Parameter(init_eps(seed, f"{tag}/G", (n_out, D)))

    def _mm(self, a, b):
        if self.bf16:
            a, b = round_bf16(a), round_bf16(b)
        return torch.mm(a, b)

    def embed(self, z):
        return self._mm(z, self.eps_A.t()).mul(self.c_in)  # x_0 = A z

    def residual(self, x):
        grad = torch.is_grad_enabled() and (x.requires_grad or self.eps_W.requires_grad)
        if self.fused and grad:
            return ResidualStack.apply(x, self.eps_W, self.eps_b, self.c_w, self.c_b, self.bf16)
        if not grad:  # evaluation: the same updates, nothing kept
            W = round_bf16(self.eps_W) if self.bf16 else self.eps_W
            return residual_forward(x, W, self.eps_b, self.c_w, self.c_b, self.bf16)
        # unbind: one stacked gradient for eps_W at the end of backward, not L
        # full-size zero tensors as eps_W[l] indexing would create
        for W, b in zip(self.eps_W.unbind(0), self.eps_b.unbind(0)):
            x_in = x
            if self.bf16:
                x_in, W = round_bf16(x), round_bf16(W)
            # x_{t+dt} = x_t + tanh(dW_t x_t + db_t), eq. 8/26
            x = x + torch.tanh(torch.addmm(b, x_in, W.t(), beta=self.c_b, alpha=self.c_w))
        return x

    def forward(self, z):
        return self._mm(self.residual(self.embed(z)), self.eps_G.t()).mul(self.c_y)


# The conv stack (ConvResidualStack) is the default on a CPU (train-conv 2): 2.4x faster
# per epoch at D = L = 25 than the per-layer graph, and equal to it to 1e-12 in float64;
# its float32 sums run in another order, so its runs are not the per-layer graph's
# (docs/training.md). ``fused=False`` is the per-layer graph, which the tests compare.
CONV_STACK_DEFAULT = True


class CompletedConv(_Completed):
    """C-bar-bar_tanh: input ``(N, C, U, V)`` -> output ``(N, 10)``.

    With ``fused=True``, on CPU in fp32 (and float64) the residual stack is
    :class:`ConvResidualStack` (channels-last, blocks of images on threads); on CUDA,
    under bf16 or with ``fused=False`` it is PyTorch's per-layer graph (cuDNN on CUDA).
    The default is :data:`CONV_STACK_DEFAULT`.
    """

    arch = "conv"

    def __init__(
        self,
        width,
        depth=None,
        *,
        seed=0,
        in_channels=1,
        n_out=N_CLASSES,
        sigma_w2=SIGMA_W2,
        sigma_b2=SIGMA_B2,
        sigma_a2=None,
        sigma_y2=SIGMA_Y2,
        precision="fp32",
        fused=CONV_STACK_DEFAULT,
    ):
        depth = width if depth is None else depth
        sigma_a2 = 1.0 / in_channels if sigma_a2 is None else sigma_a2
        super().__init__(width, depth, sigma_w2, sigma_b2, sigma_a2, sigma_y2, precision)
        D, L = self.width, self.depth
        tag = "mnist-train/conv"
        self.fused = bool(fused)  # False: the per-layer autograd graph (tests compare)
        self.eps_A = nn.Parameter(init_eps(seed, f"{tag}/A", (D, in_channels, 1, 1)))
        self.eps_W = nn.Parameter(init_eps(seed, f"{tag}/W", (L, D, D, 3, 3), per_layer=True))
        self.eps_b = nn.Parameter(init_eps(seed, f"{tag}/b", (L, D), per_layer=True))
        self.eps_G = nn.Parameter(init_eps(seed, f"{tag}/G", (n_out, D)))

    def _stacked(self, x):
        """Whether the residual stack of ``x`` runs as :class:`ConvResidualStack`."""
        return self.fused and not self.bf16 and x.device.type == "cpu"

    def _q(self, t):
        """A convolution operand: rounded to bfloat16 under ``bf16``; autograd's
        backward of the rounding rounds the incoming gradient the same way."""
        return round_bf16(t) if self.bf16 else t

    def embed(self, z):
        x0 = F.conv2d(self._q(z), self._q(self.eps_A) * self.c_in)  # x_{0,p} = A z_p
        return x0.contiguous(memory_format=torch.channels_last) if self._stacked(z) else x0

    def residual(self, x):
        if self._stacked(x):
            if torch.is_grad_enabled() and (x.requires_grad or self.eps_W.requires_grad):
                return ConvResidualStack.apply(x, self.eps_W, self.eps_b, self.c_w, self.c_b)
            return conv_residual_forward(x, self.eps_W * self.c_w, self.eps_b * self.c_b)
        for W, b in zip(self.eps_W.unbind(0), self.eps_b.unbind(0)):
            # 3x3 convolution, zero "same" padding, stride 1
            x = x + torch.tanh(F.conv2d(self._q(x), self._q(W) * self.c_w, b * self.c_b, padding=1))
        return x

    def forward(self, z):
        pooled = self.residual(self.embed(z)).mean(dim=(2, 3))  # (1/UV) sum_p x_{T,p}
        out = torch.mm(self._q(pooled), self._q(self.eps_G).t())  # G (1x1 conv out)
        return out.mul(self.c_y)


# the architectures' names are resdiff.constraints.ARCHS (the one list), in this order
ARCHS = dict(zip(constraints.ARCHS, (CompletedFC, CompletedConv), strict=True))


def build(arch, size, *, seed=0, sigma_w2=SIGMA_W2, sigma_b2=SIGMA_B2, precision="fp32", **kwargs):
    """The completed model ``arch`` ("fc" or "conv") with ``D = L = size``."""
    try:
        cls = ARCHS[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r} (known: {', '.join(ARCHS)})") from None
    return cls(
        size, size, seed=seed, sigma_w2=sigma_w2, sigma_b2=sigma_b2, precision=precision, **kwargs
    )


def as_model_input(arch, features):
    """MNIST features ``(N, 784)`` in the layout ``arch`` takes."""
    if arch == "conv":
        return features.reshape(-1, 1, 28, 28)
    return features
