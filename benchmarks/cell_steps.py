#!/usr/bin/env python
"""How well the step table prices a searched cell: the measured training step of the CIFAR (or
ImageNet) network with DARTS_V1 and random cells against `rarts plan`'s price for them, the table's
DARTS_V2 step plus the difference of the cells' edges (`make gpu-check`'s edge table,
`rarts.pipeline.costs.StepTable.cell_factor`). DARTS_V2's step is timed first and last: the gap between the two
is the host's own drift over the run.

    python benchmarks/cell_steps.py --net cifar --cells 3     # paper size on the CPU: about 3 minutes
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from rarts.models.genotypes import DARTS_V1, DARTS_V2, random_genotype
from rarts.pipeline.costs import StepTable
from rarts.pipeline.io import write_json, write_text
from rarts.planning import gpu_check


def measured_step(net, size, device, cell, config, steps, warmup) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        trainer = gpu_check.network_trainer(net, size, device, gpu_check.training_hp(net, config), tmp,
                                            cell=json.dumps(cell.to_json()))
        return gpu_check.time_step(trainer.train_step, device, steps, warmup)["median_step_s"]


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--net", choices=gpu_check.GENOTYPE_NETWORKS, default="cifar")
    p.add_argument("--size", choices=sorted(gpu_check.NETWORKS), default="paper")
    p.add_argument("--device", default="cpu")
    p.add_argument("--cells", type=int, default=3, help="random cells (the paper's random baseline's sampler)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "config" / "config.yaml"))
    p.add_argument("--out", default="results/bench/cell_steps.json", help="also writes the .md beside it")
    args = p.parse_args(argv)
    device, config = torch.device(args.device), yaml.safe_load(Path(args.config).read_text())
    # a step table of this run's own steps (no search steps: only retrainings are priced here)
    bench = {"environment": gpu_check.environment(device), "size": args.size, "search_size": {"batch_size": 1},
             "search_steps": [], "edge_steps": gpu_check.edge_steps(args.size, device, args.steps, args.warmup,
                                                                    config, (args.net,))}
    base = measured_step(args.net, args.size, device, DARTS_V2, config, args.steps, args.warmup)
    batch = gpu_check.NETWORKS[args.size][args.net][1]
    bench["network_steps"] = [{"network": args.net, "median_step_s": base, "batch_size": batch}]
    table = StepTable(bench, "this run")
    rng = np.random.default_rng(args.seed)
    cells = {"DARTS_V1": DARTS_V1, **{f"random{i}": random_genotype(rng) for i in range(args.cells)},
             "DARTS_V2 again": DARTS_V2}
    rows = [{"cell": "DARTS_V2", "measured_step_s": base, "planned_step_s": base, "measured_over_planned": 1.0}]
    for name, cell in cells.items():
        measured = measured_step(args.net, args.size, device, cell, config, args.steps, args.warmup)
        planned = table.train_step(args.net, batch, cell=cell.to_json())
        rows.append({"cell": name, "measured_step_s": measured, "planned_step_s": planned,
                     "measured_over_planned": measured / planned})
        print(rows[-1], flush=True)
    write_json(args.out, {"net": args.net, "size": args.size, "cells": rows, "edge_steps": bench["edge_steps"]})
    write_text(Path(args.out).with_suffix(".md"), f"# A searched cell's step against its price ({args.net}, "
               f"{args.size} size, {device})\n\n" + pd.DataFrame(rows).round(3).to_markdown(index=False) + "\n")
    return rows


if __name__ == "__main__":
    main()
