"""The NATS-Bench topology space, its arch strings, and scoring through the real nats_bench API."""

import json
import subprocess

import numpy as np
import pytest
import torch

from nats_files import write_benchmark
from rarts.data import nats_bench
from rarts.measure import nats_lookup
from rarts.pipeline.errors import DatasetError
from rarts.search.loop import SearchData, SearchLoop
from rarts.models.nats import EDGES, NATS_OPS, NatsCell, TinyNetwork
from rarts.spaces.nats import NatsSearchSpace

EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_3X3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"


def test_arch_strings_round_trip_through_a_network():
    cell = NatsCell.from_str(EXAMPLE)
    assert cell.arch_str() == EXAMPLE and cell.ops[3] == "skip_connect"
    net = TinyNetwork(c=4, n=1, cell=cell)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    assert NatsCell.from_str(ALL_SKIP).skip_ratio == 1.0 and cell.skip_ratio == pytest.approx(1 / 6)
    for bad in ("|nor_conv_3x3~0|", "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|"):
        with pytest.raises(ValueError):
            NatsCell.from_str(bad)


def test_search_network_and_derivation():
    space = NatsSearchSpace(init_channels=4, cells_per_stage=1)
    arch = space.init_arch()
    assert arch[0].shape == (6, 5) and len(EDGES) == 6 and EDGES[2] == (2, 1)
    net = space.build_network()
    assert net(torch.randn(2, 3, 16, 16), arch).shape == (2, 10)
    bn = [m for n, m in net.named_modules() if isinstance(m, torch.nn.BatchNorm2d) and ".edges." in n]
    assert bn and not any(m.affine for m in bn)  # affine-free BN in the mixed ops
    w = torch.full((6, 5), -5.0)
    w[:, 0] = 0.0  # `none` wins everywhere: allowed in this space
    w[5, 1] = 1.0
    cell = space.derive([w])
    assert cell.ops == ("none",) * 5 + ("skip_connect",)
    assert space.summarize(cell)["skip_ratio"] == pytest.approx(1 / 6)


# NAS-Bench-201 / NATS-Bench's published parameter range on CIFAR-10: the all-conv3×3 cell is
# the largest network (1.531546 M), the all-none cell the smallest (0.073306 M).
PUBLISHED_PARAMS = {ALL_3X3: 1.531546, ALL_NONE: 0.073306}


@pytest.fixture
def bench(tmp_path):
    cells = {
        EXAMPLE: {"200": {"cifar10": {777: (94.0, 1.288506, 150.0), 888: (94.4, 1.288506, 150.0)},
                          "cifar100": {777: (72.0, 1.294356, 150.0)}},
                  "12": {"cifar10": {111: (80.0, 1.288506, 150.0)}}},
        ALL_3X3: {"200": {"cifar10": {777: (94.3, PUBLISHED_PARAMS[ALL_3X3], 184.0)}},
                  "12": {"cifar10": {111: (81.0, PUBLISHED_PARAMS[ALL_3X3], 184.0)}}},
        ALL_NONE: {"200": {"cifar10": {777: (10.0, PUBLISHED_PARAMS[ALL_NONE], 8.0)}},
                   "12": {"cifar10": {111: (10.0, PUBLISHED_PARAMS[ALL_NONE], 8.0)}}},
    }
    return write_benchmark(tmp_path / nats_bench.BENCH_DIR, cells)


def test_params_cli_agrees_with_the_benchmark(bench, cli_env):
    api = nats_lookup.open_benchmark(bench)
    for arch in (ALL_3X3, ALL_NONE):
        out = subprocess.run(["rarts", "params", "--net", "nats", "--arch", arch], capture_output=True,
                             text=True, check=True, env=cli_env).stdout
        bench_params = api.get_cost_info(api.query_index_by_arch(arch), "cifar10", hp="200")["params"]
        assert int(out.strip().splitlines()[-1]) == round(bench_params * 1e6)


def test_lookup_of_known_and_unknown_cells_and_the_defaults_pitfall(bench):
    api = nats_lookup.open_benchmark(bench)
    r = nats_lookup.lookup(api, EXAMPLE, "cifar10")
    assert r["test_accuracy"] == pytest.approx(94.2) and r["test_error"] == pytest.approx(5.8)  # mean of seeds
    assert r["params_M"] == pytest.approx(1.288506) and r["flops_M"] == 150.0
    assert nats_lookup.lookup(api, EXAMPLE, "cifar100")["test_accuracy"] == pytest.approx(72.0)
    # the API's defaults (hp='12', a random seed) give another schedule's number
    assert api.get_more_info(0, "cifar10")["test-accuracy"] == pytest.approx(80.0)
    with pytest.raises(KeyError, match="not in the benchmark"):
        nats_lookup.lookup(api, ALL_SKIP, "cifar10")


def test_missing_benchmark_says_where_to_put_it(tmp_path):
    with pytest.raises(DatasetError) as err:
        nats_lookup.open_benchmark(tmp_path / "nowhere")
    msg = str(err.value)
    assert str(tmp_path / "nowhere") in msg and "NATS-tss-v1_0-3ffb9-simple" in msg and "github.com/D-X-Y" in msg


def test_lookup_opens_the_benchmark_once_per_dataset(bench, tmp_path, monkeypatch):
    import nats_bench

    opened = []
    real = nats_bench.create
    monkeypatch.setattr(nats_bench, "create", lambda *a, **k: (opened.append(a), real(*a, **k))[1])
    runs = []
    for seed, arch in enumerate((EXAMPLE, ALL_3X3, EXAMPLE)):
        d = tmp_path / "runs" / f"seed{seed}"
        d.mkdir(parents=True)
        (d / "genotype.json").write_text(json.dumps(
            {"arch": arch, "meta": {"algorithm": "rarts", "seed": seed, "skip_ratio": NatsCell.from_str(arch).skip_ratio}}))
        runs.append(d)
    rows = nats_lookup.lookup_main("cifar10", bench, runs, tmp_path / "scores.json")
    assert len(opened) == 1 and [r["source"] for r in rows] == ["nats-bench"] * 3
    assert rows[1]["test_error"] == pytest.approx(5.7)


def test_a_nats_search_runs_through_the_shared_loop(tmp_path):
    space = NatsSearchSpace(init_channels=2, cells_per_stage=1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, 8, 8, generator=g), torch.randint(0, 10, (32,), generator=g)
    hp = dict(epochs=1, batch_size=8, max_steps_per_epoch=2, eval_batches=1, w_lr=0.025, w_lr_min=0.001,
              w_momentum=0.9, w_weight_decay=5e-4, w_nesterov=True, grad_clip=5.0, arch_lr=3e-4,
              arch_betas=[0.5, 0.999], arch_weight_decay=1e-3, augment={"crop_padding": 0, "hflip": False},
              milenas={"lam": 1.0},
              darts2={"perturbed_bn_stats": "update"}, rarts={"lam": 1.0, "beta": 1.0, "y_init": "copy"})
    loop = SearchLoop(space, "rarts", 0, hp, SearchData(x[:16], y[:16], x[16:], y[16:]), "cpu", tmp_path / "c.pt")
    loop.run()
    arch = loop.history[-1]["genotype"]["arch"]
    assert NatsCell.from_str(arch).arch_str() == arch
    assert np.array(loop.history[-1]["alpha"]["cell"]).shape == (6, len(NATS_OPS))
