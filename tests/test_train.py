"""Evaluation networks, the trainer (exact resume on both data paths, DDP), transfer and tables."""

import json
import os
import signal
import subprocess
import sys

import pandas as pd
import pytest
import torch

from rarts.data import standin
from rarts.models.darts_eval import EvalCell, NetworkCIFAR, drop_path
from rarts.models.genotypes import DARTS_V2, Genotype
from rarts.train.run import train_main

CIFAR_HP = dict(seed=0, init_channels=4, layers=3, auxiliary=True, auxiliary_weight=0.4,
                drop_path_prob=0.3, epochs=2, batch_size=32, schedule="cosine", lr=0.05, lr_min=0.0,
                lr_gamma=0.1, momentum=0.9, weight_decay=3e-4, grad_clip=5.0, resolution=16,
                crop_padding=2, hflip=True, cutout=4, max_steps_per_epoch=4, amp=False,
                channels_last=False, limit_train=256)
IMAGENET_HP = dict(CIFAR_HP, schedule="exponential", lr_gamma=0.97, label_smoothing=0.1, resolution=32,
                   crop_scale=[0.08, 1.0], color_jitter=[0.4, 0.4, 0.4, 0.2], workers=0,
                   batch_size=16)


@pytest.mark.parametrize("net,expected", [("cifar", 3349342), ("imagenet", 4718752)])
def test_published_darts_v2_parameter_counts(cli_env, net, expected):
    out = subprocess.run(["rarts", "params", "--net", net, "--genotype", "DARTS_V2"],
                         capture_output=True, text=True, check=True, env=cli_env).stdout
    assert int(out.strip().splitlines()[-1]) == expected  # official: 3.3 M and 4.7 M


def test_drop_path_zeroes_whole_samples_and_rescales():
    torch.manual_seed(0)
    x = torch.ones(400, 2, 3, 3)
    y = drop_path(x, 0.25)
    per_sample = y.flatten(1)
    assert per_sample.unique().tolist() == pytest.approx([0.0, 1 / 0.75])
    assert (per_sample == 0).all(1).float().mean().item() == pytest.approx(0.25, abs=0.07)
    assert torch.equal(drop_path(x, 0.0), x)


def test_drop_path_never_touches_identity_ops():
    skips = [("skip_connect", 0), ("skip_connect", 1)] * 4
    g = Genotype(skips, [2, 3, 4, 5], skips, [2, 3, 4, 5])
    cell = EvalCell(g, 4, 4, 4, reduction=False, reduction_prev=False).train()
    s0, s1 = torch.randn(8, 4, 6, 6), torch.randn(8, 4, 6, 6)
    torch.manual_seed(0)
    assert torch.equal(cell(s0, s1, 0.99), cell(s0, s1, 0.0))


def test_cifar_network_outputs_and_aux_only_in_training():
    net = NetworkCIFAR(DARTS_V2, c=4, layers=5, num_classes=7)
    logits, aux = net.train()(torch.randn(2, 3, 16, 16))
    assert logits.shape == aux.shape == (2, 7)
    assert net.eval()(torch.randn(2, 3, 16, 16))[1] is None


@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    standin.write_cifar_standin("cifar10", root / "cifar10")
    standin.write_imagefolder_standin(root / "imagenet")
    return root


def _spec(standins, net):
    if net == "cifar":
        return {"dataset": "cifar10", "root": str(standins / "cifar10"), "standin": True,
                "device": "cpu", "threads": 1, "hp": CIFAR_HP}
    return {"dataset": "imagenet", "root": str(standins / "imagenet"), "standin": True, "device": "cpu",
            "threads": 1, "hp": IMAGENET_HP, "classes": ["n00000001", "n00000003", "n00000007"]}


class Killed(Exception):
    pass


@pytest.mark.parametrize("net", ["cifar", "imagenet"])
def test_training_resumes_exactly_after_a_kill_mid_epoch(tmp_path, standins, net):
    spec = _spec(standins, net)
    ref = train_main(net, "DARTS_V2", "ref", spec, tmp_path / "ref", tmp_path / "ref.pt")

    def kill(step):
        if step == 6:  # epoch 2, step 2: after epoch 1's checkpoint
            raise Killed

    with pytest.raises(Killed):
        train_main(net, "DARTS_V2", "run", spec, tmp_path / "run", tmp_path / "run.pt", on_step=kill)
    assert not (tmp_path / "run" / "metrics.json").exists()
    resumed = train_main(net, "DARTS_V2", "run", spec, tmp_path / "run", tmp_path / "run.pt")
    for key in ("train_loss", "test_loss", "test_acc", "lr"):
        assert [h[key] for h in ref["history"]] == [h[key] for h in resumed["history"]], key
    assert ref["test_error"] == resumed["test_error"]
    if net == "imagenet":
        assert resumed["num_classes"] == 3  # the class subset, read in place


