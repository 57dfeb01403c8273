"""Where the workflow keeps things (rarts.pipeline.layout) and how its jobs get their options
(rarts.pipeline.commands): the names the rules write are the names the tables read back."""

import subprocess

import pytest
import yaml

from conftest import BIN, REPO
from rarts.pipeline import layout
from rarts.pipeline.commands import JOB_OPTIONS, build_parser, job_options, workflow_argv


def test_a_run_folder_gives_back_its_fields_wherever_results_lie():
    path = "results/width/table5/cifar100/ns-40/seed2/metrics.json"
    assert layout.fields(layout.WIDTH_RUN, path) == {"table": "table5", "dataset": "cifar100", "method": "ns-40",
                                                     "seed": "2"}
    moved = "/elsewhere/old/results/ablation/latency/alpha_lr_3e-3/seed1/latency.json"
    assert layout.fields(layout.LATENCY_ABLATION_RUN, moved) == {"setting": "alpha_lr_3e-3", "seed": "1"}
    with pytest.raises(ValueError, match="not inside a run folder"):
        layout.fields(layout.WIDTH_RUN, "results/train/cifar/rarts-seed0/metrics.json")


@pytest.mark.parametrize("kw, name, fields", [({"seed": 3}, "rarts-seed3", ("rarts", "3", None)),
                                              ({"best_train": 1}, "darts2-best-train1", ("darts2", None, "1"))])
def test_table1s_run_names_read_back(kw, name, fields):
    algo = name.split("-")[0]
    assert layout.train_run(algo, **kw) == name
    m = layout.TRAIN_RUN.fullmatch(name)
    assert (m["algo"], m["seed"], m["train"]) == fields


def test_a_workflow_job_takes_its_options_from_the_environment():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["mlflow"]["tracking_uri"] = "http://host:5000/a b"  # a space survives the quoting
    env = {JOB_OPTIONS: job_options({**config, "device": "cpu", "deterministic": True})}
    argv = workflow_argv(["--workflow-job", "--threads", "2", "toy", "--method", "rarts"], env)
    args = build_parser().parse_args(argv)
    assert (args.device, args.threads, args.hold_gpus, args.take_over, args.deterministic) == ("cpu", 2, "auto",
                                                                                            True, True)
    assert args.mlflow == {"tracking_uri": "http://host:5000/a b", "experiment": config["mlflow"]["experiment"]}
    assert workflow_argv(["toy", "--method", "rarts"], {}) == ["toy", "--method", "rarts"]


def test_a_workflow_job_run_by_hand_without_its_options_says_so_in_one_line(cli_env):
    env = {k: v for k, v in cli_env.items() if k != JOB_OPTIONS}
    out = subprocess.run([str(BIN / "rarts"), "--workflow-job", "toy", "--method", "rarts"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and out.stderr.strip().count("\n") == 0 and JOB_OPTIONS in out.stderr, out.stderr
