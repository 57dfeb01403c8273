"""The offline config learns: a network trained with the quick config's real settings on a digits
stand-in ends far below chance error, and a run that learns nothing is named in a warning."""

import logging

import numpy as np
import yaml
from snakemake.utils import update_config

from conftest import REPO
from rarts.data import cifar, standin
from rarts.train.run import train_main


def quick_config() -> dict:
    """The paper's config with the offline config on top, as `make quick` runs it."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    update_config(cfg, yaml.safe_load((REPO / "config" / "quick.yaml").read_text()))
    return cfg


def train_cifar(tmp_path, shuffle_test_labels=False) -> dict:
    hp = {k: v for k, v in quick_config()["train"]["cifar"].items() if k != "published"}
    train, (xt, yt) = standin.digits_images()
    if shuffle_test_labels:  # a broken label mapping: no network can beat chance on the test set
        yt = np.random.default_rng(0).permutation(yt)
    cifar.write_cifar("cifar10", tmp_path / "cifar10", train, (xt, yt), [f"digit_{d}" for d in range(10)])
    spec = {"dataset": "cifar10", "root": str(tmp_path / "cifar10"), "standin": True, "device": "cpu", "threads": 1,
            "hp": hp}
    return train_main("cifar", "DARTS_V2", "DARTS_V2", spec, tmp_path / "out", tmp_path / "ck.pt")


def test_offline_profile_network_learns(tmp_path):
    metrics = train_cifar(tmp_path)
    losses = [h["train_loss"] for h in metrics["history"]]
    assert metrics["history"][-1]["classes"] == 10
    assert metrics["test_error"] <= 30.0, metrics["test_error"]  # chance: 90%
    assert losses[-1] < 0.6 * losses[0], losses


def test_a_run_at_chance_is_named_in_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="rarts"):
        metrics = train_cifar(tmp_path, shuffle_test_labels=True)
    assert metrics["test_error"] > 85.0
    assert any("DARTS_V2" in r.message and "within 5 points of chance" in r.message for r in caplog.records)
