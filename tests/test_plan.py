"""`rarts plan`: the jobs a target needs, their steps and GPU-hours from a measured step table,
and a SLURM profile whose runtimes come from the plan; and `rarts gpu-check` (`make gpu-check`) on CPU."""

import json
from pathlib import Path
import math
import os
import subprocess
import sys

import pytest
import yaml

from conftest import BIN, REPO
from rarts.pipeline.costs import StepTable
from rarts.models.genotypes import DARTS_V2, Genotype
from rarts.planning.plan import job_cost, parse_command

SEARCH_S = {"darts1": 0.1, "darts2": 0.3, "milenas": 0.15, "rarts": 0.2}  # seconds a step, batch 64
NET_S = {"cifar": (0.2, 96), "imagenet": (0.5, 128), "nats-search (darts1 step)": (0.05, 64), "nats": (0.02, 64),
         "preresnet": (0.1, 64), "mobilenetv2": (0.2, 64)}
BENCH = {"size": "paper", "environment": {"device": "cuda:0", "gpu": "Test GPU"},
         "search_size": {"init_channels": 16, "layers": 8, "resolution": 32, "batch_size": 64},
         "search_steps": [{"setting": "fp32", "algorithm": a, "median_step_s": t} for a, t in SEARCH_S.items()],
         "network_steps": [{"network": n, "median_step_s": t, "batch_size": b} for n, (t, b) in NET_S.items()]}


def paper_config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def search_command(algo, hp, space="darts", dataset="cifar10"):
    spec = {"dataset": dataset, "root": "data/x", "standin": False, "num_classes": 10, "hp": hp}
    return (f"rarts --device auto --threads 4 search --space {space} --algo {algo} --seed 0 "
            f"--spec '{json.dumps(spec)}' --split s.json --out-dir o --ckpt c.pt 2> log")


@pytest.mark.parametrize("algo", ["darts1", "darts2", "milenas", "rarts"])
def test_a_darts_search_costs_its_steps_times_the_measured_step(algo):
    config = paper_config()
    hp = config["search"]["darts"]  # 50 epochs, batch 64, a full pass over D_t (25,000 images)
    steps, gpu_s, gpus = job_cost(parse_command(search_command(algo, hp)), StepTable(BENCH), config)
    per_epoch = 25_000 // 64
    evaluation = per_epoch * SEARCH_S[algo] / {"darts1": 2, "darts2": 5, "milenas": 3, "rarts": 4}[algo] / 3
    assert (steps, gpus) == (50 * per_epoch, 1)
    assert gpu_s == pytest.approx(50 * (per_epoch * SEARCH_S[algo] + evaluation))


def test_nats_bench_cifar100_searches_on_the_whole_training_set_and_scales_by_passes():
    config = paper_config()
    hp = config["search"]["nats"]  # split: nats-bench → weights on all 50,000 training images
    steps, gpu_s, _ = job_cost(parse_command(search_command("rarts", hp, "nats", "cifar100")), StepTable(BENCH), config)
    per_epoch = 50_000 // 64
    step = 0.05 * 4 / 2  # the measured DARTS-1 step of the NATS search network, × 4 passes / 2
    assert steps == 100 * per_epoch
    assert gpu_s == pytest.approx(100 * (per_epoch * step + per_epoch * step / 4 / 3))


