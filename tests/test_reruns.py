"""Cluster-grade reruns: crashes recover, bad state is refused loudly, finished work is kept."""

import json
import os
import stat
import subprocess
import sys
import time

import pytest
import torch

from rarts.data import cifar, imagenet, standin
from rarts.pipeline.errors import Busy, DatasetError, DiskFull, NonFiniteLoss
from rarts.pipeline.io import save_torch, write_json
from test_search_loop import _search_cmd, make_loop


# -- 3: non-finite state is never checkpointed or written ------------------------------------------
def poison_last_update(monkeypatch):
    """Make the last update of every epoch produce a NaN weight (its loss, computed before the
    update, is still finite): the divergence the per-step loss check cannot see."""
    from rarts.search.loop import SearchLoop

    original = SearchLoop.train_step

    def train_step(self):
        out = original(self)
        if self.step == self.steps_per_epoch - 1:
            with torch.no_grad():
                next(self.algo.net.parameters()).view(-1)[0] = float("nan")
        return out

    monkeypatch.setattr(SearchLoop, "train_step", train_step)


def test_a_nan_on_the_last_step_of_a_one_epoch_search_writes_nothing(tmp_path, monkeypatch):
    poison_last_update(monkeypatch)
    from rarts.cli import main

    root, split = tmp_path / "cifar10", tmp_path / "split.json"
    standin.write_cifar_standin("cifar10", root)
    from rarts.data.split import write_split

    write_split(split, "cifar10", 1438, seed=0)
    cmd = _search_cmd(root, split, tmp_path / "out", tmp_path / "ck.pt", algo="darts1")
    spec = json.loads(cmd[cmd.index("--spec") + 1])
    spec["hp"]["epochs"] = 1
    cmd[cmd.index("--spec") + 1] = json.dumps(spec)
    with pytest.raises(SystemExit) as exc:
        main(cmd[1:])
    message = str(exc.value.code)
    assert "non-finite val_loss" in message and "end of epoch 0 (after step 3)" in message
    assert not (tmp_path / "ck.pt").exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_stop_after_a_diverged_update_checkpoints_nothing(tmp_path):
    def stop_after_poison(step):
        if step == 2:
            with torch.no_grad():
                next(loop.algo.net.parameters()).view(-1)[0] = float("inf")
            loop.request_stop()

    loop = make_loop("rarts", tmp_path / "ck.pt", on_step=stop_after_poison)
    with pytest.raises(NonFiniteLoss, match=r"non-finite weights in rarts search, seed 0 at epoch 0, step 2"):
        loop.run()
    assert not (tmp_path / "ck.pt").exists()


def test_json_outputs_are_strict(tmp_path):
    with pytest.raises(ValueError, match="h.json.*NaN or infinity"):
        write_json(tmp_path / "h.json", {"epochs": [{"val_loss": float("nan")}]})
    assert not (tmp_path / "h.json").exists()


# -- 4: damaged files ----------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_corrupt_checkpoint_is_moved_aside_and_the_run_completes(tmp_path, damage, caplog):
    ref = make_loop("darts1", tmp_path / "ref.pt")
    ref.run()

    class Killed(Exception):
        pass

    def kill(step):
        if step == 5:
            raise Killed

    with pytest.raises(Killed):  # leaves a real checkpoint (end of epoch 1), then damage it
        make_loop("darts1", tmp_path / "ck.pt", on_step=kill).run()
    blob = (tmp_path / "ck.pt").read_bytes()
    (tmp_path / "ck.pt").write_bytes(blob[:len(blob) // 2] if damage == "truncate" else os.urandom(4096))
    resumed = make_loop("darts1", tmp_path / "ck.pt")
    resumed.run()  # starts afresh from the seed: the same result as the uninterrupted run
    assert all(torch.equal(a, b) for a, b in zip(ref.algo.arch, resumed.algo.arch))
    aside = list(tmp_path.glob("ck.pt.corrupt-*"))
    assert len(aside) == 1 and f"{tmp_path / 'ck.pt'} cannot be read" in caplog.text and str(aside[0]) in caplog.text


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_corrupt_cifar_batch_names_the_file_and_how_to_get_it(tmp_path, damage):
    folder = standin.write_cifar_standin("cifar10", tmp_path)
    batch = folder / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:1000] if damage == "truncate" else b"\x00garbage" * 100)
    with pytest.raises(DatasetError) as err:
        cifar.load_cifar("cifar10", tmp_path, train=True)
    assert str(batch) in str(err.value) and "cifar-10-python.tar.gz" in str(err.value)


