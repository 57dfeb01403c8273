"""The guard around oneDNN's AVX2 1×1 backward-weights kernel (see `rarts.models.layers.Conv2d`)."""

import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from rarts.models.layers import Conv2d

TESTS = Path(__file__).resolve().parent
MALLOC_DEBUG = Path("/lib/x86_64-linux-gnu/libc_malloc_debug.so.0")


def _has_avx2() -> bool:
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def avx2_env(env: dict) -> dict:
    """oneDNN capped at its AVX2 code (the kernels that crashed on AVX2-only hosts), one torch
    thread, and glibc's heap checker when installed, so an overrun that does not happen to abort
    still fails."""
    env = {**env, "DNNL_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"}
    if MALLOC_DEBUG.is_file():
        env.update(LD_PRELOAD=str(MALLOC_DEBUG), MALLOC_CHECK_="3")
    return env


needs_avx2 = pytest.mark.skipif(platform.machine() != "x86_64" or not _has_avx2(),
                                reason="oneDNN's AVX2 kernels need an x86-64 CPU with AVX2")

SEARCH = """
import sys, torch
sys.path.insert(0, sys.argv[1])
torch.set_num_threads(1)
from test_search_loop import make_loop  # the test suite's search settings (C=2, 3 cells, 8x8)
for algo in ("darts1", "darts2", "milenas", "rarts"):
    make_loop(algo, sys.argv[2] + f"/{algo}.pt").run()
print("clean")
"""


@needs_avx2
def test_a_small_search_runs_clean_on_onednn_avx2_kernels(tmp_path, cli_env):
    """The case that aborted with heap corruption on an AVX2-only host, in a fresh process."""
    proc = subprocess.run([sys.executable, "-c", SEARCH, str(TESTS), str(tmp_path)],
                          env=avx2_env(cli_env), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"exit {proc.returncode}:\n{proc.stderr[-3000:]}"
    assert proc.stdout.strip().endswith("clean")


def test_the_guard_changes_no_number():
    """Output and both gradients of a guarded strided 1×1 conv on a channels-last input equal those
    of the plain convolution, computed in float64 on an NCHW input."""
    torch.manual_seed(0)
    guarded = Conv2d(4, 6, 1, stride=2, bias=False)
    assert guarded.onednn_guard
    x = torch.randn(8, 4, 8, 8).contiguous(memory_format=torch.channels_last).requires_grad_()
    out = guarded(x)
    out.pow(2).sum().backward()
    x64 = x.detach().double().contiguous().requires_grad_()
    w64 = guarded.weight.detach().double().requires_grad_()
    ref = F.conv2d(x64, w64, stride=2)
    ref.pow(2).sum().backward()
    torch.testing.assert_close(out.double(), ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x.grad.double(), x64.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(guarded.weight.grad.double(), w64.grad, rtol=1e-5, atol=1e-5)


def test_only_strided_1x1_convs_with_few_inputs_are_guarded():
    assert Conv2d(7, 4, 1, stride=2).onednn_guard
    assert not Conv2d(8, 4, 1, stride=2).onednn_guard
    assert not Conv2d(4, 4, 1, stride=1).onednn_guard
    assert not Conv2d(4, 4, 3, stride=2, padding=1).onednn_guard


def _networks():
    from rarts.models import prunable
    from rarts.models.darts_eval import NetworkCIFAR, NetworkImageNet
    from rarts.spaces import DartsSearchSpace, NatsSearchSpace
    from rarts.models.genotypes import DARTS_V2

    yield "darts search", DartsSearchSpace(init_channels=2, layers=3).build_network()
    yield "darts cifar", NetworkCIFAR(DARTS_V2, c=2, num_classes=10, layers=5, auxiliary=True)
    yield "darts imagenet", NetworkImageNet(DARTS_V2, c=4, num_classes=10, layers=5, auxiliary=True)
    yield "nats search", NatsSearchSpace(init_channels=2, cells_per_stage=1).build_network()
    yield "preresnet", prunable.build("preresnet", 10, depth=11)
    yield "mobilenetv2", prunable.build("mobilenetv2", 10, width_mult=0.25)


@pytest.mark.parametrize("name,net", list(_networks()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_strided_1x1_conv_of_every_network_is_guarded(name, net):
    plain = [n for n, m in net.named_modules() if isinstance(m, nn.Conv2d) and not isinstance(m, Conv2d)
             and m.kernel_size == (1, 1) and max(m.stride) > 1]
    assert not plain, f"{name}: strided 1×1 convs built without rarts.models.layers.Conv2d: {plain}"


def test_the_minimal_reproduction_runs_and_the_guarded_path_is_clean(cli_env):
    """benchmarks/onednn_repro.py (torch alone) sweeps shapes in child processes; the guard's path
    (a contiguous input) must be clean at every shape on the host that runs the tests."""
    script = TESTS.parent / "benchmarks" / "onednn_repro.py"
    proc = subprocess.run([sys.executable, str(script), "--quick"], env=avx2_env(cli_env), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "oneDNN" in proc.stdout and "in_channels" in proc.stdout
    assert proc.stdout.rstrip().endswith("contiguous (guarded): clean"), proc.stdout
