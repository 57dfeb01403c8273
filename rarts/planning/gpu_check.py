"""GPU readiness in one command (`rarts gpu-check`, `make gpu-check`): speed, memory, input paths and
correctness; the step table `rarts plan` prices jobs with.

Writes results/bench/gpu_check.json (the step table `rarts plan --bench` reads) and .md:
- search steps of darts1, darts2, milenas and rarts (and the copy-the-model DARTS-2) in fp32,
  bf16 autocast and channels_last: median step time, IQR, peak memory, ratio to darts1, passes;
- one training step of each of the paper's other networks (CIFAR and ImageNet evaluation
  networks, the NATS-Bench search network, ResNet-164, MobileNetV2) at the paper's batch, through the
  jobs' own trainer with the config's settings (auxiliary loss, label smoothing, clipping); with
  `--ranks imagenet=4`, also over 4 torchrun ranks as the job runs it (rarts.planning.rank_step);
- each DARTS operation's seconds on each kind of edge of the CIFAR and ImageNet networks (a searched
  cell's step is the measured cell's plus the difference of their edges);
- the input paths: on-device CIFAR augmentation, and ImageNet JPEG decoding through the training
  transforms with the configured workers, in images/s;
- correctness on the device: DARTS-2's hypergradient against the exact one in float64, and a
  tiny search run twice (identical α, or the largest difference and why);
- the environment (GPU, driver, torch, CUDA, cuDNN).

    rarts gpu-check                   # size: paper on a GPU, small on a CPU
    rarts gpu-check --size tiny       # seconds (the test suite runs this)

On one H200-class GPU the paper size is meant to finish within 8 minutes; each section's wall
time is recorded in the JSON.
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

from rarts.pipeline import gpu_pool
from rarts.pipeline.io import write_json, write_text
from rarts.planning import device_checks, search_timing

# network → (size overrides, batch, resolution, classes) per check size; paper: the paper's own
NETWORKS = {
    "paper": {"cifar": ({}, 96, 32, 10), "imagenet": ({}, 128, 224, 1000), "nats": ({}, 64, 32, 10),
              "preresnet": ({}, 64, 32, 10), "mobilenetv2": ({}, 64, 224, 20)},
    "small": {"cifar": ({"init_channels": 8, "layers": 5}, 16, 16, 10),
              "imagenet": ({"init_channels": 8, "layers": 5}, 8, 64, 100),
              "nats": ({"init_channels": 8, "cells_per_stage": 1}, 16, 16, 10),
              "preresnet": ({"depth": 20}, 16, 16, 10), "mobilenetv2": ({"width_mult": 0.25}, 8, 64, 20)},
    "tiny": {"cifar": ({"init_channels": 4, "layers": 3}, 4, 8, 10),
             "imagenet": ({"init_channels": 4, "layers": 3}, 2, 32, 10),
             "nats": ({"init_channels": 4, "cells_per_stage": 1}, 4, 8, 10),
             "preresnet": ({"depth": 11}, 4, 8, 10), "mobilenetv2": ({"width_mult": 0.25}, 2, 32, 10)},
}
# synthetic JPEGs: count (more than one batch: the first warms up) and (width, height), at paper size
# ImageNet's most common one
JPEGS = {"paper": (512, (500, 375)), "small": (128, (96, 96)), "tiny": (96, (48, 48))}
# where each network's training settings are in the config, over PLAIN_HP
HP_AT = {"cifar": ("train", "cifar"), "imagenet": ("train", "imagenet"), "nats": ("nats", "local_train"),
         "preresnet": ("width", "table5", "train"), "mobilenetv2": ("width", "table6", "train")}
PLAIN_HP = {"epochs": 1, "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "schedule": "cosine", "lr_min": 0.0}


def environment(device) -> dict:
    env = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
           "host": platform.node(), "cpu": platform.processor() or platform.machine(),
           "threads": torch.get_num_threads(), "device": str(device)}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cudnn"] = torch.backends.cudnn.version()
        env["gpu_memory_GiB"] = round(torch.cuda.get_device_properties(device).total_memory / 2**30, 1)
        try:
            env["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                           capture_output=True, text=True, timeout=30).stdout.split("\n")[0]
        except (OSError, subprocess.TimeoutExpired) as exc:
            env["driver"] = f"unknown (nvidia-smi: {type(exc).__name__})"
    return env


def median_iqr(times) -> tuple[float, float]:
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return statistics.median(times), q[2] - q[0]


SEARCH_SETTINGS = {"fp32": {}, "bf16": {"amp": True}, "channels_last": {"channels_last": True}}


def search_steps(size_name, device, steps, warmup, cpu_peaks=True, settings=tuple(SEARCH_SETTINGS),
                 copy=True) -> list[dict]:
    size, rows = search_timing.SIZES[size_name], []
    for label in settings:
        kw = SEARCH_SETTINGS[label]
        names = ["darts1", "darts2", "milenas", "rarts"] + (["darts2-copy"] if label == "fp32" and copy else [])
        # on a CPU, each algorithm's peak memory runs in a process of its own: fp32 only, for time
        times, peaks = search_timing.time_algorithms(names, size, device, steps, warmup, size_name=size_name,
                                                   cpu_peaks=cpu_peaks and label == "fp32", **kw)
        rows += search_timing.summarize(times, peaks, label, device)
    for row in rows:  # JSON has no NaN: a peak not measured is null
        row["peak_mem_MiB"] = None if row["peak_mem_MiB"] != row["peak_mem_MiB"] else row["peak_mem_MiB"]
    return rows


def time_step(step, device, steps, warmup) -> dict:
    times = []
    with search_timing.PeakMemory(device) as mem:
        for i in range(warmup + steps):
            search_timing.sync(device)
            t0 = time.perf_counter()
            step()
            search_timing.sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
    med, iqr = median_iqr(times)
    return {"median_step_s": med, "iqr_s": iqr, "peak_mem_MiB": mem.peak / 2**20 if device.type == "cuda" else None}


def network_steps(size_name, device, steps, warmup, config) -> list[dict]:
    """One training step (forward, backward, update: the jobs' trainer with the config's settings) of
    each network on random data, and a DARTS-1 step of the NATS-Bench search network and of each width
    search (their cost per pass sets those searches'). On a GPU also in the layout a run with `amp`
    and `channels_last` feeds it: bf16 autocast, channels-last network and batches (the trainer's
    `_forward`)."""
    layouts = [("fp32", False)] + ([("bf16 channels_last", True)] if device.type == "cuda" else [])
    rows = []
    for setting, fast in layouts:
        for row in _network_steps(size_name, device, steps, warmup, fast, config):
            rows.append({"setting": setting, **row})
    return rows


WIDTH_NETWORKS = ("preresnet", "mobilenetv2")  # Tables 5 and 6: their width searches get a step of their own


def darts1_search_step(space, x, y, device, steps, warmup, fast) -> dict:
    """A DARTS-1 step of a search of `space` (its other algorithms scale by passes)."""
    from rarts.search.algorithms import build_algorithm

    algo = build_algorithm("darts1", space, search_timing.HP, device)
    if fast:
        algo.net.to(memory_format=torch.channels_last)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=fast):
            algo.step((x, y), (x, y))

    return time_step(step, device, steps, warmup)


def training_hp(name: str, config: dict, fast: bool = False) -> dict:
    """The trainer's settings for network `name`: the config's (its regularisers cost time too)."""
    node = config
    for key in HP_AT[name]:
        node = node.get(key, {})
    return {**PLAIN_HP, **node, "amp": fast, "channels_last": fast}


class FixedBatch:
    """A trainer's source that serves one batch, this rank's rows of the global one (as the jobs'
    sources slice it)."""

    steps_per_epoch = 10**9

    def __init__(self, x, y, dist):
        self.x, self.y = x[dist.rank::dist.world], y[dist.rank::dist.world]

    def start_epoch(self, epoch, step):
        pass

    def next(self):
        return self.x, self.y

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


NATS_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def network_trainer(name, size_name, device, hp, ckpt_dir, dist=None, cell="DARTS_V2"):
    """Network `name` at the check's size (with `cell`, a genotype, where it takes one) on the jobs'
    trainer (rarts.train.trainer), fed one random global batch, in training as after its first epoch:
    its step is a job's step less the input path. (Drop path's probability ramps up from 0 over the
    epochs; its masks cost the same at any above 0.)"""
    from rarts.models import build_network, load_arch
    from rarts.models.nats import NatsCell
    from rarts.core.distributed import Dist
    from rarts.train.trainer import Trainer

    dist = dist or Dist()
    over, batch, res, classes = NETWORKS[size_name][name]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, res, res, generator=g).to(device)
    y = torch.randint(0, classes, (batch,), generator=g).to(device)
    arch = NatsCell.from_str(NATS_CELL) if name == "nats" else load_arch(name, cell)
    torch.manual_seed(0)
    net = build_network(name, arch, classes, **over)
    trainer = Trainer(net, hp, device, dist, Path(ckpt_dir) / f"{name}.pt", name, {}, FixedBatch(x, y, dist),
                      lambda: iter(()))
    trainer.start_epoch()
    trainer.model.drop_path_prob = hp.get("drop_path_prob", 0.0)
    return trainer


def _network_steps(size_name, device, steps, warmup, fast, config) -> list[dict]:
    from rarts.models import NETWORKS as NETWORKS_BY_NAME
    from rarts.spaces.nats import NatsSearchSpace
    from rarts.spaces.width import WidthSpace

    rows = []
    for name, (over, batch, res, classes) in NETWORKS[size_name].items():
        torch.manual_seed(0)
        x = torch.randn(batch, 3, res, res, device=device)
        y = torch.randint(0, classes, (batch,), device=device)
        if fast:
            x = x.contiguous(memory_format=torch.channels_last)
        if name == "nats":
            space = NatsSearchSpace(num_classes=classes, **{**NETWORKS_BY_NAME["nats"].size, **over})
            rows.append({"network": "nats-search (darts1 step)", "batch_size": batch, "resolution": res,
                         **darts1_search_step(space, x, y, device, steps, warmup, fast)})
        if name in WIDTH_NETWORKS:  # a width search's α passes can cost less than a training step's
            rows.append({"network": f"{name}-search (darts1 step)", "batch_size": batch, "resolution": res,
                         **darts1_search_step(WidthSpace(net=name, num_classes=classes, net_kw=over), x, y,
                                              device, steps, warmup, fast)})
        with tempfile.TemporaryDirectory() as tmp:
            trainer = network_trainer(name, size_name, device, training_hp(name, config, fast), tmp)
            rows.append({"network": name, "batch_size": batch, "resolution": res,
                         **time_step(trainer.train_step, device, steps, warmup)})
        del trainer
    for row in rows:
        row["images_per_s"] = row["batch_size"] / row["median_step_s"]
    return rows


GENOTYPE_NETWORKS = ("cifar", "imagenet")  # their step depends on the cell they train
EDGE_KINDS = ("normal", "reduce_input", "reduce_node")  # a reduction cell's edges from its inputs take stride 2


def edge_shapes(net, res, device) -> dict:
    """{(kind, channels, side, stride): cells with such an edge} of a DARTS evaluation network: a forward
    pass records each cell's width and input side (an edge's shape depends on where it is, not on its op)."""
    seen = []
    hooks = [cell.register_forward_pre_hook(lambda cell, args: seen.append((cell, args[1].shape[-1])))
             for cell in net.cells]
    with torch.no_grad():
        net.eval()(torch.zeros(1, 3, res, res, device=device))
    for hook in hooks:
        hook.remove()
    shapes: dict = {}
    for cell, side in seen:
        c = cell.preprocess1[1].out_channels
        kinds = ([("reduce_input", c, side, 2), ("reduce_node", c, side // 2, 1)] if cell.reduction
                 else [("normal", c, side, 1)])
        for key in kinds:
            shapes[key] = shapes.get(key, 0) + 1
    return shapes


def edge_steps(size_name, device, steps, warmup, config, networks=GENOTYPE_NETWORKS) -> list[dict]:
    """Seconds of each DARTS operation on one edge (forward, backward, drop path as the cells train), summed
    over the cells of each edge kind, for each network that trains a searched cell: a genotype's step is
    the table's cell's step plus its edges' difference (`rarts.pipeline.costs.StepTable.train_step`)."""
    from rarts.models import build_network, load_arch
    from rarts.models.darts_eval import drop_path
    from rarts.models.darts_ops import OPS, PRIMITIVES, Identity

    rows = []
    for name in networks:
        over, batch, res, classes = NETWORKS[size_name][name]
        hp = training_hp(name, config)
        cell = load_arch(name, "DARTS_V2")  # the cell the table's network step trains
        net = build_network(name, cell, classes, **over).to(device)
        shapes = edge_shapes(net, res, device)
        del net
        costs = {kind: dict.fromkeys(PRIMITIVES[1:], 0.0) for kind in EDGE_KINDS}
        for (kind, c, side, stride), cells in shapes.items():
            for op_name in PRIMITIVES[1:]:
                torch.manual_seed(0)
                op = OPS[op_name](c, stride, True).to(device).train()
                x = torch.randn(batch, c, side, side, device=device, requires_grad=True)
                grad = torch.randn(batch, c, side // stride, side // stride, device=device)
                drop = 0.0 if isinstance(op, Identity) else hp.get("drop_path_prob", 0.0)

                def step():
                    torch.autograd.backward(drop_path(op(x), drop), grad)

                costs[kind][op_name] += cells * time_step(step, device, steps, warmup)["median_step_s"]
        rows.append({"network": name, "batch_size": batch, "genotype": cell.to_json(),
                     "shapes": [dict(zip(("kind", "channels", "side", "stride", "cells"), (*k, n)))
                                for k, n in shapes.items()], **costs})
    return rows


def ranked_steps(size_name, device, steps, warmup, ranks: dict, config_path, threads) -> list[dict]:
    """A training step of each network in `ranks` over that many torchrun ranks, as its job runs
    (gloo processes sharing the CPU's `threads`, or one GPU a rank): BatchNorm over the global batch,
    DistributedDataParallel's all-reduce. DDP's first step builds its buckets: at least one warms up,
    and at least two are timed (ranks sharing cores vary from step to step)."""
    rows = []
    for name, n in ranks.items():
        if device.type == "cuda" and torch.cuda.device_count() < n:
            rows.append({"network": name, "ranks": n, "skipped": f"{torch.cuda.device_count()} GPU(s) here"})
            continue
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "step.json"
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
                   "-m", "rarts.planning.rank_step", "--net", name, "--size", size_name,
                   "--device", device.type, "--threads", str(threads), "--warmup", str(max(1, warmup)),
                   "--steps", str(max(2, steps)), "--config", str(config_path), "--out", str(out)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                raise RuntimeError(f"{name} over {n} ranks failed ({proc.returncode}): {proc.stderr[-1500:]}")
            rows.append(json.loads(out.read_text()))
    return rows


def imagenet_decoding(size_name, workers, batch) -> dict:
    """Images/s of ImageNet's training input path (JPEG decode, random-resized crop, jitter) on
    synthetic JPEGs in an ImageFolder, through a DataLoader with `workers` workers."""
    import numpy as np
    from PIL import Image
    from torchvision import transforms as T
    from torchvision.datasets import ImageFolder

    count, (width, height) = JPEGS[size_name]
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        for i in range(count):
            folder = Path(tmp) / f"n{i % 4:08d}"
            folder.mkdir(exist_ok=True)
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.JPEG", quality=90)
        tf = T.Compose([T.RandomResizedCrop(224 if size_name == "paper" else 64), T.RandomHorizontalFlip(),
                        T.ColorJitter(0.4, 0.4, 0.4, 0.2), T.ToTensor()])
        loader = torch.utils.data.DataLoader(ImageFolder(tmp, tf), batch_size=batch, num_workers=workers, shuffle=True)
        batches = iter(loader)
        next(batches)  # start-up (worker spawn) is not throughput: the same iterator is timed on
        t0, n = time.perf_counter(), 0
        for x, _ in batches:
            n += len(x)
        return {"images_per_s": n / (time.perf_counter() - t0), "workers": workers, "images": n,
                "batch_size": batch, "jpeg": f"{width}x{height}"}


def cifar_augmentation(size_name, device) -> dict:
    size = {**search_timing.SIZES[size_name], "resolution": 32, "batch_size": 96}
    return {"images_per_s": search_timing.data_path(size, device), "batch_size": 96, "resolution": 32}


def timed(results: dict, key: str, fn, *args):
    """Run one section; its failure (out of memory, a driver error, …) is recorded in its place and the
    check goes on, so one bad section never costs the others' figures."""
    t0 = time.perf_counter()
    try:
        results[key] = fn(*args)
    except Exception as exc:  # noqa: BLE001 - the point is to keep going and say what failed
        import traceback

        results[key] = {"error": f"{type(exc).__name__}: {str(exc)[:500]}",
                        "where": traceback.format_exc().strip().splitlines()[-3:]}
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    results.setdefault("section_wall_s", {})[key] = round(time.perf_counter() - t0, 1)


def markdown(res: dict) -> str:
    import pandas as pd

    env = res["environment"]
    def table(rows):
        return pd.DataFrame(rows).round(4).to_markdown(index=False) if isinstance(rows, list) else f"- {rows}"

    lines = [f"# GPU check ({res['size']} size) on {env.get('gpu', env['cpu'])}", "",
             ", ".join(f"{k} {v}" for k, v in env.items()), "", "## Search steps", "", table(res["search_steps"]), "",
             "## Network training steps", "", table(res["network_steps"]), "",
             "## Network training steps over ranks", "", table(res.get("ranked_steps") or "none measured (`--ranks`)"),
             "", "## DARTS operations on each kind of edge (seconds a step, summed over the cells)", "",
             edge_table(res.get("edge_steps")), "", "## Input paths", ""]
    res = {"input": {}, "correctness": {}, **res}  # a step table only has none
    lines += [f"- {k}: " + (f"{v['images_per_s']:.0f} images/s ({', '.join(f'{a} {b}' for a, b in v.items() if a != 'images_per_s')})"
                            if "images_per_s" in v else str(v)) for k, v in res["input"].items()]
    lines += ["", "## Correctness and the GPU paths", ""] + [f"- {k}: {v}" for k, v in res["correctness"].items()]
    lines += ["", f"Sections' wall time (s): {res['section_wall_s']}; total {res['wall_s']:.0f} s", ""]
    return "\n".join(lines)


def edge_table(rows) -> str:
    import pandas as pd

    if not isinstance(rows, list):
        return f"- {rows}"
    return pd.DataFrame([{"network": r["network"], "edges": kind, **r[kind]} for r in rows for kind in EDGE_KINDS]
                        ).round(4).to_markdown(index=False)


def gpu_check_main(args) -> dict:
    """`rarts gpu-check` (its arguments: rarts.pipeline.commands)."""
    ranks = {net: int(n) for net, n in (r.split("=") for r in args.ranks)}
    # a timing holds its GPUs alone (its widest ranked step's), claimed before CUDA starts: on a machine
    # whose other GPUs run a pipeline, it waits for them rather than timing beside another job
    pool = gpu_pool.pool(args.device)
    want = min(max(ranks.values(), default=1), len(pool))  # a ranked step wider than the pool is skipped, as before
    if pool:
        print(f"gpu-check: taking {want} GPU(s) of {','.join(pool)} alone (waits while other jobs hold them)", flush=True)
    held = gpu_pool.hold_for_job(want, args.device, alone=True)
    if held:
        print(f"gpu-check: holding GPU {','.join(held.ids)} alone", flush=True)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    size = args.size or ("paper" if device.type == "cuda" else "small")
    gpu = device.type == "cuda"
    args.steps, args.warmup = args.steps or (10 if gpu else 3), args.warmup if args.warmup is not None else (3 if gpu else 1)
    t0 = time.perf_counter()
    res = {"size": size, "environment": {**environment(device), "gpus_held": held.ids if held else []},
           "steps": args.steps, "warmup": args.warmup, "search_size": search_timing.SIZES[size]}
    only, config = args.step_table_only, yaml.safe_load(Path(args.config).read_text())
    # first, while this process is small: its ranks are the job's size again (the rehearsal's 4 hold 14 GB)
    timed(res, "ranked_steps", ranked_steps, size, device, args.steps, args.warmup, ranks, args.config,
          torch.get_num_threads())
    timed(res, "search_steps", search_steps, size, device, args.steps, args.warmup, not args.no_cpu_peaks,
          ("fp32",) if only else tuple(SEARCH_SETTINGS), not only)
    timed(res, "network_steps", network_steps, size, device, args.steps, args.warmup, config)
    timed(res, "edge_steps", edge_steps, size, device, args.steps, args.warmup, config)
    res["input"] = {}  # a rank's share of ImageNet's batch through the input path (the step table reads it)
    imagenet_batch = NETWORKS[size]["imagenet"][1] // ranks.get("imagenet", 1)
    timed(res["input"], "imagenet_jpeg_decoding", imagenet_decoding, size, args.workers, imagenet_batch)
    if not only:
        timed(res["input"], "cifar_augmentation_on_device", cifar_augmentation, size, device)
    res["section_wall_s"].update(res["input"].pop("section_wall_s"))
    if only:
        return finish(res, t0, args.out)
    res["correctness"] = {}
    checks = res["correctness"]
    timed(checks, "darts2_hypergradient_float64", device_checks.darts2_hypergradient_check, device)
    timed(checks, "repeat_search", device_checks.repeat_search_check, device)
    timed(checks, "repeat_search_deterministic", device_checks.repeat_search_check, device, True)
    timed(checks, "darts2_fd_under_bf16", device_checks.darts2_fd_under_bf16, device)
    timed(checks, "host_syncs_in_search_steps", device_checks.host_syncs, device)
    timed(checks, "in_memory_normalisation_peak", device_checks.normalisation_peak, device)
    timed(checks, "latency_table_timing", device_checks.latency_timing, device)
    timed(checks, "sync_batchnorm", device_checks.sync_batchnorm, device)
    res["section_wall_s"].update(res["correctness"].pop("section_wall_s"))
    return finish(res, t0, args.out)


def finish(res: dict, t0: float, out) -> dict:
    res["wall_s"] = time.perf_counter() - t0
    write_json(out, res)
    write_text(Path(out).with_suffix(".md"), markdown(res))
    print(markdown(res))
    return res

