"""The networks of the width search (Tables 5, 6) behind one interface: build by name (through
`rarts.models.build_network`), prune to a thinner network, save and load (thin ones included).

A network here takes channel scores as an optional forward argument (`net(x, scores)`), lists
its prunable widths (`score_shapes`, `widths`) and the BNs Network Slimming thresholds
(`scaling_bns`).
"""

from __future__ import annotations

import importlib

import torch

from rarts.pipeline.io import save_torch
from rarts.models import build_network

# the module that prunes each network, imported on use: MobileNetV2's pulls in torchvision, two
# seconds of every search and training job that does not touch it
PRUNERS = {"preresnet": "rarts.models.preresnet", "mobilenetv2": "rarts.models.mobilenet"}


def build(name: str, num_classes: int, **kw) -> torch.nn.Module:
    """A prunable network; kw: `depth` for preresnet (9n+2), `width_mult` for mobilenetv2."""
    if name not in PRUNERS:
        raise ValueError(f"unknown width-search network {name!r}; choose from {sorted(PRUNERS)}")
    return build_network(name, None, num_classes, **kw)


def prune(name: str, model, masks, scores=None):
    return importlib.import_module(PRUNERS[name]).prune(model, masks, scores)


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
