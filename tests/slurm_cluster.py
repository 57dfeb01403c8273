"""A single-node SLURM on localhost for the integration tests (Debian's slurm 22.05 + munge).

Installs the packages with apt when missing and running as root, writes a minimal slurm.conf at
the default path (the plugin's job step drops SLURM_CONF), registers two fake GPUs, starts munged,
slurmctld and slurmd, and on teardown stops only the daemons it started, by PID, restoring any
config it replaced. Where SLURM cannot be brought up, `start` raises Unavailable with the reason.
One cluster runs at a time on a machine (a file lock from start to stop).

Partitions over the one node, as on a real GPU cluster: `cpu` (the default, MaxTime CPU_MAX_MIN) and
`gpu` (not the default, MaxTime GPU_MAX_MIN); a job asking for more time than its partition allows
stays pending (PartitionTimeLimit). For preemption by partition priority (PreemptType
preempt/partition_prio): `gpu` requeues the jobs it loses the node to (PreemptMode=REQUEUE),
`gpucancel` cancels them (PreemptMode=CANCEL), and a job in `urgent` (a higher PriorityTier) takes
the node from either.

`proctrack` is "cgroup" (what most clusters run: SIGTERM reaches only the processes slurmstepd
started, the job step's tasks) where this machine's cgroups allow it, or "linuxproc" (every process of
the job).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
CONF_DIR = Path("/etc/slurm")
MARK = "# written by rarts tests"
CPU_MAX_MIN, GPU_MAX_MIN = 60, 120
LOCK = "/tmp/rarts-tests-local-slurm.lock"


class Unavailable(RuntimeError):
    pass


def _run(cmd, timeout=60, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def ensure_installed() -> None:
    if all(shutil.which(b) for b in ("slurmctld", "slurmd", "sbatch", "munged")):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise Unavailable("SLURM is not installed and apt-get as root is not available")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        proc = _run(cmd, timeout=900, env=env)
        if proc.returncode != 0:
            raise Unavailable(f"{' '.join(cmd)} failed: {proc.stderr[-500:]}")


KILL_WAIT_S = 30  # SLURM's default: from a job's SIGTERM to its SIGKILL
# AuthInfo=cred_expire also holds a requeued job back (SLURM's default 120 s; 10 s keeps the tests short)


def cgroup_v1_freezer() -> bool:
    """Whether proctrack/cgroup can run here (cgroup v1 with a freezer hierarchy, as on this machine)."""
    return Path("/sys/fs/cgroup/freezer").is_dir() and os.access("/sys/fs/cgroup/freezer", os.W_OK)


class LocalSlurm:
    def __init__(self, tmp: Path, proctrack: str = "linuxproc"):
        self.tmp = tmp
        self.proctrack = proctrack
        self.lock = None
        self.pids: list[int] = []
        self.backups: dict[Path, Path] = {}

    # -- munge -------------------------------------------------------------------------------
    def _munge(self) -> None:
        if _run(["bash", "-c", "munge -n | unmunge"]).returncode == 0:
            return  # already running (not ours: left alone)
        key = Path("/etc/munge/munge.key")
        if not key.exists():
            key.parent.mkdir(parents=True, exist_ok=True)
            _run(["mungekey", "-c", "-k", str(key)], check=True)
        for d in ("/run/munge", "/var/log/munge", "/var/lib/munge", "/etc/munge"):
            Path(d).mkdir(parents=True, exist_ok=True)
            shutil.chown(d, "munge", "munge")
        shutil.chown(key, "munge", "munge")
        key.chmod(0o400)
        proc = _run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"])
        if proc.returncode != 0:
            raise Unavailable(f"munged did not start: {proc.stderr[-300:]}")
        pidfile = Path("/run/munge/munged.pid")
        for _ in range(50):
            if pidfile.exists():
                self.pids.append(int(pidfile.read_text().split()[0]))
                break
            time.sleep(0.1)

    # -- slurm -------------------------------------------------------------------------------
    def _write(self, path: Path, text: str) -> None:
        if path.exists() and MARK not in path.read_text():
            backup = self.tmp / f"{path.name}.orig"
            shutil.copy2(path, backup)
            self.backups[path] = backup
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def _configure(self) -> None:
        t = self.tmp
        for d in ("state", "spool"):
            (t / d).mkdir(exist_ok=True)
        gpus = [t / "gpu0", t / "gpu1"]
        for g in gpus:
            g.touch()
        self._write(CONF_DIR / "slurm.conf", f"""{MARK}
