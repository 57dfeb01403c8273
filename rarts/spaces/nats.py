"""The NATS-Bench topology space over the networks of `rarts.models.nats`: α of shape (6, 5), the cell
the argmax per edge (`none` allowed)."""

from __future__ import annotations

import numpy as np
import torch

from rarts.models.nats import EDGES, NATS_OPS, NatsCell, TinyNetwork
from rarts.spaces.base import SearchSpace


class NatsSearchSpace(SearchSpace):
    """α of shape (6, 5); the cell is the argmax per edge, `none` allowed."""

    name = "nats"
    arch_names = ("cell",)
    op_names = NATS_OPS

    def __init__(self, init_channels=16, num_classes=10, cells_per_stage=5):
        self.kw = dict(c=init_channels, n=cells_per_stage, num_classes=num_classes)

    @classmethod
    def from_settings(cls, hp: dict, num_classes: int) -> "NatsSearchSpace":
        return cls(init_channels=hp["init_channels"], num_classes=num_classes,
                   cells_per_stage=hp["cells_per_stage"])

    def build_network(self) -> TinyNetwork:
        return TinyNetwork(**self.kw)

    def init_arch(self, device="cpu") -> list[torch.Tensor]:
        return [(1e-3 * torch.randn(len(EDGES), len(NATS_OPS))).to(device).requires_grad_()]

    def derive(self, arch) -> NatsCell:
        w = self.edge_weights(arch)[0]
        return NatsCell(tuple(NATS_OPS[int(k)] for k in w.argmax(axis=1)))  # first max on ties

    def random_genotype(self, rng: np.random.Generator) -> NatsCell:
        return NatsCell(tuple(NATS_OPS[int(k)] for k in rng.integers(len(NATS_OPS), size=len(EDGES))))

    def edge_names(self) -> list[str]:
        return [f"{j}→{i}" for i, j in EDGES]

    def skip_connections(self, cell: NatsCell) -> int:
        return cell.ops.count("skip_connect")

    def summarize(self, cell: NatsCell) -> dict:
        return {"arch": cell.arch_str(), "skip_ratio": cell.skip_ratio}

    def draw(self, cell: NatsCell, path, title: str) -> None:
        from rarts.drawing.cells import save_nats_cell_figure  # matplotlib: imported when a search ends

        save_nats_cell_figure(cell, path, title)
