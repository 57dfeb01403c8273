"""The dress rehearsal: its synthetic data in the real formats, its report's findings, and a slice of it
that covers each kind of job at the paper's sizes (a search of the DARTS space by each algorithm, a NATS-Bench
search, a CIFAR retraining, the ImageNet transfer on 2 ranks, a width search and fine-tune of each
network, the latency table)."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import BIN
from rarts.planning import plan
from rarts.data import cifar, imagenet, rehearsal
from rarts.planning.rehearsal import PLAN_TOLERANCE, rule_rows
from test_workflow import copy_workflow

REPO = Path(__file__).resolve().parents[1]


def test_the_synthetic_cifar_has_the_real_counts_and_format(tmp_path):
    rehearsal.write_cifar("cifar100", tmp_path)
    x, y = cifar.load_cifar("cifar100", tmp_path, train=True)
    xt, _ = cifar.load_cifar("cifar100", tmp_path, train=False)
    assert x.shape == (50_000, 3, 32, 32) and len(xt) == 10_000 and int(y.max()) == 99
    assert rehearsal.is_rehearsal(tmp_path) and not cifar.is_standin("cifar100", tmp_path)


def test_the_synthetic_benchmark_answers_through_the_real_api(tmp_path):
    """A few cells of the space written as the rehearsal writes all 15,625 (the real `nats_bench`
    reader, fast mode, hp='200', the mean over seeds)."""
    from rarts.measure import nats_lookup

    cells = rehearsal.every_nats_cell()
    assert len(cells) == 5 ** 6 and len(set(cells)) == len(cells)
    some = cells[:3] + cells[-2:]
    rehearsal.write_nats_benchmark(tmp_path / "b", {a: {"200": {"cifar10": {777: (60.0 + i, 0.5, 50.0)}}}
                                                   for i, a in enumerate(some)})
    api = nats_lookup.open_benchmark(tmp_path / "b")
    assert nats_lookup.lookup(api, some[-1], "cifar10")["test_error"] == pytest.approx(100 - 64.0)


def test_the_report_finds_a_request_below_its_peak_and_a_plan_off_by_more_than_its_tolerance():
    def job(rule, mem, peak, measured, planned, wall=10.0):
        return {"rule": rule, "log": f"{rule}.log", "mem_mb": mem, "peak_pss_mb": peak, "peak_rss_mb": peak,
                "wall_s": wall, "measured_step_s": measured, "planned_step_s": planned}

    rows = {r["rule"]: r for r in rule_rows([
        job("fits", 1000, 800, 1.0, 1.2), job("fits", 1000, 900, 1.1, 1.2),
        job("tight", 1000, 1200, 1.0, 1.0), job("slow", 4000, 100, 2 * PLAN_TOLERANCE, 1.0),
        job("unrun", 100, None, None, None, wall=None),
        job("cells", 1000, 100, 1.0, 1.0), job("cells", 1000, 100, 3.0, 1.5), job("cells", 1000, 100, 10.0, 10.0)])}
    assert rows["fits"]["finding"] == "" and rows["fits"]["peak_pss_mb"] == 900 and rows["fits"]["jobs"] == 2
    # jobs planned apart (each retraining for its cell) are judged each against its own plan: the
    # median of their ratios is 1, where the median step over the median plan would be 3.0 / 1.5 = 2
    assert rows["cells"]["measured_over_planned"] == 1.0 and rows["cells"]["finding"] == ""
    assert rows["cells"]["job_ratios"] == "1.00–2.00"
    assert "peak 1200 MB > request 1000 MB" in rows["tight"]["finding"]
    assert "measured step 3.00× the plan's" in rows["slow"]["finding"]
    assert "1 of 1 jobs have no usage file" in rows["unrun"]["finding"]


def test_the_report_measures_every_rule_of_all_but_itself_and_the_mlflow_step(tmp_path, monkeypatch):
    """The first full rehearsal's report left out the searches' 24 dynamics figures (inputs of the MLflow
    step alone): the targets the report rule passes must bring in every other rule `all` runs."""
    monkeypatch.chdir(copy_workflow(tmp_path))
    snakemake, config = (str(BIN / "snakemake"),), ["config/rehearsal.yaml"]
    ran = plan.dry_run_jobs(["all"], config, snakemake=snakemake)
    report = next(j for j in ran if j["rule"] == "rehearsal_report")
    args = plan.parse_command(report["shell"])
    measured = {j["rule"] for j in plan.dry_run_jobs(args.targets, config, snakemake=snakemake)}
    rules = {j["rule"] for j in ran}
    assert "search_dynamics" in rules and rules - set(args.unmeasured) <= measured, rules - measured


# -- the slice -----------------------------------------------------------------------------------------
ALGORITHMS = ["darts1", "darts2", "milenas", "rarts"]
SLICE = {  # the rehearsal's sizes, one step of one epoch a job, the jobs of each kind
    "threads": 1,  # a core of the two: the other xdist worker has the other
    "search": {"darts": {"algorithms": ALGORITHMS, "seeds": [0], "epochs": 1, "max_steps_per_epoch": 1},
               "nats": {"datasets": ["cifar10"], "algorithms": ["darts1"], "seeds": [0], "epochs": 1,
                        "max_steps_per_epoch": 1}},
    "train": {"cifar": {"epochs": 1, "max_steps_per_epoch": 1},
              "imagenet": {"epochs": 1, "max_steps_per_epoch": 1, "gpus": 2, "workers": 1}},
    "width": {"table5": {"datasets": ["cifar10"], "ratios": [0.4], "train": {"epochs": 1, "max_steps_per_epoch": 1},
                         "search": {"epochs": 1, "max_steps_per_epoch": 1}},
              "table6": {"seeds": [0], "train": {"epochs": 1, "max_steps_per_epoch": 1},
                         "search": {"algorithms": ["rarts"], "epochs": 1, "max_steps_per_epoch": 1}}},
}
SEARCHES = [f"results/search/darts/{algo}/seed0/history.json" for algo in ALGORITHMS]
TARGETS = [*SEARCHES, "results/search/nats/cifar10/darts1/seed0/history.json",
           "results/train/cifar/DARTS_V2/metrics.json", "results/train/imagenet/DARTS_V2/metrics.json",
           "results/width/table5/cifar10/rarts-40/seed0/metrics.json",
           "results/width/table6/imagenet_r/rarts/seed0/metrics.json", "results/latency/cpu.json"]


@pytest.mark.slow
def test_a_slice_of_the_rehearsal_runs_every_kind_of_job_at_paper_size(tmp_path, cli_env, monkeypatch):
    """Through Snakemake with config/rehearsal.yaml: the real CIFAR-10 format at 50,000 images, an
    ImageNet tree of 1,000 classes (ImageNet-R's 20 drawn classes with 8 images each), the paper's
    networks, batches and resolutions, a search step of each algorithm, ImageNet on 2 gloo ranks. Every
    job trains, records its step time, and peaks within the memory its rule asks SLURM for (the CIFAR
    retraining's and the searches' requests were below their rehearsal peaks)."""
    wd = copy_workflow(tmp_path)
    (wd / "slice.yaml").write_text(yaml.safe_dump(SLICE))
    rehearsal.write_cifar("cifar10", wd / "data" / "rehearsal" / "cifar10")
    root = wd / "data" / "rehearsal" / "imagenet"
    drawn = set(imagenet.draw_subset_classes_of([f"n{c:08d}" for c in range(1000)], 20, 0))
    rehearsal.write_imagefolder(root, per_class=(1, 1), fuller={c: (8, 2) for c in drawn})
    proc = subprocess.run([str(BIN / "snakemake"), "--cores", "2", "--resources=mem_mb=20000", *TARGETS,
                           "--configfile", "config/rehearsal.yaml", "slice.yaml"], cwd=wd,
                          env={**cli_env, "PATH": f"{BIN}{os.pathsep}{cli_env['PATH']}"},
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    for target in TARGETS[:-1]:
        record = json.loads((wd / target).read_text())
        history = record.get("epochs") or record["history"]
        assert history[-1]["step_s"] > 0 and record.get("rehearsal") is True, target
    metrics = json.loads((wd / "results/train/imagenet/DARTS_V2/metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["num_classes"] == 1000
    for target in SEARCHES:
        hp = json.loads((wd / target).read_text())["hp"]
        assert hp["init_channels"] == 16 and hp["batch_size"] == 64 and hp["layers"] == 8, target
    usage = sorted((wd / "results" / "logs").rglob("*.usage.json"))
    assert len(usage) >= len(TARGETS) and all(json.loads(u.read_text())["peak_pss_mb"] > 0 for u in usage)
    monkeypatch.chdir(wd)  # each job's request, as Snakemake resolves it for this config
    jobs = plan.dry_run_jobs(TARGETS, ["config/rehearsal.yaml", "slice.yaml"], snakemake=(str(BIN / "snakemake"),))
    peaks = {j["log"]: (json.loads(Path(j["log"] + ".usage.json").read_text())["peak_pss_mb"], j["resources"]["mem_mb"])
             for j in jobs if Path(j["log"] + ".usage.json").is_file()}
    assert len(peaks) >= len(TARGETS), sorted(peaks)
    assert all(peak <= request for peak, request in peaks.values()), peaks


def test_a_cpu_plan_does_not_divide_a_step_over_ranks_that_share_its_cores():
    """The rehearsal planned its 4-rank ImageNet step at a quarter of one process's (48× off): on a CPU
    the ranks share the job's cores, on GPUs each has its own."""
    from argparse import Namespace

    from rarts.pipeline import costs
    from rarts.planning.rehearsal import planned_step

    def table(device):
        return costs.StepTable({"environment": {"device": device}, "size": "paper", "search_size": {"batch_size": 64},
                                "search_steps": [], "network_steps": [{"network": "imagenet", "median_step_s": 8.0,
                                                                       "batch_size": 128}]})

    job = Namespace(command="train", net="imagenet", gpus=4, spec={"hp": {"batch_size": 128}})
    assert planned_step(job, table("cpu")) == 8.0 and planned_step(job, table("cuda")) == 2.0


def test_the_imagenet_plan_takes_the_step_over_its_ranks_and_its_input_path():
    """The rehearsal's 4-rank ImageNet transfer ran at 2.5× a plan that priced one process's bare step:
    a table with the step measured over the job's ranks plans from it, and ImageNet's measured decoding
    adds its time on a CPU (the ranks' loaders share the cores) or, on GPUs, paces the step when each
    rank's loader is the slower."""
    from argparse import Namespace

    from rarts.pipeline import costs
    from rarts.planning.rehearsal import planned_step

    def table(device, rows, rate):
        return costs.StepTable({"environment": {"device": device}, "size": "paper", "search_size": {"batch_size": 64},
                                "search_steps": [], "network_steps": [r for r in rows if "ranks" not in r],
                                "ranked_steps": [r for r in rows if "ranks" in r],
                                "input": {"imagenet_jpeg_decoding": {"images_per_s": rate, "workers": 2}}})

    one = {"network": "imagenet", "median_step_s": 7.0, "batch_size": 128}
    four = {"network": "imagenet", "median_step_s": 11.0, "batch_size": 128, "ranks": 4}
    job = Namespace(command="train", net="imagenet", gpus=4, spec={"hp": {"batch_size": 128}})
    assert planned_step(job, table("cpu", [one, four], 256.0)) == pytest.approx(11.0 + 0.5)
    assert planned_step(job, table("cpu", [one], 256.0)) == pytest.approx(7.0 + 0.5)  # no 4-rank row
    assert planned_step(job, table("cuda", [{**one, "median_step_s": 0.4}], 256.0)) == pytest.approx(0.125)
    assert planned_step(job, table("cuda", [{**one, "median_step_s": 0.8}], 256.0)) == pytest.approx(0.2)
    cifar = Namespace(command="train", net="cifar", gpus=1, spec={"hp": {"batch_size": 96}})
    assert planned_step(cifar, table("cpu", [{**one, "network": "cifar", "batch_size": 96}], 256.0)) == 7.0


def test_a_retraining_is_planned_for_the_cell_it_trains(tmp_path):
    """The rehearsal's CIFAR retrainings ran at 1.33–1.58× a plan that priced every one at DARTS_V2's
    cell (their searched cells cost 0.8–1.9× it). A retraining of a searched cell is planned at the
    table's step plus the difference of the two cells' edges, each edge its operation's measured seconds
    on that kind of edge; before its search has written the cell, at the table's."""
    from argparse import Namespace

    from rarts.pipeline import costs
    from rarts.models.genotypes import DARTS_V1, DARTS_V2, Genotype
    from rarts.planning.rehearsal import planned_step

    ops = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3",
           "dil_conv_5x5")
    normal = dict(zip(ops, (0.30, 0.20, 0.01, 0.60, 1.10, 0.50, 0.90)))
    reduce_input = dict(zip(ops, (0.05, 0.03, 0.09, 0.10, 0.12, 0.09, 0.12)))
    reduce_node = dict(zip(ops, (0.03, 0.02, 0.00, 0.05, 0.08, 0.04, 0.07)))
    edges = {"genotype": DARTS_V2.to_json(), "batch_size": 96, "normal": normal, "reduce_input": reduce_input,
             "reduce_node": reduce_node}
    steps = [{"network": "cifar", "median_step_s": 6.0, "batch_size": 96},
             {"network": "imagenet", "median_step_s": 8.0, "batch_size": 128}]
    four = {"network": "imagenet", "ranks": 4, "median_step_s": 11.0, "batch_size": 128}
    table = costs.StepTable({"environment": {"device": "cpu"}, "size": "paper", "search_size": {"batch_size": 64},
                             "search_steps": [], "network_steps": steps, "ranked_steps": [four],
                             "edge_steps": [{**edges, "network": "cifar"},
                                            {**edges, "network": "imagenet", "batch_size": 128}]})
    heavy = Genotype([("sep_conv_5x5", 0), ("dil_conv_5x5", 1)] * 4, [2, 3, 4, 5],
                     [("sep_conv_5x5", 0), ("avg_pool_3x3", 2)] * 4, [2, 3, 4, 5])
    cell = tmp_path / "genotype.json"
    cell.write_text(json.dumps({**heavy.to_json(), "meta": {"final_val_acc": 0.5}}))  # a search's file
    # by hand: DARTS_V2's edges (normal: 5 sep_conv_3x3, 2 skip, 1 dil_conv_3x3; reduce: 5 max_pool from the
    # inputs, 3 skip from nodes) against the heavy cell's (normal: 4 sep_conv_5x5, 4 dil_conv_5x5; reduce: 4
    # sep_conv_5x5 from the inputs, 4 avg_pool from nodes) and DARTS_V1's (normal: 5 sep_conv_3x3, 3 skip;
    # reduce: 4 max_pool and 1 avg_pool from the inputs, 3 skip from nodes)
    v2 = 5 * 0.60 + 2 * 0.01 + 0.50 + 5 * 0.05 + 3 * 0.00
    v1 = 5 * 0.60 + 3 * 0.01 + 4 * 0.05 + 0.03 + 3 * 0.00
    extra = 4 * 1.10 + 4 * 0.90 + 4 * 0.12 + 4 * 0.02 - v2

    def job(genotype, net="cifar", gpus=1, batch=96):
        spec = {"dataset": "cifar10", "hp": {"batch_size": batch, "epochs": 2, "eval_batches": 1}}
        return Namespace(command="train", net=net, gpus=gpus, genotype=genotype, spec=spec)

    assert planned_step(job(str(cell)), table) == pytest.approx(6.0 + extra)
    assert planned_step(job("DARTS_V2"), table) == 6.0
    assert planned_step(job(str(tmp_path / "not-searched-yet.json")), table) == 6.0
    assert planned_step(job("DARTS_V1"), table) == pytest.approx(6.0 + v1 - v2)
    # the ImageNet transfer's 4-rank step scales by the same factor (its edges at its own batch)
    assert planned_step(job(str(cell), "imagenet", 4, 128), table) == pytest.approx(11.0 * (8.0 + extra) / 8.0)
    assert plan.job_cost(job(str(cell)), table, {})[1] == pytest.approx(
        plan.job_cost(job("DARTS_V2"), table, {})[1] * (6.0 + extra) / 6.0)


