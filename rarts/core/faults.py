"""Faults on demand for the tests (environment variables), at step boundaries of the real loop."""

from __future__ import annotations

import os
import signal
import time


def with_fault_injection(on_step, request_stop=None, rank: int = 0):
    """Tests: with RARTS_FAULT_AT_STEP=N the process SIGKILLs itself after global step N; with
    RARTS_STOP_AT_STEP=N0,N1,… rank r asks for a stop (as SIGTERM does) after global step N_r; with
    RARTS_STEP_SLEEP_S=x every step takes x seconds longer (an epoch longer than a wall-time limit, in
    little compute)."""
    fault_at = int(os.environ.get("RARTS_FAULT_AT_STEP", "0"))
    stops = os.environ.get("RARTS_STOP_AT_STEP", "").split(",")
    stop_at = int(stops[rank]) if rank < len(stops) and stops[rank].strip() else 0
    sleep_s = float(os.environ.get("RARTS_STEP_SLEEP_S", "0"))
    if not fault_at and not stop_at and not sleep_s:
        return on_step

    def hook(global_step):
        if on_step is not None:
            on_step(global_step)
        time.sleep(sleep_s)
        if global_step == stop_at and request_stop is not None:
            request_stop()
        if global_step == fault_at:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook
