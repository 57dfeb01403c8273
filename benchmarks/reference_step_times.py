#!/usr/bin/env python
"""Write the reference step table `rarts plan` and the SLURM wall times use before any measurement
(rarts/pipeline/reference_step_times.json, in the layout `make gpu-check` writes).

Derived from published costs, one GTX 1080 Ti (the paper's GPU):
- DARTS-space search steps from the RARTS paper's Table 1, measured on the authors' machine: a
  search of 50 epochs × 390 steps (+ one evaluation pass over D_v an epoch) took 0.7 GPU-days for
  DARTS-1, 3.1 for DARTS-2 and 1.1 for RARTS. MiLeNAS has no 1080 Ti figure: DARTS-1's step × 3/2
  (its passes a step).
- The ImageNet network from the DARTS paper (Liu et al., ICLR 2019): its 250 epochs at batch 128 take
  12 days on a single GTX 1080 Ti (also quoted in quark0/darts issue #135).
- The other fixed networks at the ImageNet network's seconds per training FLOP, the NATS-Bench search
  network at DARTS-1's: the network's forward FLOPs (multiply-adds × 2, convolutions and linear
  layers, torch's FlopCounterMode) × 3 (forward and backward) × its batch. A cross-check: this puts
  the CIFAR network's 600 epochs at about 3 days; DARTS_V2 takes about one day on a V100 (quark0/darts
  issue #80). Efficiency differs between networks and GPUs: measure with `make gpu-check` before
  trusting hours.

    python benchmarks/reference_step_times.py    # rewrites rarts/pipeline/reference_step_times.json
"""

from __future__ import annotations

from pathlib import Path

import torch

from rarts.models import build_network, load_arch
from rarts.models.params import n_flops
from rarts.pipeline.io import write_json
from rarts.pipeline.names import PASSES

SEARCH_GPU_DAYS = {"darts1": 0.7, "darts2": 3.1, "rarts": 1.1}  # RARTS paper, Table 1 (authors' 1080 Ti)
EPOCHS, STEPS, BATCH = 50, 390, 64  # the DARTS search protocol: 25,000 images of D_t at batch 64
IMAGENET_DAYS, IMAGENET_EPOCHS, IMAGENET_STEPS = 12, 250, 1_281_167 // 128  # DARTS paper, one 1080 Ti
NETWORKS = {  # network → (batch, resolution, classes, arch), the paper's
    "cifar": (96, 32, 10, "DARTS_V2"), "imagenet": (128, 224, 1000, "DARTS_V2"),
    "nats": (64, 32, 10, "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"),
    "preresnet": (64, 32, 10, None), "mobilenetv2": (64, 224, 20, None)}
SOURCE = ("derived from published costs on one GTX 1080 Ti: the RARTS paper's search GPU-days (Table 1), the "
          "DARTS paper's 12 days for the ImageNet network, FLOP scaling for the other networks "
          "(benchmarks/reference_step_times.py)")


def search_step_s(days: float, passes: int) -> float:
    """Seconds a step, from a search's days: 50 epochs of 390 steps and one D_v pass an epoch (a
    forward pass taken as a third of a pass, as `rarts.pipeline.costs` counts it)."""
    return days * 86400 / (EPOCHS * STEPS * (1 + 1 / (3 * passes)))


def forward_flops(name: str, res: int, classes: int, arch) -> int:
    net = build_network(name, load_arch(name, arch) if arch else None, classes)
    if name in ("cifar", "imagenet"):
        net.auxiliary_head = None  # the auxiliary head trains too, but is small; DARTS counts without it
    return n_flops(net, (3, res, res))


def search_flops(space: str) -> int:
    """Forward FLOPs of a search network on one 32×32 image, every candidate op of every edge run."""
    if space == "darts":
        from rarts.spaces import DartsSearchSpace as Space

        space = Space()
    else:
        from rarts.spaces import NatsSearchSpace as Space

        space = Space()
    net = space.build_network().eval()
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 3, 32, 32), space.init_arch())
    return int(counter.get_total_flops())


def main() -> dict:
    steps = {a: search_step_s(d, PASSES[a]) for a, d in SEARCH_GPU_DAYS.items()}
    steps["milenas"] = steps["darts1"] * PASSES["milenas"] / PASSES["darts1"]
    search_per_flop = steps["darts1"] / (PASSES["darts1"] * 3 * search_flops("darts") * BATCH)
    rows = [{"network": name, "batch_size": b, "resolution": r, "forward_gflops_per_image": forward_flops(name, r, c, a) / 1e9}
            for name, (b, r, c, a) in NETWORKS.items()]
    imagenet = next(r for r in rows if r["network"] == "imagenet")
    # seconds a step: 12 days over 250 epochs of its steps and one validation pass (50,000 images) each
    imagenet["median_step_s"] = IMAGENET_DAYS * 86400 / (IMAGENET_EPOCHS * (IMAGENET_STEPS + 50_000 // 128 / 3))
    imagenet["source"] = "DARTS paper: 12 days on one GTX 1080 Ti"
    per_flop = imagenet["median_step_s"] / (3 * imagenet["forward_gflops_per_image"] * 1e9 * imagenet["batch_size"])
    for row in rows:
        if row is not imagenet:
            row["median_step_s"] = 3 * row["forward_gflops_per_image"] * 1e9 * row["batch_size"] * per_flop
            row["source"] = "the ImageNet network's seconds per training FLOP"
    nats_search = search_flops("nats")
    rows.append({"network": "nats-search (darts1 step)", "batch_size": BATCH, "resolution": 32,
                 "forward_gflops_per_image": nats_search / 1e9,
                 "median_step_s": PASSES["darts1"] * 3 * nats_search * BATCH * search_per_flop,
                 "source": "DARTS-1's seconds per training FLOP of the DARTS search network"})
    table = {"reference": SOURCE, "size": "paper", "environment": {"device": "GTX 1080 Ti (published)", "gpu": "GTX 1080 Ti"},
             "search_size": {"init_channels": 16, "layers": 8, "resolution": 32, "batch_size": BATCH},
             "search_steps": [{"setting": "fp32", "algorithm": a, "median_step_s": t,
                               "source": f"RARTS paper Table 1: {SEARCH_GPU_DAYS[a]} GPU-days a search" if a in SEARCH_GPU_DAYS
                               else "DARTS-1's step × 3/2 (passes)"} for a, t in steps.items()],
             "network_steps": rows}
    write_json(Path(__file__).resolve().parents[1] / "rarts" / "pipeline" / "reference_step_times.json", table)
    return table


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=1))
