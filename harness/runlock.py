"""One writer per run: a lock file next to each trajectory, safe on cluster file systems.

The lock is ``OUT/<challenge>/<model>/<T>K/.replica-NN.lock``, created with
``open(O_CREAT | O_EXCL)``. Exclusive create is atomic on local file systems, on NFS (v3 and
v4: the server decides, not the client cache) and on Lustre (the metadata server decides),
whatever the mount options; ``flock``/``fcntl`` locks are not: Lustre mounted without
``-o flock`` refuses them or (``localflock``) keeps them per node, and NFS locks vanish with a
lease or a lock daemon. The lock file holds who owns it (host, boot id, pid and the pid's
start time, Slurm job and restart count, a random token) and the owner touches it every
:data:`HEARTBEAT_S` seconds.

A lock is *stale*, and is taken over, when

* its owner ran on this host (and in this pid namespace: containers), in this boot, and that
  process no longer exists (a pid that was reused is told apart by its start time): decided at
  once, no waiting;
* its owner ran on this host in an earlier boot;
* it belongs to the same Slurm array task or job, before a requeue (a higher restart count):
  Slurm ends the old incarnation before it starts the new one;
* otherwise (another host) its heartbeat is older than :data:`STALE_AFTER_S`, measured with the
  file server's clock (the modification time of a file created for the purpose), so clocks of
  compute nodes that disagree do not matter.

Taking over goes through a second exclusive file (``.replica-NN.lock.takeover``): under it the
lock is read again and removed only if it is still the stale one, so two processes that both
found it stale cannot both win. The owner checks its token at every heartbeat; a lock that is
no longer its own (taken over after a long freeze of the whole node) is reported as lost, and
the run stops without writing more.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any

#: Seconds between two touches of a held lock.
HEARTBEAT_S = 15.0
#: A lock from another host whose heartbeat is older than this is stale.
STALE_AFTER_S = 120.0
#: A takeover file older than this belongs to a process that died while taking over.
TAKEOVER_STALE_S = 30.0


def lock_path(out_file: str | Path) -> Path:
    """The lock file of the run whose trajectory is ``out_file``."""
    out = Path(out_file)
    return out.parent / f".{out.stem}.lock"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _pid_namespace() -> str:
    """This process's pid namespace (containers on one host may share its name and boot)."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def _start_ticks(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot, None if it does not exist.

    A zombie (killed, not yet reaped by whoever inherited it) counts as gone: it holds nothing.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _identity() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot_id": _boot_id(), "pid_ns": _pid_namespace(),
            "pid": pid,
            "start_ticks": _start_ticks(pid), "token": secrets.token_hex(8),
            "slurm_job": os.environ.get("SLURM_ARRAY_JOB_ID", os.environ.get("SLURM_JOB_ID")),
            "slurm_task": os.environ.get("SLURM_ARRAY_TASK_ID"),
            "slurm_restart": int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0),
            "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def describe(owner: dict[str, Any]) -> str:
    """'pid 123 on host node7 since ...' for messages."""
    job = f", Slurm job {owner['slurm_job']}" if owner.get("slurm_job") else ""
    return (f"pid {owner.get('pid')} on host {owner.get('host')}{job} since "
            f"{owner.get('since')}")


def _server_now(folder: Path) -> float:
    """The file server's current time: the mtime of a file created now in ``folder``."""
    probe = folder / f".clock.{secrets.token_hex(6)}"
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        os.close(fd)
        return probe.stat().st_mtime
    except OSError:
        return time.time()
    finally:
        probe.unlink(missing_ok=True)


