"""SIGTERM, as a job hears it from a scheduler: a flag the loop checks at step boundaries (checkpoint,
then exit 143), never a kill mid-step; DataLoader workers ignore it so their rank can checkpoint."""

from __future__ import annotations

import signal


class Preempted(SystemExit):
    """Raised after a SIGTERM-triggered checkpoint; exit code 143 like a plain SIGTERM."""

    def __init__(self):
        super().__init__(143)


class PreemptionGuard:
    """Turns SIGTERM into a flag the loop checks at step boundaries (checkpoint, then exit)."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def request(self, *_args) -> None:
        self.requested = True

    def __enter__(self):
        self._previous = signal.signal(signal.SIGTERM, self.request)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGTERM, self._previous)
        return False


def ignore_sigterm(_worker_id=None) -> None:
    """A DataLoader worker's init: SIGTERM (SLURM sends it to every process of the job) must not kill
    the workers before their rank has written its checkpoint; they end with their loader, or when
    their parent dies."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
