"""Exclusive locks held by a live process. fcntl.flock locks belong to the process: the kernel drops
them when it dies, however it dies, so they are never stale. No torch here (the Snakefile uses it)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from rarts.pipeline.errors import Busy

log = logging.getLogger(__name__)


class NoFlock(OSError):
    """The file system refuses flock (Lustre mounted without `-o flock`, some NFS set-ups)."""


def holder_line() -> str:
    """Who holds a lock: PID, host and SLURM job (`-` outside one), what a later process reads to
    tell an older holder from a newer one and to stop it."""
    return f"{os.getpid()} {socket.gethostname()} {os.environ.get('SLURM_JOB_ID') or '-'}\n"


def try_flock(fd: int, path) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as exc:
        raise NoFlock(exc.errno, f"{path}: the file system refuses flock ({exc.strerror})") from exc


def hold(path) -> int | None:
    """Lock `path` (created if needed) and write who holds it into it (holder_line): the open
    descriptor (the lock lasts until it is closed or the process ends), or None if another process
    holds it. NoFlock where the file system has no flock."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        if not try_flock(fd, path):
            os.close(fd)
            return None
    except NoFlock:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, holder_line().encode())
    return fd


# A workflow job (`rarts --take-over`, in `{JOB}`) that finds its checkpoint held takes it over from
# an older holder: one left running by a Snakemake that was killed (its rerun submits the job again),
# or its own previous attempt still writing its checkpoint after a time limit. Set by the CLI.
take_over = False
TAKE_OVER_WAIT_S = 600  # the holder's step in flight and its checkpoint; SLURM's KillWait bounds a scancelled one


def stop_older(text: str) -> str | None:
    """Ask the holder named by `text` (holder_line) to checkpoint and stop, if it is older than this
    process: how it was asked, or None (newer, or out of reach: leave it)."""
    try:
        pid, host, job = text.split()
        pid = int(pid)
    except ValueError:
        return None
    mine = os.environ.get("SLURM_JOB_ID")
    if job != "-" and mine and job.isdigit() and mine.isdigit():
        if int(job) >= int(mine):  # a newer job of a newer Snakemake holds it: this one yields
            return None
        # the whole job: under SLURM only its tasks see SIGTERM, and they pass it on (rarts.pipeline.signal_relay)
        try:
            subprocess.run(["scancel", job], capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):  # no scancel here, or a slurmctld that does not answer
            return None
        return f"scancel {job}"
    if job == "-" and not mine and host == socket.gethostname():
        import psutil
        try:
            older = psutil.Process(pid).create_time() < psutil.Process().create_time()
        except psutil.NoSuchProcess:
            return "gone"
        if not older:
            return None
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return "gone"
        return f"SIGTERM to pid {pid}"
    return None


def wait_for(path, fd: int, what: str, asked: str, wait_s: float) -> bool:
    """Block (logging) until the lock on `fd` is ours or `wait_s` passes."""
    log.warning("%s: its checkpoint is held by an older process (%s); asked it to stop (%s) and waiting "
                "for its checkpoint, up to %d s", what, Path(path).read_text().strip(), asked, wait_s)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if try_flock(fd, path):
            log.warning("%s: took the checkpoint over", what)
            return True
        time.sleep(1.0)
    return False


def take(path, what: str, wait_s: float = TAKE_OVER_WAIT_S) -> int | None:
    """hold(path), or with `take_over` stop an older holder and wait for the lock (None if it stays held)."""
    fd = hold(path)
    if fd is not None or not take_over:
        return fd
    asked = stop_older(Path(path).read_text())
    if asked is None:
        return None
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    if not wait_for(path, fd, what, asked, wait_s):
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, holder_line().encode())
    return fd


@contextlib.contextmanager
def exclusive(path, what: str):
    """Hold `path` for the block; if another process holds it, raise Busy at once naming it. Where the
    file system has no flock the block runs unguarded, with a warning. With `take_over`, an older
    holder is stopped and waited for (take)."""
    try:
        fd = take(path, what)
    except NoFlock as exc:
        log.warning("%s: %s is not guarded against a second process", exc, what)
        yield
        return
    if fd is None:
        holder = Path(path).read_text().split() or ["?"]
        raise Busy(f"{what} is already running in another process (pid {' on '.join(holder[:2])}"
                   f"{f', SLURM job {holder[2]}' if holder[2:] and holder[2] != '-' else ''}, lock {path}); "
                   "two processes must not share one checkpoint")
    try:
        yield
    finally:
        os.close(fd)


_held: list[int] = []  # descriptors kept open for the life of the process


def claim_workdir(snakemake_dir=".snakemake") -> list[Path]:
    """For the Snakefile, in Snakemake's main process: hold `<snakemake_dir>/rarts.lock` while this
    Snakemake runs. If nobody held it, no Snakemake of this workflow is running in this directory,
    so lock files in `<snakemake_dir>/locks` were left by a killed run: they are removed (and
    returned), so that the same command runs again without `--unlock`. Where the file system has no
    flock nothing is cleared (a killed run's locks then need `snakemake --unlock`, docs/recovery.md)."""
    try:
        fd = hold(Path(snakemake_dir) / "rarts.lock")
    except NoFlock:
        return []
    if fd is None:  # another Snakemake is running here: its locks are live, leave them
        return []
    _held.append(fd)
    stale = sorted((Path(snakemake_dir) / "locks").glob("*.lock"))
    for f in stale:
        f.unlink()
    return stale
