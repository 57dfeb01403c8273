"""Layers shared by the package's networks."""

from __future__ import annotations

import torch.nn as nn

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
