"""A private one-node Slurm cluster in a folder: for the test suite and for trying the templates.

Debian's ``slurmctld`` and ``slurmd`` (22.05) run in the foreground as children of this process,
with state, spool, logs and config under one folder, on free ports bound to loopback, without
munge (``auth/none``). Nothing system-wide is touched; :meth:`Cluster.stop` kills only the two
daemons it started. Clients reach it with ``SLURM_CONF=<folder>/slurm.conf``.

By hand::

    python tests/slurm_cluster.py /tmp/my-cluster     # prints the export line, Ctrl-C stops it
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from harness import procs

DAEMONS = ("slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "srun", "scancel", "sinfo")


def missing_binaries() -> list[str]:
    """The Slurm programs this helper needs that are not installed."""
    return [name for name in DAEMONS + CLIENTS
            if shutil.which(name) is None and not Path(f"/usr/sbin/{name}").exists()]


def _binary(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on loopback (held open together so they differ)."""
    socks = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _config(root: Path, ctld_port: int, slurmd_port: int, cpus: int) -> str:
    host = socket.gethostname().split(".")[0]
    return f"""\
# Private one-node test cluster (tests/slurm_cluster.py); not a production configuration.
ClusterName=tea{secrets.token_hex(3)}
# Job ids of earlier test clusters must not come back: MPICH names its shared-memory segment
# after the PMI job/step id, and a segment left by a killed step breaks the next MPI_Init.
FirstJobId={secrets.randbelow(50_000_000) + 1000}
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
AuthType=auth/none
# requeued jobs wait cred_expire seconds before they may start again (default 120)
AuthInfo=cred_expire=10
CredType=cred/none
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
# the main loop also starts jobs whose begin time has passed (a requeued job, cred_expire
# after its requeue): every second here instead of every 60 s
SchedulerParameters=sched_interval=1
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={root}/jobcomp.txt
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
MinJobAge=3600
KillWait=10
InactiveLimit=0
SlurmdParameters=config_overrides
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""


class Cluster:
    """A running private cluster; use as a context manager or call :meth:`stop`."""

    def __init__(self, root: Path, cpus: int = 2, timeout_s: float = 60.0):
        self.root = Path(root)
        for sub in ("state", "spool"):  # a fresh cluster every time
            shutil.rmtree(self.root / sub, ignore_errors=True)
            (self.root / sub).mkdir(parents=True)
        ctld_port, slurmd_port = _free_ports(2)
        self.conf = self.root / "slurm.conf"
        self.conf.write_text(_config(self.root, ctld_port, slurmd_port, cpus))
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.procs: list[subprocess.Popen] = []
        try:
            self._start("slurmctld", ["-D", "-c", "-i"])
            self._start("slurmd", ["-D", "-c"])
            self._wait_idle(timeout_s)
        except BaseException:
            self.stop()
            raise

    def _start(self, name: str, flags: list[str]) -> None:
        # dies with this process (SIGTERM: slurmd then ends its job steps)
        self.procs.append(procs.start([_binary(name), *flags, "-f", str(self.conf)],
                                      self.root / f"{name}.stdout", env=self.env,
                                      death_signal=signal.SIGTERM, new_session=True))

    def _wait_idle(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        state = ""
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[0]} exited ({proc.returncode}); see "
                                       f"{self.root}/*.log")
            res = self.run("sinfo", "-h", "-o", "%t", check=False)
            state = res.stdout.strip()
            if res.returncode == 0 and state in ("idle", "mix", "alloc"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"Slurm node not idle after {timeout_s:.0f} s (state {state!r}); "
                           f"see {self.root}/slurmctld.log")

    def run(self, *cmd: str, check: bool = True, timeout: float = 60,
            env: dict[str, str] | None = None, cwd: Path | None = None
            ) -> subprocess.CompletedProcess:
        """Run a Slurm client command against this cluster."""
        proc = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout,
                              env=dict(self.env, **(env or {})), cwd=cwd)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def job_states(self, job_id: str) -> dict[str, str]:
        """State of every job (array tasks separately) under ``job_id``: {id: STATE}."""
        res = self.run("scontrol", "-o", "show", "job", job_id, check=False)
        states = {}
        for line in res.stdout.splitlines():
            fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
            task = fields.get("ArrayTaskId")
            key = f"{fields.get('ArrayJobId')}_{task}" if task else fields.get("JobId", "?")
            states[key] = fields.get("JobState", "?")
        return states

    def wait(self, job_ids: list[str], timeout_s: float) -> dict[str, str]:
        """Wait until every job under ``job_ids`` has ended; returns the final states."""
        final = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
                 "BOOT_FAIL", "DEADLINE", "PREEMPTED"}
        deadline = time.monotonic() + timeout_s
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = {}
            for job in job_ids:
                states.update(self.job_states(job))
            if states and all(s in final for s in states.values()):
                return states
            time.sleep(1.0)
        raise TimeoutError(f"jobs {job_ids} not finished after {timeout_s:.0f} s: {states}")

    def stop(self) -> None:
        """Cancel this cluster's jobs (slurmd would leave their steps running), then stop the
        two daemons (only them) and reap them."""
        if self.procs and all(p.poll() is None for p in self.procs):
            self.run("scancel", f"--user={os.getuid()}", check=False)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                res = self.run("squeue", "-h", "-o", "%i", check=False)
                if res.returncode != 0 or not res.stdout.strip():
                    break
                time.sleep(0.5)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs = []

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/tea-slurm")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with Cluster(folder) as cluster:
        print(f"export SLURM_CONF={cluster.conf}", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
