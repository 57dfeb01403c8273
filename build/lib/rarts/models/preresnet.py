"""Pre-activation bottleneck ResNet for CIFAR (Network Slimming's `preresnet`, depth 9n+2; 164 by
default) with channel selection, optional channel scores, and real pruning to a thinner network.

Prunable channels are those of every BatchNorm, as Network Slimming prunes them: the block's input
BN (through a channel selection, so the residual keeps its width), the two inner BNs, and the
final BN. A channel score γ multiplies a BN's output (F̃ = γ·F); with scores as the architecture
(RARTS width search) or BN scales as scores (Network Slimming), `prune` rebuilds the network with
the kept channels only, folding the scores into the BN affine parameters.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from rarts.models.layers import Conv2d


def default_cfg(depth: int = 164) -> list[int]:
    n = (depth - 2) // 9
    cfg = [[16, 16, 16], [64, 16, 16] * (n - 1), [64, 32, 32], [128, 32, 32] * (n - 1),
           [128, 64, 64], [256, 64, 64] * (n - 1), [256]]
    return [c for group in cfg for c in group]


class ChannelSelection(nn.Module):
    """Keeps the channels listed in `index` (a buffer, not a weight)."""

    def __init__(self, index: torch.Tensor):
        super().__init__()
        self.register_buffer("index", index.clone().long())

    def forward(self, x):
        return x if len(self.index) == x.shape[1] else x.index_select(1, self.index)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, cfg, stride=1, downsample=None, select=None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.select = ChannelSelection(torch.arange(inplanes) if select is None else select)
        self.conv1 = nn.Conv2d(cfg[0], cfg[1], 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cfg[1])
        self.conv2 = nn.Conv2d(cfg[1], cfg[2], 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(cfg[2])
        self.conv3 = nn.Conv2d(cfg[2], planes * 4, 1, bias=False)
        self.downsample = downsample

    def forward(self, x, scores=None):
        s = iter(scores) if scores is not None else None
        out = self._scored(self.bn1(x), s)
        out = self.conv1(torch.relu(self.select(out)))
        out = self.conv2(torch.relu(self._scored(self.bn2(out), s)))
        out = self.conv3(torch.relu(self._scored(self.bn3(out), s)))
        return out + (x if self.downsample is None else self.downsample(x))

    @staticmethod
    def _scored(h, s):
        return h if s is None else h * next(s).view(1, -1, 1, 1)


class PreResNet(nn.Module):
    def __init__(self, depth=164, num_classes=10, cfg=None, selects=None):
        super().__init__()
        assert (depth - 2) % 9 == 0, "depth must be 9n+2"
        n = (depth - 2) // 9
        cfg = cfg or default_cfg(depth)
        self.cfg, self.depth = list(cfg), depth
        selects = selects or [None] * (3 * n + 1)
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.inplanes, blocks, k = 16, [], 0
        for stage, (planes, stride) in enumerate(((16, 1), (32, 2), (64, 2))):
            for i in range(n):
                down = None
                if i == 0 and (stride != 1 or self.inplanes != planes * 4):
                    down = nn.Sequential(Conv2d(self.inplanes, planes * 4, 1, stride=stride, bias=False))
                blocks.append(Bottleneck(self.inplanes, planes, cfg[3 * k:3 * k + 3], stride if i == 0 else 1,
                                         down, selects[k]))
                self.inplanes, k = planes * 4, k + 1
        self.blocks = nn.ModuleList(blocks)
        self.bn = nn.BatchNorm2d(256)
        self.select = ChannelSelection(torch.arange(256) if selects[-1] is None else selects[-1])
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cfg[-1], num_classes)
        for m in self.modules():  # Network Slimming's initialisation
            if isinstance(m, nn.Conv2d):
                m.weight.data.normal_(0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.data.fill_(0.5)
                m.bias.data.zero_()

    def bns(self) -> list[nn.BatchNorm2d]:
        """The prunable BNs, in score order: per block bn1, bn2, bn3; then the final BN."""
        return [bn for b in self.blocks for bn in (b.bn1, b.bn2, b.bn3)] + [self.bn]

    def score_shapes(self) -> list[int]:
        return [bn.num_features for bn in self.bns()]

    def widths(self) -> list[int]:
        """The channel config (`cfg`): with the depth and class count, all a rebuild needs."""
        return list(self.cfg)

    def scaling_bns(self) -> list[nn.BatchNorm2d]:
        """The BNs whose scales Network Slimming thresholds: the prunable ones."""
        return self.bns()

    def forward(self, x, arch=None):
        h = self.conv1(x)
        for i, block in enumerate(self.blocks):
            h = block(h, None if arch is None else arch[3 * i:3 * i + 3])
        h = self.bn(h)
        if arch is not None:
            h = h * arch[-1].view(1, -1, 1, 1)
        h = torch.relu(self.select(h))
        return self.fc(self.avgpool(h).flatten(1))


@torch.no_grad()
def prune(model: PreResNet, masks: list[torch.Tensor], scores: list[torch.Tensor] | None = None) -> PreResNet:
    """The thinner network keeping the channels where `masks` (one bool vector per prunable BN)
    is True, with scores folded into the BN affine parameters; it computes what `model` computes
    with the removed channels' scores set to zero."""
    bns = model.bns()
    if any(len(b.select.index) != b.bn1.num_features for b in model.blocks) or len(model.select.index) != 256:
        raise ValueError("prune takes an unpruned network (full channel selections)")
    scores = scores or [torch.ones(bn.num_features) for bn in bns]
    keep = [m.nonzero().flatten() for m in masks]
    if any(len(k) == 0 for k in keep):
        raise ValueError("a layer would lose every channel; lower the pruning ratio")
    cfg, selects = [], []
    for b in range(len(model.blocks)):
        k1, k2, k3 = keep[3 * b:3 * b + 3]
        # bn1 keeps the residual's full width; its selection passes only the kept channels to conv1
        selects.append(k1)
        cfg += [len(k1), len(k2), len(k3)]
    selects.append(keep[-1])
    cfg.append(len(keep[-1]))
    thin = PreResNet(model.depth, model.fc.out_features, cfg, selects).to(
        device=model.fc.weight.device, dtype=model.fc.weight.dtype)
    thin.conv1.load_state_dict(model.conv1.state_dict())
    for b, (src, dst) in enumerate(zip(model.blocks, thin.blocks)):
        k1, k2, k3 = keep[3 * b:3 * b + 3]
        s1, s2, s3 = scores[3 * b:3 * b + 3]
        # bn1 stays full width (the residual passes through it); unkept channels get score 0
        _copy_bn(src.bn1, dst.bn1, torch.arange(src.bn1.num_features), s1 * masks[3 * b].to(s1.dtype))
        dst.select.index.copy_(k1)
        dst.conv1.weight.copy_(src.conv1.weight[k2][:, k1])
        _copy_bn(src.bn2, dst.bn2, k2, s2)
        dst.conv2.weight.copy_(src.conv2.weight[k3][:, k2])
        _copy_bn(src.bn3, dst.bn3, k3, s3)
        dst.conv3.weight.copy_(src.conv3.weight[:, k3])
        if src.downsample is not None:
            dst.downsample.load_state_dict(src.downsample.state_dict())
    _copy_bn(model.bn, thin.bn, torch.arange(model.bn.num_features), scores[-1] * masks[-1].to(scores[-1].dtype))
    thin.select.index.copy_(keep[-1])
    thin.fc.weight.copy_(model.fc.weight[:, keep[-1]])
    thin.fc.bias.copy_(model.fc.bias)
    return thin


def _copy_bn(src: nn.BatchNorm2d, dst: nn.BatchNorm2d, keep: torch.Tensor, score: torch.Tensor) -> None:
    """dst = src restricted to `keep`, output scaled by `score` (γ·s, β·s; stats unchanged)."""
    s = score[keep]
    dst.weight.copy_(src.weight[keep] * s)
    dst.bias.copy_(src.bias[keep] * s)
    dst.running_mean.copy_(src.running_mean[keep])
    dst.running_var.copy_(src.running_var[keep])
    dst.num_batches_tracked.copy_(src.num_batches_tracked)
