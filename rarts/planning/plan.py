"""`rarts plan`: what a target costs before it runs.

The jobs come from Snakemake's own dry run of the targets (`--forceall`: every job they need,
done or not), and each job's step count from the `--spec` its shell command carries, parsed by the
parser that runs it (rarts.pipeline.commands), so the plan reads exactly the settings the jobs will
run with. The dry run's printed jobs (`-n -p`) are read rather than Snakemake's Python API: in
Snakemake 9.27 `snakemake.api.DAGApi` offers the DAG only to print or execute it, and its jobs,
their shell commands and resources only through private members (`Workflow._prepare_dag`, `DAG.jobs`).
Step times come from a measured table
(`make gpu-check`'s results/bench/gpu_check.json) or, before any measurement, from the reference
table shipped with the package; `rarts.pipeline.costs` holds the cost model. Jobs that do not train (data
preparation, lookups, latency timing, tables) cost nothing here.
"""

from __future__ import annotations

import heapq
import math
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from rarts.pipeline import cluster as cluster_requests, costs, gpu_pool, layout
from rarts.pipeline.config import check_overlay
from rarts.pipeline.io import write_text
from rarts.pipeline.commands import JOB_OPTIONS, build_parser, workflow_argv
from rarts.pipeline.names import PASSES

def dry_run_error(output: str) -> str:
    """The cause Snakemake gives, from its `…Exception:` or `…Error` line on (else its last lines)."""
    lines = output.strip().splitlines()
    starts = [i for i, line in enumerate(lines) if re.match(r"^\w*(Exception|Error)\b", line)]
    return "\n".join(lines[starts[-1]:] if starts else lines[-8:])[-3000:]


def dry_run_jobs(targets, configfiles, snakemake=(sys.executable, "-m", "snakemake")) -> list[dict]:
    """Rule and shell command of every job the targets need (`snakemake -n --forceall -p`)."""
    # the targets first: a `--configfile` takes every file after it (Snakemake 9 keeps only a flag's last use)
    cmd = [*snakemake, "-n", "--forceall", "-p", *targets, *(["--configfile", *configfiles] if configfiles else [])]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:  # Snakemake writes its error to stdout, after the run's header
        raise SystemExit(f"rarts plan: snakemake's dry run failed: {dry_run_error(out.stderr + out.stdout)}")
    jobs = []
    for line in out.stdout.splitlines():
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            jobs.append({"rule": line.split()[1][:-1], "shell": "", "log": "", "inputs": [], "outputs": [],
                         "resources": {}})
        elif not jobs:
            continue
        elif line.startswith("Shell command:"):
            jobs[-1]["shell"] = line.split(":", 1)[1].strip()
        elif line.startswith("    input: "):
            jobs[-1]["inputs"] = line.split(":", 1)[1].strip().split(", ")
        elif line.startswith("    output: "):
            jobs[-1]["outputs"] = line.split(":", 1)[1].strip().split(", ")
        elif line.startswith("    log: "):
            jobs[-1]["log"] = line.split(":", 1)[1].strip().split(", ")[0]
        elif line.startswith("    resources: "):
            pairs = (item.split("=", 1) for item in line.split(":", 1)[1].strip().split(", ") if "=" in item)
            jobs[-1]["resources"] = {k: int(v) if v.isdigit() else v for k, v in pairs}
    return jobs


def parse_command(shell: str, options: str | None = None):
    """A job's `rarts` command line, parsed by the CLI's own parser (None for other programs); with
    `options` (commands.job_options of the run's config), a workflow job's options put in place."""
    words = shlex.split(shell.split(" 2> ")[0])
    if words[:1] == ["exec"]:  # the workflow's jobs replace their shell (rarts.pipeline.signal_relay)
        words = words[1:]
    if not words or Path(words[0]).name != "rarts":
        return None
    if options is not None:
        words = [words[0], *workflow_argv(words[1:], {JOB_OPTIONS: options})]
    return build_parser().parse_args(words[1:])


def job_cell(args) -> dict | None:
    """The genotype a training job trains, as JSON, where it is known: a published cell, or a searched
    one once its search has written it (before, None: the step table's cell prices it)."""
    from rarts.models.genotypes import load_genotype

    ref = getattr(args, "genotype", None)
    try:
        return load_genotype(ref).to_json() if ref else None
    except FileNotFoundError:
        return None


