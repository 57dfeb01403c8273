"""Channel pruning decisions shared by Network Slimming and the width searches: which channels to
keep (`choose_masks`), the ratio pruned, NS's sparsity term and the ℓ1 penalty on scores."""

from __future__ import annotations

import numpy as np
import torch

from rarts.pipeline.names import PRUNING_RULES as RULES


def global_masks(scores: list[torch.Tensor], ratio: float) -> list[torch.Tensor]:
    """Network Slimming's rule, as its `resprune.py` computes it: the threshold is the sorted |scores|
    at index int(total · ratio), and a channel is kept when its |score| is strictly above it (so the
    channel at that index goes too, and every tie with it)."""
    flat = torch.cat([s.detach().abs().flatten() for s in scores])
    threshold = flat.sort().values[min(int(len(flat) * ratio), len(flat) - 1)]
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


def choose_masks(rule: str, scores, value: float = 0.0, like=None, seed: int = 0) -> list[torch.Tensor]:
    """The channels to keep, one bool vector per prunable layer, from one score per channel
    (searched channel scores, or BN scales for Network Slimming):

    ratio: the global `value` quantile of |score| is cut (Network Slimming's rule, Table 5);
    threshold: |score| > value is kept (ℓ1-penalised scores, the ratio is learned, Table 6);
    random: per layer, as many random channels as `like` (another run's masks) keeps;
    none: keep everything.
    A layer that would lose every channel keeps its strongest one, so the network stays
    connected (Network Slimming's code fails there instead).
    """
    scores = [s.detach().cpu() for s in scores]
    if rule == "ratio":
        masks = global_masks(scores, value)
    elif rule == "threshold":
        masks = threshold_masks(scores, value)
    elif rule == "random":
        rng = np.random.default_rng(seed)
        masks = []
        for s, ref in zip(scores, like):
            keep = torch.zeros(len(s), dtype=torch.bool)
            keep[torch.from_numpy(rng.choice(len(s), size=int(ref.sum()), replace=False))] = True
            masks.append(keep)
    elif rule == "none":
        masks = [torch.ones(len(s), dtype=torch.bool) for s in scores]
    else:
        raise ValueError(f"unknown pruning rule {rule!r}; choose from {RULES}")
    return [m if m.any() else _strongest(s) for m, s in zip(masks, scores)]


def _strongest(scores: torch.Tensor) -> torch.Tensor:
    keep = torch.zeros(len(scores), dtype=torch.bool)
    keep[scores.abs().argmax()] = True
    return keep
