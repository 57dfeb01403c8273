"""The SLURM path for real: a local single-node SLURM with a CPU (default) and a GPU partition runs
slices of the offline pipeline through `--executor slurm` with the project's profile. GPU rules
land on the GPU partition with the CPUs, GPUs, one node, memory and capped wall time the config
asks for, CPU rules on the CPU partition; a job given GPUs this machine cannot use stops instead
of running on the CPU; a job cancelled mid-training is retried and resumes to the uninterrupted
result."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import BIN, REPO
from slurm_cluster import CONF_DIR, CPU_MAX_MIN, LocalSlurm, Unavailable

# one worker runs them all under `pytest -n`: they share a module-wide slurm (should a second worker
# bring one up anyway, LocalSlurm's lock makes it wait for the first to stop)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("slurm")]

SLURM_FLAGS = ["--workflow-profile", "workflow/profiles/slurm", "--slurm-status-command", "squeue",
               "--slurm-init-seconds-before-status-checks", "1"]
QUICK = ["--configfile", "config/quick.yaml"]  # last on the command line: it takes several files
# the partitions named in the config; every job asks for the cap (below both partitions' MaxTime), in
# one window (the cap and the windows of longer jobs: tests/test_plan.py)
CAP_MIN, CPUS_PER_GPU = 50, 3
assert CAP_MIN < CPU_MAX_MIN
CLUSTER = {"cluster": {"gpu_partition": "gpu", "cpu_partition": "cpu", "cpus_per_gpu": CPUS_PER_GPU,
                       "max_runtime_min": CAP_MIN, "min_runtime_min": CAP_MIN, "spare_retries": 0}}


_CLUSTER = None  # the running LocalSlurm, whose state a timed-out run reports


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except (Unavailable, OSError, subprocess.SubprocessError) as exc:
        cluster.stop()
        pytest.skip(f"no local SLURM could be brought up: {exc}")
    global _CLUSTER
    _CLUSTER = cluster
    yield cluster
    _CLUSTER = None
    cluster.stop()


def scratch(tmp_path, extra=None):
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "workflow", "config", "envs"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    if extra:
        (tmp_path / "config" / "extra.yaml").write_text(yaml.safe_dump(extra))
    return tmp_path


def snakemake(workdir, env, *args):
    env = {k: v for k, v in env.items() if not k.startswith(("SBATCH_", "SLURM_"))}  # no site defaults
    env["PYTHONFAULTHANDLER"] = "1"  # SIGABRT on a hang prints every thread's stack
    return subprocess.Popen([str(BIN / "snakemake"), *args], cwd=workdir, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def cluster_state() -> str:
    """What SLURM says about its jobs and node, and its daemons' last log lines: why a run hung."""
    parts = []
    for cmd in (["squeue", "--states=all", "-o", "%i %j %P %T %r %M"], ["sinfo", "-N", "-l"]):
        try:
            parts.append(subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout)
        except subprocess.TimeoutExpired:
            parts.append(f"{cmd[0]} did not answer in 20 s")
    if _CLUSTER is not None:
        for name in ("slurmctld.log", "slurmd.log"):
            log = _CLUSTER.tmp / name
            if log.exists():
                parts.append(f"-- {name}\n" + "\n".join(log.read_text().splitlines()[-25:]))
    return "\n".join(parts)


def finish(proc, timeout=600, ok=True):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # faulthandler: the stacks of snakemake's threads
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        raise AssertionError(f"snakemake timed out after {timeout} s:\n{out[-12000:]}\n{cluster_state()}")
    assert (proc.returncode == 0) == ok, out[-6000:]
    return out


def slurm_jobs() -> dict[str, dict]:
    """Every job SLURM still knows (MinJobAge), by the rule its comment names: scontrol's fields."""
    out = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True).stdout
    jobs = {}
    for line in out.splitlines():
        fields = dict(re.findall(r"(\S+?)=(\S*)", line))
        rule = re.match(r"rule_(\w+?)(_wildcards_|$)", fields.get("Comment", ""))
        if rule:
            jobs.setdefault(rule[1], []).append(fields)
    return jobs


