"""MLflow from inside a running job: per-epoch metrics sent live to a tracking server (never to a
SQLite or file store, which only the pipeline's logging rule writes), and the helpers that rule shares:
the experiment, a run by name, parameters, a job's GPUs."""

from __future__ import annotations

import logging
import os

log = logging.getLogger("rarts.core.mlflow_live")

# The experiment's kind for MLflow 3 (model training, not GenAI). Its UI still starts in the GenAI view
# until the user picks "Model training" (kept per browser) or a link says ?workflowType=machine_learning
KIND_TAG, TRAINING = "mlflow.experimentKind", "custom_model_development"


def experiment_id(client, name: str, artifact_root: str | None = None) -> str:
    """The experiment's id, creating it if needed (a concurrent job may create it first), marked as
    model-training work (an experiment made before the mark included)."""
    exp = client.get_experiment_by_name(name)
    if exp is None:
        try:
            return client.create_experiment(name, artifact_location=artifact_root, tags={KIND_TAG: TRAINING})
        except Exception:  # another job created it between the two calls
            exp = client.get_experiment_by_name(name)
    if exp.tags.get(KIND_TAG) != TRAINING:
        client.set_experiment_tag(exp.experiment_id, KIND_TAG, TRAINING)
    return exp.experiment_id


def runs_named(client, experiment_id: str, name: str, kind: str) -> list:
    return client.search_runs([experiment_id], filter_string=f"tags.mlflow.runName = '{name}' and tags.kind = '{kind}'")


def gpu_list(ids) -> str:
    """The GPUs a job held, as a param: "0,1", or "none"."""
    return ",".join(map(str, ids or [])) or "none"


def mlflow_params(d: dict):
    from mlflow.entities import Param

    return [Param(k, str(v)[:6000]) for k, v in d.items()]


def live_uri(spec: dict) -> str:
    """A tracking *server* URI for live logging, or "" (then jobs only write their files)."""
    uri = (spec.get("mlflow") or {}).get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI", "")
    return uri if uri.startswith(("http://", "https://")) else ""


# A live run must never hold a job up: MLflow's client retries a failed request 7 times with back-off
# (minutes), and compute nodes often have no route to the server.
LIVE_TIMEOUT_S, LIVE_RETRIES = "10", "0"


def reachable(uri: str, timeout: float = 5.0) -> str:
    """'' when the tracking server answers its /health page within `timeout`, else why not."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as r:
            return "" if r.status == 200 else f"/health answered {r.status}"
    except Exception as exc:  # noqa: BLE001 - refused, timed out, a proxy page …
        return f"{type(exc).__name__}: {exc}"


class LiveRun:
    """Per-epoch metrics of one job sent to a tracking server as it runs (a context manager: the
    run ends FINISHED, or FAILED / KILLED when the job raises or is stopped). A no-op without a
    server URI: SQLite and file stores are written by the single logging rule only. A server that
    cannot be reached, or stops answering, turns live logging off with one warning; the job goes on
    and the final logging rule records everything from the job's files."""

    def __init__(self, spec: dict, run_name: str, params: dict):
        self.uri = live_uri(spec)
        self.run_id = None
        if not self.uri:
            return
        why = reachable(self.uri)
        if why:
            self._off(why)
            return
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", LIVE_TIMEOUT_S)
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", LIVE_RETRIES)
        self._guarded(self._start, (spec.get("mlflow") or {}).get("experiment") or "rarts-reproduction",
                      run_name, params)

    def _start(self, experiment: str, run_name: str, params: dict) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(self.uri)
        exp_id = experiment_id(self.client, experiment)
        for old in runs_named(self.client, exp_id, run_name, "live"):  # a crashed attempt of this job
            if old.info.status == "RUNNING":
                self.client.set_terminated(old.info.run_id, status="KILLED")
        run = self.client.create_run(exp_id, run_name=run_name, tags={"kind": "live"})
        self.run_id = run.info.run_id
        self.client.log_batch(self.run_id, params=mlflow_params(params))

    def _off(self, why: str) -> None:
        self.run_id = None
        log.warning("MLflow live logging to %s is off for this job (%s); the job goes on, and the logging "
                    "rule records its results from its files", self.uri, why)

    def _guarded(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # noqa: BLE001 - any failure of the server or the network
            self._off(f"{type(exc).__name__}: {str(exc)[:300]}")

    def log(self, record: dict) -> None:
        if self.run_id is None:
            return
        import time

        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        metrics = [Metric(k, float(v), ts, record["epoch"]) for k, v in record.items()
                   if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)]
        self._guarded(lambda: self.client.log_batch(self.run_id, metrics=metrics))

    def __enter__(self) -> "LiveRun":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self.run_id is not None:
            stopped = exc_type is not None and issubclass(exc_type, (SystemExit, KeyboardInterrupt))
            status = "FINISHED" if exc_type is None else "KILLED" if stopped else "FAILED"
            self._guarded(lambda: self.client.set_terminated(self.run_id, status=status))
        return False


def run_live(loop, spec: dict, run_name: str, params: dict) -> list[dict]:
    """loop.run(), with each epoch's record sent live to a tracking server when one is configured
    (from the main rank only)."""
    if not loop.dist.main:
        return loop.run()
    from rarts.pipeline import gpu_pool

    held = gpu_list(gpu_pool.record()["gpus"])  # the GPUs this job holds (rarts.pipeline.gpu_pool)
    with LiveRun(spec, run_name, {**params, "gpus": held}) as live:
        loop.on_epoch = live.log
        return loop.run()
