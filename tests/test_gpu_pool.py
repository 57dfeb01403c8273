"""One machine's GPU pool (rarts.pipeline.gpu_pool): distinct GPUs per job, claims that die with their job, waits
that sleep, timing jobs alone, and the rules and the jobs counting the same GPUs."""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import BIN, REPO
from rarts.pipeline import gpu_pool
from rarts.pipeline.errors import DeviceError

HOLDER = """
import sys, time
from pathlib import Path
from rarts.pipeline import gpu_pool
c = gpu_pool.claim(int(sys.argv[1]), sys.argv[2].split(","), slots=int(sys.argv[3]), alone=sys.argv[4] == "1",
                   directory=Path(sys.argv[5]))
print(",".join(c.ids), flush=True)
time.sleep(600)
"""


def holder(tmp_path, k=1, ids="0", slots=1, alone=False):
    """A separate process holding a claim until it is killed; returns it and the ids it holds."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(k), ids, str(slots), "1" if alone else "0",
                             str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=REPO)
    return proc, proc.stdout.readline().strip().split(",")


def claim_in_thread(*args, **kwargs):
    """claim() in a thread: (thread, result list) so a test can see whether it is still waiting."""
    out = []
    t = threading.Thread(target=lambda: out.append(gpu_pool.claim(*args, **kwargs)), daemon=True)
    t.start()
    return t, out


@pytest.mark.parametrize("env, device, expected", [
    ({"CUDA_VISIBLE_DEVICES": "2,3"}, "auto", ["2", "3"]),
    ({"CUDA_VISIBLE_DEVICES": "1,3"}, "cpu", ["1", "3"]),  # a pretend pool: claims as on a GPU machine
    ({"CUDA_VISIBLE_DEVICES": "0,-1,2"}, "auto", ["0"]),  # CUDA stops at the first invalid id
    ({"CUDA_VISIBLE_DEVICES": ""}, "auto", []),  # the user hides every GPU
    ({"CUDA_VISIBLE_DEVICES": "GPU-8a1f,GPU-77b0"}, "auto", ["GPU-8a1f", "GPU-77b0"]),
    ({}, "cpu", []),
    ({"SLURM_JOB_ID": "42"}, "auto", []),  # a SLURM job's GPUs are named by SLURM, not the driver's list
])
def test_the_pool_is_what_the_launching_process_may_use(env, device, expected):
    assert gpu_pool.pool(device, env) == expected


def test_claims_are_per_machine_and_scoped_to_a_slurm_job(tmp_path):
    assert gpu_pool.lock_dir({}) == gpu_pool.lock_dir({"PWD": "/elsewhere"}) == gpu_pool.Path(gpu_pool.LOCK_DIR)
    assert gpu_pool.lock_dir({"SLURM_JOB_ID": "7", gpu_pool.LOCKS_VARIABLE: str(tmp_path)}) == tmp_path / "slurm-7"


def test_jobs_hold_distinct_gpus_of_the_pool(tmp_path):
    ids = ["3", "5", "7"]
    first, (second, held2) = gpu_pool.claim(2, ids, directory=tmp_path), holder(tmp_path, 1, ",".join(ids))
    assert len(set(first.ids)) == 2 and set(first.ids) <= set(ids)
    assert held2 and set(held2) <= set(ids) and not set(held2) & set(first.ids)
    t, out = claim_in_thread(1, ids, directory=tmp_path)
    t.join(1.0)
    assert t.is_alive() and not out, "a fourth GPU was handed out of a pool of three"
    first.release()
    t.join(10)
    assert out and out[0].ids[0] in first.ids
    second.kill()


def test_a_job_asking_more_gpus_than_the_pool_stops_with_one_line(tmp_path):
    with pytest.raises(DeviceError, match="asks for 3 GPUs .* pool has 2"):
        gpu_pool.claim(3, ["0", "1"], directory=tmp_path)


def test_a_waiting_claim_sleeps_until_a_holder_ends_however_it_ends(tmp_path):
    proc, held = holder(tmp_path, 1, "0")
    assert held == ["0"]
    cpu0 = time.process_time()
    t, out = claim_in_thread(1, ["0"], directory=tmp_path)
    t.join(2.0)
    assert t.is_alive() and not out
    assert time.process_time() - cpu0 < 0.5, "the waiting claim spins"
    proc.send_signal(signal.SIGKILL)  # no handler, no clean-up: the kernel drops the lock
    t.join(10)
    assert out and out[0].ids == ["0"]
    out[0].release()


def test_a_sigkilled_job_leaves_no_claim(tmp_path, cli_env):
    """Through the CLI as a rule runs it: a search holding the pool's one GPU is SIGKILLed mid-run
    (RARTS_FAULT_AT_STEP), and the GPU can be claimed at once."""
    env = {**cli_env, "CUDA_VISIBLE_DEVICES": "0", gpu_pool.LOCKS_VARIABLE: str(tmp_path / "locks")}
    env.pop(gpu_pool.HELD, None)
    probe = subprocess.Popen([sys.executable, "-c", HOLDER.replace("time.sleep(600)", "sys.stdin.read()"), "1", "0",
                              "1", "0", str(tmp_path / "locks")],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert probe.stdout.readline().strip() == "0"
    job = subprocess.Popen([str(BIN / "rarts"), "--device", "cpu", "--hold-gpus", "auto", "latency-table", "--spec",
                            '{"space": {"init_channels": 4, "layers": 3, "steps": 2, "multiplier": 2, "num_classes": 10},'
                            ' "resolution": 8, "batch_size": 4, "warmup": 1, "repeats": 1000000}',
                            "--out", str(tmp_path / "lat.json")], env=env, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    probe.stdin.close()  # the job waited for the GPU the probe held; now it gets it and times for a long while
    probe.wait(10)
    for line in job.stderr:
        if "holding GPU 0" in line:
            break
    assert job.poll() is None
    t, out = claim_in_thread(1, ["0"], directory=tmp_path / "locks")
    t.join(1.0)
    assert t.is_alive(), "the running job does not hold its GPU"
    job.send_signal(signal.SIGKILL)  # no handler runs: only the kernel can let go of its claim
    job.wait(10)
    t.join(10)
    assert out and out[0].ids == ["0"]


def test_shared_gpus_take_their_slots_and_a_timing_job_holds_its_gpu_alone(tmp_path):
    a, _ = holder(tmp_path, 1, "0", slots=2)
    b, _ = holder(tmp_path, 1, "0", slots=2)  # two jobs share GPU 0 in its two slots
    t, out = claim_in_thread(1, ["0"], slots=2, directory=tmp_path)
    t.join(1.0)
    assert t.is_alive(), "a third job took a GPU of two slots"
    a.kill()
    t.join(10)
    assert out and out[0].ids == ["0"]
    out[0].release()
    timing, tout = claim_in_thread(1, ["0"], alone=True, directory=tmp_path)
    timing.join(1.0)
    assert timing.is_alive(), "the timing job shares its GPU with a running job"
    b.kill()
    timing.join(10)
    assert tout and tout[0].ids == ["0"]
    t, out = claim_in_thread(1, ["0"], slots=2, directory=tmp_path)
    t.join(1.0)
    assert t.is_alive(), "a job joined a GPU that a timing job holds"
    tout[0].release()
    t.join(10)
    assert out
    out[0].release()


def test_a_job_sees_only_its_gpus_and_its_record_names_them(tmp_path):
    env = {"CUDA_VISIBLE_DEVICES": "4,6", gpu_pool.LOCKS_VARIABLE: str(tmp_path)}
    claim = gpu_pool.hold_for_job(1, "cpu", env=env)
    assert env["CUDA_VISIBLE_DEVICES"] == claim.ids[0] and claim.ids[0] in ("4", "6")
    rec = gpu_pool.record(env)
    assert rec["gpus"] == [int(claim.ids[0])] and rec["started"] <= rec["ended"] <= time.time()
    assert gpu_pool.hold_for_job(1, "cpu", env=env) is None  # torchrun's ranks: their launcher holds them
    nothing = {"CUDA_VISIBLE_DEVICES": "4,6", gpu_pool.LOCKS_VARIABLE: str(tmp_path)}
    assert gpu_pool.hold_for_job(0, "cpu", env=nothing) is None and nothing["CUDA_VISIBLE_DEVICES"] == ""
    assert gpu_pool.record(nothing)["gpus"] == []
    claim.release()


def test_the_rules_and_the_jobs_count_the_same_gpus(cli_env, monkeypatch):
    """Every job of the paper's DAG claims (`--hold-gpus auto`) as many GPUs as its rule's `gpu`
    resource makes Snakemake count: ImageNet's four ranks, one a search, none for random."""
    from rarts.planning import plan
    from rarts.cli import gpus_wanted
    from rarts.pipeline.commands import job_options

    monkeypatch.chdir(REPO)
    jobs = plan.dry_run_jobs(["all"], [], (str(BIN / "snakemake"),))
    options = job_options(plan.load_config([]))  # what the Snakefile hands its jobs
    counted = {}
    for job in jobs:
        args = plan.parse_command(job["shell"], options)
        if args is None or args.hold_gpus is None:
            continue
        assert args.hold_gpus == "auto", job["rule"]
        assert gpus_wanted(args) == job["resources"]["gpu"], job["rule"]
        counted[job["rule"]] = gpus_wanted(args)
    assert counted["train_imagenet"] == 4 and counted["search_darts"] in (0, 1) and counted["latency_table"] == 1
    assert {"search_nats", "ablation_search", "model_latency", "train_cifar", "width_search", "width_train"} <= set(counted)


