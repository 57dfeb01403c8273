"""The command line every rule's shell command is written in (`rarts …`): its arguments, torch-free, so
that the workflow's tools read a job's command line with the parser that runs it (`rarts plan`). What
each subcommand does is `rarts.cli`'s table."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex

from rarts.pipeline import names


def nonnegative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def gpu_count(text: str):
    return text if text == "auto" else nonnegative_int(text)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def finite(text: str, low: float = -math.inf, low_inclusive: bool = True) -> float:
    value = float(text)
    if not math.isfinite(value) or value < low or (value == low and not low_inclusive):
        bound = "" if low == -math.inf else f" {'≥' if low_inclusive else '>'} {low:g}"
        raise argparse.ArgumentTypeError(f"must be a finite number{bound}, got {text}")
    return value


def positive(text: str) -> float:
    return finite(text, 0.0, low_inclusive=False)


def nonnegative(text: str) -> float:
    return finite(text, 0.0)


def device_name(text: str) -> str:
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}: use auto, cpu, cuda or cuda:N")
    return text


def _json_arg(text: str) -> dict:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--spec is not valid JSON: {exc}") from exc


def add_data_commands(sub) -> None:
    """Data: prepare a dataset, write the search split, decode ImageNet-R."""
    d = sub.add_parser("prepare-data", help="download/verify a dataset or write its stand-in")
    d.add_argument("--dataset", choices=["cifar10", "cifar100", "imagenet", "nats-bench"], required=True)
    d.add_argument("--spec", type=_json_arg, required=True)
    d.add_argument("--out", required=True, help="a JSON summary of the prepared data")

    s = sub.add_parser("split", help="write the D_t / D_v search split")
    s.add_argument("--dataset", choices=["cifar10", "cifar100", "imagenet_r"], required=True)
    s.add_argument("--spec", type=_json_arg, required=True)
    s.add_argument("--out", required=True)

    ir = sub.add_parser("imagenet-r", help="draw ImageNet-R's classes and decode them to tensors")
    ir.add_argument("--spec", type=_json_arg, required=True,
                    help='{"root", "num_classes", "seed", "resolution", "workers"}')
    ir.add_argument("--out-dir", required=True)
    ir.add_argument("--out", required=True, help="the summary JSON (class list included)")


def add_job_commands(sub) -> None:
    """The jobs that search, train and time (each checkpoints and resumes)."""
    r = sub.add_parser("search", help="one architecture search (algorithm × seed)")
    r.add_argument("--space", choices=names.SPACES, default="darts",
                   help="width: channel scores of a ResNet/MobileNetV2 (Tables 5, 6)")
    r.add_argument("--algo", choices=names.SEARCHES, required=True)
    r.add_argument("--seed", type=int, required=True)
    r.add_argument("--spec", type=_json_arg, required=True)
    r.add_argument("--split", required=True, help="the search split JSON")
    r.add_argument("--out-dir", required=True)
    r.add_argument("--ckpt", required=True, help="checkpoint file (outside declared outputs)")

    tr = sub.add_parser("train", help="retrain a genotype (CIFAR or ImageNet network)")
    tr.add_argument("--net", choices=["cifar", "imagenet"], required=True)
    tr.add_argument("--genotype", required=True, help="DARTS_V1, DARTS_V2, or a genotype JSON file")
    tr.add_argument("--name", required=True, help="a label for logs and tables")
    tr.add_argument("--spec", type=_json_arg, required=True)
    tr.add_argument("--out-dir", required=True)
    tr.add_argument("--ckpt", required=True)
    tr.add_argument("--gpus", type=positive_int, default=1,
                    help="> 1: relaunch as one torchrun process per GPU (DistributedDataParallel)")

    wt = sub.add_parser("width-train", help="train a width-search network: from scratch, or prune a "
                        "saved one and fine-tune it (Tables 5, 6)")
    wt.add_argument("--name", required=True, help="a label for logs and tables")
    wt.add_argument("--spec", type=_json_arg, required=True)
    wt.add_argument("--out-dir", required=True, help="gets metrics.json, model.pt, genotype.json")
    wt.add_argument("--ckpt", required=True)
    wt.add_argument("--source", help="a saved network (model.pt / searched.pt) to prune and fine-tune")
    wt.add_argument("--rule", default="none", choices=names.PRUNING_RULES,
                    help="ratio: cut the global --value quantile of |score|; threshold: keep |score| > "
                    "--value; random: random channels at --like's per-layer widths")
    wt.add_argument("--value", type=nonnegative, default=0.0)
    wt.add_argument("--like", help="random: the genotype.json whose per-layer widths to copy")

    sc = sub.add_parser("select-cell", help="choose the RARTS cell to transfer to ImageNet")
    sc.add_argument("--rule", required=True, help="best_search_val | best_cifar_test | seedN")
    sc.add_argument("--runs", nargs="+", required=True, help="RARTS search output folders")
    sc.add_argument("--cifar-metrics", nargs="*", default=[])
    sc.add_argument("--out", required=True)

    lt = sub.add_parser("latency-table", help="measure every op on every edge (the Lat of eq. 5)")
    lt.add_argument("--spec", type=_json_arg, required=True)
    lt.add_argument("--out", required=True)

    ml = sub.add_parser("model-latency", help="forward time of a genotype's evaluation network")
    ml.add_argument("--genotype", required=True)
    ml.add_argument("--spec", type=_json_arg, required=True)
    ml.add_argument("--out", required=True)

    ns = sub.add_parser("nats-score", help="score found NATS-Bench cells (lookup, or local training)")
    ns.add_argument("--dataset", choices=["cifar10", "cifar100"], required=True)
    ns.add_argument("--benchmark", default="", help="the NATS-tss-v1_0-3ffb9-simple folder; empty: local-train")
    ns.add_argument("--spec", type=_json_arg, default={}, help="local-train settings")
    ns.add_argument("--runs", nargs="+", required=True)
    ns.add_argument("--ckpt-dir", default="results/.checkpoints/nats")
    ns.add_argument("--out", required=True)


def add_result_commands(sub) -> None:
    """Tables, figures, verdicts and MLflow from the jobs' files."""
    f = sub.add_parser("fig1", help="Fig. 1 and the toy equilibria table")
    f.add_argument("--spec", type=_json_arg, required=True)
    f.add_argument("--png", required=True)
    f.add_argument("--pdf")
    f.add_argument("--csv", required=True)

    tb = sub.add_parser("table", help="assemble one of the paper's tables")
    tb.add_argument("table", choices=names.TABLES)
    tb.add_argument("--spec", type=_json_arg, required=True)
    tb.add_argument("--inputs", nargs="*", default=[])
    tb.add_argument("--csv", required=True)
    tb.add_argument("--md", required=True)

    rp = sub.add_parser("reproduction", help="our rows beside the paper's, with a verdict each, and the paper's claims")
    rp.add_argument("--spec", type=_json_arg, required=True, help='{"standin": …, "rehearsal": …}')
    rp.add_argument("--inputs", nargs="+", required=True, help="the tables' CSVs and skip_connections.csv")
    rp.add_argument("--csv", required=True)
    rp.add_argument("--md", required=True)
    rp.add_argument("--rst", help="the Snakemake report's first page: the claims and the verdicts")

    g = sub.add_parser("fig2", help="draw the cells of the best RARTS search")
    g.add_argument("--runs", nargs="+", required=True, help="search output folders")
    g.add_argument("--png", required=True)
    g.add_argument("--pdf")
    g.add_argument("--csv", required=True, help="skip-connection counts of every genotype")

    tv = sub.add_parser("table-view", help="a table as a figure (ours beside the paper's) and as HTML")
    tv.add_argument("table", choices=names.TABLES)
    for opt in ("--csv", "--md", "--png", "--pdf", "--html"):
        tv.add_argument(opt, required=True)

    dy = sub.add_parser("dynamics", help="one search's softmax(α) per edge and skip connections over epochs")
    dy.add_argument("--history", required=True)
    dy.add_argument("--png", required=True)

    sk = sub.add_parser("skip-figure", help="skip connections over epochs, per algorithm")
    sk.add_argument("--histories", nargs="+", required=True)
    sk.add_argument("--png", required=True)
    sk.add_argument("--pdf", required=True)
    sk.add_argument("--title", default="skip connections over epochs")

    m = sub.add_parser("log-mlflow", help="log config, tables, figures and runs to MLflow")
    m.add_argument("--spec", type=_json_arg, required=True)
    m.add_argument("--config", type=_json_arg, required=True, help="the whole run config")
    m.add_argument("--artifacts", nargs="*", default=[])
    m.add_argument("--search-runs", nargs="*", default=[])
    m.add_argument("--job-runs", nargs="*", default=[], help="the jobs' files behind the tables: metrics.json, latency.json, scores.json")
    m.add_argument("--out", required=True)


