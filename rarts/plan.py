"""`rarts plan`: what a target costs before it runs.

The jobs come from Snakemake's own dry run of the targets (`--forceall`: every job they need,
done or not), and each job's step count from the `--spec` its shell command carries, so the plan
reads exactly the settings the jobs will run with. Step times come from a measured table
(`make gpu-check`'s results/bench/gpu_check.json). A job costs its steps times the measured step
time, scaled linearly in batch size where its batch differs from the table's, plus one
evaluation pass per epoch (a forward pass taken as a third of a training step). Jobs that do not
train (data preparation, lookups, latency timing, tables) cost nothing here.
"""

from __future__ import annotations

import json
import math
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from rarts.names import IMAGES

IMAGES_PER_CLASS = 1_300, 50  # ImageNet-R's classes: at most 1,300 training and 50 validation images each
PASSES = {"darts1": 2, "darts2": 5, "milenas": 3, "rarts": 4}  # forward+backward passes a step
EVAL_FRACTION = 1 / 3  # a forward pass against a training step


def dry_run_jobs(targets, configfiles, snakemake=(sys.executable, "-m", "snakemake")) -> list[dict]:
    """Rule and shell command of every job the targets need (`snakemake -n --forceall -p`)."""
    cmd = [*snakemake, "-n", "--forceall", "-p", *(f"--configfile={f}" for f in configfiles), *targets]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"rarts plan: snakemake's dry run failed:\n{out.stderr[-3000:]}")
    jobs = []
    for line in out.stdout.splitlines():
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            jobs.append({"rule": line.split()[1][:-1], "shell": ""})
        elif line.startswith("Shell command:") and jobs:
            jobs[-1]["shell"] = line.split(":", 1)[1].strip()
    return jobs


def parse_command(shell: str):
    """A job's `rarts` command line, parsed by the CLI's own parser (None for other programs)."""
    from rarts.cli import build_parser

    words = shlex.split(shell.split(" 2> ")[0])
    return build_parser().parse_args(words[1:]) if words and Path(words[0]).name == "rarts" else None


class StepTable:
    """Measured seconds per step: search steps by algorithm (DARTS space), training steps by
    network, each at the batch size it was measured with."""

    def __init__(self, bench: dict):
        env = bench["environment"]
        self.where = f"{env.get('gpu', env['device'])}, {bench['size']} size"
        self.search_batch = bench["search_size"]["batch_size"]
        self.search = {r["algorithm"]: r["median_step_s"] for r in bench["search_steps"] if r["setting"] == "fp32"}
        self.nets = {r["network"]: (r["median_step_s"], r["batch_size"]) for r in bench["network_steps"]}

    @classmethod
    def load(cls, path) -> "StepTable":
        return cls(json.loads(Path(path).read_text()))

    def search_step(self, space: str, algo: str, net: str | None, batch: int) -> float:
        if space == "darts":
            return self.search[algo] * batch / self.search_batch
        if space == "nats":  # the measured DARTS-1 step, scaled by the algorithm's passes
            t, b = self.nets["nats-search (darts1 step)"]
            return t * PASSES[algo] / PASSES["darts1"] * batch / b
        return self.train_step(net, batch) * PASSES[algo]  # width: a training step is one pass

    def train_step(self, net: str, batch: int) -> float:
        t, b = self.nets[net]
        return t * batch / b


def train_images(spec: dict) -> int:
    ds = spec["dataset"]
    return IMAGES_PER_CLASS[0] * spec["num_classes"] if ds == "imagenet_r" else IMAGES[ds][0]


def eval_images(spec: dict) -> int:
    ds = spec["dataset"]
    return IMAGES_PER_CLASS[1] * spec["num_classes"] if ds == "imagenet_r" else IMAGES[ds][1]


def search_images(space: str, spec: dict, config: dict) -> int:
    """|D_t| of a search: from the split rule the job reads (rarts.data.split)."""
    from rarts.data import split

    n = train_images(spec)
    if space == "nats" and spec["hp"].get("split") == "nats-bench":
        return len(split.nats_bench_split(spec["dataset"], *IMAGES[spec["dataset"]], standin=False)["train"])
    return len(split.make_split(n, config["data"]["split_seed"], config["data"]["split_portion"])["train"])


def epochs_steps(hp: dict, images: int) -> tuple[int, int]:
    per_epoch = images // hp["batch_size"]
    if hp.get("max_steps_per_epoch"):
        per_epoch = min(per_epoch, hp["max_steps_per_epoch"])
    return hp["epochs"], per_epoch


