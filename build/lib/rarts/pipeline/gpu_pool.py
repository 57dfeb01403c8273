"""One machine's GPUs shared by the jobs that run on it: each job holds GPUs of its own.

Snakemake gives local jobs no GPU ids, so every job would run on GPU 0. Here a job that asks for k
GPUs claims k distinct ids of the machine's *pool* (the GPUs the launching process may use: its
`CUDA_VISIBLE_DEVICES` when set, else every GPU the driver lists) and sees only them: the claim sets
`CUDA_VISIBLE_DEVICES` before CUDA starts, so torchrun's ranks take 0..k-1 of those.

A claim is an fcntl.flock on files in one folder per machine (LOCK_DIR, not per results folder, so
two Snakemake runs of different folders share the pool). The kernel drops a flock when the last
process holding its file ends, however it ends (exit, crash, SIGTERM, SIGKILL), so no claim outlives
its job and none is ever stale. Per GPU:
- `gpu-<id>.lock`: held shared by each job on the GPU, exclusively by a timing job (which must hold
  its GPU alone);
- `gpu-<id>.slot-<j>.lock`: one of the GPU's `slots` places (config `local.gpu_slots`; 1: a job a GPU).
Claimers take turns through `gate.lock`; one that must wait keeps what it has (a big job is not
starved by small ones) and sleeps in the kernel in flock() until a holder ends, so waiting never spins.

Inside a SLURM job the allocation is the job's own: the pool is only its `CUDA_VISIBLE_DEVICES` and
the claims are scoped to the job. No torch here: the Snakefile imports this module.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rarts.pipeline.errors import DeviceError

log = logging.getLogger(__name__)

LOCK_DIR = "/tmp/rarts-gpus"  # per machine: every user's and every results folder's jobs meet here
LOCKS_VARIABLE = "RARTS_GPU_LOCKS"  # another folder (tests; a machine whose /tmp is not shared by its users)
HELD, SINCE = "RARTS_GPUS", "RARTS_GPUS_SINCE"  # what this job holds and since when (read by its ranks)
_IMPORTED = time.time()


def pool(device: str = "auto", env=os.environ) -> list[str]:
    """The GPU ids jobs launched from here may use: `CUDA_VISIBLE_DEVICES` when set (CUDA's rule: the
    ids up to the first invalid one; "" or -1: none), else the driver's GPUs, unless the device is
    `cpu` or this is a SLURM job (whose GPUs SLURM names in `CUDA_VISIBLE_DEVICES`)."""
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = []
        for gpu in (g.strip() for g in visible.split(",")):
            if not gpu or gpu.startswith("-") or gpu in ("none", "NoDevFiles"):
                break
            ids.append(gpu)
        return ids
    if device == "cpu" or "SLURM_JOB_ID" in env:
        return []
    return driver_gpus()


def driver_gpus() -> list[str]:
    """The GPUs nvidia-smi lists (none where there is no NVIDIA driver). Not torch: asking torch would
    start CUDA before a job's `CUDA_VISIBLE_DEVICES` is set."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip().isdigit()] if out.returncode == 0 else []


def lock_dir(env=os.environ) -> Path:
    base = Path(env.get(LOCKS_VARIABLE) or LOCK_DIR)
    return base / f"slurm-{env['SLURM_JOB_ID']}" if env.get("SLURM_JOB_ID") else base


