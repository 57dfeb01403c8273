"""DARTS evaluation networks (official `model.py`): CIFAR (C=36, 20 cells) and ImageNet mobile
(C=48, 14 cells), built from any genotype, with auxiliary heads and drop path."""

from __future__ import annotations

import torch
import torch.nn as nn

from rarts.models.darts_ops import OPS, FactorizedReduce, Identity, ReLUConvBN, is_reduction


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples of a branch with probability `drop_prob`, rescaling the rest."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = x.new_empty(x.size(0), 1, 1, 1).bernoulli_(keep)
    return x / keep * mask


class EvalCell(nn.Module):
    def __init__(self, genotype, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.reduction = reduction
        self.preprocess0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0)
        ops, concat = (genotype.reduce, genotype.reduce_concat) if reduction else \
            (genotype.normal, genotype.normal_concat)
        self.steps, self.concat, self.multiplier = len(ops) // 2, list(concat), len(concat)
        self.indices = [j for _, j in ops]
        self.ops = nn.ModuleList(OPS[name](c, 2 if reduction and j < 2 else 1, True)
                                 for name, j in ops)

    def forward(self, s0, s1, drop_prob: float):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(self.steps):
            s = 0
            for k in (2 * i, 2 * i + 1):
                h = self.ops[k](states[self.indices[k]])
                if self.training and drop_prob > 0 and not isinstance(self.ops[k], Identity):
                    h = drop_path(h, drop_prob)  # never on identity ops
                s = s + h
            states.append(s)
        return torch.cat([states[i] for i in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """Official CIFAR (pool stride 3, BN after the 2×2 conv) and ImageNet (stride 2, no BN)
    heads. On inputs smaller than the 5×5 pooling window (tiny stand-in images only) the pooling
    becomes adaptive to 2×2; parameters are the same."""

    def __init__(self, c, num_classes, imagenet: bool):
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=2 if imagenet else 3, padding=0, count_include_pad=False)
        self.small_pool = nn.AdaptiveAvgPool2d(2)
        tail = [nn.ReLU(inplace=True)] if imagenet else [nn.BatchNorm2d(768), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(
            nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), *tail)
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        x = nn.functional.relu(x)
        x = self.pool(x) if min(x.shape[-2:]) >= 5 else self.small_pool(x)
        return self.classifier(self.features(x).flatten(1))


class _EvalNetwork(nn.Module):
    def _build_cells(self, genotype, c, layers, c_pp, c_p, reduction_prev, num_classes, auxiliary,
                     imagenet):
        self.layers, self.drop_path_prob = layers, 0.0
        self.cells = nn.ModuleList()
        c_curr, c_aux = c, None
        for i in range(layers):
            reduction = is_reduction(i, layers)
            if reduction:
                c_curr *= 2
            cell = EvalCell(genotype, c_pp, c_p, c_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, cell.multiplier * c_curr
            if i == 2 * layers // 3:
                c_aux = c_p
        self.auxiliary_head = AuxiliaryHead(c_aux, num_classes, imagenet) if auxiliary else None
        self.global_pooling = nn.AdaptiveAvgPool2d(1)  # = AvgPool2d(7) at 224×224 ImageNet
        self.classifier = nn.Linear(c_p, num_classes)

    def _cells_forward(self, s0, s1):
        logits_aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == 2 * self.layers // 3 and self.auxiliary_head is not None and self.training:
                logits_aux = self.auxiliary_head(s1)
        return self.classifier(self.global_pooling(s1).flatten(1)), logits_aux


class NetworkCIFAR(_EvalNetwork):
    def __init__(self, genotype, c=36, num_classes=10, layers=20, auxiliary=True):
        super().__init__()
        c_stem = 3 * c
        self.stem = nn.Sequential(nn.Conv2d(3, c_stem, 3, padding=1, bias=False), nn.BatchNorm2d(c_stem))
        self._build_cells(genotype, c, layers, c_stem, c_stem, False, num_classes, auxiliary, False)

    def forward(self, x):
        s = self.stem(x)
        return self._cells_forward(s, s)


class NetworkImageNet(_EvalNetwork):
    def __init__(self, genotype, c=48, num_classes=1000, layers=14, auxiliary=True):
        super().__init__()
        self.stem0 = nn.Sequential(
            nn.Conv2d(3, c // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c // 2),
            nn.ReLU(inplace=True), nn.Conv2d(c // 2, c, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(c))
        self.stem1 = nn.Sequential(nn.ReLU(inplace=True),
                                   nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c))
        self._build_cells(genotype, c, layers, c, c, True, num_classes, auxiliary, True)

    def forward(self, x):
        s0 = self.stem0(x)
        return self._cells_forward(s0, self.stem1(s0))
