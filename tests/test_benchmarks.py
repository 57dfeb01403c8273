"""The search-step benchmark runs, and its copy-the-model DARTS-2 (the official architect's way:
a deep-copied unrolled model, the real weights perturbed in place) is the step `Darts2` takes."""

import copy
import importlib.util

import pytest
import torch
import yaml

from conftest import REPO
from rarts.search.algorithms import Darts2
from rarts.spaces import DartsSearchSpace


def load_benchmark(name="search_step"):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def paper_search_hp() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())["search"]["darts"]


@pytest.mark.slow  # five algorithms timed, then each alone in a process of its own for its memory
def test_search_step_benchmark_smoke():
    df = load_benchmark().main(["--size", "tiny", "--steps", "2", "--warmup", "0", "--device", "cpu"])
    steps = df[df.passes_per_step.notna()].set_index("algorithm")
    assert set(steps.index) == {"darts1", "darts2", "milenas", "rarts", "darts2-copy"}
    assert (steps.median_step_s > 0).all() and (steps.peak_mem_MiB > 0).all()
    assert steps.passes_per_step.to_dict() == {"darts1": 2, "darts2": 5, "milenas": 3, "rarts": 4, "darts2-copy": 5}


def test_functional_darts2_takes_the_official_step_bn_statistics_included():
    """Same start, same batches, the config's settings (momentum, weight decay, clipping, Adam for α):
    α, weights, optimizer state and BatchNorm running statistics agree after steps with momentum.
    The official unrolled model is a copy, so its pass on the validation batch leaves the real
    network's statistics alone; the w ± Rv passes run on the real network and update them."""
    from rarts.planning import search_timing as bench

    hp = {**paper_search_hp(), "epochs": 50}
    space = DartsSearchSpace(init_channels=2, layers=3, steps=2, multiplier=2)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(4)]
    runs = []
    for cls in (Darts2, bench.CopyModelDarts2):
        torch.manual_seed(0)
        algo = cls(space, hp, "cpu")
        for i in range(3):
            algo.step(batches[i], batches[i + 1])
        runs.append(algo)
    ours, official = runs
    for a, b in zip(ours.arch, official.arch):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    stats = dict(official.net.named_buffers())
    assert stats, "the search network has BatchNorm statistics"
    for name, buf in ours.net.named_buffers():
        torch.testing.assert_close(buf, stats[name], rtol=1e-4, atol=1e-5, msg=f"BN buffer {name}")
    for (name, p), q in zip(ours.net.named_parameters(), official.net.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5, msg=f"weight {name}")
        torch.testing.assert_close(ours.w_opt.state[p]["momentum_buffer"], official.w_opt.state[q]["momentum_buffer"],
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", ["keep", "update"])
def test_darts2_keep_writes_statistics_from_the_real_passes_only(mode):
    """`perturbed_bn_stats: keep`: after one step the running statistics are those of the step's
    two passes at the real weights (the train pass for w' at the old α, the weight step's at the
    new α); `update` (the official default) also takes the w ± Rv passes, so it differs."""
    hp = {**paper_search_hp(), "epochs": 50, "darts2": {"perturbed_bn_stats": mode}}
    space = DartsSearchSpace(init_channels=2, layers=3, steps=2, multiplier=2)
    g = torch.Generator().manual_seed(1)
    train, val = [(torch.randn(8, 3, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g)) for _ in range(2)]
    torch.manual_seed(0)
    algo = Darts2(space, hp, "cpu")
    reference, arch_before = copy.deepcopy(algo.net), [a.detach().clone() for a in algo.arch]
    algo.step(train, val)
    with torch.no_grad():
        reference(train[0], arch_before)
        reference(train[0], [a.detach() for a in algo.arch])
    expected = dict(reference.named_buffers())
    same = [torch.allclose(buf, expected[name], rtol=1e-5, atol=1e-6) for name, buf in algo.net.named_buffers()]
    assert all(same) if mode == "keep" else not all(same)


@pytest.mark.slow
def test_a_rarts_step_keeps_one_graph_alive_as_milenas_does():
    """The rehearsal found RARTS's step at paper size peaking at twice MiLeNAS's memory (about 19 GB
    against 10 GB on a CPU): its α-gradient backpropagated λL_t(w) + L_v(y) at once, two graphs of
    the search network alive. Each alone in a process of its own (peak RSS a step adds, exact: no
    sampling), RARTS's step adds no more than 1.25× MiLeNAS's at the small size."""
    from rarts.planning import search_timing as bench

    peaks = {name: bench.cpu_step_peak(name, "small", steps=2, threads=1) for name in ("milenas", "rarts")}
    assert peaks["rarts"] <= 1.25 * peaks["milenas"], {k: v / 2**20 for k, v in peaks.items()}


def test_the_cell_step_benchmark_prices_each_cell_it_times(tmp_path):
    """benchmarks/cell_steps.py (tiny, untimed here): each cell measured beside the plan's price for it,
    DARTS_V2 at its own measured step, the others by the edge table."""
    import json

    cell_steps = load_benchmark("cell_steps")

    rows = cell_steps.main(["--size", "tiny", "--cells", "1", "--steps", "1", "--warmup", "0",
                            "--out", str(tmp_path / "cells.json")])
    assert [r["cell"] for r in rows] == ["DARTS_V2", "DARTS_V1", "random0", "DARTS_V2 again"]
    assert rows[-1]["planned_step_s"] == rows[0]["measured_step_s"]  # the table's own cell costs its step
    assert rows[1]["planned_step_s"] != rows[0]["planned_step_s"]  # another cell: its edges differ
    assert all(r["measured_step_s"] > 0 for r in rows)
    assert json.loads((tmp_path / "cells.json").read_text())["edge_steps"][0]["network"] == "cifar"
