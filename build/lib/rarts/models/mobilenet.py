"""MobileNetV2 (torchvision's architecture) with channel scores on the expansion (hidden)
channels of its inverted-residual blocks, and real pruning of those channels.

The score of hidden channel k multiplies that channel after the depthwise stage (the last point
before the linear projection), so a zero score removes the channel entirely; pruning slices the
expansion conv, both BNs and the depthwise conv, and folds the kept scores into the projection
conv (ReLU6 clips, so they cannot go into the BN before it)."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
from torchvision.models import mobilenet_v2
from torchvision.models.mobilenetv2 import InvertedResidual


def scored_blocks(model) -> list[InvertedResidual]:
    """The inverted residuals that expand (torchvision's first block has expand ratio 1)."""
    return [m for m in model.features if isinstance(m, InvertedResidual) and len(m.conv) == 4]


class ScoredMobileNetV2(nn.Module):
    def __init__(self, num_classes=20, width_mult=1.0):
        super().__init__()
        self.net = mobilenet_v2(num_classes=num_classes, width_mult=width_mult)

    def score_shapes(self) -> list[int]:
        return [b.conv[1][0].out_channels for b in scored_blocks(self.net)]

    def widths(self) -> list[int]:
        """Hidden width of each expanding block: with the class count and width multiplier, all
        a rebuild needs."""
        return self.score_shapes()

    def scaling_bns(self) -> list[nn.BatchNorm2d]:
        """The BN after each depthwise conv: its scale is the hidden channel's own scale factor."""
        return [b.conv[1][1] for b in scored_blocks(self.net)]

    def forward(self, x, arch=None):
        scores = iter(arch) if arch is not None else None
        for m in self.net.features:
            if scores is not None and isinstance(m, InvertedResidual) and len(m.conv) == 4:
                h = m.conv[1](m.conv[0](x)) * next(scores).view(1, -1, 1, 1)
                h = m.conv[3](m.conv[2](h))
                x = x + h if m.use_res_connect else h
            else:
                x = m(x)
        x = nn.functional.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.net.classifier(x)


def _slice_bn(bn: nn.BatchNorm2d, keep) -> nn.BatchNorm2d:
    out = nn.BatchNorm2d(len(keep), eps=bn.eps, momentum=bn.momentum, **_like(bn.weight))
    for name in ("weight", "bias"):
        getattr(out, name).data.copy_(getattr(bn, name).data[keep])
    out.running_mean.copy_(bn.running_mean[keep])
    out.running_var.copy_(bn.running_var[keep])
    out.num_batches_tracked.copy_(bn.num_batches_tracked)
    return out


def _like(t: torch.Tensor) -> dict:
    return {"device": t.device, "dtype": t.dtype}


@torch.no_grad()
def prune(model: ScoredMobileNetV2, masks, scores=None) -> ScoredMobileNetV2:
    """A thinner copy keeping the hidden channels where `masks` is True; it computes what `model`
    computes with the removed channels' scores at zero (and the kept ones at their values)."""
    thin = copy.deepcopy(model)
    blocks = scored_blocks(thin.net)
    scores = scores or [torch.ones(len(m)) for m in masks]
    for block, mask, score in zip(blocks, masks, scores):
        keep = mask.nonzero().flatten()
        if len(keep) == 0:
            raise ValueError("a block would lose every hidden channel")
        expand, dw, proj = block.conv[0], block.conv[1], block.conv[2]
        conv = nn.Conv2d(expand[0].in_channels, len(keep), 1, bias=False, **_like(expand[0].weight))
        conv.weight.copy_(expand[0].weight[keep])
        expand[0], expand[1] = conv, _slice_bn(expand[1], keep)
        d = dw[0]
        conv = nn.Conv2d(len(keep), len(keep), d.kernel_size, d.stride, d.padding, groups=len(keep), bias=False,
                         **_like(d.weight))
        conv.weight.copy_(d.weight[keep])
        dw[0], dw[1] = conv, _slice_bn(dw[1], keep)
        new_proj = nn.Conv2d(len(keep), proj.out_channels, 1, bias=False, **_like(proj.weight))
        new_proj.weight.copy_(proj.weight[:, keep] * score[keep].view(1, -1, 1, 1))
        block.conv[2] = new_proj
    return thin