def test_a_bad_imagenet_tree_lists_every_bad_file(tmp_path):
    root = standin.write_imagefolder_standin(tmp_path / "imagenet")
    first = sorted((root / "train").iterdir())[0]
    broken = sorted(first.iterdir())[0]
    broken.write_bytes(broken.read_bytes()[:40])  # a truncated PNG
    garbage = first / "garbage.png"
    garbage.write_bytes(b"not an image")
    (root / "train" / "n99999999").mkdir()  # an empty class, missing from val/
    with pytest.raises(DatasetError) as err:
        imagenet.verify_imagefolder(root, workers=2)
    msg = str(err.value)
    assert str(broken) in msg and str(garbage) in msg
    assert f"{root / 'train' / 'n99999999'}: no images" in msg and "only in train/: ['n99999999']" in msg


def test_a_good_imagenet_tree_passes_with_its_counts(tmp_path):
    root = standin.write_imagefolder_standin(tmp_path / "imagenet")
    counts = imagenet.verify_imagefolder(root, workers=2)
    assert counts["num_classes"] == 10 and counts["n_train"] + counts["n_val"] == 1797


@pytest.fixture
def full_disk(tmp_path):
    """A 64 KiB tmpfs (needs root); skipped, with the reason, where it cannot be mounted."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("mounting a small tmpfs needs root")
    yield mnt
    subprocess.run(["umount", "--lazy", str(mnt)], check=True)  # torch may still hold the failed file


def test_a_full_disk_says_so_and_names_the_path(full_disk):
    with pytest.raises(DiskFull, match=f"no space left .*writing {full_disk / 'ck.pt'}"):
        save_torch(full_disk / "ck.pt", {"w": torch.zeros(100_000)})  # 400 kB
    with pytest.raises(DiskFull, match=f"writing {full_disk / 'big.json'}"):
        write_json(full_disk / "big.json", {"x": list(range(100_000))})
    assert list(full_disk.iterdir()) == []  # no temp file left behind


# -- 7, 8: permissions and one process per checkpoint --------------------------------------------
@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {"a": 1})
        save_torch(tmp_path / "b.pt", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "b.pt").stat().st_mode) == mode


def test_a_second_process_on_a_checkpoint_fails_at_once(tmp_path, cli_env):
    """A real search holds its checkpoint; a second one on the same checkpoint stops within seconds,
    naming the first process, and the first goes on undisturbed."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from rarts.pipeline import locks; fd = locks.hold(sys.argv[1]); print('held', flush=True); "
        "time.sleep(60)"), str(tmp_path / "ck.pt.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.perf_counter()
        with pytest.raises(Busy, match=rf"already running in another process \(pid {holder.pid}"):
            make_loop("darts1", tmp_path / "ck.pt").run()
        assert time.perf_counter() - t0 < 10
        assert not (tmp_path / "ck.pt").exists()
    finally:
        holder.kill()
        holder.wait()
    make_loop("darts1", tmp_path / "ck.pt").run()  # the lock died with its process


def test_a_dead_snakemakes_locks_are_cleared_and_a_live_ones_kept(tmp_path):
    locks_dir = tmp_path / ".snakemake" / "locks"
    locks_dir.mkdir(parents=True)
    (locks_dir / "0.output.lock").write_text("results/x\n")
    code = ("import sys; from rarts.pipeline.locks import claim_workdir; print(len(claim_workdir(sys.argv[1])), flush=True); "
            "sys.stdin.readline()")
    first = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / ".snakemake")], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout.readline().strip() == "1"  # nobody ran: the lock was a dead run's
        (locks_dir / "0.output.lock").write_text("results/x\n")  # the live run's own lock
        second = subprocess.run([sys.executable, "-c", code, str(tmp_path / ".snakemake")], input="\n",
                                capture_output=True, text=True)
        assert second.stdout.strip() == "0" and (locks_dir / "0.output.lock").exists()
    finally:
        first.communicate("\n")


