"""The Makefile's set-up: the torch build a user chose with `make setup TORCH_INDEX=…` stays chosen
for every later target (read with `make -n`, which prints what make would run)."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO

CU126 = "https://download.pytorch.org/whl/cu126"


@pytest.fixture
def project(tmp_path):
    """The Makefile, pyproject.toml and constraints.txt beside a `.venv` that `make setup TORCH_INDEX=<cu126>` left."""
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy(REPO / name, tmp_path / name)
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").write_text("#!/bin/sh\n")
    (venv / "bin" / "python").chmod(0o755)
    (venv / ".torch-index").write_text(CU126 + "\n")
    (venv / ".torch-https___download.pytorch.org_whl_cu126").touch()
    later = time.time() + 5  # installed after pyproject.toml and constraints.txt were written
    (venv / ".installed").touch()
    os.utime(venv / ".installed", (later, later))
    return tmp_path


def make_n(project, *args):
    env = {k: v for k, v in os.environ.items() if k != "TORCH_INDEX"}
    out = subprocess.run(["make", "-n", *args], cwd=project, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.parametrize("target", ["quick", "test", "rehearsal", "gpu-check", "controller", "setup"])
def test_later_targets_keep_the_chosen_torch_build(project, target):
    out = make_n(project, target)
    assert "pip install" not in out, out  # nothing reinstalled: CUDA 12.6's build stays


def test_a_lost_install_comes_back_from_the_chosen_index(project):
    (project / ".venv" / ".torch-https___download.pytorch.org_whl_cu126").unlink()
    out = make_n(project, "quick")
    assert f"--index-url {CU126}" in out and f"echo {CU126} > .venv/.torch-index" in out


def test_choosing_again_switches_and_is_remembered(project):
    out = make_n(project, "setup", "TORCH_INDEX=registry")
    assert "--force-reinstall" in out and "--index-url" not in out and "echo registry > .venv/.torch-index" in out
    (project / ".venv" / ".torch-index").write_text("registry\n")  # what that setup leaves
    (project / ".venv" / ".torch-registry").touch()
    assert "pip install" not in make_n(project, "test")


def test_the_controller_target_submits_its_script_with_the_users_flags_and_config(project):
    """What `make controller` runs (its script runs on the local SLURM in tests/test_cluster.py)."""
    out = make_n(project, "controller", "CONFIG=site.yaml", "CONTROLLER_FLAGS=-p cpu -t 7-00:00:00")
    line = [x for x in out.splitlines() if x.startswith("sbatch")][0].split()
    assert line[:6] == ["sbatch", "-p", "cpu", "-t", "7-00:00:00", "workflow/scripts/controller.sh"], line
    assert line[6:] == ["all", "--configfile", "config/config.yaml", "site.yaml"], line


@pytest.mark.parametrize("target", ["quick", "rehearsal", "data", "controller"])
def test_a_users_config_is_checked_before_snakemake_reads_it(project, target):
    out = make_n(project, target, "CONFIG=site.yaml").splitlines()
    check = next(i for i, line in enumerate(out) if "rarts check-config site.yaml" in line)
    run = next(i for i, line in enumerate(out) if "snakemake" in line or line.startswith("sbatch"))
    assert check < run, out


@pytest.mark.slow
def test_the_wheel_installs_on_its_own_and_runs_outside_the_repository(tmp_path):
    """The package as a researcher installs it: a wheel (not editable) in a fresh venv whose other packages
    are this venv's locked ones, run from a folder outside the repository."""
    source, wheels = tmp_path / "source", tmp_path / "wheels"  # a copy: building writes build/ beside the sources
    shutil.copytree(REPO / "rarts", source / "rarts", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", source)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", wheels,
                    source], check=True, capture_output=True, timeout=300)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    site = next(venv.glob("lib/python*/site-packages"))
    locked = next(p for p in map(Path, sys.path) if p.name == "site-packages" and (p / "torch").is_dir())
    (site / "locked.pth").write_text(f"{locked}\n")  # the locked torch & co., not this checkout
    wheel = next(wheels.glob("rarts-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", site, wheel],
                   check=True, capture_output=True, timeout=300)
    away = tmp_path / "elsewhere"
    shutil.copy(REPO / "examples" / "own_search.py", away.mkdir() or away / "own_search.py")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    where = subprocess.run([venv / "bin" / "python", "-c", "import rarts; print(rarts.__file__)"], cwd=away,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert str(site) in where and str(REPO) not in where, where
    helped = subprocess.run([venv / "bin" / "python", "-m", "rarts", "--help"], cwd=away, env=env,
                            capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "plan" in helped.stdout, helped.stderr
    ran = subprocess.run([venv / "bin" / "python", "own_search.py", "--epochs", "1", "--out", "ckpt"], cwd=away,
                         env=env, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "D_v accuracy" in ran.stdout, ran.stdout[-2000:]
