"""What every long job shares: preemption by SIGTERM, the non-finite-loss stop, devices and
torch.distributed set-up (one process per GPU under torchrun)."""

from __future__ import annotations

import os
import platform
import re
import signal
import subprocess
import time
from dataclasses import dataclass

import torch

from rarts.errors import DeviceError, NonFiniteLoss  # noqa: F401 (NonFiniteLoss is imported from here)


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


# Variables through which a scheduler or the user hands GPUs to a process: when one names a GPU,
# the job was meant to run on it, and a silent fall-back to the CPU would crawl until its time ran out.
GPU_LISTS = ("CUDA_VISIBLE_DEVICES", "SLURM_STEP_GPUS", "SLURM_JOB_GPUS")  # GPU indices: "0,1"
GPU_COUNTS = ("SLURM_GPUS_ON_NODE", "SLURM_GPUS")  # how many: "2", or "a100:2"
NO_GPUS = ("", "-1", "none", "NoDevFiles")


def gpus_given(env=os.environ) -> str | None:
    """The variable that says this process was given GPUs ("NAME=value"), or None."""
    for name in GPU_LISTS + GPU_COUNTS:
        value = (env.get(name) or "").strip()
        if value not in NO_GPUS and not (name in GPU_COUNTS and value.rsplit(":", 1)[-1] == "0"):
            return f"{name}={value}"
    return None


def cuda_problem(index: int = 0) -> str | None:
    """Why this torch build cannot run on CUDA device `index`, or None when it can."""
    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False (no GPU visible, or a driver older than this build needs)"
    major, minor = torch.cuda.get_device_capability(index)
    cap, archs = 10 * major + minor, torch.cuda.get_arch_list()
    binaries = [int(a[3:]) for a in archs if a.startswith("sm_")]
    ptx = [int(a[8:]) for a in archs if a.startswith("compute_")]
    # a cubin runs on its own major version at an equal or higher minor; PTX is compiled for any later GPU
    if any(b // 10 == major and b <= cap for b in binaries) or any(p <= cap for p in ptx):
        return None
    return (f"{torch.cuda.get_device_name(index)} has compute capability {major}.{minor}, and this build has "
            f"kernels for {', '.join(archs)} only")


def nvidia_smi() -> str:
    """The driver and GPUs as nvidia-smi reports them (a line each), or why it could not say."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,name,compute_cap,driver_version",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nvidia-smi did not answer ({type(exc).__name__}: {exc})"
    return out.stdout.strip() or f"nvidia-smi found no GPU ({out.stderr.strip()[:200]})"


def device_error(problem: str, given: str | None) -> DeviceError:
    return DeviceError(
        f"cannot use the GPU{f' this job was given ({given})' if given else ''}: {problem}. torch "
        f"{torch.__version__} is built for CUDA {torch.version.cuda} ({', '.join(torch.cuda.get_arch_list()) or 'no GPU kernels'}); "
        f"nvidia-smi: {nvidia_smi()}. Install a torch build for this driver and GPU, e.g. `make setup "
        "TORCH_INDEX=https://download.pytorch.org/whl/cu126` (CUDA 12.6: drivers >= 560, GPUs from compute "
        "capability 5.0, V100 and 1080 Ti included); see the README's SLURM section. Nothing was run on the CPU")


def resolve_device(name: str, local_rank: int = 0, world: int = 1) -> torch.device:
    """The device a job runs on. `auto` is CUDA when a usable GPU is there, the CPU when none is and
    none was given; a job given GPUs (GPU_VARIABLES) or told `cuda` that cannot use them stops with
    DeviceError instead of running on the CPU. Under torchrun each rank takes GPU `local_rank`."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", name):
        raise DeviceError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N")
    given = gpus_given()
    if name == "auto":
        if not torch.cuda.is_available() and not given:
            return torch.device("cpu")
        name = "cuda"
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda" and world > 1:
        raise DeviceError(f"device {name} with {world} processes would put every rank on one GPU: use "
                          "device `cuda` or `auto` (rank r takes GPU r of the job)")
    device = torch.device("cuda", local_rank) if name == "cuda" else torch.device(name)
    problem = cuda_problem(device.index or 0)
    if problem:
        raise device_error(problem, given)
    torch.cuda.set_device(device)  # this rank's GPU: its CUDA context, NCCL and the caching allocator
    return device


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def set_determinism(deterministic: bool) -> None:
    """On GPUs: cuDNN's autotuner (`benchmark`) for speed by default, whose kernels may differ in the last
    bits between runs; with `deterministic`, deterministic algorithms only (cuBLAS's workspace set for
    them), so a run repeats bit for bit on the same GPU and software. On a CPU runs repeat either way."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.use_deterministic_algorithms(deterministic)


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


def ignore_sigterm(_worker_id=None) -> None:
    """A DataLoader worker's init: SIGTERM (SLURM sends it to every process of the job) must not kill
    the workers before their rank has written its checkpoint; they end with their loader, or when
    their parent dies."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def with_fault_injection(on_step, request_stop=None, rank: int = 0):
    """Tests: with RARTS_FAULT_AT_STEP=N the process SIGKILLs itself after global step N; with
    RARTS_STOP_AT_STEP=N0,N1,… rank r asks for a stop (as SIGTERM does) after global step N_r; with
    RARTS_STEP_SLEEP_S=x every step takes x seconds longer (an epoch longer than a wall-time limit, in
    little compute)."""
    fault_at = int(os.environ.get("RARTS_FAULT_AT_STEP", "0"))
    stops = os.environ.get("RARTS_STOP_AT_STEP", "").split(",")
    stop_at = int(stops[rank]) if rank < len(stops) and stops[rank].strip() else 0
    sleep_s = float(os.environ.get("RARTS_STEP_SLEEP_S", "0"))
    if not fault_at and not stop_at and not sleep_s:
        return on_step

    def hook(global_step):
        if on_step is not None:
            on_step(global_step)
        time.sleep(sleep_s)
        if global_step == stop_at and request_stop is not None:
            request_stop()
        if global_step == fault_at:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook
