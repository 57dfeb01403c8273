"""The NATS-Bench topology space's networks ("tss", = NAS-Bench-201): a 4-node cell with 6 edges and 5
operations, the search network (TinyNetwork with α of shape 6×5) and the network of a fixed cell.
Semantics follow the benchmark's reference code (xautodl's `cell_operations`, `TinyNetwork`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch.nn as nn
import torch.nn.functional as F

from rarts.models.darts_ops import Identity, MixedOp, ReLUConvBN, Zero

NATS_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = tuple((i, j) for i in range(1, 4) for j in range(i))  # 1←0, 2←0, 2←1, 3←0, 3←1, 3←2


def make_op(name: str, c: int, affine: bool) -> nn.Module:
    """Cell ops: stride 1, equal channels (reductions happen in residual blocks)."""
    if name == "none":
        return Zero(1)
    if name == "skip_connect":
        return Identity()
    if name in ("nor_conv_1x1", "nor_conv_3x3"):  # the conv has a bias when the BN has none (search)
        k = int(name[-1])
        return ReLUConvBN(c, c, k, 1, k // 2, affine, bias=not affine)
    if name == "avg_pool_3x3":  # no BN after the pool in this space
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NATS-Bench op {name!r}; ops are {NATS_OPS}")


@dataclass(frozen=True)
class NatsCell:
    ops: tuple  # one op name per edge, in EDGES order
    edges = EDGES  # (i, j): node j feeds node i

    def arch_str(self) -> str:
        nodes, k = [], 0
        for i in range(1, 4):
            nodes.append("|" + "|".join(f"{self.ops[k + j]}~{j}" for j in range(i)) + "|")
            k += i
        return "+".join(nodes)

    @classmethod
    def from_str(cls, s: str) -> "NatsCell":
        nodes = s.strip().split("+")
        if len(nodes) != 3:
            raise ValueError(f"not a NATS-Bench topology string (3 nodes joined by '+'): {s!r}")
        ops = []
        for i, node in enumerate(nodes, start=1):
            items = [x for x in node.split("|") if x]
            if len(items) != i:
                raise ValueError(f"node {i} of {s!r} must have {i} inputs")
            for j, item in enumerate(items):
                m = re.fullmatch(r"(\w+)~(\d+)", item)
                if not m or int(m[2]) != j or m[1] not in NATS_OPS:
                    raise ValueError(f"bad edge {item!r} in {s!r}")
                ops.append(m[1])
        return cls(tuple(ops))

    def to_json(self) -> dict:
        return {"arch": self.arch_str(), "ops": list(self.ops)}

    brief = to_json

    @property
    def skip_ratio(self) -> float:
        return sum(o == "skip_connect" for o in self.ops) / len(self.ops)


class ResNetBasicBlock(nn.Module):
    """The reduction between stages: two 3×3 ReLUConvBN (stride 2 first), avg-pool + 1×1 shortcut."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        if stride == 2:
            self.downsample = nn.Sequential(nn.AvgPool2d(2, stride=2),
                                            nn.Conv2d(c_in, c_out, 1, bias=False))
        elif c_in != c_out:
            self.downsample = ReLUConvBN(c_in, c_out, 1, 1, 0)
        else:
            self.downsample = None

    def forward(self, x, *_):
        out = self.conv_b(self.conv_a(x))
        return out + (x if self.downsample is None else self.downsample(x))


class _Cell(nn.Module):
    """Node i sums op(node j) over j < i; the output is node 3. Fixed cells and mixed cells."""

    def __init__(self, c, make_edge):
        super().__init__()
        self.edges = nn.ModuleList(make_edge(e) for e in range(len(EDGES)))

    def forward(self, x, weights=None):
        nodes = [x]
        for i in range(1, 4):
            s = 0
            for e, (ti, j) in enumerate(EDGES):
                if ti == i:
                    s = s + (self.edges[e](nodes[j]) if weights is None else self.edges[e](nodes[j], weights[e]))
            nodes.append(s)
        return nodes[-1]


class TinyNetwork(nn.Module):
    """Stem, N cells at C, a residual reduction to 2C, N cells, to 4C, N cells, BN-ReLU, pool, FC.
    With `cell` None it is the search network (mixed ops, α passed to forward)."""

    def __init__(self, c=16, n=5, num_classes=10, cell: NatsCell | None = None):
        super().__init__()
        self.search = cell is None
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        channels = [c] * n + [2 * c] + [2 * c] * n + [4 * c] + [4 * c] * n
        reductions = [False] * n + [True] + [False] * n + [True] + [False] * n
        self.cells = nn.ModuleList()
        c_prev = c
        for c_curr, red in zip(channels, reductions):
            if red:
                self.cells.append(ResNetBasicBlock(c_prev, c_curr, 2))
            elif self.search:
                self.cells.append(_Cell(c_curr, lambda e, c_=c_curr: MixedOp([make_op(n, c_, False) for n in NATS_OPS])))
            else:
                self.cells.append(_Cell(c_curr, lambda e, c_=c_curr: make_op(cell.ops[e], c_, affine=True)))
            c_prev = c_curr
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x, arch=None):
        weights = F.softmax(arch[0], dim=-1) if self.search else None
        h = self.stem(x)
        for cell in self.cells:
            h = cell(h) if isinstance(cell, ResNetBasicBlock) or not self.search else cell(h, weights)
        return self.classifier(self.global_pooling(self.lastact(h)).flatten(1))