def test_an_imagenet_training_counts_all_its_gpus():
    config = paper_config()
    hp = {**config["train"]["imagenet"], "seed": 0}
    spec = {"dataset": "imagenet", "root": "data/imagenet", "standin": False, "hp": hp}
    cmd = (f"rarts --threads 4 train --net imagenet --genotype DARTS_V2 --name x --gpus {hp['gpus']} "
           f"--spec '{json.dumps(spec)}' --out-dir o --ckpt c.pt")
    steps, gpu_s, gpus = job_cost(parse_command(cmd), StepTable(BENCH), config)
    per_epoch = 1_281_167 // hp["batch_size"]
    step = 0.5 * hp["batch_size"] / 128
    assert (steps, gpus) == (hp["epochs"] * per_epoch, hp["gpus"])
    assert gpu_s == pytest.approx(hp["epochs"] * (per_epoch * step + 50_000 // hp["batch_size"] * step / 3))


def test_jobs_that_do_not_train_cost_nothing():
    table, config = StepTable(BENCH), paper_config()
    assert job_cost(parse_command("rarts table table1 --spec '{}' --csv a --md b"), table, config) == (0, 0.0, 0)
    assert job_cost(parse_command(search_command("random", paper_config()["search"]["darts"])), table, config) == (0, 0.0, 0)
    assert job_cost(parse_command("python benchmarks/search_step.py --size paper"), table, config) == (0, 0.0, 0)


@pytest.mark.slow
def test_plan_all_prints_every_rule_and_writes_a_profile_snakemake_reads(tmp_path, cli_env):
    from test_workflow import copy_workflow

    workdir = copy_workflow(tmp_path)
    (tmp_path / "bench.json").write_text(json.dumps(BENCH))
    out = subprocess.run([str(BIN / "rarts"), "plan", "all", "--bench", str(tmp_path / "bench.json"),
                          "--profile-out", str(tmp_path / "prof")], cwd=workdir, env=cli_env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = {line.split()[0]: line.split() for line in out.stdout.splitlines() if line and not line.startswith("#")}
    for rule in ("search_darts", "search_nats", "ablation_search", "train_cifar", "train_imagenet",
                 "width_train", "width_search", "width_finetune", "total"):
        assert rule in lines, rule
    assert int(lines["search_darts"][1]) == 25 and int(lines["train_cifar"][1]) == 27  # jobs
    local = [line for line in out.stdout.splitlines() if line.startswith("# on one machine with")]
    assert [line.split()[5] for line in local] == ["1", "2", "4", "8"], local  # this machine has no GPU
    assert "train_imagenet needs 4 GPUs" in local[0] and "about" in local[2]  # ImageNet's 4 ranks
    # the longest DARTS-space search is DARTS-2's: 50 epochs of 390 steps at 0.3 s, + evaluation
    hours = 50 * (390 * 0.3 + 390 * 0.3 / 5 / 3) / 3600
    assert float(lines["search_darts"][5]) == pytest.approx(hours, abs=0.01)  # max_job_hours
    profile = yaml.safe_load((tmp_path / "prof" / "config.yaml").read_text())
    minutes = math.ceil(hours * 60 * 1.5)
    assert profile["set-resources"]["search_darts"]["runtime"] == f"min({minutes} * attempt, 2880)"
    assert profile["executor"] == "slurm"
    dry = subprocess.run([str(BIN / "snakemake"), "-n", "--workflow-profile", str(tmp_path / "prof"),
                          "results/search/darts/darts2/seed0/genotype.json"], cwd=workdir, env=cli_env,
                         capture_output=True, text=True, timeout=600)
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert f"runtime={minutes}" in dry.stdout


@pytest.mark.slow
def test_gpu_check_runs_on_cpu_and_writes_its_tables(tmp_path):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run([sys.executable, "-m", "rarts", "gpu-check", "--size", "tiny", "--steps", "2",
                           "--warmup", "0", "--workers", "0", "--device", "cpu", "--no-cpu-peaks", "--ranks",
                           "imagenet=2", "--out", str(out)],
                          capture_output=True, text=True, timeout=900,  # as on a 2-GPU machine: a pretend pool
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": "0,1", "RARTS_GPU_LOCKS": str(tmp_path / "locks")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())
    assert sorted(res["environment"]["gpus_held"]) == ["0", "1"]  # both, alone: a timing shares no GPU
    assert "gpu-check: holding GPU" in proc.stdout
    rows = {(r["setting"], r["algorithm"]) for r in res["search_steps"]}
    for setting in ("fp32", "bf16", "channels_last"):
        assert {(setting, a) for a in ("darts1", "darts2", "milenas", "rarts")} <= rows
    assert ("fp32", "darts2-copy") in rows
    assert {r["network"] for r in res["network_steps"]} == {"cifar", "imagenet", "nats", "nats-search (darts1 step)",
                                                            "preresnet", "mobilenetv2", "preresnet-search (darts1 step)",
                                                            "mobilenetv2-search (darts1 step)"}
    assert [(r["network"], r["ranks"]) for r in res["ranked_steps"]] == [("imagenet", 2)]
    assert all(r["median_step_s"] > 0 for r in res["network_steps"] + res["search_steps"])
    assert res["input"]["cifar_augmentation_on_device"]["images_per_s"] > 0
    assert res["input"]["imagenet_jpeg_decoding"]["images_per_s"] > 0
    assert res["correctness"]["darts2_hypergradient_float64"]["ok"]
    assert res["correctness"]["repeat_search"]["identical"]  # on a CPU, bit for bit
    assert res["correctness"]["repeat_search_deterministic"]["identical"]
    assert res["correctness"]["darts2_fd_under_bf16"]["hvp_identical_under_amp"]
    assert res["correctness"]["latency_table_timing"]["table_ms"] > 0
    assert "skipped" in res["correctness"]["host_syncs_in_search_steps"]  # CUDA only
    assert not any("error" in v for v in res["correctness"].values() if isinstance(v, dict))
    assert res["environment"]["torch"] == __import__("torch").__version__
    assert (tmp_path / "gpu_check.md").read_text().startswith("# GPU check (tiny size)")
    table = StepTable(res)  # the plan reads it, the 2-rank step a step of a 2-rank job
    two = res["ranked_steps"][0]
    decode = 2 / res["input"]["imagenet_jpeg_decoding"]["images_per_s"]
    assert table.train_step("imagenet", 2, ranks=2) == pytest.approx(two["median_step_s"] + decode)
    assert [r["network"] for r in res["edge_steps"]] == ["cifar", "imagenet"]
    heavy = Genotype([("sep_conv_5x5", 0)] * 8, [2, 3, 4, 5], [("sep_conv_5x5", 0)] * 8, [2, 3, 4, 5]).to_json()
    for net in ("cifar", "imagenet"):  # the edges' operations price a cell: the table's own at 1, a heavier above
        assert all(v > 0 for r in res["edge_steps"] for kind in ("normal", "reduce_input") for v in r[kind].values())
        assert table.cell_factor(net, DARTS_V2.to_json()) == 1.0 < table.cell_factor(net, heavy)


def test_runtime_requests_are_capped_and_retries_cover_the_windows():
    """cluster.requests against a hand computation: 100 planned minutes × safety 1.5 = 150, at most the
    cap of 120 (any attempt), in ceil(150 / 120) = 2 windows → 1 resubmission + 2 spare; a 1-GPU job
    asks for its cpus_per_gpu on the GPU partition, a CPU job for its threads on the CPU one."""
    from rarts.pipeline import cluster

    c = {"gpu_partition": "g", "cpu_partition": "c", "account": "", "cpus_per_gpu": 6, "max_runtime_min": 120,
         "min_runtime_min": 10, "safety": 1.5, "spare_retries": 2, "step_table": ""}
    gpu_job = cluster.requests(c, 4, gpus=2, mem_mb=9000, minutes=100)
    w = object()
    assert [gpu_job["runtime"](w, attempt) for attempt in (1, 2, 3)] == [120, 120, 120]
    assert (gpu_job["gpu"](w), gpu_job["cpus_per_task"](w), gpu_job["nodes"], gpu_job["mem_mb"](w),
            gpu_job["slurm_partition"](w)) == (2, 12, 1, 9000, "g")
    assert cluster.retries(c, 100) == 1 + 2 and cluster.retries(c, 70) == 0 + 2  # 105 min: one window
    cpu_job = cluster.requests(c, 4, gpus=0, mem_mb=lambda w: 1234, minutes=lambda w: 2)
    assert [cpu_job["runtime"](w, a) for a in (1, 2, 20)] == [10, 20, 120]  # at least 10, × attempt, capped
    assert (cpu_job["cpus_per_task"](w), cpu_job["slurm_partition"](w), cpu_job["mem_mb"](w)) == (4, "c", 1234)
    assert "slurm_account" not in cpu_job  # the plugin's own default account
    assert cluster.requests({**c, "account": "proj1"}, 4, 0, 1000, 1)["slurm_account"] == "proj1"  # sbatch -A proj1


def test_every_plugin_setting_in_the_slurm_profile_is_one_the_plugin_reads():
    """A `slurm-*` key of the profile is a setting of the installed plugin that its code uses (2.8.0
    declares `no_account` and never reads it): no setting in the profile does nothing."""
    import re

    import snakemake_executor_plugin_slurm as plugin

    source = "".join(p.read_text() for p in Path(plugin.__file__).parent.glob("*.py"))
    profile = yaml.safe_load((REPO / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    keys = [k for k in profile if k.startswith("slurm-")]
    assert keys
    for key in keys:
        name = key[len("slurm-"):].replace("-", "_")
        assert re.search(rf"^\s+{name}: ", source, re.M), f"{key}: not a setting of the plugin"
        assert re.search(rf"\.{name}\b", source), f"{key}: the plugin declares it and never reads it"


def test_memory_requests_count_ranks_workers_and_data():
    from rarts.pipeline import cluster

    cifar = 60_000 * 3 * 32 * 32
    assert cluster.memory_mb("cifar", gpus=1, images=60_000) == cluster.BASE_MB["gpu"] + -(-cifar // 2**20)
    assert cluster.memory_mb("cifar", gpus=0, images=60_000) == (cluster.BASE_MB["cpu"] + cluster.ACTIVATIONS_MB["cifar"]
                                                                 + -(-5 * cifar // 2**20))
    assert cluster.memory_mb("imagenet", gpus=4, ranks=4, workers=8) == 4 * (cluster.BASE_MB["gpu"] + 8 * cluster.WORKER_MB)


def test_plan_works_before_any_measurement_and_names_the_reference(tmp_path, monkeypatch):
    """With no measured table the plan uses the reference table shipped with the package and says so;
    a table without the network a rule trains names the rule."""
    table = StepTable.load(tmp_path / "missing.json")
    assert table.reference and "reference table shipped with rarts" in table.where and "make gpu-check" in table.where
    config = paper_config()
    steps, gpu_s, _ = job_cost(parse_command(search_command("darts2", config["search"]["darts"])), table, config)
    assert steps == 50 * 390 and gpu_s / 86400 == pytest.approx(3.1)  # the RARTS paper's DARTS-2 GPU-days
    partial = StepTable({**BENCH, "network_steps": [r for r in BENCH["network_steps"] if r["network"] != "cifar"]})
    from rarts.pipeline.costs import MissingStep

    spec = {"dataset": "cifar10", "root": "x", "standin": False, "hp": {**config["train"]["cifar"], "seed": 0}}
    cmd = f"rarts train --net cifar --genotype DARTS_V2 --name x --spec '{json.dumps(spec)}' --out-dir o --ckpt c"
    with pytest.raises(MissingStep, match="no step time for network 'cifar'"):
        job_cost(parse_command(cmd), partial, config)


def test_a_failing_gpu_check_section_is_recorded_and_the_rest_goes_on():
    """An out-of-memory (or any error) in one section of `make gpu-check` is written into that section's
    place with where it happened; the sections after it still run."""
    from rarts.planning import gpu_check

    def out_of_memory():
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")

    res = {}
    gpu_check.timed(res, "search_steps", out_of_memory)
    gpu_check.timed(res, "after", lambda: {"ok": True})
    assert res["search_steps"]["error"].startswith("RuntimeError: CUDA out of memory") and res["search_steps"]["where"]
    assert res["after"] == {"ok": True} and set(res["section_wall_s"]) == {"search_steps", "after"}
    md = gpu_check.markdown({"size": "tiny", "environment": {"cpu": "x"}, "search_steps": res["search_steps"],
                             "network_steps": [], "input": {}, "correctness": {}, "section_wall_s": {}, "wall_s": 1.0})
    assert "CUDA out of memory" in md


def test_the_local_plan_schedules_gpu_jobs_after_their_inputs_longest_first():
    """Two searches, a retraining of the first's cell and a 2-GPU transfer after it, timed by hand."""
    from rarts.planning.plan import local_hours

    def job(name, hours, gpus=1, inputs=()):
        return {"rule": name, "wall_hours": hours, "gpus": gpus, "inputs": list(inputs), "outputs": [name]}

    a, b = job("a", 2.0), job("b", 1.0)
    c, d = job("c", 3.0, inputs=["a"]), job("d", 1.0, gpus=2, inputs=["c"])
    # 2 GPUs: a [0, 2] and b [0, 1] side by side; c waits for a: [2, 5]; d takes both: [5, 6]
    assert local_hours([a, b, c, d], 2) == pytest.approx(6.0)
    # 1 GPU: a [0, 2]; then c (the longer of the ready ones) [2, 5], b [5, 6]
    assert local_hours([a, b, c], 1) == pytest.approx(6.0)
    assert local_hours([a, b, c, d], 1) is None  # d cannot run on one GPU
    assert local_hours([a, b, c, d], 8) == pytest.approx(6.0)  # the chain a → c → d bounds it
    assert local_hours([a, b], 1) == pytest.approx(3.0)


def test_the_plan_says_how_many_jobs_fit_on_one_gpu():
    """Slots from measured peaks: an 80 GiB GPU and a largest job of 10 GiB: (10 × 1.2 + 0.6) GiB a job
    → 6 fit; a CPU table or the reference table has no GPU peaks to go by."""
    bench = {**BENCH, "environment": {**BENCH["environment"], "gpu_memory_GiB": 80.0},
             "search_steps": [{**r, "peak_mem_MiB": 10240.0 if r["algorithm"] == "darts2" else 4096.0}
                              for r in BENCH["search_steps"]]}
    assert StepTable(bench).slots_that_fit() == int(80 * 1024 // (10240 * 1.2 + 600)) == 6
    bench["network_steps"] = [*bench["network_steps"], {"network": "imagenet", "median_step_s": 1.0, "batch_size": 128,
                                                         "peak_mem_MiB": 30000.0}]
    assert StepTable(bench).slots_that_fit() == 2  # the largest job decides
    assert StepTable(BENCH).slots_that_fit() is None  # no GPU memory recorded
    assert StepTable.load(None).slots_that_fit() is None  # the reference table


def test_imagenets_memory_request_counts_both_loaders_workers(monkeypatch):
    """Each ImageNet rank keeps a training and an evaluation DataLoader with `workers` workers each
    (persistent): 4 ranks × (the GPU base + 2 × 8 workers × 600 MB) on the paper config."""
    from rarts.pipeline import cluster
    from rarts.planning import plan

    monkeypatch.chdir(REPO)
    jobs = plan.dry_run_jobs(["results/train/imagenet/DARTS_V2/metrics.json"], [], (str(BIN / "snakemake"),))
    job = next(j for j in jobs if j["rule"] == "train_imagenet")
    hp = paper_config()["train"]["imagenet"]
    assert (hp["gpus"], hp["workers"]) == (4, 8)
    assert job["resources"]["mem_mb"] == 4 * (cluster.BASE_MB["gpu"] + 2 * 8 * cluster.WORKER_MB)
