"""MLflow against a real tracking server on 127.0.0.1: the logging step, and several jobs logging
live at once with nothing lost."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import BIN
from test_search_loop import _search_cmd

# one worker runs them all (`--dist loadfile`): they share a module-wide server
pytestmark = [pytest.mark.slow]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    proc = subprocess.Popen([str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{tmp / 'db.sqlite'}",
                             "--default-artifact-root", str(tmp / "artifacts"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=open(tmp / "server.log", "w"),
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            os.killpg(proc.pid, signal.SIGTERM)
            pytest.fail(f"mlflow server did not come up: {(tmp / 'server.log').read_text()[-2000:]}")
        time.sleep(0.5)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def test_logging_step_against_a_tracking_server(server, tmp_path, cli_env):
    table = tmp_path / "table1.csv"
    pd.DataFrame({"method": ["RARTS"], "test_error": [2.6]}).to_csv(table, index=False)
    run_dir = tmp_path / "search" / "rarts" / "seed0"
    run_dir.mkdir(parents=True)
    epochs = [{"epoch": e, "train_loss": 1.0 / e, "val_acc": 0.2 * e, "alpha": {"cell": [[0.5, 0.5]]}} for e in (1, 2, 3)]
    (run_dir / "history.json").write_text(json.dumps(
        {"algorithm": "rarts", "seed": 0, "dataset": "cifar10", "standin": True, "epochs": epochs}))
    spec = {"tracking_uri": server, "experiment": "server-test", "run_name": "r", "store_dir": str(tmp_path)}
    subprocess.run(["rarts", "log-mlflow", "--spec", json.dumps(spec), "--config", json.dumps({"a": {"b": 1}}),
                    "--artifacts", str(table), "--search-runs", str(run_dir), "--out", str(tmp_path / "out.json")],
                   check=True, env=cli_env, capture_output=True)
    res = json.loads((tmp_path / "out.json").read_text())
    client = MlflowClient(server)
    run = client.get_run(res["run_id"])
    assert run.data.params["config.a.b"] == "1" and run.info.status == "FINISHED"
    assert [f.path for f in client.list_artifacts(res["run_id"], "tables")] == ["tables/table1.csv"]
    got = pd.read_csv(client.download_artifacts(res["run_id"], "tables/table1.csv", str(tmp_path / "dl")))
    assert got.test_error.tolist() == [2.6]
    child = client.search_runs([res["experiment_id"]], f"tags.mlflow.parentRunId = '{res['run_id']}'")[0]
    assert [m.value for m in sorted(client.get_metric_history(child.info.run_id, "val_acc"), key=lambda m: m.step)] \
        == pytest.approx([0.2, 0.4, 0.6])


def test_concurrent_jobs_log_live_and_nothing_is_lost(server, tmp_path, cli_env):
    from rarts.data import standin
    from rarts.data.split import write_split

    root = tmp_path / "cifar10"
    standin.write_cifar_standin("cifar10", root)
    write_split(tmp_path / "split.json", "cifar10", 1438, seed=0)
    # four jobs on a pretend two-GPU pool, as the rules run them: two at a time, each on a GPU of its own
    env = {**cli_env, "MLFLOW_TRACKING_URI": server, "CUDA_VISIBLE_DEVICES": "0,1",
           "RARTS_GPU_LOCKS": str(tmp_path / "gpu-locks")}
    procs = []
    for algo in ("darts1", "milenas", "rarts", "darts2"):
        cmd = _search_cmd(root, tmp_path / "split.json", tmp_path / algo, tmp_path / f"{algo}.pt", algo=algo)
        cmd[1:1] = ["--device", "cpu", "--hold-gpus", "auto"]
        spec = json.loads(cmd[cmd.index("--spec") + 1])
        spec["mlflow"] = {"tracking_uri": "", "experiment": "live-test"}
        cmd[cmd.index("--spec") + 1] = json.dumps(spec)
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    client = MlflowClient(server)
    exp = client.get_experiment_by_name("live-test")
    runs = client.search_runs([exp.experiment_id], "tags.kind = 'live'")
    assert len(runs) == 4
    for run in runs:
        assert run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, "val_acc")
        assert sorted(m.step for m in history) == [1, 2]  # every epoch of every job arrived
        assert {"train_loss", "val_loss", "lr", "wall_s"} <= set(run.data.metrics)
        assert run.data.params["gpus"] in ("0", "1")  # the GPU the job held


def test_live_runs_of_crashed_jobs_end_failed_or_killed(server):
    from rarts.core.mlflow_live import LiveRun

    spec = {"mlflow": {"tracking_uri": server, "experiment": "crash-test"}}
    with pytest.raises(RuntimeError):
        with LiveRun(spec, "live-job-a", {}) as live:
            live.log({"epoch": 1, "train_loss": 1.0})
            raise RuntimeError("the job failed")
    client = MlflowClient(server)
    exp_id = client.get_experiment_by_name("crash-test").experiment_id
    # a job SIGKILLed mid-run leaves its live run RUNNING; its rerun ends that one KILLED
    killed = client.create_run(exp_id, run_name="live-job-b", tags={"kind": "live"})
    with LiveRun(spec, "live-job-b", {}) as live:
        live.log({"epoch": 1, "train_loss": 0.5})
    status = {r.info.run_id: (r.info.run_name, r.info.status) for r in client.search_runs([exp_id])}
    assert status.pop(killed.info.run_id) == ("live-job-b", "KILLED")
    assert sorted(status.values()) == [("live-job-a", "FAILED"), ("live-job-b", "FINISHED")]
