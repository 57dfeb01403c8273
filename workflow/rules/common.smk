# Shared by every rule file (config validation, the CLI, and the list of final targets that
# each rule file extends, so adding a stage means adding one file and one include).
import json
import os
import shlex
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")

sys.path.insert(0, workflow.basedir)  # the package's light modules, even where it is not installed
from rarts.pipeline.config import check_finite, schema_problem  # noqa: E402

# our message first (the key, where, the nearest valid keys); Snakemake's validate then fills defaults
SCHEMA = Path(workflow.current_basedir) / "../schemas/config.schema.yaml"
if problem := schema_problem(config, yaml.safe_load(SCHEMA.read_text())):
    raise WorkflowError(f"invalid config (workflow/schemas/config.schema.yaml says what each key means):\n{problem}")
validate(config, "../schemas/config.schema.yaml")
from rarts.pipeline import cluster, commands, costs, gpu_pool, layout, names, pruned_runs  # noqa: E402

check_finite(config)
from rarts.pipeline import signal_relay  # noqa: E402
from rarts.pipeline.locks import claim_workdir  # noqa: E402

if workflow.is_main_process:  # a Snakemake killed earlier leaves its locks: clear them (see README)
    for stale in claim_workdir():
        print(f"rarts: removed the lock {stale} left by a Snakemake that was killed", file=sys.stderr)
elif signal_relay.in_job_step():  # the job step SLURM signals: pass SIGTERM on to the job (docs/cluster.md)
    signal_relay.install()

ALL_TARGETS = []  # tables and figures; the MLflow rule logs them all
SEARCH_RUNS = []  # search output folders, logged as nested MLflow runs


def spec(obj):
    """A config slice as one shell-quoted JSON argument (also a rerun trigger via params)."""
    return shlex.quote(json.dumps(obj, sort_keys=True))


# the data's kind, which every job records and every table and figure names: the offline config's
# digits stand-ins, or the rehearsal's synthetic data at the real sizes
SYNTHETIC = {"standin": config["data"]["standin"], "rehearsal": config["data"]["rehearsal"]}
IMAGENET_R_DIR = "results/data/imagenet_r"  # ImageNet-R decoded to tensors (workflow/rules/width.smk)


def dataset_spec(name):
    d = config["data"]
    root = IMAGENET_R_DIR if name == "imagenet_r" else d["imagenet" if name.startswith("imagenet") else name]["root"]
    return {"root": root, **SYNTHETIC, "download": d["download"]}


def num_classes(dataset):
    if dataset == "imagenet_r":
        return config["data"]["imagenet_r"]["num_classes"]
    return names.CIFAR_CLASSES[dataset]


# Where and how a job runs, not what it computes (rarts.pipeline.commands.job_options): global options of
# `rarts`, which a rule's shell command takes as `exec rarts --workflow-job --threads {threads} …` from the
# environment, so that changing the device, the threads or the tracking server reruns nothing (and no
# shell command reads a variable from outside its rule). `exec`: the job replaces the rule's shell, so the
# SIGTERM a SLURM job step passes on reaches it (rarts.pipeline.signal_relay); a shell between would die.
LOCAL = config["local"]
os.environ.update({commands.JOB_OPTIONS: commands.job_options(config)})  # for its jobs (a SLURM job's own too)
RUN_ONLY = ("seeds", "algorithms", "datasets", "published", "compare", "select", "protocol", "retrain_seeds")


def job_hp(section):
    """A config section without the lists that say which jobs run: adding a seed or an algorithm
    changes no finished job's settings (its params and its checkpoint's fingerprint)."""
    return {k: v for k, v in section.items() if k not in RUN_ONLY}


def job_spec(dataset, hp, **extra):
    """What a search or training computes from: its data and its settings."""
    return {"dataset": dataset, "root": dataset_spec(dataset)["root"], **SYNTHETIC, "hp": job_hp(hp), **extra}


# -- one machine with GPUs (rarts.pipeline.gpu_pool; README, "One machine with GPUs") ---------------------------
# The GPUs this Snakemake's local jobs share: CUDA_VISIBLE_DEVICES, else every GPU the driver lists (none
# under `device: cpu` unless CUDA_VISIBLE_DEVICES names some: a pretend pool, as the tests use). Jobs on a
# cluster get theirs from SLURM.
# A run whose jobs run here, started by the user (not a SLURM job's own Snakemake). While the Snakefile is
# read, Snakemake has not yet named its executor; but a cluster run must give --jobs (its `_nodes`), and
# Snakemake turns a local run's --jobs into --cores.
LOCAL_RUN = workflow.is_main_process and workflow.global_resources["_nodes"].value is None
GPU_POOL = gpu_pool.pool(config["device"]) if LOCAL_RUN else []
# Snakemake counts the pool so that the user need not: no more GPU jobs run at once than it holds
# (`--resources gpu=N` on the command line still wins, e.g. to leave GPUs to others).
if GPU_POOL and "gpu" not in workflow.global_resources:
    workflow.register_resource("gpu", len(GPU_POOL) * LOCAL["gpu_slots"])


