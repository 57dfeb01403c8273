"""A search step timed: DARTS-1, DARTS-2, MiLeNAS and RARTS on the DARTS search network, interleaved
round-robin on the same batches after warm-up, with each step's peak memory (CUDA max allocated; on a
CPU, what the steps add to the peak RSS of a process running that algorithm alone). `rarts gpu-check`
builds the step table from it; benchmarks/search_step.py reports it.
"""

from __future__ import annotations

import copy
import statistics
import sys
import time

import torch

from rarts.data.stream import BatchStream
from rarts.search.algorithms import ALGORITHMS, Darts2, cross_entropy
from rarts.spaces import DartsSearchSpace

SIZES = {  # C, cells, resolution, batch
    "paper": dict(init_channels=16, layers=8, resolution=32, batch_size=64),
    "small": dict(init_channels=4, layers=5, resolution=16, batch_size=16),
    "tiny": dict(init_channels=2, layers=3, resolution=8, batch_size=8),  # the test suite's network
}
HP = dict(epochs=50, w_lr=0.025, w_lr_min=0.001, w_momentum=0.9, w_weight_decay=3e-4,
          w_nesterov=False, grad_clip=5.0, arch_lr=3e-4, arch_betas=[0.5, 0.999],
          arch_weight_decay=1e-3, milenas={"lam": 1.0},
          darts2={"perturbed_bn_stats": "update"}, rarts={"lam": 1.0, "beta": 1.0, "y_init": "copy"})


class CopyModelDarts2(Darts2):
    """Reference only: the official unrolled step, with a deep copy of the model per step."""

    def hypergradient(self, train_batch, val_batch, xi):
        names, params = zip(*self.net.named_parameters())
        virtual = self.virtual_weights(train_batch, xi)
        unrolled = copy.deepcopy(self.net)  # what the functional version avoids
        with torch.no_grad():
            for n, p in unrolled.named_parameters():
                p.copy_(virtual[n])
        loss_v, _ = cross_entropy(unrolled, None, self.arch, val_batch)
        grads = torch.autograd.grad(loss_v, [*self.arch, *unrolled.parameters()])
        g_arch, vector = grads[:len(self.arch)], grads[len(self.arch):]
        r = self.fd_radius / torch.cat([v.flatten() for v in vector]).norm()
        out = []
        for sign in (1.0, -1.0):  # perturb the real weights in place, as the official code does
            with torch.no_grad():
                for p, v in zip(params, vector):
                    p.add_(v, alpha=sign * r if sign > 0 else -2 * r)
            loss, _ = cross_entropy(self.net, None, self.arch, train_batch)
            out.append(torch.autograd.grad(loss, self.arch))
        with torch.no_grad():
            for p, v in zip(params, vector):
                p.add_(v, alpha=r)
        return [ga - xi * (gp - gm) / (2 * r) for ga, gp, gm in zip(g_arch, *out)]


class PeakMemory:
    """CUDA max-allocated memory during a block (CPU peaks: `cpu_step_peak`)."""

    def __init__(self, device):
        self.device, self.peak = device, 0

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        return False


def cpu_step_peak(name, size_name, steps, threads) -> int:
    """Bytes a step adds on top of the built model and batches, on CPU: each algorithm runs in a
    fresh process of its own (`python -m rarts.planning.search_timing`), where the kernel's peak RSS (ru_maxrss)
    less the RSS before the first step is exact: no sampling, no other algorithm's memory."""
    import subprocess

    out = subprocess.run([sys.executable, "-m", __name__, name, size_name, str(steps), str(threads)],
                         check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1])


def peak_of(name, size, steps) -> int:
    import resource

    import psutil
    algo, batches = build(name, size, torch.device("cpu"))
    base = psutil.Process().memory_info().rss
    for i in range(steps):
        algo.step(batches[i % len(batches)], batches[(i + 1) % len(batches)])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base


def build(name, size, device):
    torch.manual_seed(0)
    space = DartsSearchSpace(init_channels=size["init_channels"], layers=size["layers"])
    cls = CopyModelDarts2 if name == "darts2-copy" else ALGORITHMS[name]
    return cls(space, HP, device), make_batches(size, device)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_batches(size, device, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    b, r = size["batch_size"], size["resolution"]
    return [(torch.randn(b, 3, r, r, generator=g).to(device), torch.randint(0, 10, (b,), generator=g).to(device))
            for _ in range(n)]


def time_algorithms(names, size, device, steps, warmup, amp=False, channels_last=False, size_name=None,
                    cpu_peaks=True):
    algos = {name: build(name, size, device)[0] for name in names}
    if channels_last:
        for algo in algos.values():
            for net in algo.networks().values():
                net.to(memory_format=torch.channels_last)
    batches = make_batches(size, device)
    if channels_last:
        batches = [(x.contiguous(memory_format=torch.channels_last), y) for x, y in batches]
    ctx = lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)  # noqa: E731
    times, peaks = {n: [] for n in algos}, {n: 0 for n in algos}
    for i in range(warmup + steps):  # round-robin: every algorithm sees the same machine state
        for name, algo in algos.items():
            tb, vb = batches[i % len(batches)], batches[(i + 1) % len(batches)]
            sync(device)
            with PeakMemory(device) as mem, ctx():
                t0 = time.perf_counter()
                algo.step(tb, vb)
                sync(device)
                dt = time.perf_counter() - t0
            if i >= warmup:
                times[name].append(dt)
                peaks[name] = max(peaks[name], mem.peak)
    if device.type == "cpu" and not cpu_peaks:
        peaks = {name: float("nan") for name in names}  # not measured
    elif device.type == "cpu":
        peaks = {name: cpu_step_peak(name, size_name, warmup + steps, torch.get_num_threads()) for name in names}
    return times, peaks


def summarize(times, peaks, label, device):
    base = statistics.median(times["darts1"])
    rows = []
    for name, ts in times.items():
        q = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
        med = statistics.median(ts)
        rows.append({"setting": label, "algorithm": name, "median_step_s": med, "iqr_s": q[2] - q[0],
                     "ratio_to_darts1": med / base, "peak_mem_MiB": peaks[name] / 2**20,
                     "passes_per_step": ALGORITHMS.get(name.replace("-copy", ""), Darts2).passes_per_step,
                     "device": str(device)})
    return rows


def data_path(size, device, steps=50):
    """Images/s of the in-memory input pipeline (crop, flip, cutout) on its own."""
    n = 4096
    x = torch.randn(n, 3, size["resolution"], size["resolution"], device=device)
    stream = BatchStream(x, torch.zeros(n, dtype=torch.long, device=device), size["batch_size"], 0,
                         crop_padding=4, hflip=True, cutout=16 if size["resolution"] >= 32 else 8)
    for _ in range(5):
        stream.next()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        stream.next()
    sync(device)
    return steps * size["batch_size"] / (time.perf_counter() - t0)


if __name__ == "__main__":  # one algorithm's CPU step peak, in a process of its own (cpu_step_peak)
    name, size_name, steps, threads = sys.argv[1:5]
    torch.set_num_threads(int(threads))
    print(peak_of(name, SIZES[size_name], int(steps)))