def test_the_edge_table_finds_each_edge_shape_of_the_paper_networks():
    """The edges the step table times are the paper networks' own: CIFAR's 20 cells at C=36 reduce at
    cells 6 and 13 (32 → 16 → 8 pixels, 36 → 72 → 144 channels); ImageNet's 14 at C=48 start at 28 pixels
    (its stems take 224 down by 8) and reduce at cells 4 and 9. A reduction cell's edges from its inputs
    take stride 2 at its input's side, from its nodes stride 1 at its output's."""
    import torch

    from rarts.models import build_network
    from rarts.models.genotypes import DARTS_V2

    from rarts.planning import gpu_check

    def layout(c, side, layers):
        cells, reductions = {}, (layers // 3, 2 * layers // 3)
        for i in range(layers):
            if i in reductions:
                for key in (("reduce_input", 2 * c, side, 2), ("reduce_node", 2 * c, side // 2, 1)):
                    cells[key] = cells.get(key, 0) + 1
                c, side = 2 * c, side // 2
            else:
                cells["normal", c, side, 1] = cells.get(("normal", c, side, 1), 0) + 1
        return cells

    cpu = torch.device("cpu")
    assert gpu_check.edge_shapes(build_network("cifar", DARTS_V2), 32, cpu) == layout(36, 32, 20)
    assert gpu_check.edge_shapes(build_network("imagenet", DARTS_V2), 224, cpu) == layout(48, 28, 14)
    assert layout(36, 32, 20)["normal", 144, 8, 1] == 6 and layout(48, 28, 14)["reduce_input", 96, 28, 2] == 1


def test_the_step_table_times_the_jobs_training_step_with_the_configs_settings(tmp_path):
    """The step table's network step left out the auxiliary head's loss, the clipping and the drop path
    the paper's trainings run (the rehearsal's CIFAR retraining at 1.59× its plan): its step is the
    trainer's own, with the config's settings, matching a step written out from them independently, and
    drops paths as every epoch after the first does."""
    import copy

    import torch
    import torch.nn.functional as F

    from rarts.planning import gpu_check

    hp = gpu_check.training_hp("cifar", yaml.safe_load((REPO / "config" / "config.yaml").read_text()))
    assert (hp["auxiliary_weight"], hp["grad_clip"], hp["weight_decay"]) == (0.4, 5.0, 3.0e-4)
    assert gpu_check.network_trainer("cifar", "tiny", torch.device("cpu"), hp, tmp_path).model.drop_path_prob == 0.2
    hp.update(lr=1.0, drop_path_prob=0.0)  # a large step: any difference in the update shows; no random masks
    trainer = gpu_check.network_trainer("cifar", "tiny", torch.device("cpu"), hp, tmp_path)
    net = copy.deepcopy(trainer.model)
    x, y = trainer.source.next()
    trainer.train_step()

    net.train()
    logits, aux = net(x)
    loss = F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(aux, y)
    grads = torch.autograd.grad(loss, list(net.parameters()))
    norm = torch.cat([g.flatten() for g in grads]).norm()
    scale = min(1.0, 5.0 / (float(norm) + 1e-6))
    for p, g, q in zip(net.parameters(), grads, trainer.model.parameters()):
        expected = p.detach() - hp["lr"] * (g * scale + hp["weight_decay"] * p.detach())
        torch.testing.assert_close(q.detach(), expected, rtol=1e-4, atol=1e-5)
    assert norm > 5.0  # the clipping acted


def test_a_width_search_is_planned_from_its_own_measured_step():
    """The rehearsal's MobileNetV2 width searches ran at 0.57× the plan, which priced their steps as
    passes of a training step: a table with a measured width-search step plans from it, scaled by the
    algorithm's passes; one without (the reference table) keeps the passes of a training step."""
    from rarts.pipeline import costs

    def table(rows):
        return costs.StepTable({"environment": {"device": "cpu"}, "size": "paper", "search_size": {"batch_size": 64},
                                "search_steps": [], "network_steps": rows})

    train = {"network": "mobilenetv2", "median_step_s": 6.0, "batch_size": 64}
    search = {"network": "mobilenetv2-search (darts1 step)", "median_step_s": 7.0, "batch_size": 64}
    assert table([train, search]).search_step("width", "rarts", "mobilenetv2", 64) == pytest.approx(14.0)
    assert table([train, search]).search_step("width", "darts2", "mobilenetv2", 32) == pytest.approx(8.75)
    assert table([train]).search_step("width", "rarts", "mobilenetv2", 64) == pytest.approx(24.0)