def add_rehearsal_commands(sub) -> None:
    """The dress rehearsal's: the step table at paper size, and the report of step times and memory."""
    gc = sub.add_parser("gpu-check", help="time and check this GPU (or CPU): the step table `rarts plan` prices jobs with")
    gc.add_argument("--size", choices=["paper", "small", "tiny"], help="default: paper on a GPU, small on a CPU")
    gc.add_argument("--device", default="auto")
    gc.add_argument("--steps", type=positive_int, help="timed steps (default: 10 on a GPU, 3 on a CPU)")
    gc.add_argument("--warmup", type=nonnegative_int, help="untimed steps first (default: 3 on a GPU, 1 on a CPU)")
    gc.add_argument("--workers", type=nonnegative_int, default=8, help="ImageNet decoding (the config's train.imagenet.workers)")
    gc.add_argument("--config", default="config/config.yaml",
                    help="the networks' training settings (auxiliary loss, smoothing, clipping)")
    gc.add_argument("--ranks", nargs="*", default=[], metavar="NET=N",
                    help="also time NET's step over N torchrun ranks (the config's train.<net>.gpus)")
    gc.add_argument("--out", default="results/bench/gpu_check.json", help="also writes the .md beside it")
    gc.add_argument("--no-cpu-peaks", action="store_true",
                    help="on a CPU, skip each algorithm's peak-memory run in a process of its own (faster)")
    gc.add_argument("--step-table-only", action="store_true",
                    help="only what `rarts plan` reads: fp32 search steps (no copy-the-model DARTS-2), the "
                    "networks' fp32 steps, the edges' operations and ImageNet's decoding (the rehearsal's "
                    "CPU table at paper size)")

    rr = sub.add_parser("rehearsal-report", help="the dress rehearsal's report: step times and memory per rule")
    rr.add_argument("targets", nargs="+", help="the Snakemake targets the rehearsal ran, e.g. all")
    rr.add_argument("--config", type=_json_arg, required=True, help="the run's whole config (the rule passes it)")
    rr.add_argument("--bench", required=True, help="a CPU step table measured at paper size (make gpu-check on a CPU)")
    rr.add_argument("--unmeasured", nargs="*", default=[], metavar="RULE",
                    help="rules among the targets' jobs that the report leaves out (its step table, what runs after it)")
    rr.add_argument("--csv", required=True)
    rr.add_argument("--md", required=True)


