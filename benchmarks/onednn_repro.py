#!/usr/bin/env python
"""Minimal reproduction (torch alone) of the oneDNN heap overrun behind rarts' Conv2d guard.

The weight gradient of a 1×1 convolution with stride 2, on a channels-last input with 2–7 channels,
runs oneDNN's `jit_avx2_1x1_convolution_bwd_weights_t` (DNNL_VERBOSE: `jit_1x1:avx2,
backward_weights`), which writes past its scratch buffer: glibc aborts, the process segfaults
or hangs (2 threads), or the heap is silently damaged. Seen with oneDNN 3.12.0 (torch 2.13.0 CPU
and 2.14.1 CUDA wheels) on an AMD EPYC (AVX2, no AVX-512); on AVX-512 CPUs the same happens under
DNNL_MAX_CPU_ISA=AVX2. The same convolution on a contiguous (NCHW) input, which is what the guard
gives it, is clean.

Each shape runs in a forked child; with glibc's heap checker (libc_malloc_debug, re-executed
with it when present) an overrun that would not abort is caught too.

    python benchmarks/onednn_repro.py            # the full sweep, about a minute
    python benchmarks/onednn_repro.py --quick    # batch 8, 8×8 inputs only
    DNNL_MAX_CPU_ISA=AVX2 python benchmarks/onednn_repro.py   # on an AVX-512 host
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import signal
import sys
from pathlib import Path

MALLOC_DEBUG = "/lib/x86_64-linux-gnu/libc_malloc_debug.so.0"


def with_heap_checker() -> None:
    """Re-execute under glibc's heap checker (it must be loaded before the process starts)."""
    if Path(MALLOC_DEBUG).is_file() and os.environ.get("MALLOC_CHECK_") != "3":
        env = {**os.environ, "LD_PRELOAD": MALLOC_DEBUG, "MALLOC_CHECK_": "3"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


def run_case(n: int, cin: int, h: int, channels_last: bool) -> str:
    """'clean' or how the child died, for one backward pass of a 1×1 stride-2 conv."""
    import torch

    pid = os.fork()
    if pid == 0:  # child: no torch work has run in the parent, so one thread is safe after fork
        os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
        torch.set_num_threads(1)
        conv = torch.nn.Conv2d(cin, 4, 1, stride=2, bias=False)
        for _ in range(20):
            x = torch.randn(n, cin, h, h)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            conv(x).sum().backward()
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return signal.Signals(os.WTERMSIG(status)).name
    return "clean" if os.WEXITSTATUS(status) == 0 else f"exit {os.WEXITSTATUS(status)}"


def onednn_version() -> str:
    import torch

    m = re.search(r"MKL-DNN v([\d.]+)", torch.__config__.show())
    return m[1] if m else "unknown"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="batch 8 and 8×8 inputs only")
    args = p.parse_args(argv)
    with_heap_checker()
    import torch

    batches, sizes = ([8], [8]) if args.quick else ([2, 8, 64], [4, 8, 16, 32])
    channels = list(range(1, 17)) + [24, 32]
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    isa = [f for f in ("avx512f", "avx2") if f" {f}" in flags]
    print(f"torch {torch.__version__}, oneDNN {onednn_version()}, CPU flags: {', '.join(isa) or 'neither avx2 nor avx512f'}, "
          f"DNNL_MAX_CPU_ISA={os.environ.get('DNNL_MAX_CPU_ISA', '(unset)')}, "
          f"heap checker {'on' if os.environ.get('MALLOC_CHECK_') == '3' else 'off'}")
    print("1×1 conv, stride 2, weight gradient, one thread; rows: in_channels; "
          "columns: (batch, input size) for a channels-last input")
    bad, guarded_bad = [], []
    cols = list(itertools.product(batches, sizes))
    print("in_channels " + " ".join(f"{f'b{n},{h}x{h}':>10}" for n, h in cols) + "   contiguous (guarded)")
    for cin in channels:
        row = [run_case(n, cin, h, channels_last=True) for n, h in cols]
        guarded = run_case(max(batches), cin, max(sizes), channels_last=False)
        bad += [cin] if any(r != "clean" for r in row) else []
        guarded_bad += [cin] if guarded != "clean" else []
        print(f"{cin:>11} " + " ".join(f"{r:>10}" for r in row) + f"   {guarded}")
    print(f"channels-last input: {'faults at in_channels ' + str(bad) if bad else 'clean at every shape'}; "
          f"contiguous (guarded): {'faults at ' + str(guarded_bad) if guarded_bad else 'clean'}")


if __name__ == "__main__":
    main()
