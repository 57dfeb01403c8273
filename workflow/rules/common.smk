# Shared by every rule file: config validation, the CLI, and the list of final targets that
# each rule file extends (so adding a stage means adding one file and one include).
import json
import shlex
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("9.0")

validate(config, "../schemas/config.schema.yaml")

sys.path.insert(0, workflow.basedir)  # the package's names, even where it is not installed
from rarts import names  # noqa: E402

RARTS = "rarts"  # the package's console script; every rule goes through it
ALL_TARGETS = []  # tables and figures; the MLflow rule logs them all
SEARCH_RUNS = []  # search output folders, logged as nested MLflow runs


def spec(obj):
    """A config slice as one shell-quoted JSON argument (also a rerun trigger via params)."""
    return shlex.quote(json.dumps(obj, sort_keys=True))


IMAGENET_R_DIR = "results/data/imagenet_r"  # ImageNet-R decoded to tensors (workflow/rules/width.smk)


def dataset_spec(name):
    d = config["data"]
    root = IMAGENET_R_DIR if name == "imagenet_r" else d["imagenet" if name.startswith("imagenet") else name]["root"]
    return {"root": root, "standin": d["standin"], "download": d["download"]}


def mlflow_spec():
    """Jobs log live only to a tracking server (config or $MLFLOW_TRACKING_URI, http/https)."""
    return {"tracking_uri": config["mlflow"]["tracking_uri"], "experiment": config["mlflow"]["experiment"]}


def num_classes(dataset):
    if dataset == "imagenet_r":
        return config["data"]["imagenet_r"]["num_classes"]
    return 100 if dataset == "cifar100" else 10


def job_spec(dataset, hp, **extra):
    """What every search or training job gets: its data, device and threads, its settings, and
    where to log live (see mlflow_spec)."""
    return {"dataset": dataset, "root": dataset_spec(dataset)["root"], "standin": config["data"]["standin"],
            "device": config["device"], "threads": config["threads"], "hp": hp, "mlflow": mlflow_spec(), **extra}


def gpu(n=1):
    """A job's `gpu` resource: n GPUs, none when the config runs everything on the CPU."""
    return 0 if config["device"] == "cpu" else n


def alternatives(choices):
    """A wildcard constraint accepting exactly these names."""
    return "|".join(choices)


def checkpoint_path(*parts):
    return str(Path(config["checkpoints"], *parts, "ckpt.pt"))


localrules: all
