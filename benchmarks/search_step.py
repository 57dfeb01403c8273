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
import statistics
import time

import torch

from rarts.planning.search_timing import (HP, SIZES, data_path, make_batches, summarize,
                                          time_algorithms)
from rarts.search.algorithms import ALGORITHMS
from rarts.spaces import DartsSearchSpace


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
    args = p.parse_args(argv)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    if args.threads:
        torch.set_num_threads(args.threads)
    size = SIZES[args.size]
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
