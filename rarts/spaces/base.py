"""What a search space supplies, so that searching, deriving, saving and drawing stay
space-agnostic: nothing outside `rarts.spaces` asks which space it has."""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F


class SearchSpace:
    """A space has a `name`, `arch_names` (one per architecture tensor), `kw` (what rebuilds it: its
    checkpoint fingerprint) and: `from_settings(hp, num_classes)` (a classmethod: the space of a
    config section), `build_network()` (a network taking the architecture tensors as its forward
    argument), `init_arch(device)`, `derive(arch)` (a genotype with `to_json()` and `brief()`),
    `random_genotype(rng)`, `summarize(genotype)` (its headline numbers) and
    `draw(genotype, path, title)`; the methods below are the defaults."""

    name, arch_names = "", ()
    op_names: tuple[str, ...] = ()  # the operations along each edge's α (what the history plots)

    def edge_names(self) -> list[str]:
        """A label per row of an α tensor ("j→i": node j feeds node i); none for other spaces."""
        return []

    def skip_connections(self, genotype) -> int | None:
        """Skip connections in the derived cell (the collapse the paper argues about), or None."""
        return None

    def edge_weights(self, arch) -> list[np.ndarray]:
        """What the history records of α each epoch: softmax over each edge's operations."""
        return [F.softmax(a.detach(), dim=-1).cpu().numpy() for a in arch]

    def arch_penalty(self, algo: str, hp: dict):
        """A term added to the architecture objective (callable on α, with `record(α)`), or None."""
        return None

    def save_searched(self, path, net, arch) -> None:
        """Whatever a later stage needs beyond genotype.json (a width search's network)."""