onstart:
    # a SLURM run's controller (not dry runs, reports or unlocks): jobs cancelled by preemption are requeued
    if getattr(workflow.executor_plugin, "name", None) == "slurm":
        from rarts.pipeline import preemption

        preemption.watch()


def on_gpu(n=1):
    """The GPUs a job computes on: n, none when the config runs everything on the CPU (memory requests)."""
    return 0 if config["device"] == "cpu" else n


def gpu(n=1):
    """A job's `gpu` resource, the GPUs it holds: those it computes on, and on a machine with a pool
    n even under `device: cpu` (the claims are made as on a GPU machine while the jobs run on the CPU)."""
    return n if GPU_POOL else on_gpu(n)


def job_threads(gpus=1):
    """A job's `threads`. Locally with a pool, a GPU job reserves `local.cpus_per_gpu` cores for each GPU
    it holds (its threads and DataLoader workers), so CPU jobs leave those free; else `threads`."""

    def threads(wildcards):
        n = gpus(wildcards) if callable(gpus) else gpus
        return n * LOCAL["cpus_per_gpu"] if GPU_POOL and n else config["threads"]

    return threads if callable(gpus) else threads(None)


# A timing job (the latency table, Table 2's model latencies) takes every core when it runs here, so no
# other job runs beside it and it times the operations, not the contention; on a cluster it asks as any job.
ALONE = (workflow.global_resources["_cores"].value or config["threads"]) if LOCAL_RUN else config["threads"]


# -- what each job asks a cluster for (rarts.pipeline.cluster; README, "Running on a SLURM cluster") ----------
CLUSTER = config["cluster"]
# A cluster run (Snakemake leaves --cores unset only for one: a dry run or a local one has it) whose GPU
# jobs would go to the cluster's default partition, which has no GPUs on most clusters, so they would sit
# pending: stop before anything is submitted, unless the user says the default partition is the GPU one.
SUBMITTING = workflow.global_resources["_nodes"].value is not None and workflow.global_resources["_cores"].value is None
if SUBMITTING and on_gpu() and not CLUSTER["gpu_partition"] and not CLUSTER["default_partition_has_gpus"]:
    raise ValueError(
        "config cluster.gpu_partition is empty, so every GPU job would go to the cluster's default "
        "partition: name your GPU partition (config/site.example.yaml), or set "
        "cluster.default_partition_has_gpus: true if the default partition has the GPUs"
    )
STEP_TABLE = cluster.step_table(CLUSTER)  # wall times are planned from it, as `rarts plan` plans


def job(gpus=0, mem_mb=cluster.BASE_MB["cpu"], minutes=0.0):
    """A rule's resources: numbers, or functions of a job's wildcards."""
    return cluster.requests(CLUSTER, config["threads"], gpus, mem_mb, minutes)


def job_retries(*minutes):
    """A rule's retries: enough wall-time windows for its longest job, and the spare ones."""
    return cluster.retries(CLUSTER, max(minutes, default=0.0))


def search_minutes(space, algo, spec):
    """The planned wall time of one search (none for the sampled `random` baseline)."""
    if algo not in names.PASSES:
        return 0.0
    return costs.search_cost(space, algo, spec, STEP_TABLE, config["data"]["split_portion"])[1] / 60


def train_minutes(net, spec, ranks=1):
    """The planned wall time of one training: its GPU time over its ranks."""
    return costs.train_cost(net, spec, STEP_TABLE, ranks)[1] / 60 / ranks


def search_memory(net, spec, images):
    """A search's memory request: both halves of its split held in memory at its resolution."""
    return cluster.memory_mb(net, on_gpu(), images=images, resolution=spec["hp"]["resolution"])


def alternatives(choices):
    """A wildcard constraint accepting exactly these names."""
    return "|".join(choices)


ENV = "../envs/rarts.yaml"  # every rule's conda environment (`--sdm conda`)


def out_dir(wildcards, output):
    """A job's output folder: its first output's."""
    return str(Path(output[0]).parent)


def checkpoint_path(wildcards, output):
    """A job's checkpoint: its output folder's path under `checkpoints` (outside every declared
    output, so Snakemake never deletes it and a rerun resumes)."""
    return str(Path(config["checkpoints"], Path(output[0]).parent.relative_to("results"), "ckpt.pt"))


def searched(algorithms):
    """The algorithms that search: all but the sampled `random` baseline."""
    return [a for a in algorithms if a != names.RANDOM]


localrules:
    all,
