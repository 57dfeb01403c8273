import json

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from rarts.core import mlflow_live
from rarts.report import tracking


def test_reproduction_is_logged_and_read_back(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    table = tmp_path / "table.csv"
    pd.DataFrame({"method": ["RARTS"], "error": [2.6]}).to_csv(table, index=False)
    run_dir = tmp_path / "search" / "rarts" / "seed0"
    run_dir.mkdir(parents=True)
    epochs = [{"epoch": e, "train_loss": 2.0 / e, "train_acc": 0.1 * e, "val_loss": 2.1 / e,
               "val_acc": 0.1 * e, "lr": 0.02, "wall_s": float(e),
               "alpha": {"normal": [[0.5, 0.5]], "reduce": [[0.25, 0.75]]}} for e in (1, 2)]
    (run_dir / "history.json").write_text(json.dumps(
        {"algorithm": "rarts", "seed": 0, "dataset": "cifar10", "standin": True, "epochs": epochs,
         "ops": ["none", "skip_connect"], "edges": ["c₋₂→0"]}))  # what a search writes (search/run.py)
    (run_dir / "genotype.json").write_text("{}")
    (run_dir / "cost.json").write_text(json.dumps({"device": "NVIDIA H100 80GB HBM3", "gpus": [1],
                                                   "started": 1.7e9, "ended": 1.7e9 + 60}))
    spec = {"tracking_uri": "", "experiment": "test-exp", "run_name": "t",
            "store_dir": str(tmp_path / "store")}
    out = tmp_path / "mlflow_run.json"
    # a training behind Table 5, where the workflow writes it, and the verdicts
    job = tmp_path / "results" / "width" / "table5" / "cifar10" / "rarts-40" / "seed0" / "metrics.json"
    job.parent.mkdir(parents=True)
    job.write_text(json.dumps({"name": "table5-cifar10-rarts-40-seed0", "standin": True, "test_error": 7.5,
                               "params_M": 0.7, "device": "cpu", "gpus": [], "started": 1.7e9, "ended": 1.7e9 + 90,
                               "hp": {"lr": 0.1}, "history": [{"epoch": 1, "test_acc": 0.5}, {"epoch": 2, "test_acc": 0.9}]}))
    verdicts = tmp_path / "reproduction.csv"
    pd.DataFrame({"table": ["table5", "claim"], "row": ["cifar10 · RARTS-40%", "RARTS beats DARTS"],
                  "ours_mean": [7.5, None], "paper": [5.96, None],
                  "verdict": ["not comparable: stand-in data", "shown (3 < 4)"]}).to_csv(verdicts, index=False)
    latency = tmp_path / "results" / "ablation" / "latency" / "batch_16" / "seed1" / "latency.json"
    latency.parent.mkdir(parents=True)
    latency.write_text(json.dumps({"latency_ms": 4.2, "params_M": 1.1, "batch_size": 1, "resolution": 32, "seed": 1,
                                   "standin": True, "device": "cpu", "gpus": [], "started": 1.7e9, "ended": 1.7e9 + 5}))
    scores = tmp_path / "results" / "nats" / "cifar10" / "scores.json"
    scores.parent.mkdir(parents=True)
    scores.write_text(json.dumps([{"algorithm": "rarts", "seed": 0, "dataset": "cifar10", "arch": "|x~0|",
                                   "skip_ratio": 0.0, "source": "local-train", "test_error": 33.4, "params_M": 0.04,
                                   "flops_M": None, "standin": True, "started": 1.7e9, "ended": 1.7e9 + 30}]))
    res = tracking.log_reproduction(spec, {"search": {"darts": {"epochs": 2}}}, [str(table), str(verdicts)],
                                    [str(run_dir)], out, [str(job), str(latency), str(scores)])
    assert json.loads(out.read_text())["run_id"] == res["run_id"]
    assert res["ui_path"] == f"/#/experiments/{res['experiment_id']}/runs/{res['run_id']}?workflowType=machine_learning"
    assert res["tracking_uri"] == f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"

    client = MlflowClient(res["tracking_uri"])
    run = client.get_run(res["run_id"])
    assert run.data.params["config.search.darts.epochs"] == "2"
    # opened in MLflow's model-training view, not its GenAI one
    assert client.get_experiment(res["experiment_id"]).tags["mlflow.experimentKind"] == "custom_model_development"
    assert "git.commit" in run.data.tags and "version.torch" in run.data.tags
    # the job's device, not the logging host's (a CPU here)
    assert run.data.tags["devices"] == "NVIDIA H100 80GB HBM3" and "device" not in run.data.tags
    child = client.search_runs([res["experiment_id"]], f"tags.mlflow.parentRunId = '{res['run_id']}' and tags.kind = 'search'")[0]
    assert child.data.tags["device"] == "NVIDIA H100 80GB HBM3" and child.data.params["gpus"] == "1"
    assert (child.info.start_time, child.info.end_time) == (1.7e12, 1.7e12 + 60_000)  # when the job ran
    files = {f.path for f in client.list_artifacts(res["run_id"], "tables")}
    assert files == {"tables/table.csv", "tables/reproduction.csv"}
    local = client.download_artifacts(res["run_id"], "tables/table.csv", str(tmp_path / "dl"))
    assert pd.read_csv(local)["error"].tolist() == [2.6]
    trained = client.search_runs([res["experiment_id"]], "tags.kind = 'training'")
    assert len(trained) == 1 and (trained[0].info.start_time, trained[0].info.end_time) == (1.7e12, 1.7e12 + 90_000)
    tags = trained[0].data.tags
    assert (tags["table"], tags["row"], tags["method"], tags["seed"], tags["data"]) == \
        ("table5", "cifar10 · rarts-40", "rarts-40", "0", "stand-in")
    assert [m.value for m in sorted(client.get_metric_history(trained[0].info.run_id, "test_acc"),
                                    key=lambda m: m.step)] == [0.5, 0.9]
    assert trained[0].data.metrics["final/test_error"] == 7.5 and trained[0].data.params["hp.lr"] == "0.1"
    timed = client.search_runs([res["experiment_id"]], "tags.kind = 'latency'")[0]
    assert (timed.data.tags["table"], timed.data.tags["row"], timed.data.tags["seed"]) == ("table2", "batch_16", "1")
    assert timed.data.metrics["final/latency_ms"] == 4.2 and timed.info.end_time - timed.info.start_time == 5000
    looked_up = client.search_runs([res["experiment_id"]], "tags.kind = 'lookup'")[0]
    assert looked_up.data.tags["row"] == "cifar10 · rarts" and looked_up.data.metrics["final/test_error"] == 33.4
    assert looked_up.info.end_time - looked_up.info.start_time == 30_000  # the cell's own scoring
    assert "final/flops_M" not in looked_up.data.metrics  # unknown stays unlogged
    headline = client.get_run(res["run_id"]).data.metrics
    assert headline["table5/cifar10 _ RARTS-40_/ours"] == 7.5 and headline["table5/cifar10 _ RARTS-40_/paper"] == 5.96
    assert headline["verdicts/not comparable: stand-in data"] == 1 and headline["verdicts/claims shown"] == 1
    children = client.search_runs([res["experiment_id"]],
                                  f"tags.mlflow.parentRunId = '{res['run_id']}' and tags.kind = 'search'")
    assert len(children) == 1
    curve = client.get_metric_history(children[0].info.run_id, "val_acc")
    assert [(m.step, m.value) for m in sorted(curve, key=lambda m: m.step)] == [(1, 0.1), (2, 0.2)]
    # α by edge and operation, in a chart section of its own
    assert client.get_metric_history(children[0].info.run_id, "alpha/reduce/e00 c-2 to 0/skip_connect")[0].value == 0.75
    # a second reproduction goes to the same experiment
    res2 = tracking.log_reproduction(spec, {}, [], [], out)
    assert res2["experiment_id"] == res["experiment_id"] and res2["run_id"] != res["run_id"]


def test_configured_uri_wins_over_environment(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking.tracking_uri({"tracking_uri": "", "store_dir": "x"}) == "http://127.0.0.1:5999"
    assert tracking.tracking_uri({"tracking_uri": "sqlite:///a.db", "store_dir": "x"}) == "sqlite:///a.db"


def test_a_job_with_an_unreachable_tracking_server_finishes_with_a_warning(tmp_path, caplog):
    """A server that accepts connections but never answers (a compute node without a route to it
    looks the same): the search finishes, its files are written, and one warning says live logging is
    off, within seconds rather than MLflow's minutes of retries."""
    import socket
    import time

    from rarts.cli import main
    from rarts.data import standin
    from rarts.data.split import write_split
    from test_search_loop import _search_cmd

    root, split = tmp_path / "cifar10", tmp_path / "split.json"
    standin.write_cifar_standin("cifar10", root)
    write_split(split, "cifar10", 1438, seed=0)
    with socket.socket() as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(8)
        uri = f"http://127.0.0.1:{blackhole.getsockname()[1]}"
        t0 = time.perf_counter()
        main(["--mlflow", json.dumps({"tracking_uri": uri, "experiment": "e"}),
              *_search_cmd(root, split, tmp_path / "out", tmp_path / "ck.pt", algo="darts1")[1:]])
        took = time.perf_counter() - t0
    assert (tmp_path / "out" / "genotype.json").is_file()
    warnings = [r.getMessage() for r in caplog.records if "live logging" in r.getMessage()]
    assert len(warnings) == 1 and uri in warnings[0] and "is off for this job" in warnings[0], warnings
    assert took < 60, took


def test_a_server_that_fails_mid_run_turns_live_logging_off_once(monkeypatch, caplog):
    run = mlflow_live.LiveRun({"mlflow": {"tracking_uri": ""}}, "x", {})
    assert run.run_id is None  # no server URI: nothing to do
    run.uri, run.run_id = "http://127.0.0.1:1", "abc"

    class Broken:
        def log_batch(self, *a, **k):
            raise ConnectionError("connection reset")

    run.client = Broken()
    run.log({"epoch": 1, "train_loss": 0.5})
    run.log({"epoch": 2, "train_loss": 0.4})  # off after the first failure: no second warning
    assert run.run_id is None
    assert sum("live logging" in r.getMessage() for r in caplog.records) == 1


def test_a_moved_results_folder_opens_again_after_relocate(tmp_path, monkeypatch, cli_env):
    """MLflow records artifact locations as absolute URIs: after `results/` moves, `rarts
    mlflow-relocate` points the store at its artifacts again, as MLflow's client reads them."""
    import shutil
    import subprocess

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    table = tmp_path / "table.csv"
    pd.DataFrame({"method": ["RARTS"], "error": [2.6]}).to_csv(table, index=False)
    old = tmp_path / "old" / "results"
    spec = {"tracking_uri": "", "experiment": "exp", "run_name": "t", "store_dir": str(old)}
    res = tracking.log_reproduction(spec, {}, [str(table)], [], tmp_path / "run.json")
    new = tmp_path / "new" / "results"
    new.parent.mkdir()
    shutil.move(str(old), str(new))

    def read_table():
        client = MlflowClient(f"sqlite:///{new / 'mlflow.db'}")
        local = client.download_artifacts(res["run_id"], "tables/table.csv", str(tmp_path / "dl"))
        return pd.read_csv(local)["error"].tolist()

    from mlflow.exceptions import MlflowException

    with pytest.raises((OSError, MlflowException)):  # before: the store looks where results/ was
        read_table()
    done = subprocess.run(["rarts", "mlflow-relocate", str(new)], env=cli_env, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("2 experiment and run records"), done.stderr
    assert read_table() == [2.6]
    assert tracking.relocate(new) == 0  # once is enough
    bad = subprocess.run(["rarts", "mlflow-relocate", str(tmp_path / "old")], env=cli_env, capture_output=True, text=True)
    assert bad.returncode == 1 and "no MLflow store here" in bad.stderr and "Traceback" not in bad.stderr
