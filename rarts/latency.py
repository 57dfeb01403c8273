"""The latency penalty of eqs. (5) and (8): weight · Σ_cells ⟨softmax(α), Lat⟩."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from rarts.io import read_json


class LatencyPenalty:
    """Callable on the architecture tensors; `tables` has one tensor shaped like each α."""

    def __init__(self, tables: list[torch.Tensor], weight: float):
        self.tables, self.weight = tables, float(weight)

    def __call__(self, arch) -> torch.Tensor:
        return self.weight * sum((F.softmax(a, dim=-1) * t.to(a.device)).sum()
                                 for a, t in zip(arch, self.tables))

    def expected_latency(self, arch) -> float:
        with torch.no_grad():
            return float(sum((F.softmax(a, dim=-1) * t.to(a.device)).sum()
                             for a, t in zip(arch, self.tables)))

    @classmethod
    def from_file(cls, path, weight: float, arch_names=("normal", "reduce")) -> "LatencyPenalty":
        table = read_json(Path(path))
        return cls([torch.tensor(table["lat"][n], dtype=torch.float32) for n in arch_names], weight)
