"""The non-finite-loss stop: a NaN never reaches a checkpoint, and the message names the first bad step."""

from __future__ import annotations

import torch

from rarts.pipeline.errors import NonFiniteLoss


class LossWatch:
    """The non-finite-loss stop without a host sync every step: each step's loss waits in a small
    buffer on its device, and the buffer is checked (one sync) every `every` steps and before any
    checkpoint, so a NaN never reaches a checkpoint and the message names the first bad step."""

    def __init__(self, job: str, device, every: int = 32):
        self.job = job  # e.g. "rarts search, seed 0"
        self.buf = torch.empty(every, device=device)
        self.steps: list[tuple[int, int]] = []  # (epoch, step) of each buffered loss

    def add(self, loss: torch.Tensor, epoch: int, step: int) -> None:
        self.buf[len(self.steps)] = loss.detach()
        self.steps.append((epoch, step))
        if len(self.steps) == len(self.buf):
            self.check()

    def check(self) -> None:
        n, steps = len(self.steps), self.steps
        self.steps = []
        if n == 0:
            return
        bad = (~torch.isfinite(self.buf[:n])).nonzero()
        if len(bad):
            i = int(bad[0])
            raise NonFiniteLoss(f"non-finite training loss ({float(self.buf[i])}) in {self.job}, epoch "
                                f"{steps[i][0]}, step {steps[i][1]}: lower the learning rates or check the data")
