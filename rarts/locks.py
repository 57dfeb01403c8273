"""Exclusive locks held by a live process. fcntl.flock locks belong to the process: the kernel drops
them when it dies, however it dies, so they are never stale. No torch here (the Snakefile uses it)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path

from rarts.errors import Busy

log = logging.getLogger(__name__)


class NoFlock(OSError):
    """The file system refuses flock (Lustre mounted without `-o flock`, some NFS set-ups)."""


def hold(path) -> int | None:
    """Lock `path` (created if needed) and write this process's PID into it: the open descriptor
    (the lock lasts until it is closed or the process ends), or None if another process holds it.
    NoFlock where the file system has no flock."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError as exc:
        os.close(fd)
        raise NoFlock(exc.errno, f"{path}: the file system refuses flock ({exc.strerror})") from exc
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


@contextlib.contextmanager
def exclusive(path, what: str):
    """Hold `path` for the block; if another process holds it, raise Busy at once naming it. Where the
    file system has no flock the block runs unguarded, with a warning."""
    try:
        fd = hold(path)
    except NoFlock as exc:
        log.warning("%s: %s is not guarded against a second process", exc, what)
        yield
        return
    if fd is None:
        pid = Path(path).read_text().strip() or "?"
        raise Busy(f"{what} is already running in another process (pid {pid}, lock {path}); "
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