def add_tool_commands(sub) -> None:
    """For people rather than rules: the solvable model, parameter counts, plans, config checks, a moved store."""
    t = sub.add_parser("toy", help="iterate the solvable model of paper §2")
    t.add_argument("--method", choices=names.ALGORITHMS, required=True)
    t.add_argument("--lam", type=positive, default=1.0, help="λ (RARTS, MiLeNAS)")
    t.add_argument("--beta", type=nonnegative, default=1.0, help="β (RARTS)")
    t.add_argument("--alpha0", type=finite, default=2.0)
    t.add_argument("--w0", type=finite, default=2.0)
    t.add_argument("--y0", type=finite, default=0.0)
    t.add_argument("--lr", type=positive, default=0.01)
    t.add_argument("--steps", type=positive_int, default=10000)
    t.add_argument("--json", action="store_true", help="print the final point as JSON")

    c = sub.add_parser("params", help="print a network's parameter count (last line)")
    c.add_argument("--net", choices=names.NETWORKS + ("resnet164",), required=True,
                   help="resnet164: preresnet at depth 164 (Network Slimming's ResNet-164)")
    c.add_argument("--arch", help="nats: a NATS-Bench topology string")
    c.add_argument("--genotype", default="DARTS_V2",
                   help="cifar/imagenet: a published name (DARTS_V1, DARTS_V2), a JSON file or JSON")
    c.add_argument("--classes", type=positive_int, help="default: 10 (search, cifar), 1000 (imagenet)")
    c.add_argument("--channels", type=positive_int, help="initial channels (default: the paper's)")
    c.add_argument("--layers", type=positive_int, help="cells (default: the paper's)")
    c.add_argument("--depth", type=positive_int, help="resnet164: another depth of the family (9n+2)")
    c.add_argument("--width-mult", type=positive, help="mobilenetv2: width multiplier (default 1.0)")
    c.add_argument("--flops", action="store_true", help="also print FLOPs at the paper's input size")

    pl = sub.add_parser("plan", help="the jobs a target needs and their projected GPU-hours, per rule")
    pl.add_argument("targets", nargs="+", help="Snakemake targets, e.g. all or results/table1.csv")
    pl.add_argument("--configfile", action="append", default=[], help="overlaid on config/config.yaml")
    pl.add_argument("--bench", default="results/bench/gpu_check.json",
                    help="the step table (make gpu-check); while there is none, the reference table shipped with rarts")
    pl.add_argument("--safety", type=positive, help="runtime request = longest job × this (default: cluster.safety)")
    pl.add_argument("--profile-out", help="write a SLURM profile with the planned runtimes here")
    pl.add_argument("--local-gpus", type=positive_int, nargs="+", metavar="G",
                    help="also say how long the targets take on one machine with G GPUs (default: this machine's "
                    "GPUs, or 1 2 4 8 where it has none)")

    cc = sub.add_parser("check-config", help="say in one line what is wrong with config overlays (before Snakemake reads them)")
    cc.add_argument("files", nargs="+", help="YAML overlays, as given to --configfile")

    mv = sub.add_parser("mlflow-relocate", help="after moving results/: point its MLflow store at its artifacts again")
    mv.add_argument("results", nargs="?", default="results", help="the moved results folder (default: results)")