def stale_reason(owner: dict[str, Any] | None, lock_mtime: float, server_now: float) -> str | None:
    """Why a lock held by ``owner`` is stale, or None while its owner may be alive."""
    if owner is None:  # unreadable content: judge by the heartbeat alone
        return "unreadable lock" if server_now - lock_mtime > STALE_AFTER_S else None
    me = _identity()
    if owner.get("host") == me["host"] and owner.get("pid_ns", "") == me["pid_ns"]:
        if owner.get("boot_id") != me["boot_id"]:
            return "its host rebooted"
        ticks = _start_ticks(int(owner.get("pid", -1)))
        if ticks is None or (owner.get("start_ticks") is not None
                             and ticks != owner["start_ticks"]):
            return f"process {owner.get('pid')} no longer exists"
        return None
    if (me["slurm_job"] and owner.get("slurm_job") == me["slurm_job"]
            and owner.get("slurm_task") == me["slurm_task"]
            and int(owner.get("slurm_restart", 0)) < me["slurm_restart"]):
        return "an earlier incarnation of this requeued Slurm job"
    if server_now - lock_mtime > STALE_AFTER_S:
        return f"no heartbeat for {server_now - lock_mtime:.0f} s"
    return None


def read_owner(path: Path) -> dict[str, Any] | None:
    """The owner recorded in a lock file (None if it is empty or damaged)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def holder(out_file: str | Path) -> dict[str, Any] | None:
    """The live owner of the run's lock, or None when nobody (alive) holds it."""
    path = lock_path(out_file)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        return None
    owner = read_owner(path)
    if stale_reason(owner, mtime, _server_now(path.parent)) is not None:
        return None
    return owner or {"pid": "?", "host": "?", "since": "?"}


class Busy(Exception):
    """The run is held by another live process."""

    def __init__(self, owner: dict[str, Any]):
        super().__init__(owner)
        self.owner = owner

    def __str__(self) -> str:
        return f"held by {describe(self.owner)}"


class RunLock:
    """The lock of one run, held by this process; a context manager.

    ``acquire`` raises :class:`Busy` when a live process holds it; ``release`` removes it
    only while it is still this process's own.
    """

    def __init__(self, out_file: str | Path):
        self.path = lock_path(out_file)
        self.identity = _identity()
        self.taken_over: str | None = None
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(self.identity))
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def acquire(self) -> RunLock:
        """Take the lock (taking over a stale one); raises :class:`Busy` if it is held."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            if self._create():
                self._start_heartbeat()
                return self
            try:
                mtime = self.path.stat().st_mtime
            except FileNotFoundError:
                continue  # released just now: try again
            owner = read_owner(self.path)
            reason = stale_reason(owner, mtime, _server_now(self.path.parent))
            if reason is None:
                raise Busy(owner or {"pid": "?", "host": "?", "since": "?"})
            if self._take_over(owner, reason):
                self._start_heartbeat()
                return self
        raise Busy(read_owner(self.path) or {"pid": "?", "host": "?", "since": "?"})

    def _take_over(self, stale: dict[str, Any] | None, reason: str) -> bool:
        """Replace the stale lock under the takeover file; False if someone else won."""
        guard = self.path.with_name(self.path.name + ".takeover")
        try:
            fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                if _server_now(guard.parent) - guard.stat().st_mtime > TAKEOVER_STALE_S:
                    guard.unlink(missing_ok=True)  # its owner died inside the guard
            except FileNotFoundError:
                pass
            return False
        os.close(fd)
        try:
            current = read_owner(self.path)
            same = (current or {}).get("token") == (stale or {}).get("token")
            if not same:
                return False
            self.path.unlink(missing_ok=True)
            if not self._create():
                return False
            self.taken_over = f"took over the lock of {describe(stale or {})}: {reason}"
            return True
        finally:
            guard.unlink(missing_ok=True)

    def _start_heartbeat(self) -> None:
        self._thread = threading.Thread(target=self._beat, name="run-lock-heartbeat",
                                        daemon=True)
        self._thread.start()

    def owned(self) -> bool:
        """Whether the lock file still names this process."""
        return (read_owner(self.path) or {}).get("token") == self.identity["token"]

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                if not self.owned():
                    self.lost.set()
                    return
                os.utime(self.path)
            except OSError:
                continue  # a file server hiccup: try at the next beat

    def release(self) -> None:
        """Stop the heartbeat and remove the lock if it is still this process's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            if self.owned():
                self.path.unlink(missing_ok=True)
        except OSError:
            pass

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
