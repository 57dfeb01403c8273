"""Layers shared by the package's networks."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.distributed.nn.functional import all_reduce

# oneDNN overruns its buffer below this many input channels (see Conv2d)
ONEDNN_1X1_MIN_SAFE_CHANNELS = 8


class Conv2d(nn.Conv2d):
    """nn.Conv2d that keeps strided 1×1 convolutions with few input channels off a faulty kernel.

    oneDNN 3.12 (the x86 wheels of torch 2.13 and 2.14), running its AVX2 code (AVX2 CPUs without
    AVX-512, or DNNL_MAX_CPU_ISA=AVX2): the weight gradient of a 1×1 convolution with stride > 1
    (`jit_avx2_1x1_convolution_bwd_weights_t`) writes past its scratch buffer when the input is
    channels-last with 2–7 channels. glibc then aborts ("corrupted double-linked list"), the process
    segfaults or hangs, or the heap is silently damaged. A contiguous (NCHW) input takes a clean
    path, so on the CPU such a convolution gets its input made contiguous (a copy of a tensor
    with fewer than 8 channels); every other convolution keeps its layout (channels-last batches
    are 8-22% faster on CPU).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.onednn_guard = (self.kernel_size == (1, 1) and max(self.stride) > 1
                             and self.in_channels < ONEDNN_1X1_MIN_SAFE_CHANNELS)

    def forward(self, x):
        if self.onednn_guard and x.device.type == "cpu":
            x = x.contiguous()
        return super().forward(x)


def moments(sums: torch.Tensor, c: int):
    """Mean, biased variance and count per channel from [Σx (c), Σx² (c), n]. E[x²] − mean² rounds to
    slightly below zero for a near-constant channel (a NaN after the square root): clamped at zero."""
    n = sums[-1]
    mean = sums[:c] / n
    return mean, (sums[c:2 * c] / n - mean * mean).clamp(min=0.0), n


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm whose training statistics are those of the global batch over all ranks, so that
    under DistributedDataParallel the BN of a 4×32 split sees the paper's 128 images, as on one GPU.

    torch's SyncBatchNorm does this with fused kernels on GPUs only (the trainer uses it on NCCL);
    this all-reduces the per-channel sums through the autograd-aware
    `torch.distributed.nn.functional.all_reduce` (any backend: the trainer's gloo path), so the same
    statistics are computed, and tested, on CPU processes.
    """

    def forward(self, x):
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        c, xf = x.shape[1], x.float()
        local = torch.cat([xf.sum((0, 2, 3)), (xf * xf).sum((0, 2, 3)), xf.new_tensor([xf.numel() // c])])
        mean, var, n = moments(all_reduce(local), c)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean, m)
                self.running_var.lerp_(var * n / (n - 1), m)
        y = (xf - mean[:, None, None]) * torch.rsqrt(var + self.eps)[:, None, None]
        if self.affine:
            y = y * self.weight[:, None, None] + self.bias[:, None, None]
        return y.to(x.dtype)


def global_batchnorm(module: nn.Module) -> nn.Module:
    """`module` with every nn.BatchNorm2d swapped for a GlobalBatchNorm2d holding the same
    parameters and statistics (as torch's convert_sync_batchnorm does for SyncBatchNorm)."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            swapped = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine,
                                        child.track_running_stats)
            swapped.load_state_dict(child.state_dict())
            setattr(module, name, swapped)
        else:
            global_batchnorm(child)
    return module