def test_gpu_rules_go_to_the_gpu_partition_with_their_cpus_and_stop_without_usable_cuda(slurm, tmp_path, cli_env):
    """`device: auto` as on a GPU cluster, SBATCH_PARTITION unset: a search and a 2-GPU training land on
    the GPU partition with GPUs × cpus_per_gpu CPUs, one node, the memory of their rule and the capped
    wall time; the data rules they need land on the CPU partition. The GPUs are fake, so both GPU jobs
    stop with the message naming the torch build instead of running on the CPU."""
    wd = scratch(tmp_path, {**CLUSTER, "train": {"imagenet": {"gpus": 2}}})
    targets = ["results/search/darts/darts1/seed0/genotype.json", "results/train/imagenet/DARTS_V2/metrics.json"]
    out = finish(snakemake(wd, cli_env, *targets, "--keep-going", *SLURM_FLAGS, *QUICK, "config/extra.yaml"), ok=False)
    jobs = slurm_jobs()
    dry = subprocess.run([str(BIN / "snakemake"), "-n", *targets, "--forceall", *SLURM_FLAGS, *QUICK, "config/extra.yaml"],
                         cwd=wd, env=cli_env, capture_output=True, text=True).stdout
    mem = {rule: int(m) for rule, m in re.findall(r"rule (\w+):(?:\n.*?)*?resources: .*?mem_mb=(\d+)", dry)}
    for rule, gpus in (("search_darts", 1), ("train_imagenet", 2)):
        (job,) = jobs[rule]
        assert job["Partition"] == "gpu" and job["NumNodes"] == "1", job
        assert job["TresPerJob"].endswith(f"gpu:{gpus}") and job["CPUs/Task"] == str(gpus * CPUS_PER_GPU), job
        assert job["TimeLimit"] == f"00:{CAP_MIN}:00" and job["MinMemoryNode"] == f"{mem[rule]}M", (job, mem)
        assert job["JobState"] == "FAILED", job
    assert all(j["Partition"] == "cpu" and j["JobState"] == "COMPLETED" for j in jobs["search_split"]), jobs
    assert "prepare_cifar" not in jobs and (wd / "results/data/cifar10/ready.json").is_file()  # on the submit host
    for log in ("search/darts/darts1/seed0.log", "train/imagenet/DARTS_V2.log"):
        text = (wd / "results" / "logs" / log).read_text()
        assert "cannot use the GPU this job was given (SLURM_GPUS" in text and "TORCH_INDEX=" in text, text[-2000:]
        assert "epoch 1/" not in text  # nothing trained on the CPU
    assert "has been submitted with SLURM jobid" in out


def test_a_table_rule_goes_to_the_cpu_partition(slurm, tmp_path, cli_env):
    """`device: cpu`: every job is a CPU job, on the CPU partition, the table rule among them."""
    small = {**CLUSTER, "device": "cpu", "search": {"nats": {"datasets": ["cifar10"], "algorithms": ["rarts"]}}}
    wd = scratch(tmp_path, small)
    finish(snakemake(wd, cli_env, "results/table4.csv", *SLURM_FLAGS, *QUICK, "config/extra.yaml"))
    jobs = slurm_jobs()
    for rule in ("table4", "search_nats", "nats_score"):
        (job,) = jobs[rule]
        assert job["Partition"] == "cpu" and job["JobState"] == "COMPLETED" and "gpu" not in job.get("TresPerJob", ""), job
        assert job["CPUs/Task"] == "1" and job["TimeLimit"] == f"00:{CAP_MIN}:00", job  # quick.yaml: 1 thread
    assert "RARTS" in (wd / "results" / "table4.csv").read_text()


def _running_job_ids():
    out = subprocess.run(["squeue", "-h", "-t", "R", "-o", "%i"], capture_output=True, text=True).stdout
    return [j for j in out.split() if j]


def test_cancelled_training_is_retried_and_resumes_to_the_same_result(slurm, tmp_path, cli_env):
    longer = {"cluster": {**CLUSTER["cluster"], "spare_retries": 1},  # the retry that resumes
              "device": "cpu", "train": {"cifar": {"epochs": 4, "max_steps_per_epoch": 10}}}
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


def test_a_second_cluster_waits_for_the_first_and_leaves_its_config(slurm, tmp_path):
    """A second LocalSlurm (another pytest-xdist worker's) waits while this one runs: it neither rewrites
    this cluster's slurm.conf nor, failing to start beside it, deletes it (CI hung on that)."""
    conf = (CONF_DIR / "slurm.conf").read_text()
    start = (f"import sys; sys.path.insert(0, {str(REPO / 'tests')!r}); from pathlib import Path; "
             f"from slurm_cluster import LocalSlurm; LocalSlurm(Path({str(tmp_path)!r})).start()")
    second = subprocess.run(["timeout", "10", sys.executable, "-c", start], capture_output=True, text=True)
    assert second.returncode == 124, second.stderr[-2000:]  # still waiting when its time ran out
    assert (CONF_DIR / "slurm.conf").read_text() == conf
    assert subprocess.run(["squeue"], capture_output=True).returncode == 0
