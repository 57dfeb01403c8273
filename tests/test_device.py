"""Device selection: a job given GPUs (by SLURM or CUDA_VISIBLE_DEVICES) or told `cuda` never falls back
to the CPU, and never runs on a GPU this torch build has no kernels for; `cuda:N` is refused under
several ranks."""

import json
import subprocess

import pytest
import torch

from rarts.core import devices
from rarts.pipeline.errors import DeviceError
from test_search_loop import _search_cmd


@pytest.mark.parametrize("env,given", [
    ({}, None), ({"CUDA_VISIBLE_DEVICES": ""}, None), ({"CUDA_VISIBLE_DEVICES": "-1"}, None),
    ({"CUDA_VISIBLE_DEVICES": "0"}, "CUDA_VISIBLE_DEVICES=0"), ({"SLURM_GPUS_ON_NODE": "0"}, None),
    ({"SLURM_GPUS_ON_NODE": "2"}, "SLURM_GPUS_ON_NODE=2"), ({"SLURM_GPUS": "a100:0"}, None),
    ({"SLURM_GPUS": "a100:1"}, "SLURM_GPUS=a100:1"), ({"SLURM_JOB_GPUS": "0,1"}, "SLURM_JOB_GPUS=0,1"),
])
def test_gpus_given_reads_the_scheduler_and_cuda_variables(env, given):
    assert devices.gpus_given(env) == given


def test_auto_without_gpus_runs_on_the_cpu(monkeypatch):
    for name in devices.GPU_LISTS + devices.GPU_COUNTS:
        monkeypatch.delenv(name, raising=False)
    assert devices.resolve_device("auto") == torch.device("cpu")


@pytest.mark.parametrize("name", ["auto", "cuda", "cuda:1"])
def test_a_job_given_gpus_without_usable_cuda_stops(monkeypatch, name):
    monkeypatch.setenv("SLURM_GPUS_ON_NODE", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match=r"given \(SLURM_GPUS_ON_NODE=1\).*torch .* is built for CUDA"):
        devices.resolve_device(name)


def test_a_gpu_the_build_has_no_kernels_for_is_refused(monkeypatch):
    """A V100 (7.0) under a build for sm_75…sm_120; an sm_86 card is fine with sm_80 kernels (same
    major version), and any later card with PTX."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Tesla V100")
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_75", "sm_80", "sm_90", "sm_120"])
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (7, 0))
    assert "Tesla V100 has compute capability 7.0" in devices.cuda_problem()
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (8, 6))
    assert devices.cuda_problem() is None
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0: (10, 0))
    assert devices.cuda_problem() is not None  # no sm_10x cubin, no PTX
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: ["sm_90", "compute_90"])
    assert devices.cuda_problem() is None  # PTX for 9.0 compiles for 10.0


def test_one_gpu_for_every_rank_is_refused(monkeypatch):
    with pytest.raises(DeviceError, match="cuda:0 with 2 processes"):
        devices.resolve_device("cuda:0", local_rank=1, world=2)


def test_a_search_job_given_gpus_on_a_cpu_machine_exits_with_the_message(tmp_path, cli_env):
    """The real command a rule runs, as a SLURM GPU job on a node whose driver this build cannot use
    (simulated: this machine has no CUDA): it exits 1 at once, naming the build and how to install
    another, and writes nothing."""
    from rarts.data import standin
    from rarts.data.split import write_split

    root, split = tmp_path / "cifar10", tmp_path / "split.json"
    standin.write_cifar_standin("cifar10", root)
    write_split(split, "cifar10", 1438, seed=0)
    cmd = _search_cmd(root, split, tmp_path / "out", tmp_path / "ck.pt", algo="darts1")
    spec = json.loads(cmd[cmd.index("--spec") + 1])
    spec.pop("device", None)
    cmd[cmd.index("--spec") + 1] = json.dumps(spec)
    env = {**cli_env, "CUDA_VISIBLE_DEVICES": "0"}
    proc = subprocess.run(["rarts", "--device", "auto", *cmd[1:]], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("rarts search: cannot use the GPU this job was given (CUDA_VISIBLE_DEVICES=0)"), last
    assert f"torch {torch.__version__}" in last and "TORCH_INDEX=" in last and "Traceback" not in proc.stderr
    assert not (tmp_path / "ck.pt").exists() and not (tmp_path / "out").exists()


def test_the_determinism_switch_sets_torch_and_cudnn(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        devices.set_determinism(True)
        assert torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.benchmark
        assert torch.backends.cudnn.deterministic and devices.os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        devices.set_determinism(False)
        assert not torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.benchmark
    finally:
        devices.set_determinism(False)
        torch.backends.cudnn.benchmark = False