def test_a_training_with_more_ranks_than_the_pool_stops_with_one_line(tmp_path, cli_env):
    env = {**cli_env, "CUDA_VISIBLE_DEVICES": "0,1", gpu_pool.LOCKS_VARIABLE: str(tmp_path)}
    env.pop(gpu_pool.HELD, None)
    out = subprocess.run([str(BIN / "rarts"), "--device", "cpu", "--hold-gpus", "auto", "train", "--net", "imagenet",
                          "--genotype", "DARTS_V2", "--name", "x", "--gpus", "4", "--spec", "{}",
                          "--out-dir", str(tmp_path / "out"), "--ckpt", str(tmp_path / "ckpt.pt")],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1].startswith("rarts train: this job asks for 4 GPUs and this machine's "
                                                         "GPU pool has 2 (0,1")


@pytest.mark.slow
def test_a_pool_changes_local_runs_only(cli_env, tmp_path):
    """With GPUs visible to the Snakemake process, a local run counts them and its GPU jobs hold them (even
    under `device: cpu`: a pretend pool) and reserve their cores; a run through the SLURM profile asks the
    cluster exactly as without them (no GPUs under `device: cpu`, the config's threads), and a report
    (no --cores) still builds its DAG."""
    from test_workflow import copy_workflow

    work = copy_workflow(tmp_path)
    (work / "cpu.yaml").write_text("device: cpu\nlocal: {cpus_per_gpu: 3}\n")
    env = {**cli_env, "CUDA_VISIBLE_DEVICES": "0,1"}

    def dry(*args):
        out = subprocess.run([str(BIN / "snakemake"), "-n", *args, "results/search/darts/rarts/seed0/genotype.json",
                              "--configfile", "config/quick.yaml", "cpu.yaml"], cwd=work, env=env,
                             capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-3000:]
        return out.stdout

    local = dry("--cores", "8")
    assert "gpu=1," in local and "threads: 3" in local
    cluster = dry("--workflow-profile", "workflow/profiles/slurm")
    assert "gpu=0," in cluster and "threads: 3" not in cluster and "gpu=1," not in cluster
