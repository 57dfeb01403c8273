"""What a job used: the peak memory of its whole process tree (torchrun's ranks and every DataLoader
worker included) and its wall time, sampled by a thread every SAMPLE_S and written beside the job's
log (`<log>.usage.json`, the file its stderr goes to) when it ends. The rehearsal report holds these
peaks against each rule's `mem_mb` request.

PSS counts each shared page once across the processes that map it (forked workers share most of
theirs), which is close to what a SLURM cgroup charges; RSS counts it in every process.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

SAMPLE_S = 0.25


def _pss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Pss:"))


class Usage:
    """Samples the tree under `root_pid` until `stop()`, then writes its peaks to `path`."""

    def __init__(self, path: Path, root_pid: int):
        import psutil

        self.path, self.root = path, psutil.Process(root_pid)
        self.peak_pss = self.peak_rss = self.processes = 0
        self.t0, self.done = time.perf_counter(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        import psutil

        pss = rss = 0
        tree = [self.root, *self.root.children(recursive=True)]
        for proc in tree:
            try:
                rss += proc.memory_info().rss
                pss += _pss_kb(proc.pid) * 1024
            except (psutil.Error, OSError, StopIteration):  # a worker that just ended
                continue
        self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
        self.processes = max(self.processes, len(tree))

    def _run(self) -> None:
        while not self.done.wait(SAMPLE_S):
            try:
                self._sample()
            except Exception:  # noqa: BLE001 - measuring must never fail the job
                pass

    def stop(self, status: str) -> None:
        from rarts.pipeline.io import write_json

        self.done.set()
        self.thread.join(timeout=5)
        try:
            self._sample()
        except Exception:  # noqa: BLE001
            pass
        write_json(self.path, {"peak_pss_mb": self.peak_pss / 2**20, "peak_rss_mb": self.peak_rss / 2**20,
                               "processes": self.processes, "wall_s": time.perf_counter() - self.t0,
                               "status": status})


def for_this_job() -> Usage | None:
    """A sampler for this job when its stderr goes to a log file: of its own tree, or under torchrun
    (rank 0 only) of torchrun's; None otherwise (a terminal, another rank)."""
    try:
        log = Path(os.readlink("/proc/self/fd/2"))
    except OSError:
        return None
    if not log.is_file() or os.environ.get("LOCAL_RANK", "0") != "0":
        return None
    root = os.getppid() if "LOCAL_RANK" in os.environ else os.getpid()
    try:
        return Usage(log.with_name(log.name + ".usage.json"), root)
    except Exception:  # noqa: BLE001 - no psutil, no /proc: the job runs unmeasured
        return None