@pytest.mark.parametrize("net", ["cifar", "imagenet"])
def test_sigterm_mid_epoch_checkpoints_there_and_resumes_to_bit_identical_weights(tmp_path, standins, net):
    """A real SIGTERM in epoch 2 (after epoch 1's checkpoint) checkpoints at that step; the resumed
    run continues mid-epoch and ends with the uninterrupted run's weights and optimizer state, bit
    for bit. ImageNet reads its folder with 2 DataLoader workers (their RNG is restored too)."""
    from rarts.core import checkpoint
    from rarts.core.signals import Preempted

    spec = _spec(standins, net)
    if net == "imagenet":
        spec = {**spec, "hp": {**spec["hp"], "workers": 2}}
    train_main(net, "DARTS_V2", "a", spec, tmp_path / "a", tmp_path / "a.pt")
    with pytest.raises(Preempted):
        train_main(net, "DARTS_V2", "b", spec, tmp_path / "b", tmp_path / "b.pt",
                   on_step=lambda s: os.kill(os.getpid(), signal.SIGTERM) if s == 6 else None)
    saved = torch.load(tmp_path / "b.pt", weights_only=False)
    assert (saved["epoch"], saved["step"]) == (1, 2)  # mid-epoch, not the epoch boundary
    train_main(net, "DARTS_V2", "b", spec, tmp_path / "b", tmp_path / "b.pt")
    a, b = (torch.load(tmp_path / f"{n}.pt", weights_only=False) for n in "ab")
    assert a["model"].keys() == b["model"].keys() and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    for sa, sb in zip(a["opt"]["state"].values(), b["opt"]["state"].values()):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    assert checkpoint.load(tmp_path / "a.pt", "other-fingerprint") is None


@pytest.mark.slow
def test_two_process_ddp_on_cpu_equals_one_process_on_the_same_global_batch(tmp_path, standins, cli_env):
    """torchrun with 2 gloo processes (each half of every global batch, BN over the global batch)
    ends with the weights and BN statistics of a plain 1-process run. Drop path is off (its masks
    are drawn per rank); two epochs of one step each, because on this tiny network float rounding
    grows about tenfold a step (two 1-process runs at 1 and 2 threads differ by 7e-4 after 4 steps).
    The job's 2 threads are shared by the ranks (4 gloo ranks each taking a 2-core job's 2 threads made
    the rehearsal's ImageNet step 12x slower)."""
    hp = {**CIFAR_HP, "drop_path_prob": 0.0, "epochs": 2, "max_steps_per_epoch": 1}
    args = ["-m", "rarts", "train", "--net", "cifar", "--genotype", "DARTS_V2", "--name", "ddp",
            "--spec", json.dumps({**_spec(standins, "cifar"), "threads": 2, "hp": hp})]
    torchrun = str(cli_env["PATH"].split(":")[0] + "/torchrun")
    for launcher, out in (([torchrun, "--standalone", "--nproc_per_node=2"], "two"), ([sys.executable], "one")):
        proc = subprocess.run([*launcher, *args, "--out-dir", str(tmp_path / out), "--ckpt", str(tmp_path / f"{out}.pt")],
                              capture_output=True, text=True, env=cli_env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["ranks_in_sync"] is True and len(metrics["history"]) == 2
    assert metrics["threads_per_rank"] == 1
    assert json.loads((tmp_path / "one" / "metrics.json").read_text())["threads_per_rank"] == 2
    two, one = (torch.load(tmp_path / f"{n}.pt", weights_only=False)["model"] for n in ("two", "one"))
    assert two.keys() == one.keys()
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-5, msg=k)


def test_transfer_cell_selection(tmp_path):
    from rarts.train.transfer import select_cell

    dirs = []
    for seed, acc in ((0, 0.5), (1, 0.7), (2, 0.6)):
        d = tmp_path / "rarts" / f"seed{seed}"
        d.mkdir(parents=True)
        (d / "genotype.json").write_text(json.dumps({**DARTS_V2.to_json(), "meta": {"final_val_acc": acc}}))
        dirs.append(d)
    metrics = []
    for seed, err in ((0, 3.0), (1, 4.0), (2, 2.5)):
        p = tmp_path / f"m{seed}.json"
        p.write_text(json.dumps({"name": f"rarts-seed{seed}", "test_error": err}))
        metrics.append(p)
    assert select_cell("best_search_val", dirs, [], tmp_path / "o.json")["meta"]["selection"].endswith("seed1")
    assert select_cell("best_cifar_test", dirs, metrics, tmp_path / "o.json")["meta"]["selection"].endswith("seed2")
    assert select_cell("seed0", dirs, [], tmp_path / "o.json")["meta"]["selection"].endswith("seed0")
    with pytest.raises(ValueError):
        select_cell("best_luck", dirs, [], tmp_path / "o.json")


