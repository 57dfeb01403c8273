"""Exact resume of a search after a kill or a SIGTERM, and the non-finite-loss stop."""

import json
import subprocess

import pytest
import torch

from rarts.data import standin
from rarts.data.split import write_split
from rarts.pipeline.errors import NonFiniteLoss
from rarts.core.signals import Preempted
from rarts.search.loop import SearchData, SearchLoop
from rarts.spaces import DartsSearchSpace

HP = dict(epochs=2, batch_size=8, max_steps_per_epoch=3, eval_batches=2, resolution=8,
          w_lr=0.025, w_lr_min=0.001, w_momentum=0.9, w_weight_decay=3e-4, w_nesterov=False,
          grad_clip=5.0, arch_lr=3e-3, arch_betas=[0.5, 0.999], arch_weight_decay=1e-3,
          augment={"crop_padding": 1, "hflip": True}, milenas={"lam": 1.0}, darts2={"perturbed_bn_stats": "update"},
          rarts={"lam": 1.0, "beta": 0.5, "y_init": "copy"})


def data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 8, 8, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    return SearchData(x[:32], y[:32], x[32:], y[32:])


def make_loop(algo, ckpt, on_step=None, d=None):
    return SearchLoop(small_space(), algo, 0, HP, d or data(), "cpu", ckpt, on_step=on_step)


def small_space():
    """Two intermediate nodes (5 edges): the same code paths at a third of the op count."""
    return DartsSearchSpace(init_channels=2, layers=3, steps=2, multiplier=2)


class Killed(Exception):
    pass


def kill_at(step):
    def hook(s):
        if s == step:
            raise Killed
    return hook


