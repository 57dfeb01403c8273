"""The SLURM path for real: a local single-node SLURM with a CPU (default), a GPU and preemption
partitions runs slices of the offline pipeline through `--executor slurm` with the project's profile,
under proctrack/cgroup where this machine allows it (SIGTERM reaches only a job step's tasks, as on
most clusters). GPU rules land on the GPU partition with the CPUs, GPUs, one node, memory and capped
wall time the config asks for, CPU rules on the CPU partition; a job given GPUs this machine cannot
use stops instead of running on the CPU. A cluster's faults: a training stopped by its time limit, a
scancel or a preemption (REQUEUE and CANCEL) resumes from the step where SIGTERM stopped it, a killed
Snakemake's rerun takes its running job over, and the controller job requeues itself, each to the
uninterrupted result without a hang or a spent retry."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import yaml

from conftest import BIN, REPO
from slurm_cluster import CONF_DIR, CPU_MAX_MIN, LocalSlurm, Unavailable, cgroup_v1_freezer

# one worker runs them all (`--dist loadfile`): they share a module-wide slurm (should a second worker
# bring one up anyway, LocalSlurm's lock makes it wait for the first to stop)
pytestmark = [pytest.mark.slow]

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
# what most clusters run (SIGTERM reaches only a job step's tasks), where this machine allows it; the
# whole-tree case is the `linuxproc` fixture's
PROCTRACK = "cgroup" if cgroup_v1_freezer() else "linuxproc"


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"), PROCTRACK)
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
    for name in ("Snakefile", "workflow", "config"):
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


# -- faults: a time limit, a scancel, preemption, a killed controller ------------------------------
# One CIFAR retraining, 2 epochs of STEPS steps; in the SLURM runs each step is paced (RARTS_STEP_SLEEP_S)
# so that a stop lands inside an epoch on any host (the log has no progress bar to watch: no terminal). Pacing changes no number: every run must end with
# the history of one uninterrupted run, and every retry must resume from the step where it stopped.
STEPS = 12
TARGET = "results/train/cifar/DARTS_V2/metrics.json"
TRAINING = {"device": "cpu", "train": {"cifar": {"epochs": 2, "max_steps_per_epoch": STEPS}}}
TRAIN_LOG = "results/logs/train/cifar/DARTS_V2.log"
CKPT = "results/.checkpoints/train/cifar/DARTS_V2/ckpt.pt"


def training(**cluster):
    return {**TRAINING, "cluster": {**CLUSTER["cluster"], **cluster}}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted training, run locally (no pacing): its history."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    ref = scratch(tmp_path_factory.mktemp("reference"), training())
    finish(snakemake(ref, env, TARGET, "--cores", "2", *QUICK, "config/extra.yaml"))
    return json.loads((ref / TARGET).read_text())["history"]


def same_history(wd, reference, out=""):
    got = json.loads((wd / TARGET).read_text())["history"]
    for key in ("train_loss", "test_loss", "test_acc"):
        assert [h[key] for h in got] == [h[key] for h in reference], (key, out[-3000:])


PACE = 1.0  # seconds a step; an epoch about 12 s


def start_training(wd, env, pace=PACE, *flags):
    env = {**env, "RARTS_STEP_SLEEP_S": str(pace)}
    return snakemake(wd, env, TARGET, *SLURM_FLAGS, *flags, *QUICK, "config/extra.yaml")


def wait_for(proc, what, predicate, timeout=300):
    deadline = time.time() + timeout
    while not predicate():
        assert proc.poll() is None, proc.communicate()[0][-4000:]
        assert time.time() < deadline, f"{what} did not happen in {timeout} s\n{cluster_state()}"
        time.sleep(0.5)


def into_the_second_epoch(proc, wd):
    """Wait for the checkpoint of the first epoch, then a few paced steps more."""
    wait_for(proc, "the first epoch's checkpoint", lambda: (wd / CKPT).exists())
    time.sleep(3 * PACE)


RESUMED = re.compile(r"resumed from \S+ at epoch (\d+), step (\d+)")


class Resumes(threading.Thread):
    """Every attempt's resume line, read from the training's log while the run goes: each retry rewrites
    the log, and how many attempts a time limit makes depends on the host's speed."""

    def __init__(self, wd):
        super().__init__(daemon=True)
        self.log, self.seen, self.done = wd / TRAIN_LOG, [], threading.Event()
        self.start()

    def run(self):
        while not self.done.wait(0.2):
            self._read()

    def _read(self):
        try:
            text = self.log.read_text()
        except OSError:
            return
        for found in RESUMED.findall(text):
            if found not in self.seen:
                self.seen.append(found)

    def stop(self) -> list[tuple[int, int]]:
        self.done.set()
        self.join()
        self._read()
        return [(int(epoch), int(step)) for epoch, step in self.seen]


