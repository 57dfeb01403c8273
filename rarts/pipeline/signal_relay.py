"""SIGTERM past Snakemake's job step. Under SLURM, a job's rule runs in a Snakemake that `srun` started
(snakemake-executor-plugin-slurm-jobstep), and at a time limit, a scancel or a preemption slurmstepd
signals only its steps' tasks, the processes it started itself (proctrack/cgroup, what most clusters
run; only SIGKILL reaches the rest). That Snakemake's SIGTERM handler notes the request and passes
nothing on, so the job's `rarts`, its child, would train on until SIGKILL and lose the steps since its
last checkpoint. This relay, installed by the Snakefile in that process, passes each SIGTERM on to the
process's children: the rule's command `exec`s `rarts` (`{JOB}`), so the child is `rarts` itself (or
the torchrun it became), which checkpoints after its step in flight and exits.

It uses Python's signal wakeup fd rather than a handler of its own, because Snakemake's scheduler sets
its handler after the Snakefile is read: whichever Python handler runs, the interpreter first writes
the signal's number to the wakeup fd, which a thread here reads. No torch here (the Snakefile uses it).
"""

from __future__ import annotations

import os
import signal
import threading

import psutil

# a shell between Snakemake and the job would die at once on SIGTERM, and the job step with it
SHELLS = {"sh", "bash", "dash", "zsh"}


def in_job_step(env=os.environ) -> bool:
    """Whether this process is a task of a SLURM job step (srun sets SLURM_STEP_ID; a batch script has none)."""
    return env.get("SLURM_STEP_ID", "").isdigit()


def forward(sig: int = signal.SIGTERM) -> list[int]:
    """Send `sig` to this process's children but the shells among them; the PIDs signalled."""
    sent = []
    for child in psutil.Process().children():
        try:
            if child.name() in SHELLS:
                continue
            child.send_signal(sig)
            sent.append(child.pid)
        except psutil.NoSuchProcess:
            pass
    return sent


def _relay(read_fd: int) -> None:
    while True:
        received = os.read(read_fd, 64)
        if not received:
            return
        if signal.SIGTERM in received:
            forward(signal.SIGTERM)


def install() -> bool:
    """Relay every SIGTERM this process receives to its children (call from the main thread). False,
    and nothing changed, where the wakeup fd is already someone else's or this is not the main thread."""
    if threading.current_thread() is not threading.main_thread():
        return False
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    if previous != -1:  # e.g. an asyncio loop's signal handling: leave it as it was
        signal.set_wakeup_fd(previous)
        os.close(read_fd)
        os.close(write_fd)
        return False
    threading.Thread(target=_relay, args=(read_fd,), daemon=True, name="rarts-sigterm-relay").start()
    return True
