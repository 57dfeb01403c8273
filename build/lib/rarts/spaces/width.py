"""Width search: channel scores γ (one per prunable channel, F̃ = γ·F) play α's part, so RARTS,
DARTS-1/2 and MiLeNAS search widths through the same SearchLoop. The "genotype" is the set of kept
channels, by a global ratio on |γ| (Table 5) or a threshold on the ℓ1-penalised |γ| (Table 6)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rarts.models import build_network, prunable
from rarts.spaces.penalties import L1Penalty
from rarts.models.pruning import choose_masks, prc
from rarts.spaces.base import SearchSpace


@dataclass
class WidthGenotype:
    masks: list  # one bool tensor per prunable layer

    def to_json(self) -> dict:
        return {"keep": [m.nonzero().flatten().tolist() for m in self.masks], **self.brief()}

    def brief(self) -> dict:
        """What the per-epoch history keeps (the full channel lists would swamp it)."""
        return {"widths": [int(m.sum()) for m in self.masks], "prc": prc(self.masks)}

    @classmethod
    def from_json(cls, obj: dict, shapes: list[int]) -> "WidthGenotype":
        masks = []
        for c, keep in zip(shapes, obj["keep"]):
            m = torch.zeros(c, dtype=torch.bool)
            m[torch.tensor(keep, dtype=torch.long)] = True
            masks.append(m)
        return cls(masks)


class WidthSpace(SearchSpace):
    """net: a prunable network's name (`rarts.models.prunable`); net_kw: its size (depth /
    width_mult); prune: {"rule": "ratio", "value": ratio} or {"rule": "threshold", "value": eps}."""

    name = "width"

    def __init__(self, net="preresnet", num_classes=10, net_kw=None, prune=None):
        self.kw = dict(net=net, num_classes=num_classes, net_kw=dict(net_kw or {}),
                       prune=dict(prune or {"rule": "ratio", "value": 0.4}))
        self.shapes = self.build_network().score_shapes()
        self.arch_names = ("mean_abs_score",)  # the history's α record: one row per layer

    @classmethod
    def from_settings(cls, hp: dict, num_classes: int) -> "WidthSpace":
        return cls(net=hp["net"]["name"], num_classes=num_classes, net_kw=hp["net"]["kw"], prune=hp["prune"])

    def build_network(self):
        return build_network(self.kw["net"], None, self.kw["num_classes"], **self.kw["net_kw"])

    def init_arch(self, device="cpu") -> list[torch.Tensor]:
        """Every score starts at 1: the search starts from the unpruned network."""
        return [torch.ones(c, device=device, requires_grad=True) for c in self.shapes]

    def edge_weights(self, arch) -> list[np.ndarray]:
        """The mean |score| of each layer, as one (layers, 1) array (the history's α record; the
        per-channel scores are in the search's searched.pt)."""
        return [np.array([[a.detach().abs().mean().item()] for a in arch])]

    def derive(self, arch) -> WidthGenotype:
        rule = self.kw["prune"]
        return WidthGenotype(choose_masks(rule["rule"], arch, rule["value"]))

    def arch_penalty(self, algo: str, hp: dict):
        """The ℓ1 penalty on the scores (Table 6: the pruning ratio is learned), if configured."""
        return L1Penalty(hp["l1"]) if hp.get("l1") else None

    def save_searched(self, path, net, arch) -> None:
        """The searched network (weights trained on D_t) with its scores, for pruning later."""
        prunable.save(path, self.kw["net"], self.kw["num_classes"], self.kw["net_kw"], net, scores=arch)

    def random_genotype(self, rng: np.random.Generator) -> WidthGenotype:
        return self.derive([torch.from_numpy(rng.random(c)) for c in self.shapes])

    def summarize(self, genotype: WidthGenotype) -> dict:
        p = genotype.brief()["prc"]
        return {"prc": p["overall"], "prc_mean_over_pruned_layers": p["mean_over_pruned_layers"]}

    def draw(self, genotype: WidthGenotype, path, title: str) -> None:
        from rarts.drawing.cells import save_width_figure  # matplotlib: imported when a search ends

        save_width_figure([float(m.float().mean()) for m in genotype.masks], path, title)