def test_table1_aggregates_ours_and_keeps_paper_numbers_apart(tmp_path):
    from rarts.report.tables import table1

    inputs = []
    for seed, err in ((0, 3.0), (1, 2.0)):
        d = tmp_path / "train" / f"rarts-seed{seed}"
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({"test_error": err, "params_M": 3.1, "device": "cpu",
                                                     "history": [{"classes": 10}]}))
        inputs.append(d / "metrics.json")
        c = tmp_path / "search" / "rarts" / f"seed{seed}"
        c.mkdir(parents=True)
        (c / "cost.json").write_text(json.dumps({"algorithm": "rarts", "seed": seed, "device": "gpu X",
                                                 "wall_s": 3600.0 * (seed + 1), "gpu_days": (seed + 1) / 24}))
        inputs.append(c / "cost.json")
    df = table1({"standin": True}, inputs, tmp_path / "t.csv", tmp_path / "t.md")
    ours = df[df.source == "ours"].iloc[0]
    assert ours.method == "RARTS" and ours.test_error == "2.50 ± 0.71" and ours.n_runs == 2
    assert ours.search_gpu_days == pytest.approx(1.5 / 24) and ours.search_wall_hours == pytest.approx(1.5)
    assert ours.paper_test_error == "2.65 ± 0.07"  # beside, never in our columns
    assert ours.chance_error == 90.0  # 10 classes trained on
    paper_rows = df[df.source == "paper"]
    assert paper_rows.test_error_mean.isna().all() and len(paper_rows) == 16
    assert "STAND-IN" in (tmp_path / "t.md").read_text()
    assert pd.read_csv(tmp_path / "t.csv").shape[0] == 17


def test_global_batchnorm_moments_clamp_a_variance_rounded_below_zero():
    """A channel of 1e3 + tiny noise in float32: Σx²/n − mean² rounds below zero for some inputs;
    the variance is clamped at zero, so normalising stays finite, and it matches the two-pass value."""
    from rarts.models.layers import moments

    torch.manual_seed(0)
    found = False
    for trial in range(200):
        x = 1e3 + 1e-2 * torch.randn(8, 1, 7, 7)
        sums = torch.cat([x.sum((0, 2, 3)), (x * x).sum((0, 2, 3)), x.new_tensor([x.numel()])])
        n = sums[-1]
        raw = sums[1:2] / n - (sums[:1] / n) ** 2
        if raw.item() < 0:
            found = True
            break
    assert found, "no input rounded below zero: the test would not exercise the clamp"
    mean, var, _ = moments(sums, 1)
    assert var.item() == 0.0 and torch.isfinite(torch.rsqrt(var + 1e-5)).all()
    assert mean.item() == pytest.approx(x.double().mean().item(), rel=1e-6)


def test_imagenet_workers_start_once_and_serve_every_epoch():
    """The rehearsal's 4-rank ImageNet job ran out of memory when each epoch forked its DataLoader
    workers again from a rank whose heap had grown by an epoch's activations: the workers now start
    once, and the same processes serve the next epoch, in the same order as before."""
    from rarts.core.distributed import Dist
    from rarts.train.sources import FolderSource

    class Pids(torch.utils.data.Dataset):
        def __len__(self):
            return 32

        def __getitem__(self, i):
            return torch.tensor([float(i)]), os.getpid()

    source = FolderSource(Pids(), batch_size=4, seed=0, dist=Dist(), workers=2)
    seen = {}
    for epoch in (0, 1, 2):
        source.start_epoch(epoch, 0)
        batches = [source.next() for _ in range(source.steps_per_epoch)]
        seen[epoch] = ({int(p) for _, pids in batches for p in pids},
                       [int(v) for x, _ in batches for v in x.flatten()])
    assert seen[0][0] == seen[1][0] == seen[2][0] and len(seen[0][0]) == 2 and os.getpid() not in seen[0][0]
    expected = torch.randperm(32, generator=torch.Generator().manual_seed(0 + 1)).tolist()
    assert seen[1][1] == expected  # epoch 1's permutation of (seed + epoch)


GROWN = []  # what the rank's heap holds after training began, as a forked worker sees it


def test_imagenet_eval_workers_fork_before_training_grows_the_heap():
    """The rehearsal's 4-rank ImageNet job was killed for memory in its second epoch: its evaluation
    workers forked at the first evaluation shared the heap an epoch of training had grown, and each page
    training wrote again was copied. They now fork when the evaluation is set up: they see the rank as it
    was then, and every pass still gives this rank's share in order."""
    from rarts.core.distributed import Dist
    from rarts.train.sources import FolderEval

    class Grown(torch.utils.data.Dataset):
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return torch.tensor([float(i)]), len(GROWN)

    evals = FolderEval(Grown(), batch_size=3, dist=Dist(), workers=2, device="cpu")
    GROWN.extend(range(1000))  # training's heap, after the set-up
    try:
        passes = [[(int(v), int(n)) for x, ns in evals() for v, n in zip(x.flatten(), ns)] for _ in range(2)]
    finally:
        GROWN.clear()
    assert passes[0] == passes[1] == [(i, 0) for i in range(10)]


def test_the_ranks_on_a_node_share_the_jobs_threads():
    """The rehearsal's 4-rank ImageNet job on 2 cores took 90 s a step, each gloo rank running the job's
    2 threads: 8 threads on 2 cores. A rank now takes its share (on a GPU node, its GPU's CPUs)."""
    from rarts.train.run import threads_per_rank

    assert threads_per_rank(2, {"LOCAL_WORLD_SIZE": "4"}) == 1
    assert threads_per_rank(12, {"LOCAL_WORLD_SIZE": "4"}) == 3
    assert threads_per_rank(2, {}) == 2
