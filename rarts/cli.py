"""`rarts` / `python -m rarts`: the one interface the pipeline rules call.

`COMMANDS` is every subcommand: the function it runs and whether a rule runs it; the arguments are
`rarts.pipeline.commands`'. Rules pass their slice of the (schema-validated) config as a JSON `--spec`;
every output is written atomically. Each function imports what it runs when it runs, so `--help`
starts without torch.
"""

from __future__ import annotations

import logging
import os
import shlex
import sys
from typing import Callable, NamedTuple

from rarts.pipeline import gpu_pool, locks, names
from rarts.pipeline.commands import build_parser, workflow_argv
from rarts.pipeline.errors import USER_ERRORS


# -- what each subcommand runs ------------------------------------------------------------
def prepare_data(a) -> None:
    from rarts.data.prepare import prepare_dataset

    prepare_dataset(a.dataset, a.spec, a.out)


def split(a) -> None:
    from rarts.data.prepare import make_search_split

    make_search_split(a.dataset, a.spec, a.out)


def imagenet_r(a) -> None:
    from rarts.data import imagenet_r
    from rarts.pipeline.io import write_json

    write_json(a.out, imagenet_r.materialise(a.spec, a.out_dir))


def search(a) -> None:
    from rarts.search.run import search_main

    search_main(a.space, a.algo, a.seed, a.spec, a.split, a.out_dir, a.ckpt)


def train(a) -> None:
    from rarts.train import run

    if a.gpus > 1 and "WORLD_SIZE" not in os.environ:
        from rarts.core.devices import resolve_device

        resolve_device(a.spec.get("device", "auto"))  # a job given GPUs it cannot use stops here, once
        run.relaunch_under_torchrun(a.gpus, sys.argv[1:])  # one process per GPU; does not return
    run.train_main(a.net, a.genotype, a.name, a.spec, a.out_dir, a.ckpt)


def width_train(a) -> None:
    from rarts.train.width import width_train_main

    width_train_main(a.name, a.spec, a.out_dir, a.ckpt, a.source, a.rule, a.value, a.like)


def select_cell(a) -> None:
    from rarts.train.transfer import select_cell

    select_cell(a.rule, a.runs, a.cifar_metrics, a.out)


def latency_table(a) -> None:
    from rarts.measure.latency import latency_table_main

    latency_table_main(a.spec, a.out)


def model_latency(a) -> None:
    from rarts.measure.latency import model_latency_main

    model_latency_main(a.genotype, a.spec, a.out)


def nats_score(a) -> None:
    from rarts.measure import nats_lookup

    if a.benchmark:
        nats_lookup.lookup_main(a.dataset, a.benchmark, a.runs, a.out)
    else:
        nats_lookup.local_train_main(a.dataset, a.spec, a.runs, a.out, a.ckpt_dir)


def fig1(a) -> None:
    from rarts.report.figures.toy import make_fig1

    make_fig1(a.spec, a.png, a.pdf, a.csv)


def table(a) -> None:
    from rarts.report import tables

    tables.TABLES[a.table](a.spec, a.inputs, a.csv, a.md)


def reproduction(a) -> None:
    from rarts.report.reproduction import reproduction_main

    reproduction_main(a.spec, a.inputs, a.csv, a.md, a.rst)


def fig2(a) -> None:
    from rarts.report.figures.cells import make_fig2

    make_fig2(a.runs, a.png, a.pdf, a.csv)


def table_view(a) -> None:
    from rarts.report.figures.tables import make_table_view

    make_table_view(a.table, a.csv, a.md, a.png, a.pdf, a.html)


def dynamics(a) -> None:
    from rarts.report.figures.dynamics import make_dynamics

    make_dynamics(a.history, a.png)


def skip_figure(a) -> None:
    from rarts.report.figures.dynamics import make_skip_comparison

    make_skip_comparison(a.histories, a.png, a.pdf, a.title)


def log_mlflow(a) -> None:
    from rarts.report.tracking import log_reproduction

    log_reproduction(a.spec, a.config, a.artifacts, a.search_runs, a.out, a.job_runs)


def rehearsal_report(a) -> None:
    from rarts.planning.rehearsal import report_main

    report_main(a)


def toy(a) -> None:
    import json

    from rarts.search import toy

    final = toy.simulate(a.method, lam=a.lam, beta=a.beta, alpha0=a.alpha0, w0=a.w0, y0=a.y0, lr=a.lr,
                         steps=a.steps).final
    print(json.dumps(final) if a.json else ", ".join(f"{k} = {v:.6f}" for k, v in final.items()))


def params(a) -> None:
    from rarts.models import params

    print(params.count(a))


def plan(a) -> None:
    from rarts.planning.plan import plan_main

    plan_main(a)


def gpu_check(a) -> None:
    from rarts.planning.gpu_check import gpu_check_main

    gpu_check_main(a)