def _open(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        os.fchmod(fd, 0o666)  # other users' jobs on this machine claim through the same files
    except OSError:
        pass
    return fd


def _lock(path: Path, mode: int, wait: bool = False) -> int | None:
    """An open descriptor holding `mode` (LOCK_SH or LOCK_EX) on `path`, or None if it is taken."""
    fd = _open(path)
    try:
        fcntl.flock(fd, mode if wait else mode | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError as exc:  # a file system without flock: claims there would guard nothing
        os.close(fd)
        raise DeviceError(f"cannot claim GPUs: {path.parent} refuses flock ({exc.strerror}); point "
                          f"{LOCKS_VARIABLE} at a folder on a local disk (the default is {LOCK_DIR})") from exc
    return fd


@dataclass
class Claim:
    ids: list[str]
    since: float
    waited_s: float = 0.0
    fds: list[int] = field(default_factory=list, repr=False)

    def release(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def _try_gpu(directory: Path, gpu: str, slots: int, alone: bool):
    """(descriptors held on `gpu`, None) or (None, [(path, mode)] whose release to wait for)."""
    whole = directory / f"gpu-{gpu}.lock"
    if alone:
        fd = _lock(whole, fcntl.LOCK_EX)
        return ([fd], None) if fd is not None else (None, [(whole, fcntl.LOCK_EX)])
    shared = _lock(whole, fcntl.LOCK_SH)
    if shared is None:  # a timing job holds it alone
        return None, [(whole, fcntl.LOCK_SH)]
    places = [directory / f"gpu-{gpu}.slot-{j}.lock" for j in range(slots)]
    for place in places:
        fd = _lock(place, fcntl.LOCK_EX)
        if fd is not None:
            return [shared, fd], None
    os.close(shared)
    return None, [(p, fcntl.LOCK_EX) for p in places]


def _wait_for_any(busy) -> None:
    """Sleep until one of `busy` [(path, mode)] can be locked: a thread blocks in flock() on each, and
    the first to get its lock wakes us (each lets go of what it got at once; we then try again)."""
    woken = queue.SimpleQueue()

    def watch(path, mode):
        fd = _lock(path, mode, wait=True)
        os.close(fd)
        woken.put(path)

    for path, mode in busy:
        threading.Thread(target=watch, args=(path, mode), daemon=True).start()
    woken.get()


def claim(k: int, ids: list[str], slots: int = 1, alone: bool = False, directory: Path | None = None) -> Claim:
    """Hold `k` distinct GPUs of `ids` (each in one of its `slots` places; `alone`: the whole GPU),
    waiting for them if they are taken. The descriptors are inheritable, so a process this one execs
    into (torchrun) holds them on."""
    if k > len(ids):
        raise DeviceError(f"this job asks for {k} GPUs and this machine's GPU pool has {len(ids)} "
                          f"({','.join(ids) or 'none'}; CUDA_VISIBLE_DEVICES sets it): give the job fewer GPUs "
                          "(e.g. train.imagenet.gpus) or run it where there are more")
    directory = directory or lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(directory, 0o1777)
    except OSError:
        pass
    t0 = time.time()
    gate = _lock(directory / "gate.lock", fcntl.LOCK_EX, wait=True)  # claimers take turns
    held: dict[str, list[int]] = {}
    waited = False
    try:
        while True:
            busy = []
            for gpu in ids:
                if gpu in held or len(held) == k:
                    continue
                fds, blocked = _try_gpu(directory, gpu, slots, alone)
                if fds:
                    held[gpu] = fds
                else:
                    busy += blocked
            if len(held) == k:
                break
            if not waited:
                log.info("waiting for %d GPU(s) of the pool %s (%s)", k - len(held), ",".join(ids),
                         "held alone" if alone else f"{slots} job(s) a GPU")
            waited = True
            _wait_for_any(busy)
    except BaseException:
        for fds in held.values():
            for fd in fds:
                os.close(fd)
        raise
    finally:
        os.close(gate)
    fds = [fd for gpu in held for fd in held[gpu]]
    for fd in fds:
        os.set_inheritable(fd, True)
    now = time.time()
    return Claim(ids=list(held), since=now, waited_s=now - t0, fds=fds)


def hold_for_job(k: int, device: str, slots: int = 1, alone: bool = False, env=os.environ) -> Claim | None:
    """For a job's process, before torch starts CUDA: claim `k` GPUs of the pool and make them the only
    ones it sees (none for a job of 0 GPUs), and note them in the environment for its record and its
    ranks. None when the pool is empty (a CPU machine; a SLURM job with no GPU list) or when the
    launching process already holds them (torchrun's ranks)."""
    if HELD in env:
        return None
    ids = pool(device, env)
    claim_ = claim(k, ids, slots, alone) if ids and k else None
    if ids:  # a job sees only what it holds
        env["CUDA_VISIBLE_DEVICES"] = ",".join(claim_.ids) if claim_ else ""
    env[HELD] = ",".join(claim_.ids) if claim_ else ""
    env[SINCE] = repr(claim_.since if claim_ else time.time())
    if claim_:
        log.info("holding GPU %s of the pool %s since %s%s", ",".join(claim_.ids), ",".join(ids),
                 time.strftime("%H:%M:%S", time.localtime(claim_.since)),
                 f" (waited {claim_.waited_s:.0f} s)" if claim_.waited_s >= 1 else "")
    return claim_


def _ids(text: str) -> list:
    return [int(g) if g.isdigit() else g for g in text.split(",") if g]


def record(env=os.environ) -> dict:
    """What this job held, for its cost.json / metrics.json: `gpus` (the pool's ids; empty on a CPU),
    `started` (when it got them, or began) and `ended` (now), in epoch seconds."""
    since = env.get(SINCE)
    return {"gpus": _ids(env.get(HELD, "")), "started": float(since) if since else _IMPORTED, "ended": time.time()}


def summary(rec: dict) -> str:
    """The record as the one line a job's log ends with."""
    when = "from {} to {} ({:.0f} s)".format(*(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec[k]))
                                              for k in ("started", "ended")), rec["ended"] - rec["started"])
    gpus = ",".join(map(str, rec["gpus"]))
    return f"held GPU {gpus} {when}" if gpus else f"held no GPU, ran {when}"
