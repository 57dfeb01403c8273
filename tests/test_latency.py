"""The latency table, the penalty's effect on the search, model latency and Table 2."""

import json

import numpy as np
import torch

from rarts.spaces.penalties import LatencyPenalty
from rarts.measure.latency import edge_shapes, measure_op_table, model_latency_main
from rarts.search.loop import SearchData, SearchLoop
from rarts.spaces import DartsSearchSpace
from rarts.models.genotypes import DARTS_V2


def test_edge_shapes_follow_the_search_network():
    cells = edge_shapes(DartsSearchSpace(), 32)
    assert [r for r, _, _ in cells] == [False, False, True, False, False, True, False, False]
    red, c, edges = cells[2]
    assert c == 32 and len(edges) == 14
    # node 0: edges 0, 1 from the two inputs; node 1: edges 2, 3 from the inputs, 4 from node 0
    assert edges[:4] == [(32, 2)] * 4 and edges[4] == (16, 1)
    assert all(e == (16, 1) for e in cells[3][2]) and cells[3][1] == 32
    assert all(e == (8, 1) for e in cells[7][2]) and cells[7][1] == 64


def test_op_table_shape_and_none_is_free():
    space = DartsSearchSpace(init_channels=2, layers=3, steps=2, multiplier=2)
    table = measure_op_table(space, 8, 4, "cpu", warmup=1, repeats=2)
    lat = np.array(table["lat"]["normal"])
    assert lat.shape == (5, 8) and (lat[:, 0] == 0).all() and (lat[:, 1:] > 0).all()
    assert np.array(table["lat"]["reduce"]).shape == (5, 8)


def tiny_search(**hp):
    """A small DARTS space, 64 random images split in two halves, and search settings (`hp` overrides)."""
    space = DartsSearchSpace(init_channels=2, layers=3, steps=2, multiplier=2)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 3, 8, 8, generator=g), torch.randint(0, 10, (64,), generator=g)
    data = SearchData(x[:32], y[:32], x[32:], y[32:])
    hp = dict(epochs=2, batch_size=8, max_steps_per_epoch=4, eval_batches=1, w_lr=0.025, w_lr_min=0.001,
              w_momentum=0.9, w_weight_decay=3e-4, w_nesterov=False, grad_clip=5.0, arch_lr=3e-2,
              arch_betas=[0.5, 0.999], arch_weight_decay=0.0, augment={"crop_padding": 0, "hflip": False},
              milenas={"lam": 1.0},
              darts2={"perturbed_bn_stats": "update"}, rarts={"lam": 1.0, "beta": 0.5, "y_init": "copy"}) | hp
    return space, data, hp


def test_a_larger_latency_weight_finds_a_faster_cell(tmp_path):
    space, data, hp = tiny_search()
    table = measure_op_table(space, 8, 8, "cpu", warmup=1, repeats=3)
    tables = [torch.tensor(table["lat"][k]) for k in ("normal", "reduce")]
    expected = {}
    for weight in (0.0, 1.0):
        pen = LatencyPenalty(tables, weight)
        loop = SearchLoop(space, "rarts", 0, hp, data, "cpu", tmp_path / f"{weight}.pt", arch_penalty=pen)
        loop.run()
        expected[weight] = pen.expected_latency(loop.algo.arch)
        assert "expected_latency" in loop.history[-1]
    assert expected[1.0] < expected[0.0]


def test_model_latency_of_a_genotype(tmp_path):
    path = tmp_path / "g.json"
    path.write_text(json.dumps({**DARTS_V2.to_json(), "meta": {"seed": 3, "standin": True}}))
    spec = dict(init_channels=4, layers=3, num_classes=10, batch_size=2, resolution=16, warmup=1,
                repeats=3, device="cpu", threads=1)
    res = model_latency_main(path, spec, tmp_path / "lat.json")
    assert res["latency_ms"] > 0 and res["seed"] == 3 and res["params"] > 0
    assert json.loads((tmp_path / "lat.json").read_text())["latency_ms"] == res["latency_ms"]