def test_without_flock_the_locks_step_aside_as_documented(tmp_path, monkeypatch, caplog):
    """On a file system that refuses flock (ENOLCK from Lustre without `-o flock`): the Snakefile still
    loads and clears nothing (docs/recovery.md: `snakemake --unlock`), a job runs with a warning that its
    checkpoint is unguarded, and a GPU claim names the folder to move."""
    import errno
    import fcntl

    from rarts.pipeline import gpu_pool, locks
    from rarts.pipeline.errors import DeviceError

    def refuse(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", refuse)
    stale = tmp_path / ".snakemake" / "locks" / "0.output.lock"
    stale.parent.mkdir(parents=True)
    stale.write_text("results/x\n")
    assert locks.claim_workdir(tmp_path / ".snakemake") == [] and stale.exists()
    ran = []
    with locks.exclusive(tmp_path / "ckpt.lock", "rarts search, seed 0"):
        ran.append(True)
    assert ran and "refuses flock" in caplog.text and "not guarded" in caplog.text
    with pytest.raises(DeviceError, match="refuses flock.*RARTS_GPU_LOCKS"):
        gpu_pool.claim(1, ["0"], directory=tmp_path / "gpu-locks")


# -- 9: numbers ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_the_config_rejects_non_finite_numbers_by_name(value):
    from rarts.pipeline.config import check_finite

    cfg = {"search": {"darts": {"w_lr": 0.025, "arch_betas": [0.5, value]}}}
    with pytest.raises(ValueError, match=r"config\.search\.darts\.arch_betas\[1\] is"):
        check_finite(cfg)
    check_finite({"search": {"darts": {"w_lr": 0.025, "arch_betas": [0.5, 0.999]}}})


@pytest.mark.parametrize("args,bad", [(["--steps", "-1"], "--steps"), (["--lr", "-1"], "--lr"),
                                      (["--lr", "nan"], "--lr"), (["--beta", "inf"], "--beta"),
                                      (["--alpha0", "nan"], "--alpha0")])
def test_the_toy_cli_rejects_bad_numbers_by_name(args, bad, capsys):
    from rarts.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["toy", "--method", "rarts", *args])
    assert exc.value.code == 2 and f"argument {bad}" in capsys.readouterr().err


def test_locks_module_has_no_torch():
    """The Snakefile imports these at every parse (in every job step too): no torch."""
    code = ("import sys, rarts.pipeline.locks, rarts.pipeline.names, rarts.pipeline.config, rarts.pipeline.signal_relay, rarts.pipeline.preemption; "
            "print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


# -- 6: MLflow ----------------------------------------------------------------------------------------
def _log(tmp_path, search_run=None):
    from rarts.report.tracking import log_reproduction

    spec = {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "e", "run_name": "quick",
            "store_dir": str(tmp_path)}
    return log_reproduction(spec, {"a": {"b": 1}}, [], [search_run] if search_run else [], tmp_path / "out.json")


def test_a_killed_and_rerun_logger_leaves_one_finished_run(tmp_path):
    from mlflow.tracking import MlflowClient

    run_dir = tmp_path / "search"
    run_dir.mkdir()
    (run_dir / "history.json").write_text(json.dumps({
        "algorithm": "rarts", "seed": 0, "dataset": "cifar10", "standin": True,
        "epochs": [{"epoch": 1, "val_acc": 0.5, "alpha": {"normal": [[0.5, 0.5]]}}]}))
    first = _log(tmp_path, run_dir)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    # what a logger killed mid-way leaves: a RUNNING run of the same name with a nested run
    killed = client.create_run(first["experiment_id"], run_name="quick", tags={"kind": "reproduction"})
    client.create_run(first["experiment_id"], run_name="search-x",
                      tags={"kind": "search", "mlflow.parentRunId": killed.info.run_id})
    final = _log(tmp_path, run_dir)
    runs = client.search_runs([first["experiment_id"]], "tags.mlflow.runName = 'quick'")
    assert [(r.info.run_id, r.info.status) for r in runs] == [(final["run_id"], "FINISHED")]
    children = client.search_runs([first["experiment_id"]], "tags.kind = 'search'")
    assert [c.data.tags["mlflow.parentRunId"] for c in children] == [final["run_id"]]


def test_a_logger_that_fails_ends_its_run_failed(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from rarts.report import tracking

    def boom(*args):
        raise OSError("disk gone")

    monkeypatch.setattr(tracking, "_log_search_run", boom)
    with pytest.raises(OSError):
        _log(tmp_path, tmp_path)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("e").experiment_id], "tags.mlflow.runName = 'quick'")
    assert [r.info.status for r in runs] == ["FAILED"]
