"""DARTS-space genotypes: derivation from α, random sampling, JSON, the published cells."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from rarts.pipeline.errors import InputError, MissingFile
from rarts.pipeline.io import read_json, require
from rarts.models.darts_ops import PRIMITIVES


class Genotype(NamedTuple):
    normal: list  # [(op, input), ...], two per intermediate node
    normal_concat: list
    reduce: list
    reduce_concat: list

    def to_json(self) -> dict:
        return {"normal": [list(e) for e in self.normal], "normal_concat": list(self.normal_concat),
                "reduce": [list(e) for e in self.reduce], "reduce_concat": list(self.reduce_concat)}

    brief = to_json  # what the per-epoch history keeps

    @classmethod
    def from_json(cls, d: dict) -> "Genotype":
        return cls([tuple(e) for e in d["normal"]], list(d["normal_concat"]),
                   [tuple(e) for e in d["reduce"]], list(d["reduce_concat"]))

    def count(self, op: str) -> dict:
        return {"normal": sum(o == op for o, _ in self.normal),
                "reduce": sum(o == op for o, _ in self.reduce)}


DARTS_V1 = Genotype(
    normal=[("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 0), ("sep_conv_3x3", 1),
            ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("skip_connect", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 0),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("avg_pool_3x3", 0)],
    reduce_concat=[2, 3, 4, 5])

DARTS_V2 = Genotype(
    normal=[("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1), ("skip_connect", 0), ("skip_connect", 0), ("dil_conv_3x3", 2)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("max_pool_3x3", 1), ("skip_connect", 2), ("max_pool_3x3", 1),
            ("max_pool_3x3", 0), ("skip_connect", 2), ("skip_connect", 2), ("max_pool_3x3", 1)],
    reduce_concat=[2, 3, 4, 5])

PUBLISHED = {"DARTS_V1": DARTS_V1, "DARTS_V2": DARTS_V2}


def derive_cell(weights: np.ndarray, steps: int = 4) -> list:
    """Official DARTS `_parse`: per node keep the 2 edges with the strongest non-`none` op.

    `weights` is softmax(α) of shape (edges, ops). Python's sort is stable, so ties keep the
    lower input index; the best op on an edge is the first maximum (strict `>`).
    """
    none = PRIMITIVES.index("none")
    gene, start = [], 0
    for i in range(steps):
        n_in = i + 2
        w = weights[start:start + n_in]
        strength = [max(w[j][k] for k in range(len(w[j])) if k != none) for j in range(n_in)]
        edges = sorted(range(n_in), key=lambda j: -strength[j])[:2]
        for j in edges:
            k_best = None
            for k in range(len(w[j])):
                if k != none and (k_best is None or w[j][k] > w[j][k_best]):
                    k_best = k
            gene.append((PRIMITIVES[k_best], j))
        start += n_in
    return gene


def derive(weights_normal: np.ndarray, weights_reduce: np.ndarray, steps: int = 4,
           multiplier: int = 4) -> Genotype:
    concat = list(range(2 + steps - multiplier, steps + 2))
    return Genotype(derive_cell(weights_normal, steps), concat,
                    derive_cell(weights_reduce, steps), concat)


def random_genotype(rng: np.random.Generator, steps: int = 4, multiplier: int = 4) -> Genotype:
    """The paper's random baseline: per node two distinct inputs, each with a uniform non-`none` op."""
    ops = [p for p in PRIMITIVES if p != "none"]

    def cell():
        gene = []
        for i in range(steps):
            for j in sorted(rng.choice(i + 2, size=2, replace=False).tolist()):
                gene.append((ops[int(rng.integers(len(ops)))], int(j)))
        return gene

    concat = list(range(2 + steps - multiplier, steps + 2))
    return Genotype(cell(), concat, cell(), concat)


def load_genotype(name_or_path: str) -> Genotype:
    """A published genotype by name (DARTS_V1, DARTS_V2), a JSON file, or inline JSON."""
    if name_or_path in PUBLISHED:
        return PUBLISHED[name_or_path]
    if name_or_path.lstrip().startswith("{"):
        where = "the inline genotype"
        try:
            obj = json.loads(name_or_path)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where} is not valid JSON ({exc.msg}, column {exc.colno})") from None
    else:
        where = name_or_path
        if not Path(name_or_path).exists():
            raise MissingFile(f"no genotype named {name_or_path!r} (known: {sorted(PUBLISHED)}) and no such JSON file")
        obj = read_json(name_or_path)
    require(obj, ("normal", "normal_concat", "reduce", "reduce_concat"), where)
    for cell in ("normal", "reduce"):
        for edge in obj[cell] if isinstance(obj[cell], list) else [obj[cell]]:
            if not (isinstance(edge, list) and len(edge) == 2 and isinstance(edge[0], str) and isinstance(edge[1], int)):
                raise InputError(f"{where}: the {cell} cell's edge {edge!r} is not an [operation, input] pair")
            if edge[0] not in PRIMITIVES:
                raise InputError(f"{where}: unknown operation {edge[0]!r} in the {cell} cell (known: {', '.join(PRIMITIVES)})")
    return Genotype.from_json(obj)
