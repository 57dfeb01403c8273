"""What every long job shares: preemption by SIGTERM, the non-finite-loss stop, devices and
torch.distributed set-up (one process per GPU under torchrun)."""

from __future__ import annotations

import os
import platform
import signal
from dataclasses import dataclass

import torch

from rarts.errors import NonFiniteLoss  # noqa: F401 (raised here, and imported from here)


class Preempted(SystemExit):
    """Raised after a SIGTERM-triggered checkpoint; exit code 143 like a plain SIGTERM."""

    def __init__(self):
        super().__init__(143)


class PreemptionGuard:
    """Turns SIGTERM into a flag the loop checks at step boundaries (checkpoint, then exit)."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def request(self, *_args) -> None:
        self.requested = True

    def __enter__(self):
        self._previous = signal.signal(signal.SIGTERM, self.request)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGTERM, self._previous)
        return False


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


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        return torch.device("cuda", local_rank)
    return torch.device(name)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_kind: str) -> Dist:
    """Join the process group torchrun set up (WORLD_SIZE > 1): NCCL on GPUs, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    import torch.distributed as dist

    backend = "nccl" if device_kind == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def with_fault_injection(on_step):
    """Tests: with RARTS_FAULT_AT_STEP=N the process SIGKILLs itself after global step N."""
    fault_at = int(os.environ.get("RARTS_FAULT_AT_STEP", "0"))
    if not fault_at:
        return on_step

    def hook(global_step):
        if on_step is not None:
            on_step(global_step)
        if global_step == fault_at:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook
