"""The SLURM path for real: a local single-node SLURM runs a slice of the offline pipeline through
`--executor slurm` with the project's profile, and a job cancelled mid-training is retried and
resumes from its checkpoint to the uninterrupted result."""

import json
import shutil
import subprocess
import time

import pytest
import yaml

from conftest import BIN, REPO
from slurm_cluster import LocalSlurm, Unavailable

pytestmark = pytest.mark.slow

SLURM_FLAGS = ["--workflow-profile", "workflow/profiles/slurm", "--slurm-status-command", "squeue",
               "--slurm-init-seconds-before-status-checks", "1"]
QUICK = ["--configfile", "config/quick.yaml"]  # last on the command line: it takes several files


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except (Unavailable, OSError, subprocess.SubprocessError) as exc:
        cluster.stop()
        pytest.skip(f"no local SLURM could be brought up: {exc}")
    yield cluster
    cluster.stop()


def scratch(tmp_path, extra=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "workflow", "config", "envs"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    if extra:
        (tmp_path / "config" / "extra.yaml").write_text(yaml.safe_dump(extra))
    return tmp_path


def snakemake(workdir, env, *args, timeout=900):
    return subprocess.Popen([str(BIN / "snakemake"), *args], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc, timeout=900):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        raise AssertionError(f"snakemake timed out:\n{out[-4000:]}")
    assert proc.returncode == 0, out[-6000:]
    return out


def test_pipeline_slice_runs_through_the_slurm_executor(slurm, tmp_path, cli_env):
    wd = scratch(tmp_path)
    targets = ["results/search/darts/darts1/seed0/genotype.json", "results/train/cifar/darts1-seed0/metrics.json",
               "results/toy_equilibria.csv"]
    out = finish(snakemake(wd, cli_env, *targets, *SLURM_FLAGS, *QUICK))
    for t in targets:
        assert (wd / t).is_file(), t
    metrics = json.loads((wd / targets[1]).read_text())
    assert metrics["name"] == "darts1-seed0" and metrics["standin"]
    # the search and the training went to SLURM; the table rule (a localrule) did not
    assert out.count("has been submitted with SLURM jobid") >= 4, out[-3000:]


def _running_job_ids():
    out = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i"], capture_output=True, text=True).stdout
    return [j for j in out.split() if j]


def test_cancelled_training_is_retried_and_resumes_to_the_same_result(slurm, tmp_path, cli_env):
    longer = {"train": {"cifar": {"epochs": 4, "max_steps_per_epoch": 10}}}
    target = "results/train/cifar/DARTS_V2/metrics.json"
    ref = scratch(tmp_path / "ref", longer)
    finish(snakemake(ref, cli_env, target, "--cores", "2", *QUICK, "config/extra.yaml"))

    wd = scratch(tmp_path / "slurm", longer)
    proc = snakemake(wd, cli_env, target, *SLURM_FLAGS, *QUICK, "config/extra.yaml")
    ckpt = wd / "results" / ".checkpoints" / "train" / "cifar" / "DARTS_V2" / "ckpt.pt"
    deadline = time.time() + 600
    while not ckpt.exists():  # wait for the end of epoch 1: the job is mid-training
        assert proc.poll() is None, proc.communicate()[0][-4000:]
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.5)
    jobs = _running_job_ids()
    assert jobs, "the training job is not running"
    subprocess.run(["scancel", *jobs], check=True)
    out = finish(proc)
    assert "resumed from" in (wd / "results" / "logs" / "train" / "cifar" / "DARTS_V2.log").read_text()
    got = json.loads((wd / target).read_text())
    want = json.loads((ref / target).read_text())
    for key in ("train_loss", "test_loss", "test_acc"):
        assert [h[key] for h in got["history"]] == [h[key] for h in want["history"]], (key, out[-2000:])
