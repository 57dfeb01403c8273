"""MLflow: one run per reproduction with the config, every table and figure, provenance and the
headline numbers beside the paper's, and a nested run per job behind them (searches, trainings,
latency measurements, lookups) with its curves. Jobs never write the store themselves; this single
local step does (SQLite stores corrupt under concurrent first writers)."""

from __future__ import annotations

import logging
import math
import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

from rarts.core.mlflow_live import experiment_id, gpu_list, mlflow_params, runs_named
from rarts.pipeline import layout
from rarts.pipeline.io import read_json, write_json
from rarts.pipeline.names import data_kind

log = logging.getLogger("rarts.report.tracking")

PACKAGES = ("rarts", "torch", "torchvision", "snakemake", "mlflow", "pandas", "numpy", "nats_bench")


def tracking_uri(spec: dict) -> str:
    """The config's URI, else MLFLOW_TRACKING_URI, else a SQLite file under the results folder."""
    if spec.get("tracking_uri"):
        return spec["tracking_uri"]
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{Path(spec['store_dir']).resolve() / 'mlflow.db'}"


def provenance() -> dict:
    import torch

    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain"], capture_output=True,
                                    text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", False
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[f"version.{pkg}"] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[f"version.{pkg}"] = "not installed"
    # where the logging step ran (the submit host on a cluster): each job's own device is on its run
    host = torch.cuda.get_device_name(0) if torch.cuda.is_available() else \
        f"cpu ({platform.machine()}, {os.cpu_count()} cores)"
    return {"git.commit": commit, "git.dirty": str(dirty), "logged_on": f"{platform.node()}: {host}",
            "python": platform.python_version(), **versions}


def job_devices(search_runs) -> str:
    """The devices the searches ran on, from their cost.json (not the logging host's)."""
    costs = (Path(r) / "cost.json" for r in search_runs)
    devices = {read_json(c).get("device") for c in costs if c.exists()} - {None, "none (sampled)"}
    return "; ".join(sorted(devices)) or "none recorded"


EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "wall_s", "expected_latency")


def _log_search_run(client, experiment_id: str, parent_id: str, run_dir: Path) -> None:
    hist = read_json(run_dir / "history.json")
    name = f"search-{hist.get('space', 'darts')}-{hist['dataset']}-{hist['algorithm']}-seed{hist['seed']}"
    cost = read_json(run_dir / "cost.json") if (run_dir / "cost.json").exists() else {}
    held = {k: cost[k] for k in ("gpus", "started", "ended") if k in cost}  # what the job held, and when
    from mlflow.entities import Metric

    # α evolution: the softmax weight of every op on every edge, one series each
    alphas = [Metric(alpha_metric(cell, e, k, hist), float(v), 0, rec["epoch"]) for rec in hist["epochs"]
              for cell, weights in rec["alpha"].items() for e, row in enumerate(weights) for k, v in enumerate(row)]
    _nested_run(client, experiment_id, parent_id, name, {"kind": "search", "device": cost.get("device", "not recorded")},
                {"algorithm": hist["algorithm"], "seed": hist["seed"], "dataset": hist["dataset"],
                 "standin": hist["standin"], **({"gpus": gpu_list(held["gpus"])} if held else {})},
                {}, hist["epochs"], held.get("started"), held.get("ended"),
                [run_dir / f for f in ("genotype.json", "history.json", "cost.json", "cell.png", "dynamics.png")],
                epoch_metrics=EPOCH_METRICS, extra=alphas)


JOB_EPOCH_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "test_top5", "lr", "wall_s")
JOB_FINAL_METRICS = ("test_error", "test_top5_error", "best_test_error", "params_M", "flops", "prc", "wall_s")
TRAINED_FOR = {"cifar": "table1", "imagenet": "table3"}  # results/train/<net>/… feeds this table


def job_place(path: Path, m: dict) -> dict:
    """Which table, row and seed a training's metrics.json feeds, from where the workflow writes it:
    results/train/<net>/<name>/ (Tables 1 and 3) or results/width/<table>/<dataset>/<method>/seed<s>/."""
    parts = path.parts[path.parts.index("results") + 1:] if "results" in path.parts else path.parts
    if parts[0] == "width":
        run = layout.fields(layout.WIDTH_RUN, path)
        return {"table": run["table"], "row": f"{run['dataset']} · {run['method']}", "method": run["method"],
                "seed": run["seed"]}
    return {"table": TRAINED_FOR.get(parts[1], parts[1]), "row": m["name"], "method": m["name"],
            "seed": str((m.get("hp") or {}).get("seed", ""))}


