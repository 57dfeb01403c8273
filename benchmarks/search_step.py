#!/usr/bin/env python
"""Search-step benchmark: DARTS-1, DARTS-2, MiLeNAS and RARTS on the DARTS search network.

Steady-state steps of the four algorithms in one process, on the same batches, interleaved
round-robin after warm-up. Reports the median step time and its spread (IQR), peak memory
(CUDA max allocated per step on GPU; on CPU, what the steps add to the peak RSS
of a process running that algorithm alone), the ratio to
DARTS-1 and the forward+backward passes per step (the speed limit: darts1 2, milenas 3,
rarts 4, darts2 5). Also: our functional DARTS-2 step against a copy-the-model reference
(the official architect's approach, written only here), and the input pipeline's images/s
against the model's, to show the loader is not the bottleneck.

    python benchmarks/search_step.py --size small            # CPU, under two minutes
    python benchmarks/search_step.py --size tiny --guard-cost  # CPU: what the oneDNN guard costs
    python benchmarks/search_step.py --size paper --device cuda --amp --channels-last
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rarts.data.stream import BatchStream  # noqa: E402
from rarts.search.algorithms import ALGORITHMS, Darts2, cross_entropy  # noqa: E402
from rarts.spaces import DartsSearchSpace  # noqa: E402

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
    fresh process of its own (this script, `--peak-of`), where the kernel's peak RSS (ru_maxrss)
    less the RSS before the first step is exact: no sampling, no other algorithm's memory."""
    import subprocess

    out = subprocess.run([sys.executable, __file__, "--peak-of", name, "--size", size_name, "--steps", str(steps),
                          "--threads", str(threads), "--device", "cpu"], check=True, capture_output=True, text=True)
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


def guard_cost(size, steps, warmup):
    """CPU: what the oneDNN guard (rarts.models.layers.Conv2d) costs, beside the alternatives.

    The guard makes the input of strided 1×1 convs with < 8 input channels contiguous. Its own
    cost is measured on NCHW batches, where switching it off is safe (only channels-last inputs
    reach the faulty kernel); the channels-last rows are the layout the search's crop produces.
    The variants run interleaved, round-robin, on the same batches.
    """
    from rarts.models.layers import Conv2d

    variants = {"channels-last batches, guard (as shipped)": dict(channels_last=True),
                "NCHW batches, guard": dict(channels_last=False),
                "NCHW batches, no guard (safe on NCHW)": dict(channels_last=False, guard=False),
                "channels-last batches, oneDNN off": dict(channels_last=True, onednn=False)}
    space = DartsSearchSpace(init_channels=size["init_channels"], layers=size["layers"])
    runs = {}
    for label, kw in variants.items():
        torch.manual_seed(0)
        algo = ALGORITHMS["darts1"](space, HP, torch.device("cpu"))
        guarded = [m for m in algo.net.modules() if isinstance(m, Conv2d) and m.onednn_guard]
        for m in guarded:
            m.onednn_guard = kw.get("guard", True)
        batches = make_batches(size, torch.device("cpu"))
        if kw["channels_last"]:
            batches = [(x.contiguous(memory_format=torch.channels_last), y) for x, y in batches]
        runs[label] = (algo, batches, kw.get("onednn", True), len(guarded), [])
    for i in range(warmup + steps):
        for algo, batches, onednn, _, times in runs.values():
            with torch.backends.mkldnn.flags(enabled=onednn):
                t0 = time.perf_counter()
                algo.step(batches[i % len(batches)], batches[(i + 1) % len(batches)])
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
    base = statistics.median(next(iter(runs.values()))[4])
    rows = []
    for label, (_, _, _, n_guarded, times) in runs.items():
        q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
        rows.append({"setting": f"{size['label']} onednn guard", "algorithm": f"darts1: {label}",
                     "median_step_s": statistics.median(times), "iqr_s": q[2] - q[0],
                     "ratio_to_darts1": statistics.median(times) / base,  # here: to the shipped variant
                     "guarded_convs": n_guarded, "device": "cpu"})
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", choices=sorted(SIZES), default="small")
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--amp", action="store_true", help="also time bf16 autocast (GPU)")
    p.add_argument("--channels-last", action="store_true", help="also time channels_last (GPU)")
    p.add_argument("--guard-cost", action="store_true",
                   help="CPU: also time the oneDNN guard against its alternatives (--size tiny: guarded convs)")
    p.add_argument("--out", help="write the rows as CSV here")
    p.add_argument("--peak-of", help=argparse.SUPPRESS)  # internal: one algorithm's CPU step peak
    args = p.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    if args.threads:
        torch.set_num_threads(args.threads)
    size = SIZES[args.size]
    if args.peak_of:
        print(peak_of(args.peak_of, size, args.steps))
        return None
    names = ["darts1", "darts2", "milenas", "rarts", "darts2-copy"]
    times, peaks = time_algorithms(names, size, device, args.steps, args.warmup, size_name=args.size)
    rows = summarize(times, peaks, f"{args.size} fp32", device)
    for flag, kw in (("bf16", dict(amp=True)), ("channels_last", dict(channels_last=True))):
        if getattr(args, "amp" if flag == "bf16" else "channels_last") and device.type == "cuda":
            t, pk = time_algorithms(["darts1", "darts2", "milenas", "rarts"], size, device,
                                    args.steps, args.warmup, **kw)
            rows += summarize(t, pk, f"{args.size} {flag}", device)
    import pandas as pd

    df = pd.DataFrame(rows)
    speedup = (df.query("algorithm == 'darts2-copy'").median_step_s.iloc[0]
               / df.query("algorithm == 'darts2' and setting.str.endswith('fp32')").median_step_s.iloc[0])
    model_ips = size["batch_size"] / df.query("algorithm == 'darts1'").median_step_s.iloc[0]
    loader_ips = data_path(size, device)
    extra = pd.DataFrame([
        {"setting": f"{args.size} fp32", "algorithm": "darts2 functional vs copy (speed-up)",
         "ratio_to_darts1": speedup, "device": str(device)},
        {"setting": f"{args.size} data path", "algorithm": "input pipeline images/s",
         "median_step_s": size["batch_size"] / loader_ips, "images_per_s": loader_ips, "device": str(device)},
        {"setting": f"{args.size} data path", "algorithm": "darts1 model step images/s",
         "images_per_s": model_ips, "device": str(device)}])
    df = pd.concat([df, extra], ignore_index=True)
    if args.guard_cost and device.type == "cpu":
        df = pd.concat([df, pd.DataFrame(guard_cost({**size, "label": args.size}, args.steps, args.warmup))],
                       ignore_index=True)
    meta = (f"# {args.size}: C={size['init_channels']}, {size['layers']} cells, "
            f"{size['resolution']}x{size['resolution']}, batch {size['batch_size']}; device {device} "
            f"({torch.cuda.get_device_name(device) if device.type == 'cuda' else f'{torch.get_num_threads()} threads'}); "
            f"torch {torch.__version__}; {args.steps} timed steps after {args.warmup} warm-up")
    print(meta)
    print(df.round(4).astype(object).where(df.notna(), "").to_string(index=False))
    if args.out:
        from rarts.pipeline.io import write_text
        write_text(args.out, meta + "\n" + df.to_csv(index=False))
    return df


if __name__ == "__main__":
    main()
