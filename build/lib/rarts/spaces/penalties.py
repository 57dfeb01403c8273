"""Terms added to the architecture objective: the latency penalty of eqs. (5) and (8) on α, and the ℓ1
penalty on channel scores (Table 6). Each is callable on the architecture tensors and tells the
search history what to record of it (`record`)."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from rarts.pipeline.io import read_json


class LatencyPenalty:
    """Callable on the architecture tensors; `tables` has one tensor shaped like each α."""

    def __init__(self, tables: list[torch.Tensor], weight: float):
        self.tables, self.weight = tables, float(weight)

    def _expected(self, arch) -> torch.Tensor:
        if self.tables[0].device != arch[0].device:  # moved once, not on every α step
            self.tables = [t.to(arch[0].device) for t in self.tables]
        return sum((F.softmax(a, dim=-1) * t).sum() for a, t in zip(arch, self.tables))

    def __call__(self, arch) -> torch.Tensor:
        return self.weight * self._expected(arch)

    def expected_latency(self, arch) -> float:
        with torch.no_grad():
            return float(self._expected(arch))

    def identity(self) -> dict:
        """What the penalty computes from, for a search's checkpoint fingerprint: the table's values (a
        table measured anew at the same path must not resume a search made with the old one)."""
        return {"lat": [t.tolist() for t in self.tables], "weight": self.weight}

    def record(self, arch) -> dict:
        """For the search history: the expected latency ⟨softmax(α), Lat⟩ in ms."""
        return {"expected_latency": self.expected_latency(arch)}

    @classmethod
    def from_file(cls, path, weight: float, arch_names=("normal", "reduce")) -> "LatencyPenalty":
        table = read_json(Path(path))
        return cls([torch.tensor(table["lat"][n], dtype=torch.float32) for n in arch_names], weight)


class L1Penalty:
    """weight · Σ|γ| over every channel score (Table 6: no fixed ratio, the ratio is learned)."""

    def __init__(self, weight: float):
        self.weight = weight

    def __call__(self, arch) -> torch.Tensor:
        return self.weight * sum(a.abs().sum() for a in arch)

    def record(self, arch) -> dict:
        return {}  # nothing for the history beyond the scores themselves
