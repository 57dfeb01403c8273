import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# One torch thread a process unless a test or a rule sets more: two xdist workers share the cores, and
# a second OpenMP thread beside a busy neighbour spins (the tiny gpu-check took 139 s instead of 24 s
# beside one 2-thread process; in the suite the rehearsal slice took 1,391 s, at one thread 451 s)
os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture
def cli_env():
    """Environment for subprocesses: this interpreter's bin (the `rarts` script) on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


@pytest.fixture(autouse=True)
def _torch_threads():
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)