def job_cost(args, table: StepTable, config: dict) -> tuple[int, float, int]:
    """(steps, GPU-seconds, GPUs) of one job, from its parsed `rarts` command line."""
    command = getattr(args, "command", None)
    if command == "search" and args.algo in PASSES:
        spec, hp = args.spec, args.spec["hp"]
        d_t = search_images(args.space, spec, config)
        epochs, per_epoch = epochs_steps(hp, d_t)
        step = table.search_step(args.space, args.algo, spec.get("net", {}).get("name"), hp["batch_size"])
        evals = (d_t // hp["batch_size"]) * step / PASSES[args.algo] * EVAL_FRACTION
        return epochs * per_epoch, epochs * (per_epoch * step + evals), 1
    if command in ("train", "width-train"):
        spec, hp = args.spec, args.spec["hp"]
        epochs, per_epoch = epochs_steps(hp, train_images(spec))
        step = table.train_step(args.net if command == "train" else spec["net"]["name"], hp["batch_size"])
        evals = eval_images(spec) // hp["batch_size"] * step * EVAL_FRACTION
        return epochs * per_epoch, epochs * (per_epoch * step + evals), getattr(args, "gpus", 1)
    if command == "nats-score" and not args.benchmark:  # offline: each found cell trained briefly
        hp, cells = args.spec["hp"], len(args.runs)
        epochs, per_epoch = epochs_steps(hp, train_images(args.spec))
        return cells * epochs * per_epoch, cells * epochs * per_epoch * table.train_step("nats", hp["batch_size"]), 1
    return 0, 0.0, 0


def plan(targets, configfiles, bench, safety: float = 1.5, snakemake=None) -> pd.DataFrame:
    """Per rule: jobs, steps, GPUs a job, GPU-hours, the longest job's wall hours, and the
    runtime (minutes) to request for it: its wall time × `safety`, at least 10 minutes."""
    config = load_config(configfiles)
    table = StepTable.load(bench)
    rows = []
    for job in dry_run_jobs(targets, configfiles, *([snakemake] if snakemake else [])):
        steps, gpu_s, gpus = job_cost(parse_command(job["shell"]), table, config)
        rows.append({"rule": job["rule"], "steps": steps, "gpus": gpus, "gpu_hours": gpu_s / 3600,
                     "wall_hours": gpu_s / 3600 / max(gpus, 1)})
    jobs = pd.DataFrame(rows, columns=["rule", "steps", "gpus", "gpu_hours", "wall_hours"])
    df = jobs.groupby("rule", sort=False).agg(jobs=("rule", "size"), steps=("steps", "sum"), gpus=("gpus", "max"),
                                              gpu_hours=("gpu_hours", "sum"), max_job_hours=("wall_hours", "max"))
    df["runtime_min"] = [max(10, math.ceil(h * 60 * safety)) for h in df.max_job_hours]
    df = df.sort_values("gpu_hours", ascending=False).reset_index()
    total = {"rule": "total", "jobs": df.jobs.sum(), "steps": df.steps.sum(), "gpus": df.gpus.max(),
             "gpu_hours": df.gpu_hours.sum(), "max_job_hours": df.max_job_hours.max(), "runtime_min": None}
    df = pd.concat([df, pd.DataFrame([total])], ignore_index=True)
    df.attrs["where"] = table.where
    return df


def load_config(configfiles) -> dict:
    """config/config.yaml overlaid with each --configfile, as Snakemake merges them."""
    from snakemake.utils import update_config

    config = yaml.safe_load(Path("config/config.yaml").read_text())
    for f in configfiles:
        update_config(config, yaml.safe_load(Path(f).read_text()))
    return config


def write_profile(df: pd.DataFrame, out_dir, base="workflow/profiles/slurm/config.yaml") -> Path:
    """The SLURM profile with each planned rule's `runtime` taken from the plan (× attempt, so a
    retry gets more): `snakemake --workflow-profile OUT_DIR …`."""
    profile = yaml.safe_load(Path(base).read_text())
    for row in df[df.rule != "total"].itertuples():
        if row.gpu_hours > 0:
            profile.setdefault("set-resources", {}).setdefault(row.rule, {})["runtime"] = f"{row.runtime_min} * attempt"
    out = Path(out_dir) / "config.yaml"
    from rarts.io import write_text

    write_text(out, f"# Written by `rarts plan` from {base}: runtimes from the plan.\n"
               + yaml.safe_dump(profile, sort_keys=False))
    return out


def plan_main(args) -> pd.DataFrame:
    df = plan(args.targets, args.configfile, args.bench, args.safety)
    print(f"# projected from steps measured on {df.attrs['where']} ({args.bench}); runtime_min: the longest "
          f"job's wall time × {args.safety}")
    print(df.round({"gpu_hours": 2, "max_job_hours": 2}).to_string(index=False))
    if args.profile_out:
        print(f"SLURM profile with these runtimes: {write_profile(df, args.profile_out)}")
    return df