def resumed_mid_epoch(resumes: Resumes):
    """An attempt resumed inside an epoch: from a checkpoint after step 1..STEPS, before the epoch's
    evaluation, which only the SIGTERM stop writes (an epoch's own checkpoint is at step 0, and a
    SIGKILL writes none)."""
    seen = resumes.stop()
    assert any(0 < step <= STEPS for _, step in seen), (seen, resumes.log.read_text()[-3000:])


def test_a_time_limit_mid_epoch_checkpoints_and_the_retry_resumes_there(slurm, tmp_path, cli_env, reference):
    """An epoch longer than the job's wall time (1 minute): SLURM's SIGTERM at the limit reaches the
    training through the job step (under proctrack/cgroup only the step's task gets it), the training
    checkpoints after its step in flight, and the retry resumes from that step."""
    wd = scratch(tmp_path, training(max_runtime_min=1, min_runtime_min=1, spare_retries=3))
    resumes = Resumes(wd)
    proc = start_training(wd, cli_env, 4)  # 24 steps of 4 s: the first job's limit falls inside the run
    out = finish(proc, timeout=900)
    assert "TIMEOUT" in out, out[-3000:]
    resumed_mid_epoch(resumes)
    same_history(wd, reference, out)


def test_a_scancelled_training_checkpoints_mid_epoch_and_resumes(slurm, tmp_path, cli_env, reference):
    wd = scratch(tmp_path, training(spare_retries=1))
    resumes = Resumes(wd)
    proc = start_training(wd, cli_env)
    into_the_second_epoch(proc, wd)
    subprocess.run(["scancel", *_running_job_ids()], check=True)
    out = finish(proc)
    resumed_mid_epoch(resumes)
    same_history(wd, reference, out)


@pytest.fixture
def linuxproc(slurm, tmp_path):
    """The whole-tree case: for one test the local SLURM runs proctrack/linuxproc, which sends SIGTERM to
    every process of a job (the job step's Snakemake, the relay's target and the training itself), so
    the training hears it twice; then the module's cluster comes back."""
    if slurm.proctrack == "linuxproc":
        yield slurm
        return
    slurm.stop()
    # a short folder: slurmstepd's sockets live in its spool, and a Unix socket's path holds 108 bytes
    other = LocalSlurm(Path(tempfile.mkdtemp(prefix="rarts-slurm-")), "linuxproc")
    try:
        yield other.start()
    finally:
        other.stop()
        shutil.rmtree(other.tmp, ignore_errors=True)
        slurm.start()


def test_a_scancelled_training_checkpoints_once_under_linuxproc_too(linuxproc, tmp_path, cli_env, reference):
    test_a_scancelled_training_checkpoints_mid_epoch_and_resumes(linuxproc, tmp_path, cli_env, reference)


def preempt() -> None:
    """A job in the urgent partition that needs every CPU of the node: it takes them from the training."""
    subprocess.run(["sbatch", "-p", "urgent", "-c", "32", "-t", "1", "-o", "/dev/null", "--wrap", "sleep 2"],
                   check=True, capture_output=True)


