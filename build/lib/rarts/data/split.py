"""The search split: which images train the weights (D_t) and which train α (D_v).

`halves`: the training set cut at random into disjoint halves (the DARTS protocol).
`nats-bench`: NATS-Bench's fixed splits (its search code's index lists, shipped in
`nats_bench_splits/`): CIFAR-10 searches on two fixed halves of the training set; CIFAR-100 trains
the weights on the whole training set and α on a fixed half (`xvalid`) of the test set.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rarts.pipeline.io import read_json, require, write_json
from rarts.pipeline.names import IMAGES, NATS_BENCH_TRAIN

NATS_BENCH_SIZES = {ds: IMAGES[ds] for ds in ("cifar10", "cifar100")}  # (train, test)
STANDIN_SEED = 0  # the stand-ins' fixed draw in place of NATS-Bench's fixed lists


def make_split(n: int, seed: int, portion: float = 0.5) -> dict:
    perm = np.random.default_rng(seed).permutation(n)
    cut = int(np.floor(portion * n))
    return {"protocol": "halves", "n": n, "seed": seed, "portion": portion, "val_from": "train",
            "train": sorted(perm[:cut].tolist()), "val": sorted(perm[cut:].tolist())}


def nats_bench_split(dataset: str, n_train: int, n_test: int, standin: bool) -> dict:
    """NATS-Bench's split of `dataset`. A stand-in (of other sizes) gets the same rule with a
    fixed draw: two halves of its training set (CIFAR-10), or all of it for the weights and half
    of its test set for α (CIFAR-100)."""
    if dataset not in NATS_BENCH_SIZES:
        raise ValueError(f"NATS-Bench has no search split for {dataset!r}; use split: halves")
    if not standin and (n_train, n_test) != NATS_BENCH_SIZES[dataset]:
        raise ValueError(f"{dataset} has {n_train} training and {n_test} test images; NATS-Bench's split "
                         f"is for {NATS_BENCH_SIZES[dataset]}")
    base = {"protocol": "nats-bench", "n": n_train, "n_test": n_test}
    if dataset == "cifar10":
        lists = _nats_lists("cifar10-search-split.json") if not standin else make_split(n_train, STANDIN_SEED)
        split = {**base, "val_from": "train", "train": sorted(lists["train"]),
                 "val": sorted(lists["valid" if not standin else "val"])}
    else:
        xvalid = _nats_lists("cifar100-test-split.json")["xvalid"] if not standin \
            else make_split(n_test, STANDIN_SEED)["train"]
        split = {**base, "val_from": "test", "train": list(range(n_train)), "val": sorted(xvalid)}
    if not standin and len(split["train"]) != NATS_BENCH_TRAIN[dataset]:  # what rarts plan prices a search at
        raise ValueError(f"NATS-Bench's {dataset} split trains the weights on {len(split['train'])} images, "
                         f"not {NATS_BENCH_TRAIN[dataset]} (rarts.pipeline.names.NATS_BENCH_TRAIN)")
    return split


def _nats_lists(name: str) -> dict:
    return json.loads((Path(__file__).with_name("nats_bench_splits") / name).read_text())


def write_split(path, dataset: str, n: int, seed: int, portion: float = 0.5) -> dict:
    split = {"dataset": dataset, **make_split(n, seed, portion)}
    write_json(path, split)
    return split


def read_split(path) -> dict:
    split = read_json(path)
    require(split, ("train", "val"), str(path))
    if split.get("val_from", "train") == "train" and set(split["train"]) & set(split["val"]):
        raise ValueError(f"{path}: D_t and D_v overlap")
    return split