def test_table2_pairs_our_latency_with_the_papers(tmp_path):
    from rarts.report.tables import table2

    settings = {"base": {"weight": 2e-3, "batch_size": 64, "arch_lr": 3e-4, "arch_weight_decay": 1e-3},
                "batch_16": {"weight": 2e-3, "batch_size": 16, "arch_lr": 3e-4, "arch_weight_decay": 1e-3}}
    inputs = []
    for setting, values in (("base", (10.0, 12.0)), ("batch_16", (7.0,))):
        for seed, ms in enumerate(values):
            d = tmp_path / setting / f"seed{seed}"
            d.mkdir(parents=True)
            (d / "latency.json").write_text(json.dumps({"latency_ms": ms, "params_M": 1.0, "device": "cpu"}))
            inputs.append(d / "latency.json")
    model = {"init_channels": 36, "layers": 20, "batch_size": 64, "resolution": 32, "warmup": 5, "repeats": 20}
    # given in another order (an override file's, say): the rows come in the paper's order
    df = table2({"standin": False, "settings": settings, "order": ["batch_16", "base"], "model": model}, inputs,
                tmp_path / "t.csv", tmp_path / "t.md")
    assert df.setting.tolist() == ["base", "batch_16"]
    base = df[df.setting == "base"].iloc[0]
    assert base.latency_ms == "11.00 ± 1.41" and base.paper_latency_ms == 21.7 and base.n_runs == 2
    assert df[df.setting == "batch_16"].iloc[0].paper_latency_ms == 16.5


def test_a_timing_job_runs_no_more_threads_than_cpus_and_says_what_was_beside_it(tmp_path, cli_env):
    """As a local rule runs it (every core of --cores, here far more than the machine has): the times
    are taken with one thread a CPU at most, and the output says whether anything else was at work."""
    import os
    import subprocess

    from conftest import BIN

    path = tmp_path / "g.json"
    path.write_text(json.dumps(DARTS_V2.to_json()))
    spec = dict(init_channels=4, layers=3, num_classes=10, batch_size=2, resolution=16, warmup=1, repeats=3)
    out = subprocess.run([str(BIN / "rarts"), "--device", "cpu", "--threads", "64", "model-latency", "--genotype",
                          str(path), "--spec", json.dumps(spec), "--out", str(tmp_path / "lat.json")],
                         env=cli_env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads((tmp_path / "lat.json").read_text())
    assert res["device"].endswith(f"{len(os.sched_getaffinity(0))} threads)")
    assert isinstance(res["timed_alone"], bool) and res["timed_alone"] == (res["beside"] == "")
    assert res["gpus"] == [] and res["started"] <= res["ended"]  # no pool here: no GPU held


def test_others_at_work_beside_a_cpu_timing_are_named(monkeypatch):
    import psutil

    from rarts.measure import latency

    monkeypatch.setattr(psutil, "cpu_percent", lambda interval: 75.0)  # 3 of 4 cores busy elsewhere
    monkeypatch.setattr(psutil, "cpu_count", lambda: 4)
    rec = latency.timing_record("cpu")
    assert rec == {"timed_alone": False, "beside": "3.0 cores busy with other work"}
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval: 5.0)
    assert latency.timing_record("cpu") == {"timed_alone": True, "beside": ""}


def test_a_search_does_not_resume_from_a_checkpoint_made_with_another_latency_table(tmp_path):
    """The latency table is re-measured at the same path (a new machine, a rerun): the search's finished
    checkpoint was made with the old table, so the search runs again, and ends as a fresh search with
    the new table does."""
    space, data, hp = tiny_search(epochs=1, max_steps_per_epoch=3, latency={"table": "results/latency/cpu.json"})
    old = [torch.ones(5, 8), torch.ones(5, 8)]
    new = [torch.arange(8.0).repeat(5, 1), torch.arange(8.0).flip(0).repeat(5, 1)]

    def search(tables, ckpt):
        loop = SearchLoop(space, "rarts", 0, hp, data, "cpu", ckpt, arch_penalty=LatencyPenalty(tables, 1.0))
        loop.run()
        return loop.history[-1]["expected_latency"], [a.clone() for a in loop.algo.arch]

    search(old, tmp_path / "ckpt.pt")
    rerun, fresh = search(new, tmp_path / "ckpt.pt"), search(new, tmp_path / "fresh.pt")
    assert rerun[0] == fresh[0] and all(torch.equal(a, b) for a, b in zip(rerun[1], fresh[1]))
