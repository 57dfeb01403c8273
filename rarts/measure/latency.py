"""Latency measurement: Lat of eq. (5), every candidate operation timed on every edge of the search
network at the input shape that edge sees, and the forward time of a found model (Table 2). The
penalty built from Lat is `rarts.spaces.penalties.LatencyPenalty`."""

from __future__ import annotations

import logging
import os
import statistics
import subprocess
import time

import torch

from rarts.pipeline import gpu_pool
from rarts.pipeline.io import read_json, write_json
from rarts.models import build_network
from rarts.models.darts_ops import PRIMITIVES, Zero
from rarts.models.genotypes import load_genotype
from rarts.models.params import n_params
from rarts.core.devices import device_name, resolve_device
from rarts.spaces import DartsSearchSpace

log = logging.getLogger(__name__)
GPU_CALLS = 20  # forward calls between two CUDA events: one synchronize per group, not per call


@torch.no_grad()
def time_forward(module, x, warmup: int, repeats: int) -> float:
    """Forward time in milliseconds after `warmup` untimed runs: on a CPU the median of `repeats`
    timed calls; on a GPU the median over `repeats` groups of GPU_CALLS calls, each group timed by
    CUDA events around it (a synchronize per call would dominate ops of tens of microseconds)."""
    for _ in range(warmup):
        module(x)
    if x.device.type != "cuda":
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            module(x)
            times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(repeats)]
    for start, end in events:
        start.record()
        for _ in range(GPU_CALLS):
            module(x)
        end.record()
    torch.cuda.synchronize(x.device)
    return statistics.median(start.elapsed_time(end) / GPU_CALLS for start, end in events)


def edge_shapes(space, resolution: int):
    """For every cell of the search network: reduction flag, channels, and the input side and stride
    of each of its edges, read off one forward pass of the built network."""
    net, seen = space.build_network(), {}

    def record(key):
        def hook(module, args):  # returns None: the input passes unchanged
            seen[key] = (args[0].shape, module.stride)
        return hook

    hooks = [op.register_forward_pre_hook(record((i, e))) for i, cell in enumerate(net.cells)
             for e, op in enumerate(cell.ops)]
    with torch.no_grad():
        net(torch.zeros(1, 3, resolution, resolution), space.init_arch())
    for h in hooks:
        h.remove()
    return [(cell.reduction, seen[i, 0][0][1], [(seen[i, e][0][-1], seen[i, e][1]) for e in range(len(cell.ops))])
            for i, cell in enumerate(net.cells)]


def measure_op_table(space, resolution: int, batch_size: int, device, warmup: int, repeats: int) -> dict:
    """Lat for each α: the summed forward time (ms) of every candidate op on every edge of the
    cells that share it, at that edge's input shape (the search network's own op modules);
    `none` costs 0."""
    device = torch.device(device)
    net, cache = space.build_network(), {}
    lat = {"normal": torch.zeros(space.num_edges, len(PRIMITIVES)),
           "reduce": torch.zeros(space.num_edges, len(PRIMITIVES))}
    for cell, (reduction, c, edges) in zip(net.cells, edge_shapes(space, resolution)):
        table = lat["reduce" if reduction else "normal"]
        for e, (mixed, (res, stride)) in enumerate(zip(cell.ops, edges)):
            for k, (name, op) in enumerate(zip(PRIMITIVES, mixed.ops)):
                if isinstance(op, Zero):
                    continue
                key = (name, c, res, stride)
                if key not in cache:
                    x = torch.randn(batch_size, c, res, res, device=device)
                    cache[key] = time_forward(op.to(device).eval(), x, warmup, repeats)
                table[e, k] += cache[key]
    return {"lat": {k: v.tolist() for k, v in lat.items()}, "unit": "ms", "ops": list(PRIMITIVES),
            "distinct_shapes_timed": len(cache)}


def model_latency(model, batch_size: int, resolution: int, device, warmup: int, repeats: int) -> float:
    model = model.to(device).eval()
    x = torch.randn(batch_size, 3, resolution, resolution, device=device)
    return time_forward(model, x, warmup, repeats)


def device_metadata(device) -> dict:
    return {"device": device_name(torch.device(device)), "torch": torch.__version__}


BUSY_CORES = 0.5  # other work worth more than half a core beside a CPU timing makes it a contention measurement


def others_beside(device, sample_s: float = 1.0) -> str:
    """What else is at work where we are about to time ("" when nothing is): other processes on our
    GPU (nvidia-smi), or on a CPU the cores other processes keep busy while this one sleeps. A timing
    job runs alone (docs/cluster.md); this says so in its output when it did not."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            gpu = f"GPU-{torch.cuda.get_device_properties(device).uuid}"
            out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,process_name", "--format=csv,noheader",
                                  "-i", gpu], capture_output=True, text=True, timeout=30).stdout
        except (OSError, AttributeError, subprocess.TimeoutExpired) as exc:
            return f"not known ({type(exc).__name__})"
        others = [line.strip() for line in out.splitlines() if line.strip() and line.split(",")[0].strip() != str(os.getpid())]
        return f"{len(others)} other process(es) on the GPU: {'; '.join(others)}" if others else ""
    import psutil

    busy = psutil.cpu_percent(interval=sample_s) / 100 * psutil.cpu_count()
    return f"{busy:.1f} cores busy with other work" if busy > BUSY_CORES else ""


def timing_record(device) -> dict:
    """`timed_alone` and, when not, what was beside the timing (also a warning in the log)."""
    others = others_beside(device)
    if others:
        log.warning("timing on a shared %s: %s; the times measure contention too", torch.device(device).type, others)
    return {"timed_alone": not others, "beside": others}


# -- pipeline entry points ------------------------------------------------------------------
def latency_table_main(spec: dict, out) -> dict:
    """spec: space (init_channels, layers, steps, multiplier, num_classes), resolution,
    batch_size, warmup, repeats, device, threads."""
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = resolve_device(spec.get("device", "auto"))
    sp = spec["space"]
    space = DartsSearchSpace.from_settings(sp, sp["num_classes"])
    alone = timing_record(device)
    table = measure_op_table(space, spec["resolution"], spec["batch_size"], device, spec["warmup"],
                             spec["repeats"])
    result = {**table, **device_metadata(device), "batch_size": spec["batch_size"], "dtype": "float32",
              "resolution": spec["resolution"], "space": sp, "mode": "inference (eval, no grad)",
              **alone, **gpu_pool.record()}
    write_json(out, result)
    return result


def model_latency_main(genotype_path, spec: dict, out) -> dict:
    """spec: init_channels, layers, num_classes, batch_size, resolution, warmup, repeats,
    device, threads. The derived CIFAR evaluation network (no auxiliary head) forward time."""
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    device = resolve_device(spec.get("device", "auto"))
    genotype = load_genotype(str(genotype_path))
    torch.manual_seed(0)
    model = build_network("cifar", genotype, spec["num_classes"], init_channels=spec["init_channels"],
                          layers=spec["layers"], auxiliary=False)
    alone = timing_record(device)
    ms = model_latency(model, spec["batch_size"], spec["resolution"], device, spec["warmup"], spec["repeats"])
    meta = read_json(genotype_path).get("meta", {})
    result = {"latency_ms": ms, "params": n_params(model), "params_M": n_params(model) / 1e6,
              "batch_size": spec["batch_size"], "resolution": spec["resolution"],
              "seed": meta.get("seed"), "standin": meta.get("standin"), "rehearsal": meta.get("rehearsal", False),
              **device_metadata(device), **alone, **gpu_pool.record()}
    write_json(out, result)
    return result
