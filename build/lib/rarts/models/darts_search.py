"""The DARTS search network (official `model_search.py`), taking α as a forward argument.

α lives outside the module (the weight optimizer never sees it), which lets RARTS run two
weight copies over one shared α and DARTS-2 evaluate virtual weights with `functional_call`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from rarts.models.darts_ops import OPS, PRIMITIVES, FactorizedReduce, MixedOp, ReLUConvBN, is_reduction


def search_op(name: str, c: int, stride: int) -> nn.Module:
    """A candidate op as the search cell holds it: BN-free affine, pools followed by a BN."""
    op = OPS[name](c, stride, False)
    return nn.Sequential(op, nn.BatchNorm2d(c, affine=False)) if "pool" in name else op


class SearchCell(nn.Module):
    def __init__(self, steps, multiplier, c_pp, c_p, c, reduction, reduction_prev):
        super().__init__()
        self.reduction, self.steps, self.multiplier = reduction, steps, multiplier
        self.preprocess0 = (FactorizedReduce(c_pp, c, affine=False) if reduction_prev
                            else ReLUConvBN(c_pp, c, 1, 1, 0, affine=False))
        self.preprocess1 = ReLUConvBN(c_p, c, 1, 1, 0, affine=False)
        self.ops = nn.ModuleList()
        for i in range(steps):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                self.ops.append(MixedOp([search_op(name, c, stride) for name in PRIMITIVES], stride))

    def forward(self, s0, s1, weights):
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        offset = 0
        for _ in range(self.steps):
            s = sum(self.ops[offset + j](h, weights[offset + j]) for j, h in enumerate(states))
            offset += len(states)
            states.append(s)
        return torch.cat(states[-self.multiplier:], dim=1)


class SearchNetwork(nn.Module):
    def __init__(self, c=16, num_classes=10, layers=8, steps=4, multiplier=4, stem_multiplier=3):
        super().__init__()
        c_curr = stem_multiplier * c
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, c
        self.cells = nn.ModuleList()
        reduction_prev = False
        for i in range(layers):
            reduction = is_reduction(i, layers)
            if reduction:
                c_curr *= 2
            self.cells.append(SearchCell(steps, multiplier, c_pp, c_p, c_curr, reduction,
                                         reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, multiplier * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x, arch):
        alpha_normal, alpha_reduce = arch
        w_normal = F.softmax(alpha_normal, dim=-1)
        w_reduce = F.softmax(alpha_reduce, dim=-1)
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1, w_reduce if cell.reduction else w_normal)
        return self.classifier(self.global_pooling(s1).flatten(1))
