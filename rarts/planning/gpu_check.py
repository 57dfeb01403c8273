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
import logging
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from rarts.pipeline import gpu_pool
from rarts.pipeline.io import write_json, write_text
from rarts.planning import search_timing as search_step

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
    size, rows = search_step.SIZES[size_name], []
    for label in settings:
        kw = SEARCH_SETTINGS[label]
        names = ["darts1", "darts2", "milenas", "rarts"] + (["darts2-copy"] if label == "fp32" and copy else [])
        # on a CPU, each algorithm's peak memory runs in a process of its own: fp32 only, for time
        times, peaks = search_step.time_algorithms(names, size, device, steps, warmup, size_name=size_name,
                                                   cpu_peaks=cpu_peaks and label == "fp32", **kw)
        rows += search_step.summarize(times, peaks, label, device)
    for row in rows:  # JSON has no NaN: a peak not measured is null
        row["peak_mem_MiB"] = None if row["peak_mem_MiB"] != row["peak_mem_MiB"] else row["peak_mem_MiB"]
    return rows


def time_step(step, device, steps, warmup) -> dict:
    times = []
    with search_step.PeakMemory(device) as mem:
        for i in range(warmup + steps):
            search_step.sync(device)
            t0 = time.perf_counter()
            step()
            search_step.sync(device)
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

    algo = build_algorithm("darts1", space, search_step.HP, device)
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
    size = {**search_step.SIZES[size_name], "resolution": 32, "batch_size": 96}
    return {"images_per_s": search_step.data_path(size, device), "batch_size": 96, "resolution": 32}


def darts2_hypergradient_check(device) -> dict:
    """DARTS-2's finite-difference hypergradient against d/dα L_v(w'(α), α) by autograd, in
    float64 on the device (a tiny network; the radius shrunk so the difference is exact)."""
    from rarts.search.algorithms import Darts2
    from rarts.spaces import DartsSearchSpace

    torch.manual_seed(0)
    algo = Darts2(DartsSearchSpace(init_channels=2, num_classes=3, layers=3), search_step.HP, device)
    algo.net.double()
    with torch.no_grad():
        algo.arch = [a.double().requires_grad_() for a in algo.arch]
    g = torch.Generator().manual_seed(0)
    train, val = [(torch.randn(6, 3, 8, 8, generator=g, dtype=torch.float64).to(device),
                   torch.randint(0, 3, (6,), generator=g).to(device)) for _ in range(2)]
    algo.fd_radius, xi = 1e-5, algo.w_lr
    approx = algo.hypergradient(train, val, xi)
    names, params = zip(*algo.net.named_parameters())
    loss_t = F.cross_entropy(torch.func.functional_call(algo.net, dict(zip(names, params)), (train[0], algo.arch)),
                             train[1])
    grads = torch.autograd.grad(loss_t, params, create_graph=True)
    wd = search_step.HP["w_weight_decay"]
    virtual = {n: p.detach() - xi * (gi + wd * p.detach()) for n, p, gi in zip(names, params, grads)}
    loss_v = F.cross_entropy(torch.func.functional_call(algo.net, virtual, (val[0], algo.arch)), val[1])
    exact = torch.autograd.grad(loss_v, algo.arch)
    err = max(float((a - e).abs().max()) for a, e in zip(approx, exact))
    scale = max(float(e.abs().max()) for e in exact)
    return {"max_abs_error": err, "max_abs_hypergradient": scale, "ok": err <= 1e-6 * max(1.0, scale)}


def repeat_search_check(device, deterministic=False) -> dict:
    """A tiny RARTS search run twice from the same seed: identical α, or the largest difference
    (cuDNN's autotuned, non-deterministic kernels are the usual reason on a GPU; `deterministic` runs
    with the config's `deterministic: true` switch)."""
    from rarts.core.devices import set_determinism

    set_determinism(deterministic)
    from rarts.search.loop import SearchData, SearchLoop
    from rarts.spaces import DartsSearchSpace

    hp = {**search_step.HP, "epochs": 1, "batch_size": 8, "max_steps_per_epoch": 4, "eval_batches": 1,
          "augment": {"crop_padding": 1, "hflip": True}}
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 3, 8, 8, generator=g).to(device), torch.randint(0, 10, (64,), generator=g).to(device)
    archs = []
    logging.getLogger("rarts").setLevel(logging.ERROR)  # random labels: its near-chance warning is expected
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(2):
            loop = SearchLoop(DartsSearchSpace(init_channels=2, layers=3, steps=2, multiplier=2), "rarts", 0, hp,
                              SearchData(x[:32], y[:32], x[32:], y[32:]), device, Path(tmp) / f"{run}.pt")
            loop.run()
            archs.append([a.detach().cpu() for a in loop.algo.arch])
    set_determinism(False)
    diff = max(float((a - b).abs().max()) for a, b in zip(*archs))
    out = {"identical": diff == 0.0, "max_abs_difference": diff, "deterministic": deterministic}
    if diff and device.type == "cuda" and not deterministic:
        out["why"] = ("cuDNN's autotuned kernels are not deterministic (set `deterministic: true` for runs that "
                      "must repeat); results agree to float rounding, not bit for bit")
    return out