def job_cost(args, table: costs.StepTable, config: dict) -> tuple[int, float, int]:
    """(steps, GPU-seconds, GPUs) of one job, from its parsed `rarts` command line."""
    command = getattr(args, "command", None)
    if command == "search" and args.algo in PASSES:
        steps, seconds = costs.search_cost(args.space, args.algo, args.spec, table, config["data"]["split_portion"])
        return steps, seconds, 1
    if command in ("train", "width-train"):
        net = args.net if command == "train" else args.spec["net"]["name"]
        gpus = getattr(args, "gpus", 1)
        steps, seconds = costs.train_cost(net, args.spec, table, gpus, job_cell(args))
        return steps, seconds, gpus
    if command == "nats-score" and not args.benchmark:  # offline: each found cell trained briefly
        return (*costs.local_train_cost(args.spec, len(args.runs), table), 1)
    return 0, 0.0, 0


def local_hours(jobs: list[dict], gpus: int) -> float | None:
    """Hours until the last job ends on one machine with `gpus` GPUs, as Snakemake runs it there (one job
    a GPU, `local.gpu_slots` 1): each job starts once the jobs making its inputs have ended and enough
    GPUs are free, the longest ready job first. Jobs that do not train take no time. None when a job
    needs more GPUs than there are (it cannot run there)."""
    if any(j["gpus"] > gpus for j in jobs):
        return None
    made_by = {out: i for i, j in enumerate(jobs) for out in j["outputs"]}
    needs = [{made_by[f] for f in j["inputs"] if f in made_by} for j in jobs]
    ended, running, free, now = set(), [], gpus, 0.0  # running: (end, job)
    waiting = sorted(range(len(jobs)), key=lambda i: -jobs[i]["wall_hours"])
    while waiting or running:
        for i in list(waiting):  # longest first: each ready job that fits starts now
            if needs[i] <= ended and jobs[i]["gpus"] <= free:
                waiting.remove(i)
                free -= jobs[i]["gpus"]
                heapq.heappush(running, (now + jobs[i]["wall_hours"], i))
        if not running:  # only jobs whose inputs no job of the plan makes: they are never ready
            break
        now, i = heapq.heappop(running)
        ended.add(i)
        free += jobs[i]["gpus"]
    return now


def plan(targets, configfiles, bench, safety: float | None = None, snakemake=None, local_gpus=()) -> pd.DataFrame:
    """Per rule: jobs, steps, GPUs a job, GPU-hours, the longest job's wall hours, the runtime (minutes)
    to request for it (its wall time × `safety`, the config's `cluster.safety` by default, at least
    `min_runtime_min`, at most the partitions' `max_runtime_min`) and the wall-time windows of that
    cap its longest job needs (it resumes from its checkpoint in each)."""
    config = load_config(configfiles)
    cluster = {**config["cluster"], **({"safety": safety} if safety else {})}
    table = costs.StepTable.load(bench)
    rows = []
    for job in dry_run_jobs(targets, configfiles, *([snakemake] if snakemake else [])):
        try:
            steps, gpu_s, gpus = job_cost(parse_command(job["shell"]), table, config)
        except costs.MissingStep as exc:
            raise SystemExit(f"rarts plan: rule {job['rule']}: {exc}") from None
        rows.append({"rule": job["rule"], "steps": steps, "gpus": gpus, "gpu_hours": gpu_s / 3600,
                     "wall_hours": gpu_s / 3600 / max(gpus, 1), "inputs": job["inputs"], "outputs": job["outputs"]})
    local = {g: local_hours(rows, g) for g in local_gpus}
    jobs = pd.DataFrame(rows, columns=["rule", "steps", "gpus", "gpu_hours", "wall_hours"])
    df = jobs.groupby("rule", sort=False).agg(jobs=("rule", "size"), steps=("steps", "sum"), gpus=("gpus", "max"),
                                              gpu_hours=("gpu_hours", "sum"), max_job_hours=("wall_hours", "max"))
    wall = [cluster_requests.wall_min(cluster, h * 60) for h in df.max_job_hours]
    df["runtime_min"] = [min(w, cluster["max_runtime_min"]) for w in wall]
    df["windows"] = [math.ceil(w / cluster["max_runtime_min"]) for w in wall]
    df = df.sort_values("gpu_hours", ascending=False).reset_index()
    total = {"rule": "total", "jobs": df.jobs.sum(), "steps": df.steps.sum(), "gpus": df.gpus.max(),
             "gpu_hours": df.gpu_hours.sum(), "max_job_hours": df.max_job_hours.max(), "runtime_min": None,
             "windows": df.windows.max()}
    df = pd.concat([df, pd.DataFrame([total])], ignore_index=True)
    df.attrs.update(where=table.where, cluster=cluster, local=local, slots=table.slots_that_fit(),
                    slots_set=config["local"]["gpu_slots"])
    return df


