"""What a search space supplies, so that searching, deriving, saving and drawing stay
space-agnostic: nothing outside `rarts.spaces` asks which space it has."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch.nn.functional as F


class SearchSpace(ABC):
    """A space has a `name`, `arch_names` (one per architecture tensor), `kw` (what rebuilds it: its
    checkpoint fingerprint), the abstract methods below (a space lacking one fails when it is
    built) and the defaults after them."""

    name, arch_names = "", ()
    op_names: tuple[str, ...] = ()  # the operations along each edge's α (what the history plots)

    @classmethod
    @abstractmethod
    def from_settings(cls, hp: dict, num_classes: int) -> "SearchSpace":
        """The space of a config section."""

    @abstractmethod
    def build_network(self):
        """A network taking the architecture tensors as its forward argument."""

    @abstractmethod
    def init_arch(self, device="cpu") -> list:
        """The architecture tensors at the search's start (requiring grad)."""

    @abstractmethod
    def derive(self, arch):
        """The genotype the architecture says (with `to_json()` and `brief()`)."""

    @abstractmethod
    def random_genotype(self, rng: np.random.Generator):
        """A genotype drawn at random (the random baseline)."""

    @abstractmethod
    def summarize(self, genotype) -> dict:
        """A genotype's headline numbers (its search's meta)."""

    @abstractmethod
    def draw(self, genotype, path, title: str) -> None:
        """The genotype as a figure, through `rarts.figures`."""

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
