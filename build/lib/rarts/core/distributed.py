"""torch.distributed for a job run as one process per GPU under torchrun: where this rank is, the
process group, and the step after which every rank stops together."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def launch() -> Dist:
    """This process's place in the job as torchrun describes it (WORLD_SIZE, RANK, LOCAL_RANK)."""
    env = os.environ
    return Dist(int(env.get("RANK", "0")), int(env.get("WORLD_SIZE", "1")), int(env.get("LOCAL_RANK", "0")))


def init_distributed(device: torch.device) -> Dist:
    """Join the process group torchrun set up (WORLD_SIZE > 1): NCCL on GPUs, gloo on CPU."""
    where = launch()
    if where.world == 1:
        return where
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                device_id=device if device.type == "cuda" else None)
    return Dist(dist.get_rank(), dist.get_world_size(), where.local_rank)


def end_distributed() -> None:
    """Leave the process group, on every exit path (a preempted or failed rank too)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class StopAgreement:
    """The step after which every rank stops. SIGTERM can reach the ranks of a job a step apart; a rank
    that stopped alone would meet the others' next gradient all-reduce with its checkpoint's barrier.
    So each step's local request is max-reduced across the ranks without waiting, and each step reads
    the reduction started one step earlier: all ranks read the same value after the same step, and the
    host waits only for the step before the one in flight."""

    def __init__(self, dist: Dist, device):
        self.world, self.device = dist.world, torch.device(device)
        self.pending = None  # (work, flag) of the reduction started after the previous step

    def stop_now(self, requested: bool) -> bool:
        if self.world == 1:
            return requested
        import torch.distributed as dist

        flag = torch.tensor([float(requested)], device=self.device)
        started = (dist.all_reduce(flag, op=dist.ReduceOp.MAX, async_op=True), flag)
        previous, self.pending = self.pending, started
        if previous is None:
            return False
        previous[0].wait()
        return bool(previous[1].item())
