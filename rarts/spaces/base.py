"""What a search space supplies, so that searching, deriving, saving and drawing stay
space-agnostic: nothing outside `rarts.spaces` asks which space it has."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
import torch.nn.functional as F


class SearchSpace(ABC):
    """A space has a `name`, `arch_names` (one per architecture tensor), `kw` (what rebuilds it: its
    checkpoint fingerprint) and the three abstract methods a search needs (a space lacking one fails
    when it is built); the rest have defaults, which the pipeline's spaces override."""

    name, arch_names = "", ()
    op_names: tuple[str, ...] = ()  # the operations along each edge's α (what the history plots)

    @abstractmethod
    def build_network(self):
        """A network taking the architecture tensors as its forward argument."""

    @abstractmethod
    def init_arch(self, device="cpu") -> list:
        """The architecture tensors at the search's start (requiring grad)."""

    @abstractmethod
    def derive(self, arch):
        """The genotype the architecture says (with `to_json()` and `brief()`)."""

    @classmethod
    def from_settings(cls, hp: dict, num_classes: int) -> "SearchSpace":
        """The space of a config section (how the pipeline builds it; a library search builds its own)."""
        raise NotImplementedError(f"{cls.__name__} cannot be built from a config section: give it a "
                                  "from_settings(hp, num_classes) to run it from the pipeline")

    def random_genotype(self, rng: np.random.Generator):
        """A genotype drawn at random (the random baseline): by default the one that α drawn from a
        standard normal derives."""
        arch = [torch.from_numpy(rng.standard_normal(tuple(a.shape))).float() for a in self.init_arch()]
        return self.derive(arch)

    def summarize(self, genotype) -> dict:
        """A genotype's headline numbers (its search's meta); none by default."""
        return {}

    def draw(self, genotype, path, title: str) -> None:
        """The genotype as a figure: by default its `brief()` as text."""
        import matplotlib.pyplot as plt

        from rarts.pipeline.io import save_figure

        fig, ax = plt.subplots(figsize=(6, 1.6))
        ax.axis("off")
        ax.set_title(title, fontsize=10)
        ax.text(0.02, 0.5, str(genotype.brief()), fontsize=9, va="center", family="monospace", wrap=True)
        save_figure(fig, path)
        plt.close(fig)

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