def default_local_gpus() -> list[int]:
    """This machine's GPU count when it has GPUs, else a few common ones."""
    n = len(gpu_pool.pool())
    return [n] if n else [1, 2, 4, 8]


def load_config(configfiles) -> dict:
    """config/config.yaml overlaid with each --configfile, as Snakemake merges them."""
    from snakemake.utils import update_config

    config = check_overlay(layout.CONFIG)
    for f in configfiles:
        update_config(config, check_overlay(f))
    return config


def write_profile(df: pd.DataFrame, out_dir, base=layout.SLURM_PROFILE) -> Path:
    """The SLURM profile with each planned rule's `runtime` taken from the plan (× attempt, so a retry
    gets more, capped at `max_runtime_min`): `snakemake --workflow-profile OUT_DIR …`."""
    profile = yaml.safe_load(Path(base).read_text())
    cap = df.attrs["cluster"]["max_runtime_min"]
    for row in df[df.rule != "total"].itertuples():
        if row.gpu_hours > 0:
            runtime = f"min({row.runtime_min} * attempt, {cap})"
            profile.setdefault("set-resources", {}).setdefault(row.rule, {})["runtime"] = runtime
    out = Path(out_dir) / "config.yaml"
    write_text(out, f"# Written by `rarts plan` from {base}: runtimes from the plan, capped at {cap} minutes.\n"
               + yaml.safe_dump(profile, sort_keys=False))
    return out


def plan_main(args) -> pd.DataFrame:
    df = plan(args.targets, args.configfile, args.bench, args.safety, local_gpus=args.local_gpus or default_local_gpus())
    cluster = df.attrs["cluster"]
    print(f"# projected from {df.attrs['where']}; runtime_min: the longest job's wall time × {cluster['safety']}, "
          f"at most {cluster['max_runtime_min']} (cluster.max_runtime_min); windows: how many of those it needs")
    print(df.round({"gpu_hours": 2, "max_job_hours": 2}).to_string(index=False))
    if df.windows.max() > 1:
        print(f"# jobs that need several windows resume from their checkpoints in their retries: the rules give each "
              f"job windows - 1 + cluster.spare_retries ({cluster['spare_retries']}) resubmissions, planned from "
              f"cluster.step_table ({cluster['step_table'] or 'the reference table'}); point it at {args.bench} "
              "if that is the table above")
    widest = df[df.rule != "total"].sort_values("gpus").iloc[-1]
    for g, hours in df.attrs["local"].items():
        print(f"# on one machine with {g} GPU{'s' * (g > 1)}: " + (
            f"about {hours:.1f} h (`snakemake --cores N {' '.join(args.targets)}`: a job a GPU, each started once its "
            "inputs are made, longest first)" if hours is not None else
            f"{widest.rule} needs {widest.gpus} GPUs a job (fewer ranks: train.<net>.gpus)"))
    fit, slots = df.attrs["slots"], df.attrs["slots_set"]
    print(f"# local.gpu_slots (now {slots}): " + (
        f"up to {fit} of the largest measured job fit on one of the table's GPUs at once" if fit else
        "`make gpu-check` on your GPU measures the jobs' peaks; then this line says how many fit on one GPU"))
    if args.profile_out:
        print(f"SLURM profile with these runtimes: {write_profile(df, args.profile_out)}")
    return df