def _nested_run(client, experiment_id: str, parent_id: str, name: str, tags: dict, params: dict, finals: dict,
                history=(), started=None, ended=None, artifacts=(), epoch_metrics=JOB_EPOCH_METRICS,
                extra=()) -> None:
    """One job as a run nested under the pipeline's: its tags (for a table's job: table, row, method, seed,
    data kind, device), when it ran, its per-epoch curves (and any `extra` series), its final numbers and
    its files."""
    from mlflow.entities import Metric

    run = client.create_run(experiment_id, run_name=name, start_time=_ms(started),
                            tags={"mlflow.parentRunId": parent_id, **{k: str(v) for k, v in tags.items()}})
    rid = run.info.run_id
    client.log_batch(rid, params=mlflow_params(params)[:100])
    metrics = [Metric(k, float(rec[k]), 0, rec["epoch"]) for rec in history
               for k in epoch_metrics if isinstance(rec.get(k), (int, float))]
    metrics += [Metric(f"final/{k}", float(v), 0, len(history)) for k, v in finals.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    _log_metrics(client, rid, [*metrics, *extra])
    for path in map(Path, artifacts):
        if path.exists():
            client.log_artifact(rid, str(path))
    client.set_terminated(rid, end_time=_ms(ended))


def _log_job_run(client, experiment_id: str, parent_id: str, path: Path) -> None:
    """A training behind Table 1, 3, 5 or 6 (its metrics.json)."""
    m = read_json(path)
    place = job_place(path, m)
    name = f"{place['table']}-{place['row']}-seed{place['seed']}".replace(" · ", "-")
    hp = {f"hp.{k}": v for k, v in (m.get("hp") or {}).items()}
    _nested_run(client, experiment_id, parent_id, name,
                {"kind": "training", **place, "data": data_kind(m), "dataset": m.get("dataset", ""),
                 "device": m.get("device", "not recorded")},
                {"net": m["net"] if isinstance(m.get("net"), str) else "width",
                 "gpus": gpu_list(m.get("gpus")), **hp},
                {k: m.get(k) for k in JOB_FINAL_METRICS}, m.get("history", []), m.get("started"), m.get("ended"), [path])


def _log_latency_run(client, experiment_id: str, parent_id: str, path: Path) -> None:
    """A latency measurement behind Table 2: results/ablation/latency/<setting>/seed<s>/latency.json."""
    m = read_json(path)
    run = layout.fields(layout.LATENCY_ABLATION_RUN, path)
    setting, seed = run["setting"], run["seed"]
    _nested_run(client, experiment_id, parent_id, f"table2-{setting}-seed{seed}",
                {"kind": "latency", "table": "table2", "row": setting, "method": "rarts", "seed": seed,
                 "data": data_kind(m), "device": m.get("device", "not recorded")},
                {"batch_size": m.get("batch_size"), "resolution": m.get("resolution"),
                 "gpus": gpu_list(m.get("gpus"))},
                {k: m.get(k) for k in ("latency_ms", "params_M")}, (), m.get("started"), m.get("ended"), [path])


def _log_score_runs(client, experiment_id: str, parent_id: str, path: Path) -> None:
    """Table 4's lookups (results/nats/<dataset>/scores.json): a run per searched cell, scored in one job
    (each cell's lookup or brief training has its own start and end)."""
    for r in read_json(path):
        _nested_run(client, experiment_id, parent_id, f"table4-{r['dataset']}-{r['algorithm']}-seed{r['seed']}",
                    {"kind": "lookup", "table": "table4", "row": f"{r['dataset']} · {r['algorithm']}",
                     "method": r["algorithm"], "seed": r["seed"], "data": data_kind(r), "source": r.get("source", "")},
                    {"arch": r.get("arch", ""), "hp": r.get("hp", "")},
                    {k: r.get(k) for k in ("test_error", "skip_ratio", "params_M", "flops_M")},
                    started=r.get("started"), ended=r.get("ended"))


def metric_name(*parts: str) -> str:
    """A metric name MLflow accepts (letters, digits, `_-. :/`), the parts joined by slashes."""
    return "/".join(re.sub(r"[^\w.\- :]", "_", str(p)) for p in parts)


def _log_verdicts(client, pid: str, path: Path) -> None:
    """The pipeline run's headline numbers from results/reproduction.csv: each compared row, ours and the
    paper's under separate names, and how many rows got each verdict."""
    import pandas as pd
    from mlflow.entities import Metric

    df = pd.read_csv(path)
    rows = df[df.table != "claim"]
    metrics = []
    for r in rows.itertuples():
        for who, value in (("ours", r.ours_mean), ("paper", r.paper)):
            if pd.notna(value):
                metrics.append(Metric(metric_name(r.table, r.row, who), float(value), 0, 0))
    for verdict, n in rows.verdict.str.split(" \\(").str[0].value_counts().items():
        metrics.append(Metric(metric_name("verdicts", verdict), float(n), 0, 0))
    claims = df[df.table == "claim"]
    metrics.append(Metric("verdicts/claims shown", float(claims.verdict.str.startswith("shown").sum()), 0, 0))
    _log_metrics(client, pid, metrics)


def alpha_metric(cell: str, edge: int, op: int, hist: dict) -> str:
    """An α series' name by edge and operation, e.g. `alpha/normal/e03 c-1 to 1/sep_conv_3x3` (MLflow's
    charts group a name's part before a slash into a section of its own, apart from the losses). The
    history names its edges and operations (`edges`, `ops`); indices where it does not."""
    edges, ops = hist.get("edges") or [], hist.get("ops") or []
    where = f"e{edge:02d}"
    if edge < len(edges):  # "c₋₂→0" in ASCII, which MLflow's names require
        where += " " + edges[edge].replace("₋₂", "-2").replace("₋₁", "-1").replace("→", " to ")
    what = ops[op] if op < len(ops) else f"op{op}"
    return f"alpha/{cell}/{where}/{what}"


def _log_metrics(client, run_id: str, metrics: list) -> None:
    for i in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics a batch
        client.log_batch(run_id, metrics=metrics[i:i + 1000])


def _ms(epoch_s: float | None) -> int | None:
    """Epoch seconds as MLflow's milliseconds (None: now)."""
    return None if epoch_s is None else int(epoch_s * 1000)


def log_reproduction(spec: dict, config: dict, artifacts, search_runs, out, job_runs=()) -> dict:
    """spec: tracking_uri, experiment, store_dir, run_name."""
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = tracking_uri(spec)
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    artifact_root = None
    if uri.startswith("sqlite:"):  # keep artifacts beside the database, not in ./mlruns
        artifact_root = (Path(spec["store_dir"]).resolve() / "mlartifacts").as_uri()
    exp_id = experiment_id(client, spec["experiment"], artifact_root)
    name = spec.get("run_name") or "reproduction"
    for old in runs_named(client, exp_id, name, "reproduction"):  # a rerun, or a killed logger's run
        for child in client.search_runs([exp_id], filter_string=f"tags.mlflow.parentRunId = '{old.info.run_id}'"):
            client.delete_run(child.info.run_id)
        client.delete_run(old.info.run_id)
    parent = client.create_run(exp_id, run_name=name, tags={"kind": "reproduction", **provenance(),
                                                            "devices": job_devices(search_runs)})
    pid = parent.info.run_id
    try:
        _log_all(client, exp_id, pid, config, artifacts, search_runs, job_runs)
    except BaseException:
        client.set_terminated(pid, status="FAILED")
        raise
    client.set_terminated(pid)
    result = {"tracking_uri": uri, "experiment": spec["experiment"], "experiment_id": exp_id,
              "run_id": pid, "artifact_uri": client.get_run(pid).info.artifact_uri,
              "search_runs": len(search_runs), "job_runs": len(job_runs),
              # where `mlflow ui` shows it, in its model-training view (after the server's address)
              "ui_path": f"/#/experiments/{exp_id}/runs/{pid}?workflowType=machine_learning"}
    write_json(out, result)
    return result


def _log_all(client, exp_id: str, pid: str, config: dict, artifacts, search_runs, job_runs=()) -> None:
    import pandas as pd

    client.log_dict(pid, config, "config.json")
    flat = pd.json_normalize(config, sep=".").iloc[0].to_dict()  # nested keys joined by "."
    params = mlflow_params({f"config.{k}": v for k, v in flat.items()})
    for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(pid, params=params[i:i + 100])
    for path in map(Path, artifacts):
        if path.exists():
            sub = "figures" if path.suffix in (".png", ".pdf") else "tables"
            client.log_artifact(pid, str(path), artifact_path=sub)
    for run_dir in map(Path, search_runs):
        _log_search_run(client, exp_id, pid, run_dir)
    for path in map(Path, job_runs):
        if path.name == "latency.json":
            _log_latency_run(client, exp_id, pid, path)
        elif path.name == "scores.json":
            _log_score_runs(client, exp_id, pid, path)
        else:
            _log_job_run(client, exp_id, pid, path)
    verdicts = next((Path(a) for a in artifacts if Path(a).name == "reproduction.csv" and Path(a).exists()), None)
    if verdicts is not None:
        _log_verdicts(client, pid, verdicts)


def relocate(store_dir) -> int:
    """After `results/` moved: point the SQLite store's experiments and runs at the artifacts where
    they now lie (`<store_dir>/mlartifacts`), so `mlflow ui` opens them again. MLflow records artifact
    locations as absolute URIs. The rows changed (0: already in place)."""
    import sqlite3

    from rarts.pipeline.errors import InputError, MissingFile

    store = Path(store_dir).resolve()
    db = store / "mlflow.db"
    if not db.is_file():
        raise MissingFile(f"{db}: no MLflow store here (give the moved results folder)")
    here = (store / "mlartifacts").as_uri()
    con = sqlite3.connect(db)
    try:
        roots = {loc for (loc,) in con.execute("SELECT artifact_location FROM experiments")
                 if loc and loc.rstrip("/").endswith("/mlartifacts")}
        changed = 0
        for old in roots - {here}:
            changed += con.execute("UPDATE experiments SET artifact_location = ? || substr(artifact_location, ?) "
                                   "WHERE artifact_location LIKE ? || '%'", (here, len(old) + 1, old)).rowcount
            changed += con.execute("UPDATE runs SET artifact_uri = ? || substr(artifact_uri, ?) "
                                   "WHERE artifact_uri LIKE ? || '%'", (here, len(old) + 1, old)).rowcount
        con.commit()
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{db}: not an MLflow store ({exc})") from None
    finally:
        con.close()
    return changed


def relocate_main(results) -> None:
    changed = relocate(results)
    print(f"{changed} experiment and run records now point at {Path(results).resolve() / 'mlartifacts'}")