class Parser(argparse.ArgumentParser):
    """argparse, with a bad argument told in one line (not the whole usage above it)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


# The options of where and how a workflow job runs (device, MLflow, GPU claims, take-over, determinism), which
# the Snakefile puts here rather than in each rule's shell command: Snakemake reruns a finished job whose
# command text changed, and these change nothing a job computes.
JOB_OPTIONS = "RARTS_JOB_OPTIONS"


def job_options(config: dict) -> str:
    """$RARTS_JOB_OPTIONS for a run's config: where and how its jobs run. `--hold-gpus auto`: each job claims
    the GPUs it computes on from this machine's pool (rarts.pipeline.gpu_pool); `--take-over`: a job
    resubmitted while a killed Snakemake's copy still runs stops that copy and resumes from its checkpoint
    (rarts.pipeline.locks). Jobs log live only to a tracking server (`mlflow.tracking_uri`, else
    $MLFLOW_TRACKING_URI; http or https)."""
    mlflow = {"tracking_uri": config["mlflow"]["tracking_uri"], "experiment": config["mlflow"]["experiment"]}
    slots = config["local"]["gpu_slots"]
    return (f"--device {config['device']} --mlflow {shlex.quote(json.dumps(mlflow, sort_keys=True))} "
            "--hold-gpus auto --take-over" + (f" --gpu-slots {slots}" if slots > 1 else "")
            + (" --deterministic" if config["deterministic"] else ""))


def workflow_argv(argv: list[str], env=os.environ) -> list[str]:
    """`rarts --workflow-job …` with the workflow's job options in place of the flag."""
    if "--workflow-job" not in argv:
        return argv
    if JOB_OPTIONS not in env:
        raise SystemExit(f"rarts --workflow-job: ${JOB_OPTIONS} is not set (Snakemake's jobs get it from the "
                         "Snakefile; by hand, give --device, --mlflow, … instead)")
    i = argv.index("--workflow-job")
    return argv[:i] + shlex.split(env[JOB_OPTIONS]) + argv[i + 1:]


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="rarts", description="`rarts` / `python -m rarts`: the one interface the pipeline rules call.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    p.add_argument("--workflow-job", action="store_true",
                   help=f"a workflow job: the options below that say where and how it runs are ${JOB_OPTIONS}, "
                   "which the Snakefile sets from the config (the job's log starts with its whole command line)")
    # where a job runs, not what it computes: these fill the --spec's keys of the same names
    p.add_argument("--device", type=device_name, help="auto | cpu | cuda | cuda:N (the spec's `device`)")
    p.add_argument("--threads", type=positive_int, help="torch threads (the spec's `threads`)")
    p.add_argument("--mlflow", type=_json_arg, help="live logging: {tracking_uri, experiment} (the spec's `mlflow`)")
    p.add_argument("--hold-gpus", type=gpu_count, metavar="K|auto",
                   help="claim K GPUs of this machine's pool (CUDA_VISIBLE_DEVICES, else every GPU) for the job's "
                   "life and see only them; auto: the GPUs the job computes on, as its rule counts them "
                   "(docs/cluster.md, \"One machine with GPUs\")")
    p.add_argument("--gpu-slots", type=positive_int, default=1, metavar="S",
                   help="jobs that may share one GPU of the pool (latency timing always holds its GPU alone)")
    p.add_argument("--deterministic", action="store_true",
                   help="GPU: deterministic algorithms only (slower; runs repeat bit for bit); default: cuDNN autotuning")
    p.add_argument("--take-over", action="store_true",
                   help="a job whose checkpoint an older process holds (left by a killed Snakemake, or its own "
                   "previous attempt) asks that one to checkpoint and stop, waits, and resumes; default: stop at once")
    sub = p.add_subparsers(dest="command", required=True)

    for add in (add_data_commands, add_job_commands, add_result_commands, add_rehearsal_commands, add_tool_commands):
        add(sub)
    return p


