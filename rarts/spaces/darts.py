"""The DARTS cell space (14 edges × 8 operations, normal and reduction α) over the search network
of `rarts.models.darts_search`: derivation by the official rule, the latency penalty of eq. (5)."""

from __future__ import annotations

import numpy as np
import torch

from rarts.models import genotypes
from rarts.models.darts_ops import PRIMITIVES
from rarts.models.darts_search import SearchNetwork
from rarts.spaces.penalties import LatencyPenalty
from rarts.spaces.base import SearchSpace


class DartsSearchSpace(SearchSpace):
    """The DARTS cell space: 14 edges × 8 operations, normal and reduction α."""

    name = "darts"
    arch_names = ("normal", "reduce")
    op_names = PRIMITIVES

    def __init__(self, init_channels=16, num_classes=10, layers=8, steps=4, multiplier=4):
        self.kw = dict(c=init_channels, num_classes=num_classes, layers=layers, steps=steps,
                       multiplier=multiplier)
        self.steps, self.multiplier = steps, multiplier
        self.num_edges = sum(2 + i for i in range(steps))

    @classmethod
    def from_settings(cls, hp: dict, num_classes: int) -> "DartsSearchSpace":
        return cls(init_channels=hp["init_channels"], num_classes=num_classes, layers=hp["layers"],
                   steps=hp["steps"], multiplier=hp["multiplier"])

    def build_network(self) -> SearchNetwork:
        return SearchNetwork(**self.kw)

    def init_arch(self, device="cpu") -> list[torch.Tensor]:
        """α_normal, α_reduce ~ 1e-3·N(0, 1), drawn from torch's global generator."""
        shape = (self.num_edges, len(PRIMITIVES))
        return [(1e-3 * torch.randn(*shape)).to(device).requires_grad_() for _ in range(2)]

    def derive(self, arch) -> genotypes.Genotype:
        wn, wr = self.edge_weights(arch)
        return genotypes.derive(wn, wr, self.steps, self.multiplier)

    def random_genotype(self, rng: np.random.Generator) -> genotypes.Genotype:
        return genotypes.random_genotype(rng, self.steps, self.multiplier)

    def edge_names(self) -> list[str]:
        return [f"{'c₋₂' if j == 0 else 'c₋₁' if j == 1 else j - 2}→{i}" for i in range(self.steps) for j in range(2 + i)]

    def skip_connections(self, genotype: genotypes.Genotype) -> int:
        return genotype.count("skip_connect")["normal"]  # the normal cell's: where DARTS collapses

    def summarize(self, genotype: genotypes.Genotype) -> dict:
        skips = genotype.count("skip_connect")
        return {"skip_connect_normal": skips["normal"], "skip_connect_reduce": skips["reduce"]}

    def draw(self, genotype: genotypes.Genotype, path, title: str) -> None:
        from rarts.drawing.cells import save_cell_figure  # matplotlib: imported when a search ends

        save_cell_figure(genotype, path, title)

    def arch_penalty(self, algo: str, hp: dict):
        """The latency term of eq. (5), for the algorithms the config names."""
        lat = hp.get("latency")
        if not lat or not lat["enabled"] or algo not in lat["algorithms"]:
            return None
        return LatencyPenalty.from_file(lat["table"], lat["weight"], self.arch_names)
