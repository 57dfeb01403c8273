"""What every long job shares: preemption by SIGTERM, the non-finite-loss stop, devices and
torch.distributed set-up (one process per GPU under torchrun)."""

from __future__ import annotations

import math
import os
import platform
import signal
from dataclasses import dataclass

import torch


class NonFiniteLoss(RuntimeError):
    pass


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


def check_finite(loss: torch.Tensor, where: str) -> None:
    value = float(loss)
    if not math.isfinite(value):
        raise NonFiniteLoss(f"non-finite training loss ({value}) in {where}: lower the learning "
                            "rates or check the data")


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
