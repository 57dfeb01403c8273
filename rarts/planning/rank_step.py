"""One network's training step timed as a job of several torchrun ranks runs it: the jobs' own start
(`rarts.train.run.start_job`: gloo ranks sharing the CPU's threads, or NCCL and a GPU a rank), their
trainer (BatchNorm over the global batch, DistributedDataParallel), each rank its slice of one random
global batch. `rarts gpu-check` starts it under torchrun (`--ranks imagenet=4`); rank 0 writes the row.

    torchrun --standalone --nproc_per_node=4 -m rarts.planning.rank_step --net imagenet --size paper --out step.json
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
import yaml

from rarts.core.distributed import end_distributed
from rarts.pipeline.io import write_json
from rarts.planning import gpu_check
from rarts.train.run import start_job


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--net", required=True, choices=sorted(gpu_check.HP_AT))
    p.add_argument("--size", default="paper", choices=sorted(gpu_check.NETWORKS))
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="the job's threads, shared by its ranks (0: torch's)")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--config", default="config/config.yaml")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    dist, device = start_job({"device": args.device, "threads": args.threads})
    try:
        hp = gpu_check.training_hp(args.net, yaml.safe_load(Path(args.config).read_text()))
        _, batch, res, _ = gpu_check.NETWORKS[args.size][args.net]
        with tempfile.TemporaryDirectory() as tmp:
            trainer = gpu_check.network_trainer(args.net, args.size, device, hp, tmp, dist)
            timing = gpu_check.time_step(trainer.train_step, device, args.steps, args.warmup)
        if dist.main:
            write_json(args.out, {"network": args.net, "ranks": dist.world, "batch_size": batch, "resolution": res,
                                  "threads_per_rank": torch.get_num_threads(), **timing,
                                  "images_per_s": batch / timing["median_step_s"]})
    finally:
        end_distributed()


if __name__ == "__main__":
    main()
