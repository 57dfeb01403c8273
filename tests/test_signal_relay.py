"""SIGTERM past a Snakemake job step, with real processes and signals: the relay passes it to the job the
rule's shell `exec`s, and a workflow job takes an older process's checkpoint over (rarts.pipeline.locks)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from test_search_loop import _search_cmd, standin_split  # noqa: F401 (a fixture)

# Stands for the Snakemake that srun starts in a SLURM job: the Snakefile (here: the relay) is read
# first, then the scheduler sets a SIGTERM handler that passes nothing on, then the rule's command runs
# as `bash -c "set -euo pipefail; exec …"`. The job records its SIGTERM and exits 143.
STEP = """
import signal, subprocess, sys
from rarts.pipeline import signal_relay
if sys.argv[1] == "relay":
    assert signal_relay.install()
signal.signal(signal.SIGTERM, lambda *a: None)
job = "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(143)); print('job up', flush=True); time.sleep(60)"
proc = subprocess.Popen(["bash", "-c", f"set -euo pipefail; exec {sys.executable} -c {job!r}"])
sys.exit(proc.wait())
"""


@pytest.mark.parametrize("relay", [True, False])
def test_a_job_steps_sigterm_reaches_the_job_only_through_the_relay(relay):
    step = subprocess.Popen([sys.executable, "-c", STEP, "relay" if relay else "none"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert step.stdout.readline().strip() == "job up"
        step.send_signal(signal.SIGTERM)  # what slurmstepd does under proctrack/cgroup: the task only
        if relay:
            assert step.wait(timeout=20) == 143  # the job's own exit, passed up
        else:
            with pytest.raises(subprocess.TimeoutExpired):  # the job never heard of it
                step.wait(timeout=3)
    finally:
        subprocess.run(["pkill", "-KILL", "-P", str(step.pid)])  # the job, where it outlived the test
        step.kill()
        step.wait()


def test_the_relay_is_for_job_step_tasks_only():
    from rarts.pipeline.signal_relay import in_job_step

    assert in_job_step({"SLURM_STEP_ID": "0", "SLURM_JOB_ID": "7"})
    assert not in_job_step({"SLURM_JOB_ID": "7"})  # a batch script: its Snakemake submits the step
    assert not in_job_step({})


def test_a_newer_slurm_job_is_never_stopped(monkeypatch, tmp_path):
    """Take-over goes one way, from older to newer: a job of a killed Snakemake that starts late finds
    its checkpoint held by the newer Snakemake's copy and leaves it alone (scancel would be fatal)."""
    from rarts.pipeline import locks

    calls = tmp_path / "calls"
    fake = tmp_path / "scancel"
    fake.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "100")
    assert locks.stop_older("4242 node7 101\n") is None
    assert not calls.exists()
    assert locks.stop_older("4242 node7 99\n") == "scancel 99"
    assert calls.read_text().split() == ["99"]


@pytest.mark.slow
def test_a_second_run_takes_an_older_runs_checkpoint_over_and_the_result_is_unchanged(tmp_path, standin_split,
                                                                                        cli_env):
    """A search left running (its Snakemake killed) and the same search started again with
    `--take-over`: the first checkpoints inside its epoch and stops, the second resumes there, and the
    result is the uninterrupted one's."""
    root, split = standin_split
    subprocess.run(_search_cmd(root, split, tmp_path / "ref", tmp_path / "ref.pt"), check=True,
                   env=cli_env, capture_output=True)
    cmd = ["rarts", "--take-over", *_search_cmd(root, split, tmp_path / "run", tmp_path / "run.pt")[1:]]
    paced = {**cli_env, "RARTS_STEP_SLEEP_S": "2"}  # about 6 steps an epoch: 12 s
    first = subprocess.Popen(cmd, env=paced, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "run.pt.lock").exists():  # the first holds its checkpoint: it is training
        assert first.poll() is None and time.time() < deadline
        time.sleep(0.2)
    second = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=300)
    first_err = first.communicate(timeout=60)[1]
    assert first.returncode == 143, first_err[-2000:]
    assert "stop requested; checkpoint written" in first_err
    assert second.returncode == 0, second.stderr[-2000:]
    assert "took the checkpoint over" in second.stderr and "resumed from" in second.stderr
    ref = json.loads((tmp_path / "ref" / "history.json").read_text())
    run = json.loads((tmp_path / "run" / "history.json").read_text())
    assert ref["epochs"][-1]["alpha"] == run["epochs"][-1]["alpha"]