def darts2_fd_under_bf16(device) -> dict:
    """DARTS-2's finite difference with the step under bf16 autocast (`amp: true`): its two perturbed
    passes run in fp32 without TF32, so the Hessian-vector product equals the one computed with no
    autocast bit for bit; and how far the whole bf16 hypergradient is from the fp32 one."""
    from rarts.search.algorithms import Darts2
    from rarts.spaces import DartsSearchSpace

    torch.manual_seed(0)
    algo = Darts2(DartsSearchSpace(init_channels=4, num_classes=10, layers=3), search_step.HP, device)
    g = torch.Generator().manual_seed(0)
    train, val = [(torch.randn(8, 3, 8, 8, generator=g).to(device), torch.randint(0, 10, (8,), generator=g).to(device))
                  for _ in range(2)]
    vector = [torch.randn(p.shape, generator=g).to(device) for p in algo.params(algo.net)[1]]
    state = {k: v.clone() for k, v in algo.net.state_dict().items()}
    amp = torch.autocast(device.type, dtype=torch.bfloat16)
    with amp:
        hvp_amp = algo.hessian_vector_product(vector, train)
    algo.net.load_state_dict(state)
    hvp = algo.hessian_vector_product(vector, train)
    algo.net.load_state_dict(state)
    with amp:
        hyper_amp = algo.hypergradient(train, val, algo.w_lr)
    algo.net.load_state_dict(state)
    hyper = algo.hypergradient(train, val, algo.w_lr)
    rel = max(float((a - b).norm() / b.norm()) for a, b in zip(hyper_amp, hyper))
    return {"hvp_identical_under_amp": all(torch.equal(a, b) for a, b in zip(hvp_amp, hvp)),
            "hypergradient_bf16_vs_fp32_relative_difference": rel}


def host_syncs(device) -> dict:
    """Steps of each algorithm with CUDA's sync debugging on: every operation that made the host wait
    for the GPU inside a step (none is expected; the loss check batches its own)."""
    if device.type != "cuda":
        return {"skipped": "CUDA only (a CPU has no host-device sync)"}
    import warnings

    from rarts.search.loop import SearchData, SearchLoop
    from rarts.spaces import DartsSearchSpace

    hp = {**search_step.HP, "epochs": 1, "batch_size": 32, "max_steps_per_epoch": 0, "eval_batches": 1,
          "augment": {"crop_padding": 4, "hflip": True}, "latency": None}
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(512, 3, 32, 32, generator=g).to(device), torch.randint(0, 10, (512,), generator=g).to(device)
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for algo in ("darts1", "darts2", "milenas", "rarts"):
            loop = SearchLoop(DartsSearchSpace(init_channels=8, layers=5), algo, 0, hp,
                              SearchData(x[:256], y[:256], x[256:], y[256:]), device, Path(tmp) / f"{algo}.pt")
            loop.train_step()  # warm-up: the first step allocates and autotunes
            torch.cuda.synchronize(device)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                try:
                    for _ in range(3):
                        loop.train_step()
                finally:
                    torch.cuda.set_sync_debug_mode("default")
            found[algo] = sorted({str(w.message).splitlines()[0][:200] for w in caught})
    return {"syncs_per_algorithm": found, "sync_free": not any(found.values())}


def normalisation_peak(device) -> dict:
    """The in-memory datasets' preparation on the device: its peak over the result's size (chunked and
    in place: about 1; the expression `(x/255 − mean)/std` on the whole set would be about 3)."""
    if device.type != "cuda":
        return {"skipped": "CUDA only (tests/test_data.py measures the CPU's peak RSS)"}
    from rarts.data.stream import prepare_images

    x = torch.randint(0, 256, (4000, 3, 224, 224), dtype=torch.uint8)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    out = prepare_images(x, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 224, device)
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - before
    return {"images": len(x), "result_GiB": out.numel() * 4 / 2**30, "peak_over_result": peak / (out.numel() * 4),
            "on": str(out.device)}


def latency_timing(device) -> dict:
    """One candidate op at the search's shape timed as the latency table times it (CUDA events around
    groups of calls), beside a synchronize after every call: the sync's share of a small op."""
    from rarts.measure import latency
    from rarts.models.darts_ops import OPS

    op = OPS["sep_conv_3x3"](16, 1, False).to(device).eval()
    x = torch.randn(64, 16, 32, 32, device=device)
    events = latency.time_forward(op, x, warmup=10, repeats=10)
    per_call = []
    with torch.no_grad():
        for _ in range(50):
            search_step.sync(device)
            t0 = time.perf_counter()
            op(x)
            search_step.sync(device)
            per_call.append((time.perf_counter() - t0) * 1e3)
    return {"table_ms": events, "synchronised_per_call_ms": statistics.median(per_call)}


def sync_batchnorm(device) -> dict:
    n = torch.cuda.device_count() if device.type == "cuda" else 0
    return {"skipped": f"{n} GPU(s): NCCL puts one rank on a GPU, so SyncBatchNorm over ranks needs 2; the gloo "
                       "path's statistics equal one process's on the global batch (tests/test_train.py)"}


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
           "steps": args.steps, "warmup": args.warmup, "search_size": search_step.SIZES[size]}
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
    timed(res["correctness"], "darts2_hypergradient_float64", darts2_hypergradient_check, device)
    timed(res["correctness"], "repeat_search", repeat_search_check, device)
    timed(res["correctness"], "repeat_search_deterministic", repeat_search_check, device, True)
    timed(res["correctness"], "darts2_fd_under_bf16", darts2_fd_under_bf16, device)
    timed(res["correctness"], "host_syncs_in_search_steps", host_syncs, device)
    timed(res["correctness"], "in_memory_normalisation_peak", normalisation_peak, device)
    timed(res["correctness"], "latency_table_timing", latency_timing, device)
    timed(res["correctness"], "sync_batchnorm", sync_batchnorm, device)
    res["section_wall_s"].update(res["correctness"].pop("section_wall_s"))
    return finish(res, t0, args.out)


def finish(res: dict, t0: float, out) -> dict:
    res["wall_s"] = time.perf_counter() - t0
    write_json(out, res)
    write_text(Path(out).with_suffix(".md"), markdown(res))
    print(markdown(res))
    return res

