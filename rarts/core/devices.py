"""The device a job runs on: a GPU it was given and cannot use stops it (never a silent CPU run), and
how a GPU computes (cuDNN autotuning, or deterministic algorithms)."""

from __future__ import annotations

import os
import platform
import re
import subprocess

import torch

from rarts.pipeline.errors import DeviceError


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