def assert_bit_identical(a, b, where="state"):
    """Two (nested) state dicts hold the same tensors bit for bit and the same other values."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_bit_identical(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_bit_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("algo", ["rarts", "darts2", "darts1", "milenas"])
def test_resume_after_a_kill_mid_epoch_is_exact(tmp_path, algo):
    ref = make_loop(algo, tmp_path / "ref.pt")
    ref.run()
    with pytest.raises(Killed):  # dies in epoch 2 (steps 4..6), after epoch 1's checkpoint
        make_loop(algo, tmp_path / "ck.pt", on_step=kill_at(5)).run()
    resumed = make_loop(algo, tmp_path / "ck.pt")
    resumed.run()
    for a, b in zip(ref.algo.arch, resumed.algo.arch):
        assert torch.equal(a, b)
    assert ref.algo.space.derive(ref.algo.arch) == resumed.algo.space.derive(resumed.algo.arch)
    assert [h["val_loss"] for h in ref.history] == [h["val_loss"] for h in resumed.history]
    # α, every weight copy (w, and y for RARTS) with its BN statistics, every optimizer's and
    # scheduler's state, and the data streams' positions
    assert_bit_identical(ref.job_state(), resumed.job_state())


def test_sigterm_checkpoints_mid_epoch_and_resumes_exactly(tmp_path):
    ref = make_loop("rarts", tmp_path / "ref.pt")
    ref.run()
    holder = {}

    def stop_at_2(step):
        if step == 2:
            holder["loop"].request_stop()  # what the SIGTERM handler does

    loop = make_loop("rarts", tmp_path / "ck.pt", on_step=stop_at_2)
    holder["loop"] = loop
    with pytest.raises(Preempted) as exit_info:
        loop.run()
    assert exit_info.value.code == 143
    state = torch.load(tmp_path / "ck.pt", weights_only=False)
    assert (state["epoch"], state["step"]) == (0, 2)
    resumed = make_loop("rarts", tmp_path / "ck.pt")
    resumed.run()
    assert_bit_identical(ref.job_state(), resumed.job_state())
    assert ref.history[0]["train_loss"] == resumed.history[0]["train_loss"]


def test_checkpoint_of_other_settings_is_ignored(tmp_path):
    make_loop("darts1", tmp_path / "ck.pt").run()
    other = SearchLoop(small_space(), "darts1", 1, HP, data(), "cpu", tmp_path / "ck.pt")
    assert not other.try_resume()


def test_non_finite_loss_stops_with_a_clear_message(tmp_path):
    d = data()
    d.x_train[:] = float("nan")
    with pytest.raises(NonFiniteLoss, match=r"rarts search, seed 0, epoch 0, step 0"):
        make_loop("rarts", tmp_path / "ck.pt", d=d).run()


@pytest.fixture
def standin_split(tmp_path):
    root = tmp_path / "cifar10"
    standin.write_cifar_standin("cifar10", root)
    write_split(tmp_path / "split.json", "cifar10", 1438, seed=0)
    return root, tmp_path / "split.json"


def _search_cmd(root, split, out, ckpt, algo="rarts"):
    spec = {"dataset": "cifar10", "root": str(root), "num_classes": 10, "standin": True,
            "device": "cpu", "threads": 1,
            "hp": {**HP, "init_channels": 2, "layers": 3, "steps": 4, "multiplier": 4,
                   "latency": {"enabled": False, "weight": 0.0, "algorithms": [], "table": ""}}}
    return ["rarts", "search", "--algo", algo, "--seed", "0", "--spec", json.dumps(spec),
            "--split", str(split), "--out-dir", str(out), "--ckpt", str(ckpt)]


@pytest.mark.slow
def test_hard_kill_of_the_cli_then_rerun_gives_the_uninterrupted_result(tmp_path, standin_split, cli_env):
    root, split = standin_split
    subprocess.run(_search_cmd(root, split, tmp_path / "ref", tmp_path / "ref.pt"), check=True,
                   env=cli_env, capture_output=True)
    env = {**cli_env, "RARTS_FAULT_AT_STEP": "5"}
    killed = subprocess.run(_search_cmd(root, split, tmp_path / "run", tmp_path / "run.pt"),
                            env=env, capture_output=True)
    assert killed.returncode == -9 and not (tmp_path / "run" / "genotype.json").exists()
    subprocess.run(_search_cmd(root, split, tmp_path / "run", tmp_path / "run.pt"), check=True,
                   env=cli_env, capture_output=True)
    ref = json.loads((tmp_path / "ref" / "history.json").read_text())
    run = json.loads((tmp_path / "run" / "history.json").read_text())
    assert ref["epochs"][-1]["alpha"] == run["epochs"][-1]["alpha"]
    assert ref["epochs"][-1]["genotype"] == run["epochs"][-1]["genotype"]
    for name in ("genotype.json", "cost.json", "cell.png"):
        assert (tmp_path / "run" / name).is_file()


@pytest.mark.slow
def test_random_baseline_needs_no_training(tmp_path, standin_split, cli_env):
    root, split = standin_split
    subprocess.run(_search_cmd(root, split, tmp_path / "r", tmp_path / "r.pt", algo="random"),
                   check=True, env=cli_env, capture_output=True)
    g = json.loads((tmp_path / "r" / "genotype.json").read_text())
    assert len(g["normal"]) == 8 and g["meta"]["algorithm"] == "random"


def test_loss_watch_names_the_first_non_finite_step_without_a_sync_per_step():
    from rarts.core.losses import LossWatch

    watch = LossWatch("training x", "cpu", every=4)
    for step, value in enumerate([1.0, 2.0, float("inf"), float("nan")]):
        if step < 3:
            watch.add(torch.tensor(value), 1, step)  # buffered: nothing is checked yet
    with pytest.raises(NonFiniteLoss, match=r"\(inf\) in training x, epoch 1, step 2"):
        watch.add(torch.tensor(float("nan")), 1, 3)  # the buffer is full: checked
    watch.add(torch.tensor(0.5), 2, 0)
    watch.check()  # a finite buffer passes, and the earlier losses are gone


@pytest.mark.parametrize("eval_batches, measured", [(2, 16), (0, 64)])  # 0: the configs' default, all of D_v
def test_val_metrics_are_those_of_the_eval_network_over_the_first_eval_batches(tmp_path, eval_batches, measured):
    """D_v is measured in batches of at least 256 (eval mode: the batch changes no result) over
    the images `eval_batches` of the search's batch size cover: checked by hand, batch by batch."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(96, 3, 8, 8, generator=g), torch.randint(0, 10, (96,), generator=g)
    d = SearchData(x[:32], y[:32], x[32:], y[32:])  # 64 D_v images, batch size 8
    loop = SearchLoop(small_space(), "darts1", 0, {**HP, "eval_batches": eval_batches}, d, "cpu", tmp_path / "ck.pt")
    last = loop.run()[-1]
    net = loop.algo.eval_net().eval()
    with torch.no_grad():
        logits = torch.cat([net(d.x_val[i:i + 8], loop.algo.arch) for i in range(0, measured, 8)])
    labels = d.y_val[:measured]
    assert last["val_acc"] == pytest.approx((logits.argmax(1) == labels).float().mean().item())
    assert last["val_loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, labels).item(), rel=1e-5)
