"""The search split: the training set cut into disjoint halves D_t (weights) and D_v (α)."""

from __future__ import annotations

import numpy as np

from rarts.io import read_json, write_json


def make_split(n: int, seed: int, portion: float = 0.5) -> dict:
    perm = np.random.default_rng(seed).permutation(n)
    cut = int(np.floor(portion * n))
    return {"n": n, "seed": seed, "portion": portion,
            "train": sorted(perm[:cut].tolist()), "val": sorted(perm[cut:].tolist())}


def write_split(path, dataset: str, n: int, seed: int, portion: float = 0.5) -> dict:
    split = {"dataset": dataset, **make_split(n, seed, portion)}
    write_json(path, split)
    return split


def read_split(path) -> dict:
    split = read_json(path)
    if set(split["train"]) & set(split["val"]):
        raise ValueError(f"{path}: D_t and D_v overlap")
    return split
