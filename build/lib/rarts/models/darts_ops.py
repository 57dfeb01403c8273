"""The DARTS candidate operations (official `operations.py` semantics)."""

from __future__ import annotations

import torch
import torch.nn as nn

from rarts.models.layers import Conv2d

def is_reduction(cell: int, layers: int) -> bool:
    """The DARTS networks reduce (and double the channels) at a third and two thirds of the depth;
    the evaluation networks' auxiliary head follows the second reduction cell."""
    return cell in (layers // 3, 2 * layers // 3)


PRIMITIVES = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
              "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in, c_out, kernel, stride, padding, affine=True, bias=False):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=bias),
                         nn.BatchNorm2d(c_out, affine=affine))


class DilConv(nn.Sequential):
    def __init__(self, c_in, c_out, kernel, stride, padding, dilation, affine=True):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out, affine=affine))


class SepConv(nn.Sequential):
    """Two depthwise-separable blocks; the stride only in the first."""

    def __init__(self, c_in, c_out, kernel, stride, padding, affine=True):
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, 1, affine),
            DilConv(c_in, c_out, kernel, 1, padding, 1, affine))


class Identity(nn.Module):
    def forward(self, x):
        return x


class Zero(nn.Module):
    def __init__(self, stride):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, ::self.stride, ::self.stride].mul(0.0)


class MixedOp(nn.Module):
    """An edge of a search cell: Σ_k softmax(α)_k · op_k(x) over its candidate operations."""

    def __init__(self, ops, stride=1):
        super().__init__()
        self.ops, self.stride = nn.ModuleList(ops), stride

    def forward(self, x, weights):
        # `none` outputs zeros: its term and every gradient through it are exactly zero, so it
        # is skipped (softmax still normalises over all the weights).
        return sum(w * op(x) for w, op in zip(weights, self.ops) if not isinstance(op, Zero))


class FactorizedReduce(nn.Module):
    """Halve the resolution with two 1×1 stride-2 convs, the second on the shifted input."""

    def __init__(self, c_in, c_out, affine=True):
        super().__init__()
        assert c_out % 2 == 0, "FactorizedReduce needs an even number of output channels"
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)  # guarded: see Conv2d
        self.conv_2 = Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(x[:, :, 1:, 1:])], dim=1))


OPS = {
    "none": lambda c, stride, affine: Zero(stride),
    "avg_pool_3x3": lambda c, stride, affine: nn.AvgPool2d(3, stride=stride, padding=1,
                                                           count_include_pad=False),
    "max_pool_3x3": lambda c, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "skip_connect": lambda c, stride, affine: (Identity() if stride == 1
                                               else FactorizedReduce(c, c, affine=affine)),
    "sep_conv_3x3": lambda c, stride, affine: SepConv(c, c, 3, stride, 1, affine),
    "sep_conv_5x5": lambda c, stride, affine: SepConv(c, c, 5, stride, 2, affine),
    "dil_conv_3x3": lambda c, stride, affine: DilConv(c, c, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda c, stride, affine: DilConv(c, c, 5, stride, 4, 2, affine),
}
