"""Width search: channel scores γ (one per prunable channel, F̃ = γ·F) play α's part, so RARTS,
DARTS-1/2 and MiLeNAS search widths through the same SearchLoop. The "genotype" is the set of kept
channels at a global pruning ratio (Network Slimming's threshold rule on |γ|)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rarts.models.preresnet import PreResNet
from rarts.pruning import global_masks, prc


@dataclass
class WidthGenotype:
    masks: list  # one bool tensor per prunable BN

    def to_json(self) -> dict:
        return {"keep": [m.nonzero().flatten().tolist() for m in self.masks],
                "widths": [int(m.sum()) for m in self.masks], "prc": prc(self.masks)}


class ResNetWidthSpace:
    name = "resnet_width"

    def __init__(self, depth=164, num_classes=10, prune_ratio=0.4):
        self.kw = dict(depth=depth, num_classes=num_classes, prune_ratio=prune_ratio)
        self.shapes = PreResNet(depth, num_classes).score_shapes()
        self.arch_names = tuple(f"bn{i:03d}" for i in range(len(self.shapes)))

    def build_network(self) -> PreResNet:
        return PreResNet(self.kw["depth"], self.kw["num_classes"])

    def init_arch(self, device="cpu") -> list[torch.Tensor]:
        """Every score starts at 1: the search starts from the unpruned network."""
        return [torch.ones(c, device=device, requires_grad=True) for c in self.shapes]

    def edge_weights(self, arch) -> list[np.ndarray]:
        return [a.detach().abs().cpu().numpy() for a in arch]

    def derive(self, arch) -> WidthGenotype:
        return WidthGenotype(global_masks([a.detach().cpu() for a in arch], self.kw["prune_ratio"]))

    def random_genotype(self, rng: np.random.Generator) -> WidthGenotype:
        return self.derive([torch.from_numpy(rng.random(c)) for c in self.shapes])

    def summarize(self, genotype: WidthGenotype) -> dict:
        return {"prc": genotype.to_json()["prc"]["overall"]}

    def draw(self, genotype: WidthGenotype, path, title: str) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from rarts.io import save_figure

        kept = [float(m.float().mean()) for m in genotype.masks]
        fig, ax = plt.subplots(figsize=(10, 3))
        ax.bar(range(len(kept)), kept, width=1.0)
        ax.set_xlabel("prunable layer (BN)")
        ax.set_ylabel("fraction of channels kept")
        ax.set_title(title, fontsize=9)
        save_figure(fig, path)
        plt.close(fig)
