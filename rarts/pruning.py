"""Channel pruning decisions shared by Network Slimming and the width searches."""

from __future__ import annotations

import torch


def global_masks(scores: list[torch.Tensor], ratio: float) -> list[torch.Tensor]:
    """Network Slimming's rule: one threshold at the `ratio` quantile of all |scores|; a channel is
    kept when its |score| is strictly above it."""
    flat = torch.cat([s.detach().abs().flatten() for s in scores])
    k = int(len(flat) * ratio)
    threshold = flat.sort().values[k - 1] if k > 0 else flat.min() - 1
    return [s.detach().abs() > threshold for s in scores]


def threshold_masks(scores: list[torch.Tensor], eps: float) -> list[torch.Tensor]:
    """The learned-ratio rule (ℓ1-penalised scores): prune channels whose |score| ≤ eps."""
    return [s.detach().abs() > eps for s in scores]


def prc(masks: list[torch.Tensor]) -> dict:
    """Channel pruning ratio: overall, and averaged over the layers that lost channels."""
    removed = [1 - m.float().mean().item() for m in masks]
    pruned_layers = [r for r in removed if r > 0]
    total = sum(len(m) for m in masks)
    return {"overall": 1 - sum(int(m.sum()) for m in masks) / total,
            "mean_over_pruned_layers": sum(pruned_layers) / len(pruned_layers) if pruned_layers else 0.0}


def bn_sparsity_hook(s: float):
    """Network Slimming's sparsity training: add s·sign(γ) to every BN scale gradient."""
    def hook(model):
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d) and m.weight is not None and m.weight.grad is not None:
                m.weight.grad.add_(torch.sign(m.weight.detach()), alpha=s)
    return hook


class L1Penalty:
    """weight · Σ|γ| over every channel score (Table 6: no fixed ratio, the ratio is learned)."""

    def __init__(self, weight: float):
        self.weight = weight

    def __call__(self, arch) -> torch.Tensor:
        return self.weight * sum(a.abs().sum() for a in arch)