@pytest.mark.parametrize("partition", ["gpu", "gpucancel"])  # PreemptMode=REQUEUE, PreemptMode=CANCEL
def test_a_preempted_training_resumes_and_the_run_never_hangs(slurm, tmp_path, cli_env, reference, partition):
    """REQUEUE: SLURM requeues the job itself (`slurm-requeue` in the profile). CANCEL: the job ends
    PREEMPTED, which the plugin would wait on forever; the controller requeues it (rarts.pipeline.preemption).
    No retry is spent (spare_retries 0): the same SLURM job runs again and resumes."""
    # under `device: cpu` the training is a CPU job: both kinds go to the partition under test
    wd = scratch(tmp_path, training(gpu_partition=partition, cpu_partition=partition, spare_retries=0))
    resumes = Resumes(wd)
    proc = start_training(wd, cli_env)
    into_the_second_epoch(proc, wd)
    jobs = _running_job_ids()
    preempt()
    out = finish(proc, timeout=600)
    resumed_mid_epoch(resumes)
    same_history(wd, reference, out)
    states = subprocess.run(["scontrol", "show", "job", jobs[0]], capture_output=True, text=True).stdout
    assert "Restarts=1" in states, states  # the same job, requeued once
    if partition == "gpucancel":
        assert f"SLURM job {jobs[0]} was preempted (cancelled): requeued" in out


def test_a_killed_controllers_rerun_takes_over_its_running_job(slurm, tmp_path, cli_env, reference):
    """Snakemake SIGKILLed while its training runs (a login session ends): the same command again
    resubmits the job, whose copy asks the orphaned one to checkpoint and stop, and resumes from its
    step. No retry is spent (spare_retries 0) and no step is done twice."""
    wd = scratch(tmp_path, training(spare_retries=0))
    resumes = Resumes(wd)
    first = start_training(wd, cli_env, 3.5)  # 24 steps: the orphan still trains when its copy starts
    wait_for(first, "the training", lambda: (wd / TRAIN_LOG).exists() and _running_job_ids())
    time.sleep(3 * PACE)
    orphan = _running_job_ids()
    first.kill()
    first.communicate()
    assert _running_job_ids() == orphan  # the job outlives its controller
    out = finish(start_training(wd, cli_env), timeout=600)
    assert "removed the lock" in out  # no --unlock needed
    resumed_mid_epoch(resumes)
    assert "took the checkpoint over" in (wd / TRAIN_LOG).read_text()
    same_history(wd, reference, out)


def job_state(job: str) -> dict:
    out = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    return dict(re.findall(r"(\S+?)=(\S*)", out))


def test_the_controller_job_requeues_itself_and_finishes_the_run(slurm, tmp_path, cli_env, reference):
    """`make controller`'s job (workflow/scripts/controller.sh), given 2 minutes: USR1 a minute before
    its limit, it requeues itself while the training runs on; its next start submits the training
    anew, which takes the running one over and resumes from its step; the run ends identical."""
    wd = scratch(tmp_path, training(spare_retries=0))
    resumes = Resumes(wd)
    (wd / "results" / "logs").mkdir(parents=True)
    env = {k: v for k, v in cli_env.items() if not k.startswith(("SBATCH_", "SLURM_"))}
    env["RARTS_STEP_SLEEP_S"] = "4"  # 24 steps: the training outlives the controller's first start
    job = subprocess.run(["sbatch", "--parsable", "-p", "cpu", "-t", "2", "--signal=B:USR1@60",
                          "workflow/scripts/controller.sh", TARGET, *SLURM_FLAGS[2:], *QUICK, "config/extra.yaml"],
                         cwd=wd, env=env, capture_output=True, text=True, check=True).stdout.strip()
    deadline = time.time() + 900
    while job_state(job).get("JobState") not in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"):
        assert time.time() < deadline, f"the controller did not end in 900 s\n{cluster_state()}"
        time.sleep(2)
    log = (wd / "results" / "logs" / f"controller-{job}.log").read_text()
    state = job_state(job)
    assert state["JobState"] == "COMPLETED" and int(state["Restarts"]) >= 1, (state, log[-4000:])
    assert "requeueing SLURM job" in log and "snakemake ended with status 0" in log
    resumed_mid_epoch(resumes)
    same_history(wd, reference, log)


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