ClusterName=rartstest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
StateSaveLocation={t}/state
SlurmdSpoolDir={t}/spool
SlurmctldPidFile={t}/slurmctld.pid
SlurmdPidFile={t}/slurmd.pid
SlurmctldLogFile={t}/slurmctld.log
SlurmdLogFile={t}/slurmd.log
ProctrackType=proctrack/{self.proctrack}
TaskPlugin=task/none
KillWait={KILL_WAIT_S}
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
MinJobAge=300
SlurmdParameters=config_overrides
GresTypes=gpu
NodeName=localhost CPUs=32 RealMemory=512000 Gres=gpu:2 State=UNKNOWN
PartitionName=cpu Nodes=localhost Default=YES MaxTime={CPU_MAX_MIN} State=UP
PartitionName=gpu Nodes=localhost Default=NO MaxTime={GPU_MAX_MIN} State=UP PriorityTier=1 PreemptMode=REQUEUE
PartitionName=gpucancel Nodes=localhost Default=NO MaxTime={GPU_MAX_MIN} State=UP PriorityTier=1 PreemptMode=CANCEL
PartitionName=urgent Nodes=localhost Default=NO MaxTime={GPU_MAX_MIN} State=UP PriorityTier=10 PreemptMode=OFF
""")
        if self.proctrack == "cgroup":  # cgroup/v1 with its freezer; no memory or device constraints
            self._write(CONF_DIR / "cgroup.conf", f"{MARK}\nCgroupPlugin=cgroup/v1\nCgroupAutomount=yes\n")
        self._write(CONF_DIR / "gres.conf", f"{MARK}\nName=gpu File={gpus[0]},{gpus[1]}\n")

    def _daemon(self, cmd, pidfile: Path) -> None:
        proc = _run(cmd)
        if proc.returncode != 0:
            raise Unavailable(f"{cmd[0]} did not start: {proc.stderr[-300:]}")
        for _ in range(100):
            if pidfile.exists() and pidfile.read_text().strip():
                self.pids.append(int(pidfile.read_text().split()[0]))
                return
            time.sleep(0.1)
        raise Unavailable(f"{cmd[0]} wrote no pid file ({pidfile})")

    def start(self) -> "LocalSlurm":
        # one cluster at a time on this machine: it owns /etc/slurm and the daemons' ports, and a second
        # one (another pytest-xdist worker) would rewrite the first's config or delete it on its way out
        self.lock = open(LOCK, "w")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        ensure_installed()
        self._munge()
        self._configure()
        self._daemon(["slurmctld", "-c"], self.tmp / "slurmctld.pid")
        self._daemon(["slurmd", "-N", "localhost"], self.tmp / "slurmd.pid")
        for _ in range(60):
            out = _run(["sinfo", "-h", "-o", "%t"]).stdout.strip()
            if out in ("idle", "mix", "alloc"):
                return self
            time.sleep(0.5)
        logs = (self.tmp / "slurmctld.log").read_text()[-500:] if (self.tmp / "slurmctld.log").exists() else ""
        raise Unavailable(f"the SLURM node never became idle (sinfo: {out!r}) {logs}")

    def stop(self) -> None:
        for pid in reversed(self.pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for _ in range(100):  # gone, their ports free, before the next cluster may start
            if not any(Path(f"/proc/{pid}").exists() for pid in self.pids):
                break
            time.sleep(0.2)
        for path, backup in self.backups.items():
            shutil.copy2(backup, path)
        for name in ("slurm.conf", "gres.conf", "cgroup.conf"):
            path = CONF_DIR / name
            if path not in self.backups and path.exists() and MARK in path.read_text():
                path.unlink()
        self.pids, self.backups = [], {}  # a stopped cluster may start again
        if self.lock is not None:
            self.lock.close()  # releases the flock: the next cluster may start
            self.lock = None
