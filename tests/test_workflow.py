"""The Snakemake workflow: the paper DAG, schema errors, and the offline config end to end."""

import json
import os
import shutil
import subprocess
import time

import pandas as pd
import pytest
import yaml

from conftest import BIN, REPO

pytestmark = pytest.mark.slow


def copy_workflow(dst):
    """A scratch copy of the workflow (the default profile's link included)."""
    for name in ("Snakefile", "workflow", "config"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, dst / name)
    os.symlink(os.readlink(REPO / "profiles"), dst / "profiles")
    return dst


@pytest.fixture
def workdir(tmp_path):
    """A scratch copy of the workflow, so tests never touch the repo's results/."""
    return copy_workflow(tmp_path)


def snakemake(workdir, env, *args, check=True):
    proc = subprocess.run([str(BIN / "snakemake"), *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def job_counts(stdout):
    counts, started = {}, False
    for line in stdout.splitlines():
        if line.startswith("job ") and "count" in line:
            started = True
            continue
        if started:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                counts[parts[0]] = int(parts[1])
            elif parts and parts[0] == "total":
                break
    return counts


def test_paper_dag_has_every_search(workdir, cli_env):
    out = snakemake(workdir, cli_env, "-n", "all").stdout
    counts = job_counts(out)
    assert counts["search_darts"] == 25  # 5 algorithms × 5 seeds
    assert counts["train_cifar"] == 27  # every searched genotype + DARTS_V1 + DARTS_V2
    assert counts["train_imagenet"] == 2  # the chosen RARTS cell + DARTS_V2
    assert counts["ablation_search"] == counts["model_latency"] == 27  # Table 2: 9 settings × 3 seeds
    assert counts["latency_table"] == 1
    assert counts["search_nats"] == 24 and counts["nats_score"] == 2  # 4 algorithms × 3 seeds × 2 datasets
    assert counts["nats_bench_split"] == 2  # Table 4 searches on NATS-Bench's fixed splits
    assert counts["fig1"] == counts["fig2"] == counts["log_mlflow"] == 1
    # Tables 5 and 6: baseline + NS sparsity training per dataset (2 × 2) + 5 MobileNetV2 baselines;
    # RARTS width search per dataset + 3 algorithms × 5 seeds; fine-tunings: NS and RARTS at 40 and
    # 60% per dataset (8) + DARTS-1, DARTS-2, RARTS and random × 5 seeds (20)
    assert counts["width_train"] == 4 + 5 and counts["width_search"] == 2 + 15
    assert counts["width_finetune"] == 8 + 20 and counts["imagenet_r"] == 1 and counts["width_table"] == 2


def test_paper_dag_for_table5_shows_every_training(workdir, cli_env):
    out = snakemake(workdir, cli_env, "-n", "results/table5.csv").stdout
    counts = job_counts(out)
    expected = {"prepare_cifar": 2, "search_split": 2, "width_train": 4, "width_search": 2,
                "width_finetune": 8, "width_table": 1}
    assert {k: counts.get(k) for k in expected} == expected and counts["total"] == sum(expected.values())
    for run in ("baseline", "sparse", "ns-40", "ns-60", "rarts-40", "rarts-60", "search-rarts"):
        for ds in ("cifar10", "cifar100"):
            assert f"results/width/table5/{ds}/{run}/seed0/" in out, (ds, run)


def test_make_quick_runs_the_offline_profile_without_an_activated_venv(workdir, cli_env):
    """The README's main command as the Makefile spells it, from a shell whose PATH lacks the
    venv (as on a fresh machine): a dry run of `all`, then a real run of one small target."""
    shutil.copy(REPO / "Makefile", workdir / "Makefile")
    env = {**cli_env, "PATH": os.pathsep.join(p for p in cli_env["PATH"].split(os.pathsep) if p != str(BIN))}

    def make(*args):
        proc = subprocess.run(["make", "quick", "STAMP=", f"BIN={BIN}", *args], cwd=workdir, env=env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
        return proc.stdout

    counts = job_counts(make("SMK_FLAGS=-n"))
    assert counts["log_mlflow"] == 1 and counts["width_table"] == 2
    assert counts["search_darts"] == 10  # the quick config: 5 algorithms × 2 seeds
    make("TARGETS=results/fig1.png")  # the rule calls `rarts`, found through the Makefile's PATH
    assert (workdir / "results" / "fig1.png").is_file()


def test_bad_config_stops_with_the_key_named(workdir, cli_env):
    cfg = yaml.safe_load((workdir / "config" / "quick.yaml").read_text())
    cfg["search"]["darts"]["epoks"] = 3
    (workdir / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(workdir, cli_env, "-n", "all", "--configfile=bad.yaml", check=False)
    assert proc.returncode != 0
    assert "epoks" in proc.stdout + proc.stderr


def test_a_nan_in_the_config_stops_with_the_key_named(workdir, cli_env):
    cfg = yaml.safe_load((workdir / "config" / "quick.yaml").read_text())
    cfg["search"]["darts"]["w_lr"] = float("nan")  # `.nan` in YAML: it passes the JSON schema
    (workdir / "nan.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(workdir, cli_env, "-n", "all", "--configfile=nan.yaml", check=False)
    assert proc.returncode != 0 and "config.search.darts.w_lr is nan" in proc.stdout + proc.stderr


SHORTEST = {  # every run of the offline config cut to one epoch of two steps
    ("search", "darts"), ("search", "nats"), ("latency", "ablation"), ("nats", "local_train"),
    ("train", "cifar"), ("train", "imagenet"), *((("width", t, part) for t in ("table5", "table6")
                                                  for part in ("train", "finetune", "search")))}


def shortest_profile(workdir, **top) -> str:
    """The offline config with every run one epoch of two steps: the same DAG and rules in a
    third of the time. That the profile's runs learn is `test_learning.py`'s and `make quick`'s.
    `top`: top-level keys to set besides."""
    cfg = yaml.safe_load((workdir / "config" / "quick.yaml").read_text())
    cfg.update(top)
    for path in SHORTEST:
        node = cfg
        for key in path:
            node = node.setdefault(key, {})
        node.update(epochs=1, max_steps_per_epoch=2)
    (workdir / "config" / "shortest.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return "--configfile=config/shortest.yaml"


def test_quick_profile_runs_all_and_logs_to_mlflow(workdir, cli_env):
    snakemake(workdir, cli_env, "--cores", "2", "results/fig1.png", "--configfile", "config/quick.yaml")
    assert (workdir / "results" / "fig1.png").is_file()
    assert not (workdir / "results" / "search").exists(), "fig1 alone must not run searches"

    # as on a machine with two GPUs (a pretend pool: the jobs claim GPUs 0 and 1 and compute on the CPU),
    # the ImageNet transfer over two ranks, and more cores than GPUs so that CPU and GPU jobs mix
    cli_env = {**cli_env, "CUDA_VISIBLE_DEVICES": "0,1", "RARTS_GPU_LOCKS": str(workdir / "gpu-locks")}
    train = yaml.safe_load((workdir / "config" / "quick.yaml").read_text())["train"]
    train["imagenet"]["gpus"] = 2
    profile = shortest_profile(workdir, device="cpu", train=train)
    snakemake(workdir, cli_env, "--cores", "4", profile, "all")
    res = workdir / "results"
    held_gpus_apart(res)
    # the job options reach each job through the Snakefile's environment, and its log names them all
    first = (res / "logs" / "search" / "darts" / "rarts" / "seed0.log").read_text().splitlines()[0]
    assert "rarts --device cpu --mlflow" in first and "--hold-gpus auto --take-over" in first, first
    for name in ("fig1.pdf", "toy_equilibria.csv", "fig2.png", "fig2.pdf", "mlflow_run.json",
                 "table1.csv", "table1.md", "table2.csv", "table2.md", "table3.csv", "table3.md",
                 "table4.csv", "table4.md", "latency/cpu.json"):
        assert (res / name).is_file(), name
    t1 = pd.read_csv(res / "table1.csv")
    ours = t1[t1.source == "ours"]
    assert len(ours) == 7 and (ours.n_runs > 0).all() and ours.test_error_mean.between(0, 100).all()
    assert "STAND-IN" in (res / "table1.md").read_text() and "STAND-IN" in (res / "table3.md").read_text()
    assert t1.standin.all() and not t1.rehearsal.any()  # the CSV says so too
    t2 = pd.read_csv(res / "table2.csv")
    assert t2.setting.tolist()[:3] == ["base", "weight_2e-2", "weight_2e-4"] and len(t2) == 9
    assert (t2.latency_ms_mean > 0).all() and t2.paper_latency_ms.notna().all()
    history = json.loads((res / "search" / "darts" / "rarts" / "seed0" / "history.json").read_text())
    assert "expected_latency" in history["epochs"][-1]  # the RARTS searches carry the penalty
    t4 = pd.read_csv(res / "table4.csv")
    assert len(t4) == 8 and (t4.source == "local-train").all()  # no benchmark offline: nothing invented
    t3 = pd.read_csv(res / "table3.csv")
    assert set(t3[t3.source == "ours"].method) == {"RARTS", "DARTS_V2 (published cell)"}
    eq = pd.read_csv(res / "toy_equilibria.csv")
    rarts = eq[eq.method == "rarts"]
    assert (rarts.abs_err < 1e-3).all() and (rarts.dist_to_optimum < 0.7).all()
    skips = pd.read_csv(res / "search" / "darts" / "skip_connections.csv")
    assert len(skips) == 10 and skips.standin.all()  # 5 algorithms × 2 seeds, marked stand-in
    ready = json.loads((res / "data" / "cifar10" / "ready.json").read_text())
    assert ready["standin"] and "stand-in" in ready["note"]
    run = json.loads((res / "mlflow_run.json").read_text())
    from mlflow.tracking import MlflowClient

    client = MlflowClient(run["tracking_uri"])
    figures = {f.path for f in client.list_artifacts(run["run_id"], "figures")}
    assert {"figures/fig1.png", "figures/fig2.png"} <= figures
    tables_and_figures = {f"figures/table{t}.{ext}" for t in range(1, 7) for ext in ("png", "pdf")}
    assert tables_and_figures | {f"figures/skip_connections_{g}.png" for g in ("darts", "nats-cifar10", "nats-cifar100")} <= figures
    assert "<table" in (res / "table4.html").read_text()
    for search in ("search/darts/rarts/seed0", "search/nats/cifar100/darts2/seed0"):
        assert (res / search / "dynamics.png").is_file(), search
    children = client.search_runs([run["experiment_id"]], f"tags.mlflow.parentRunId = '{run['run_id']}'")
    searches = [c for c in children if c.data.tags["kind"] == "search"]
    trainings = [c for c in children if c.data.tags["kind"] == "training"]
    # every trained DARTS-space, NATS and width search (random has no curves)
    measured = [c for c in children if c.data.tags["kind"] in ("latency", "lookup")]  # Tables 2 and 4
    assert len(searches) == 8 + 8 + 2 + 3 and len(children) == len(searches) + len(trainings) + len(measured)
    assert {c.data.tags["table"] for c in measured} == {"table2", "table4"}
    assert all(c.info.end_time - c.info.start_time > 100 for c in measured)  # each its own real times
    for child in searches:  # what each held, and its real start and end (not when it was logged)
        assert child.data.params["gpus"] in ("0", "1"), child.info.run_name
        assert child.info.end_time - child.info.start_time > 500, child.info.run_name
    # every training behind a table: its table, row, seed and data kind, real times, curves and final numbers
    per_table = pd.Series([c.data.tags["table"] for c in trainings]).value_counts().to_dict()
    assert set(per_table) == {"table1", "table3", "table5", "table6"}
    t5_ours, t6_rows = pd.read_csv(res / "table5.csv").query("source == 'ours'"), pd.read_csv(res / "table6.csv")
    assert per_table["table5"] == len(t5_ours) and per_table["table6"] == len(t6_rows)  # one seed a row
    for child in trainings:
        assert child.data.tags["data"] == "stand-in" and child.data.tags["seed"] != "", child.info.run_name
        assert child.info.end_time - child.info.start_time > 500, child.info.run_name
        assert client.get_metric_history(child.info.run_id, "test_acc") and "final/test_error" in child.data.metrics
    # the pipeline run: our and the paper's headline numbers apart, and the verdict counts
    metrics = client.get_run(run["run_id"]).data.metrics
    compared = pd.read_csv(res / "reproduction.csv").query("table != 'claim'")
    assert metrics["verdicts/not comparable: stand-in data"] == len(compared)
    assert any(k.startswith("table5/") and k.endswith("/ours") for k in metrics)
    assert any(k.startswith("table1/") and k.endswith("/paper") for k in metrics)

    # Tables 5 and 6 from the offline config
    t5 = pd.read_csv(res / "table5.csv")
    ours = t5[t5.source == "ours"]
    assert set(ours.run) == {"baseline", "ns-40", "ns-60", "rarts-40", "rarts-60"} and len(ours) == 10
    assert ours.test_error_mean.between(0, 100).all() and ours.flops.gt(0).all()
    pruned = ours[ours.run != "baseline"]
    assert (pruned.prc_pct.round() == pruned.run.str[-2:].astype(float)).all()  # the PRC asked for
    base = ours[ours.run == "baseline"].set_index("dataset")
    assert (pruned.params < pruned.dataset.map(base.params)).all()  # really rebuilt thinner
    assert t5[t5.source == "paper"].test_error_mean.isna().all()
    t6 = pd.read_csv(res / "table6.csv")
    assert t6.run.tolist() == ["baseline", "random", "darts1", "darts2", "rarts"] and (t6.n_runs == 1).all()
    assert "STAND-IN" in (res / "table5.md").read_text() and "STAND-IN" in (res / "table6.md").read_text()
    assert len(json.loads((res / "data" / "imagenet_r" / "classes.json").read_text())) == 5

    # the verdicts: every row of ours beside the paper's, none comparable on stand-in data
    verdicts = pd.read_csv(res / "reproduction.csv")
    rows = verdicts[verdicts.table != "claim"]
    assert set(rows.table) == {"table1", "table2", "table3", "table4", "table5", "table6"}
    assert set(rows.verdict) == {"not comparable: stand-in data"}
    assert "The paper's claims" in (res / "reproduction.md").read_text() and (verdicts.table == "claim").any()
    assert (res / "logs" / "search" / "darts" / "rarts" / "seed0.log.usage.json").is_file()  # every job's peak

    # nothing left to do, and the report renders
    assert "Nothing to be done" in snakemake(workdir, cli_env, "-n", profile, "all").stdout
    snakemake(workdir, cli_env, profile, "--report", "report.html")
    report = (workdir / "report.html").read_text()
    assert len(report) > 10_000 and "our rows, by verdict" in report  # it opens on the verdicts


def gpu_records(res):
    """What every GPU job of a run held and when: its cost.json (searches) or metrics.json (trainings),
    or its latency JSON (timing jobs)."""
    files = [*(f for d in ("search", "ablation", "width") for f in res.glob(f"{d}/**/cost.json")),
             *res.glob("train/**/metrics.json"), *res.glob("width/**/metrics.json"),
             *res.glob("latency/*.json"), *res.glob("ablation/**/latency.json")]
    return {str(f.relative_to(res)): json.loads(f.read_text()) for f in files}


def held_gpus_apart(res):
    """On a two-GPU pool: every GPU job held GPUs of the pool, a random search none, the 2-rank ImageNet
    transfer two distinct ones; jobs that ran at the same time never held the same GPU, and nothing ran
    beside a timing job."""
    records = gpu_records(res)
    assert len(records) > 40
    for name, rec in records.items():
        assert set(rec["gpus"]) <= {0, 1} and rec["started"] <= rec["ended"], name
        wanted = 0 if name.startswith("search/darts/random/") else 2 if name.startswith("train/imagenet") else 1
        assert len(set(rec["gpus"])) == len(rec["gpus"]) == wanted, (name, rec["gpus"])

    def timing(name):  # the latency table, a model's latency (not the ablation's searches)
        return name.startswith("latency/") or name.endswith("/latency.json")

    assert sum(map(timing, records)) == 10  # the table and 9 models
    overlapping = 0
    names = sorted(records)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ra, rb = records[a], records[b]
            if ra["started"] < rb["ended"] and rb["started"] < ra["ended"]:
                overlapping += 1
                assert not set(ra["gpus"]) & set(rb["gpus"]), f"{a} and {b} held a GPU at the same time"
                assert not (timing(a) or timing(b)), f"{a} and {b}: a job ran beside a timing"
    assert overlapping > 0, "no two GPU jobs ran at once: the pool was not shared"
    log = (res / "logs" / "train" / "imagenet" / "DARTS_V2.log").read_text()
    assert "held GPU 0,1 from" in log or "held GPU 1,0 from" in log


def _one_search_config(workdir, seeds, threads=1):
    """The offline config cut to RARTS searches over `seeds` (what fig2 needs)."""
    cfg = yaml.safe_load((workdir / "config" / "quick.yaml").read_text())
    cfg["threads"] = threads
    cfg["search"]["darts"].update(algorithms=["rarts"], seeds=seeds, epochs=1, max_steps_per_epoch=2)
    path = workdir / "config" / f"cut-{len(seeds)}-{threads}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return f"--configfile={path.relative_to(workdir)}"


def test_adding_a_seed_schedules_only_the_new_jobs(workdir, cli_env):
    """Finished searches keep their identity when a seed is added or the threads change."""
    snakemake(workdir, cli_env, "--cores", "2", _one_search_config(workdir, [0]), "results/fig2.png")
    dry = snakemake(workdir, cli_env, "-n", _one_search_config(workdir, [0, 1]), "results/fig2.png").stdout
    counts = job_counts(dry)
    assert (counts["search_darts"], counts["fig2"], counts["total"]) == (1, 1, 2), dry
    assert "seed=1" in dry and "seed=0" not in dry
    dry = snakemake(workdir, cli_env, "-n", _one_search_config(workdir, [0], threads=2), "results/fig2.png").stdout
    assert "Nothing to be done" in dry, dry


def test_a_snakemake_killed_between_a_jobs_outputs_reruns_with_the_same_command(workdir, cli_env):
    """The default workflow profile (rerun-incomplete) applies to the plain command, and the lock a
    killed Snakemake leaves behind does not block the rerun."""
    args = ["--cores", "1", _one_search_config(workdir, [0]), "results/search/darts/darts1/seed0/genotype.json"]
    proc = subprocess.Popen([str(BIN / "snakemake"), *args], cwd=workdir, env=cli_env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = workdir / "results" / "search" / "darts" / "darts1" / "seed0"
    deadline = time.time() + 300
    while not (workdir / "results" / "logs" / "search" / "darts" / "darts1" / "seed0.log").exists():
        assert time.time() < deadline and proc.poll() is None, "the search job never started"
        time.sleep(0.2)
    os.killpg(proc.pid, 9)  # Snakemake and its job die at once
    proc.wait()
    out.mkdir(parents=True, exist_ok=True)
    (out / "genotype.json").write_text("{")  # the job had written one of its outputs, not the others
    assert list((workdir / ".snakemake" / "locks").glob("*.lock")), "the killed Snakemake left its locks"
    snakemake(workdir, cli_env, *args)
    assert json.loads((out / "genotype.json").read_text())["meta"]["algorithm"] == "darts1"
    assert (out / "cell.png").is_file()


def test_table1s_darts_protocol_runs_in_the_offline_profile_and_its_notes_name_it(workdir, cli_env):
    """`train.cifar.protocol: best`: each algorithm's best search (by final search validation
    accuracy) retrained with each retrain seed; the random baseline's cells once each."""
    cfg = yaml.safe_load((workdir / "config" / "quick.yaml").read_text())
    cfg["search"]["darts"].update(algorithms=["rarts", "random"], seeds=[0, 1], epochs=1, max_steps_per_epoch=2)
    cfg["train"]["cifar"].update(protocol="best", retrain_seeds=[0, 1], epochs=1, max_steps_per_epoch=2, published=[])
    (workdir / "best.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(workdir, cli_env, "--cores", "2", "results/table1.md", "--configfile", "best.yaml")
    res = workdir / "results"
    best = json.loads((res / "search" / "darts" / "rarts" / "best.json").read_text())
    assert best["meta"]["selection"].startswith("best_search_val → seed")
    assert {p.name for p in (res / "train" / "cifar").iterdir()} == {
        "rarts-best-train0", "rarts-best-train1", "random-seed0", "random-seed1"}
    t1 = pd.read_csv(res / "table1.csv").query("source == 'ours'").set_index("method")
    assert t1.loc["RARTS", "n_runs"] == 2 and t1.loc["Random baseline", "n_runs"] == 2
    notes = (res / "table1.md").read_text()
    assert "Protocol `best` (the DARTS protocol)" in notes and "training seeds [0, 1]" in notes


def test_ones_own_config_overlays_a_profile_as_the_docs_say(workdir, cli_env):
    """`--configfile config/quick.yaml mine.yaml` keeps both (the profile's stand-in data, mine's seeds),
    and so does `make quick CONFIG=mine.yaml`; two flags would have kept only the last."""
    (workdir / "mine.yaml").write_text("search:\n  darts:\n    seeds: [0]\n")
    out = snakemake(workdir, cli_env, "-n", "-p", "all", "--configfile", "config/quick.yaml", "mine.yaml").stdout
    assert job_counts(out)["search_darts"] == 5 and "results/data/standin/cifar10" in out
    shutil.copy(REPO / "Makefile", workdir / "Makefile")
    proc = subprocess.run(["make", "quick", "STAMP=", f"BIN={BIN}", "SMK_FLAGS=-n", "CONFIG=mine.yaml"], cwd=workdir,
                          env=cli_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and job_counts(proc.stdout)["search_darts"] == 5, proc.stdout[-2000:]
    two_flags = snakemake(workdir, cli_env, "-n", "-p", "all", "--configfile=config/quick.yaml",
                          "--configfile=mine.yaml", check=False)
    assert "results/data/standin" not in two_flags.stdout  # the trap the docs warn of: the profile is gone


@pytest.mark.parametrize("config", ["config/config.yaml", "config/quick.yaml", "config/rehearsal.yaml"])
def test_snakemakes_lint_finds_nothing(config):
    out = subprocess.run([str(BIN / "snakemake"), "--lint", "--configfile", config], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0 and "Congratulations, your workflow is in a good condition!" in out.stdout + out.stderr, \
        (out.stdout + out.stderr)[-4000:]
    assert "Lints for" not in out.stdout + out.stderr


def test_the_workflow_is_snakefmt_formatted():
    out = subprocess.run([str(BIN / "snakefmt"), "--check", "Snakefile", "workflow"], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
