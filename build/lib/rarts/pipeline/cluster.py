"""What a job asks a SLURM cluster for: the partition of its kind (GPU or CPU), its GPUs and the CPUs
that go with them on one node, its memory, and a wall time capped at the partition's limit (a job
that needs more resumes from its checkpoint in its next attempt). The workflow's rules take their
`resources` and `retries` from here; snakemake-executor-plugin-slurm turns them into sbatch options
(`-p`, `--gpus`, `--cpus-per-task`, `--nodes`, `--mem`, `-t`). No torch here: the Snakefile imports it.
"""

from __future__ import annotations

import math

from rarts.pipeline import costs

# Peak memory of a job's process before its data, measured by `make rehearsal` (CPU, paper size) and
# rounded up: Python, torch and its libraries; on a GPU node the CUDA libraries and context too.
BASE_MB = {"cpu": 1_500, "gpu": 4_000}
# What a training at the paper's batch adds in host memory when it runs on the CPU (on a GPU the
# activations live there), per network and process: `make rehearsal`'s peaks (PSS) less the base and the
# data, rounded up with a margin (a DARTS-space search 11.6 GB, the CIFAR retraining of a searched cell
# 12.3 GB, a NATS-Bench search 3.9 GB, MobileNetV2 7.3 GB, ResNet-164 5.7 GB, the 4-rank ImageNet
# transfer 18.4 GB in all); nats is an estimate.
ACTIVATIONS_MB = {"search": 10_500, "nats-search": 3_000, "cifar": 11_000, "imagenet": 9_000, "nats": 1_500,
                  "preresnet": 4_000, "mobilenetv2": 7_000}
WORKER_MB = 600  # one DataLoader worker decoding ImageNet JPEGs (what it adds to its rank)


def data_mb(images: int, resolution: int, on_gpu: bool) -> int:
    """Host memory of an in-memory dataset: its uint8 images, and the normalised float32 copy unless it
    goes to the GPU (`rarts.data.stream.storage_device`)."""
    uint8 = images * 3 * resolution ** 2
    return math.ceil(uint8 * (1 if on_gpu else 5) / 2**20)


def memory_mb(net: str, gpus: int, ranks: int = 1, images: int = 0, resolution: int = 32, workers: int = 0) -> int:
    """A job's memory request, for each of its `ranks` processes: the base, the activations when it runs
    on the CPU (`gpus` 0), its DataLoader workers and its own copy of an in-memory dataset."""
    kind = "gpu" if gpus else "cpu"
    activations = 0 if gpus else ACTIVATIONS_MB.get(net, 0)
    return ranks * (BASE_MB[kind] + activations + workers * WORKER_MB + data_mb(images, resolution, bool(gpus)))


def _at(value, wildcards):
    return value(wildcards) if callable(value) else value


def requests(cluster: dict, threads: int, gpus, mem_mb, minutes) -> dict:
    """The resources of the jobs of one rule. `gpus`, `mem_mb` and `minutes` (its planned wall time)
    are numbers or functions of a job's wildcards; `cluster` is the config section.

    gpu: the GPUs (the local scheduler reads it too); slurm_account: `account` when named; cpus_per_task: GPUs × `cpus_per_gpu`, or the
    rule's threads without GPUs (the plugin uses cpus_per_task whenever it is set); nodes: 1 (a job's
    GPUs on one node); mem_mb; slurm_partition: `gpu_partition` or `cpu_partition` ("" leaves the
    choice to the plugin: the cluster's default partition); runtime: minutes × safety × attempt,
    at least `min_runtime_min`, at most `max_runtime_min`."""
    def partition(wildcards):
        return cluster["gpu_partition" if _at(gpus, wildcards) else "cpu_partition"]

    def runtime(wildcards, attempt):
        return min(cluster["max_runtime_min"], wall_min(cluster, _at(minutes, wildcards)) * attempt)

    # the account the jobs are charged to: named, or left to the plugin (which asks sacctmgr for your
    # default account and passes it with -A, so SBATCH_ACCOUNT in the environment does not reach sbatch)
    account = {"slurm_account": cluster["account"]} if cluster["account"] else {}
    return {"gpu": lambda wildcards: _at(gpus, wildcards),
            "cpus_per_task": lambda wildcards: _at(gpus, wildcards) * cluster["cpus_per_gpu"] or threads,
            "nodes": 1, "mem_mb": lambda wildcards: int(_at(mem_mb, wildcards)),
            "slurm_partition": partition, "runtime": runtime, **account}


def wall_min(cluster: dict, minutes: float) -> int:
    """The wall time a job of `minutes` asks for in its first attempt, before the cap."""
    return max(cluster["min_runtime_min"], math.ceil(minutes * cluster["safety"]))


def retries(cluster: dict, minutes: float) -> int:
    """Resubmissions a job of `minutes` gets: one per wall-time window beyond the first that it needs
    at `max_runtime_min` (it resumes from its checkpoint in each), plus `spare_retries` for
    preemptions and lost nodes."""
    windows = math.ceil(wall_min(cluster, minutes) / cluster["max_runtime_min"])
    return windows - 1 + cluster["spare_retries"]


def step_table(cluster: dict) -> costs.StepTable:
    """The step times the wall times are planned from: the config's `step_table` (a `make gpu-check`
    JSON), else the reference table shipped with the package."""
    return costs.StepTable.load(cluster["step_table"] or None, required=True)