def check_config(a) -> None:
    from rarts.pipeline.config import check_overlays_main

    check_overlays_main(a.files)


def mlflow_relocate(a) -> None:
    from rarts.report.tracking import relocate_main

    relocate_main(a.results)


class Command(NamedTuple):
    run: Callable
    rule: bool  # a workflow rule runs it
    sampled: bool = True  # (run by a rule) its peak memory is sampled beside its log (rarts.core.usage)
    job: bool = False  # it trains or times: claims its GPUs first, may take a checkpoint over
    alone: bool = False  # timing: it holds its GPU alone (a shared one would time contention)


COMMANDS = {
    # data
    "prepare-data": Command(prepare_data, rule=True),
    "split": Command(split, rule=True),
    "imagenet-r": Command(imagenet_r, rule=True),
    # jobs that search, train and time (each checkpoints and resumes)
    "search": Command(search, rule=True, job=True),
    "train": Command(train, rule=True, job=True),
    "width-train": Command(width_train, rule=True, job=True),
    "select-cell": Command(select_cell, rule=True),
    "latency-table": Command(latency_table, rule=True, job=True, alone=True),
    "model-latency": Command(model_latency, rule=True, job=True, alone=True),
    "nats-score": Command(nats_score, rule=True, job=True),
    # tables, figures, verdicts, MLflow
    "fig1": Command(fig1, rule=True),
    "table": Command(table, rule=True),
    "reproduction": Command(reproduction, rule=True),
    "fig2": Command(fig2, rule=True),
    "table-view": Command(table_view, rule=True),
    "dynamics": Command(dynamics, rule=True),
    "skip-figure": Command(skip_figure, rule=True),
    "log-mlflow": Command(log_mlflow, rule=True),
    # the rehearsal's: the step table at paper size, and the report that reads the others' samples
    "gpu-check": Command(gpu_check, rule=True, sampled=False),
    "rehearsal-report": Command(rehearsal_report, rule=True, sampled=False),
    # for people
    "toy": Command(toy, rule=False),
    "params": Command(params, rule=False),
    "plan": Command(plan, rule=False),
    "check-config": Command(check_config, rule=False),
    "mlflow-relocate": Command(mlflow_relocate, rule=False),
}


def gpus_wanted(args) -> int:
    """The GPUs a job computes on, as its rule's `gpu` resource counts them (tests/test_gpu_pool.py
    holds the two together on the paper's DAG)."""
    if args.command == "search":
        return 0 if args.algo == names.RANDOM else 1
    if args.command == "train":
        return args.gpus  # one torchrun rank a GPU
    if args.command == "nats-score":
        return 0 if args.benchmark else 1  # a benchmark lookup trains nothing
    return 1  # width-train, latency-table, model-latency


def main(argv=None) -> None:
    given = sys.argv[1:] if argv is None else list(argv)
    argv = workflow_argv(given)
    args = build_parser().parse_args(argv)
    command = COMMANDS[args.command]
    runtime = {k: v for k in ("device", "threads", "mlflow") if (v := getattr(args, k)) is not None}
    if runtime and isinstance(getattr(args, "spec", None), dict):
        args.spec = {**args.spec, **runtime}
    if command.alone and args.threads:  # locally it gets every core of --cores: never more threads than CPUs
        args.spec["threads"] = min(args.threads, len(os.sched_getaffinity(0)))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s", stream=sys.stderr)
    if argv != given and os.environ.get("LOCAL_RANK", "0") == "0":  # the log names the whole command
        logging.getLogger("rarts").info("rarts %s", shlex.join(argv))
    if command.job and args.hold_gpus is not None:
        try:  # before torch starts CUDA: the job sees only the GPUs it holds
            k = gpus_wanted(args) if args.hold_gpus == "auto" else args.hold_gpus
            gpu_pool.hold_for_job(k, args.device or "auto", args.gpu_slots, alone=command.alone)
        except USER_ERRORS as exc:
            sys.exit(f"rarts {args.command}: {exc}")
    if command.job:
        from rarts.core.devices import set_determinism  # torch

        locks.take_over = args.take_over
        set_determinism(args.deterministic)

    usage = None
    if command.rule and command.sampled:
        from rarts.core.usage import for_this_job

        usage = for_this_job()
    status = "failed"
    try:
        command.run(args)
        status = "ok"
    except USER_ERRORS as exc:
        sys.exit(f"rarts {args.command}: {exc}")
    except OSError as exc:  # a file named on the command line (or in a spec) missing or unreadable
        if exc.filename is None:
            raise
        sys.exit(f"rarts {args.command}: {exc.filename}: {exc.strerror}")
    finally:
        if command.job and os.environ.get("LOCAL_RANK", "0") == "0":
            logging.getLogger("rarts").info(gpu_pool.summary(gpu_pool.record()))
        if usage is not None:
            usage.stop(status)
