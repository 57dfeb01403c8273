"""Multi-process training under torchrun (gloo ranks on CPU) survives preemption whatever the order in
which its ranks see the stop: they agree on the step, write one checkpoint holding every rank's RNG,
and the rerun ends bit for bit where an uninterrupted run ends; a rerun on another process count
resumes too."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from test_train import CIFAR_HP, IMAGENET_HP, _spec, standins  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow


def torchrun(cli_env, ranks, spec, net, out, ckpt, env=None, wait=True):
    cmd = [f"{cli_env['PATH'].split(os.pathsep)[0]}/torchrun", "--standalone", f"--nproc_per_node={ranks}",
           "-m", "rarts", "train", "--net", net, "--genotype", "DARTS_V2", "--name", "ddp", "--spec", json.dumps(spec),
           "--out-dir", str(out), "--ckpt", str(ckpt)]
    proc = subprocess.Popen(cmd, env={**cli_env, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    return proc.communicate(timeout=240)[0] if wait else proc  # a rank left alone hangs: fail in minutes


def state(ckpt):
    return torch.load(ckpt, weights_only=False)


def assert_same_weights(a, b):
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for sa, sb in zip(a["opt"]["state"].values(), b["opt"]["state"].values()):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])


def test_ranks_that_see_the_stop_a_step_apart_stop_after_the_same_step(tmp_path, standins, cli_env):
    """Rank 0 is asked to stop after global step 5, rank 1 after step 6 (RARTS_STOP_AT_STEP, what a
    SIGTERM does). Both stop after step 6 (the request of step 5, agreed one step later), with one
    checkpoint and no per-rank files; the rerun ends with an uninterrupted run's weights, optimizer
    and every rank's RNG (drop path on: its masks are drawn per rank)."""
    hp = {**CIFAR_HP, "epochs": 3, "max_steps_per_epoch": 4, "drop_path_prob": 0.3}
    spec = {**_spec(standins, "cifar"), "hp": hp}
    torchrun(cli_env, 2, spec, "cifar", tmp_path / "ref", tmp_path / "ref.pt")
    out = torchrun(cli_env, 2, spec, "cifar", tmp_path / "run", tmp_path / "run.pt", env={"RARTS_STOP_AT_STEP": "5,6"})
    assert "stop requested; checkpoint written at epoch 1 step 2" in out, out[-3000:]
    saved = state(tmp_path / "run.pt")
    assert (saved["epoch"], saved["step"]) == (1, 2) and len(saved["ranks"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("run.")) == ["run.pt", "run.pt.lock"]
    assert not (tmp_path / "run" / "metrics.json").exists()
    torchrun(cli_env, 2, spec, "cifar", tmp_path / "run", tmp_path / "run.pt")
    assert_same_weights(state(tmp_path / "ref.pt"), state(tmp_path / "run.pt"))
    ref, run = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("ref", "run"))
    assert [h["train_loss"] for h in ref["history"]] == [h["train_loss"] for h in run["history"]]


def test_sigterm_to_every_process_of_the_job_with_workers_resumes_exactly(tmp_path, standins, cli_env):
    """SIGTERM to torchrun, both ranks and their two DataLoader workers each (as SLURM signals a job):
    the workers ignore it, the ranks agree on a step inside an epoch and checkpoint there, and the
    rerun ends bit-identical to the uninterrupted run."""
    hp = {**IMAGENET_HP, "epochs": 4, "max_steps_per_epoch": 4, "workers": 2, "drop_path_prob": 0.3}
    spec = _spec(standins, "imagenet") | {"hp": hp}
    torchrun(cli_env, 2, spec, "imagenet", tmp_path / "ref", tmp_path / "ref.pt")
    proc = torchrun(cli_env, 2, spec, "imagenet", tmp_path / "run", tmp_path / "run.pt", wait=False)
    deadline = time.time() + 300
    while not (tmp_path / "run.pt").exists():  # the end of epoch 1: the job is training epoch 2
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[0][-3000:]
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGTERM)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode != 0 and "stop requested; checkpoint written" in out, out[-3000:]
    assert "DataLoader worker" not in out, out[-3000:]  # no worker died under the signal
    saved = state(tmp_path / "run.pt")
    assert saved["step"] >= 1, (saved["epoch"], saved["step"])  # inside an epoch, where the signal came
    torchrun(cli_env, 2, spec, "imagenet", tmp_path / "run", tmp_path / "run.pt")
    assert_same_weights(state(tmp_path / "ref.pt"), state(tmp_path / "run.pt"))


def test_a_rerun_on_another_process_count_resumes(tmp_path, standins, cli_env):
    """Stopped on 2 ranks, rerun on 1 process: it resumes where it stopped (the sample order does not
    depend on the count) and says so, instead of starting afresh."""
    hp = {**CIFAR_HP, "epochs": 2, "max_steps_per_epoch": 4}
    spec = {**_spec(standins, "cifar"), "hp": hp}
    torchrun(cli_env, 2, spec, "cifar", tmp_path / "run", tmp_path / "run.pt", env={"RARTS_STOP_AT_STEP": "2,2"})
    one = subprocess.run([sys.executable, "-m", "rarts", "train", "--net", "cifar", "--genotype", "DARTS_V2", "--name",
                          "ddp", "--spec", json.dumps(spec), "--out-dir", str(tmp_path / "run"), "--ckpt",
                          str(tmp_path / "run.pt")], env=cli_env, capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    assert "resumed on 1 processes from a checkpoint written by 2" in one.stderr
    assert "resumed from" in one.stderr and "at epoch 0, step 3" in one.stderr
