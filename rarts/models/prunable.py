"""The networks of the width search (Tables 5, 6) behind one interface: build by name, prune to a
thinner network, save and load (thin ones included), and the pruning rules that pick channels.

A network here takes channel scores as an optional forward argument (`net(x, scores)`), lists
its prunable widths (`score_shapes`, `widths`) and the BNs Network Slimming thresholds
(`scaling_bns`).
"""

from __future__ import annotations

import numpy as np
import torch

from rarts.io import save_torch
from rarts.models import mobilenet, preresnet
from rarts.pruning import global_masks, threshold_masks

NETS = {"preresnet": preresnet.PreResNet, "mobilenetv2": mobilenet.ScoredMobileNetV2}
PRUNERS = {"preresnet": preresnet.prune, "mobilenetv2": mobilenet.prune}
RULES = ("ratio", "threshold", "random", "none")


def build(name: str, num_classes: int, **kw) -> torch.nn.Module:
    """kw: `depth` for preresnet (9n+2), `width_mult` for mobilenetv2."""
    if name not in NETS:
        raise ValueError(f"unknown width-search network {name!r}; choose from {sorted(NETS)}")
    return NETS[name](num_classes=num_classes, **kw)


def prune(name: str, model, masks, scores=None):
    return PRUNERS[name](model, masks, scores)


def _thin_skeleton(name: str, num_classes: int, kw: dict, widths: list[int]):
    """An untrained network with these widths (kept channels per prunable layer): the full
    network pruned to its first channels; the saved weights and channel indices go over it."""
    full = build(name, num_classes, **kw)
    return prune(name, full, [torch.arange(c) < w for c, w in zip(full.score_shapes(), widths)])


def save(path, name: str, num_classes: int, kw: dict, model, scores=None) -> None:
    """Atomically: what `load` needs to rebuild `model` (thin or not), and optional scores."""
    save_torch(path, {"net": name, "num_classes": num_classes, "kw": kw, "widths": model.widths(),
                      "state": model.state_dict(),
                      "scores": None if scores is None else [s.detach().cpu() for s in scores]})


def load(path) -> tuple[torch.nn.Module, dict]:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    model = _thin_skeleton(saved["net"], saved["num_classes"], saved["kw"], saved["widths"])
    model.load_state_dict(saved["state"])
    return model, saved


def bn_scales(model) -> list[torch.Tensor]:
    """Network Slimming's channel scores: the scales of the BNs on the prunable channels."""
    return [bn.weight.detach().cpu() for bn in model.scaling_bns()]


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
