"""The networks and their operations (the search networks included), and the registry: every network
the package trains, counts or times, by name, with the paper's size. `rarts params`, training and the
latency measurements all build through it; the search spaces (`rarts.spaces`) build on these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rarts.models import darts_eval
from rarts.models.darts_search import SearchNetwork
from rarts.models.genotypes import load_genotype
from rarts.models.nats import NatsCell, TinyNetwork
from rarts.models.preresnet import PreResNet


@dataclass(frozen=True)
class Network:
    build: Callable  # (arch, num_classes, **size) -> nn.Module
    size: dict  # the paper's size, in the config's key names
    num_classes: int  # the paper's
    resolution: int  # the paper's input side (FLOPs)
    arch: str = ""  # what the architecture argument is ("" = none)


def _search(arch, num_classes, init_channels, layers):
    return SearchNetwork(c=init_channels, num_classes=num_classes, layers=layers)


def _darts_eval(cls_name):
    def build(genotype, num_classes, init_channels, layers, auxiliary):
        return getattr(darts_eval, cls_name)(genotype, c=init_channels, num_classes=num_classes, layers=layers,
                                             auxiliary=auxiliary)
    return build


def _nats(cell, num_classes, init_channels, cells_per_stage):
    return TinyNetwork(c=init_channels, n=cells_per_stage, num_classes=num_classes, cell=cell)


def _preresnet(arch, num_classes, depth):
    return PreResNet(depth=depth, num_classes=num_classes)


def _mobilenetv2(arch, num_classes, width_mult):
    # imported when built: torchvision costs about two seconds of every job's start-up that needs none
    from rarts.models.mobilenet import ScoredMobileNetV2

    return ScoredMobileNetV2(num_classes=num_classes, width_mult=width_mult)


NETWORKS = {
    "search": Network(_search, {"init_channels": 16, "layers": 8}, 10, 32),
    "cifar": Network(_darts_eval("NetworkCIFAR"), {"init_channels": 36, "layers": 20, "auxiliary": True}, 10, 32,
                     "genotype"),
    "imagenet": Network(_darts_eval("NetworkImageNet"), {"init_channels": 48, "layers": 14, "auxiliary": True},
                        1000, 224, "genotype"),
    "nats": Network(_nats, {"init_channels": 16, "cells_per_stage": 5}, 10, 32, "cell"),
    "preresnet": Network(_preresnet, {"depth": 164}, 10, 32),
    "mobilenetv2": Network(_mobilenetv2, {"width_mult": 1.0}, 20, 224),
}


def load_arch(name: str, ref: str | None):
    """Network `name`'s architecture from its reference: a genotype (a published name, a JSON file
    or JSON) or a NATS-Bench arch string; None for networks that take none."""
    if NETWORKS[name].arch == "genotype":
        return load_genotype(ref)
    if NETWORKS[name].arch == "cell":
        if not ref:
            raise ValueError(f"network {name} needs a NATS-Bench arch string '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'")
        return NatsCell.from_str(ref)
    return None


def build_network(name: str, arch=None, num_classes: int | None = None, **size):
    """Network `name` at the paper's size, overridden by any of its size keys in `size` (others,
    e.g. a whole training config, are ignored)."""
    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; choose from {sorted(NETWORKS)}")
    net = NETWORKS[name]
    kw = {k: v if size.get(k) is None else size[k] for k, v in net.size.items()}
    return net.build(arch, net.num_classes if num_classes is None else num_classes, **kw)
