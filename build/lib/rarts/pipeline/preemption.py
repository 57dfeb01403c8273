"""Jobs SLURM cancelled to make room for others go back to the queue. Where a partition preempts with
`PreemptMode=CANCEL`, the job ends as PREEMPTED; snakemake-executor-plugin-slurm 2.8.0 counts that
state as still running and, once the job has left squeue, as not yet seen, so the run would wait for
it forever. The controller (the Snakemake that submits the jobs) therefore requeues each PREEMPTED job
of its working directory (`scontrol requeue`): SLURM runs it again under the same id, the plugin sees
it run and end, and the job resumes from the checkpoint it wrote on SIGTERM. Under
`PreemptMode=REQUEUE` SLURM requeues the job itself and this finds nothing. No torch here (the
Snakefile uses it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

EVERY_S = 30  # well inside squeue's memory of an ended job (MinJobAge, 300 s by default)


def say(text: str) -> None:
    print(f"rarts: {text}", file=sys.stderr, flush=True)  # beside Snakemake's own lines


def preempted(workdir) -> list[str]:
    """This user's PREEMPTED jobs that run in `workdir`: their ids."""
    out = subprocess.run(["squeue", "--me", "-h", "-t", "PREEMPTED", "-o", "%i|%Z"],
                         capture_output=True, text=True, timeout=60)
    here = Path(workdir).resolve()
    ids = []
    for line in out.stdout.splitlines():
        job, _, folder = line.partition("|")
        if folder and Path(folder).resolve() == here:
            ids.append(job.strip())
    return ids


def requeue_preempted(workdir) -> list[str]:
    """Requeue the preempted jobs of `workdir`; the ids SLURM took back."""
    taken = []
    for job in preempted(workdir):
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            taken.append(job)
            say(f"SLURM job {job} was preempted (cancelled): requeued; it resumes from its checkpoint")
        else:
            say(f"SLURM job {job} was preempted and could not be requeued: {done.stderr.strip()}")
    return taken


def watch(workdir=None, every_s: float = EVERY_S) -> threading.Thread:
    """Requeue `workdir`'s preempted jobs every `every_s` seconds while this process lives."""
    workdir = workdir or os.getcwd()

    def loop():
        while True:
            time.sleep(every_s)
            try:
                requeue_preempted(workdir)
            except (OSError, subprocess.SubprocessError):  # a slow or restarting slurmctld: the next round
                pass

    thread = threading.Thread(target=loop, daemon=True, name="rarts-preemption-watch")
    thread.start()
    return thread
