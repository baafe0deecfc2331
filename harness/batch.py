"""``--batch N``: runs of one model share one force client, N at a time.

The pieces, and who does what:

* :func:`make_groups` cuts the runs to do into groups of up to N runs of the same model
  (same family, file and options; any temperatures, any replicas).
* :class:`GroupLauncher` (the local launcher) starts, per group, one
  :mod:`harness.batch_driver` process on a group folder and the group's runners with
  ``--group DIR``; it writes ``done`` in the folder when all of the group's runs ended, and
  the client then exits.
* :class:`MemberSupervisor` is the ordinary i-PI supervisor of one run, except that instead
  of starting its own force client it asks the group's client to join (``join/<token>.json``)
  and watches it through :class:`MemberHandle`, which behaves like the ``Popen`` of a
  private client: it "exits" when the group client wrote that this run left, or when the
  group client is gone. Everything else (trajectory, watchdog events, resume, stall
  detection, failure records) is the one-run code path, unchanged.

See docs/batching.md for the design and why.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import procs, sockets
from harness.batch_driver import CLIENT_PID, DONE, GROUP_FILE, JOIN, LEAVE, LEFT, STATS_FILE
from harness.engines.ipi_run import IpiSupervisor
from harness.engines.lammps_run import uses_lammps
from harness.errors import UserError
from harness.local import LocalLauncher, _Active
from harness.model_python import CLIENT_PROTOCOL, client_command, client_env
from harness.plan import RunSpec

GROUPS_DIR = ".batch"  # under the output folder
IPI_EXIT_GRACE_S = 5.0


def _alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (it need not be our child)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


class MemberHandle:
    """A run's view of the group client, shaped like :class:`subprocess.Popen`.

    ``poll()`` is None while the client serves this run; the exit code recorded by the
    client when the run left (0 normal, 1 the model failed for this run); or 1 when the
    client process is gone without a record (killed), after writing why into the run's
    ``driver.log``. ``send_signal``/``kill`` ask the client to drop this run only.
    """

    def __init__(self, group: Path, token: str, work: Path):
        self.group = group
        self.token = token
        self.work = work
        self.returncode: int | None = None
        self.lost = False  # the client died without releasing this run
        self.ipi: subprocess.Popen | None = None  # the run's i-PI server
        self.left_at: float | None = None
        self.pid = int((group / CLIENT_PID).read_text().strip())

    def poll(self) -> int | None:
        """The run's "exit code" once it left the group, else None."""
        if self.returncode is not None:
            return self.returncode
        left = self.group / LEFT / f"{self.token}.json"
        if left.is_file():
            code = int(json.loads(left.read_text()).get("code", 1))
            # A normal departure (EXIT, closed socket, watchdog event) is reported once the
            # run's i-PI has ended too, as a private client's process exit would be: the
            # supervisor then reads i-PI's last frames before judging the run.
            if code == 0 and self.ipi is not None and self.ipi.poll() is None:
                self.left_at = self.left_at or time.monotonic()
                if time.monotonic() - self.left_at < IPI_EXIT_GRACE_S:
                    return None
            self.returncode = code
        elif not _alive(self.pid):
            if left.is_file():  # it wrote the record just before it ended
                return self.poll()
            with open(self.work / "driver.log", "a") as log:
                log.write(f"the group force client (pid {self.pid}, {self.group.name}) "
                          "ended without releasing this run\n")
            self.returncode, self.lost = 1, True
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait until the run left the group; :class:`subprocess.TimeoutExpired` after
        ``timeout`` seconds (never waits without one: None means 60 s)."""
        deadline = time.monotonic() + (60.0 if timeout is None else timeout)
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"group client {self.pid}", timeout or 60.0)
            time.sleep(0.05)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Ask the group client to drop this run (the client itself goes on)."""
        if self.poll() is None:
            (self.group / LEAVE / self.token).touch()

    def kill(self) -> None:
        """Same as :meth:`send_signal`: a run never kills the shared client."""
        self.send_signal(signal.SIGKILL)


class MemberSupervisor(IpiSupervisor):
    """The i-PI supervisor of one run served by a group's shared force client."""

    def __init__(self, spec: RunSpec, progress: bool = False, group: Path | None = None):
        super().__init__(spec, progress=progress)
        assert group is not None
        self.group = Path(group)

    def _start_client(self, seg, env: dict[str, str]) -> None:
        token = seg.socket_dir.name
        request = {"address": sockets.full_path(seg.address),
                   "spec": str(self.work / "spec.json"), "work": str(self.work),
                   "first_step": max(self.assembler.last_emitted, 0),
                   "protocol": CLIENT_PROTOCOL}
        join = self.group / JOIN
        tmp = join / f".{token}.tmp"
        tmp.write_text(json.dumps(request))
        tmp.replace(join / f"{token}.json")
        seg.driver = MemberHandle(self.group, token, self.work)
        seg.driver.ipi = seg.ipi

    def _read_event(self, seg, wait_s: float) -> bool:
        """The watchdog's event, or else, when the group client died holding this run (its
        i-PI then exits first), that death as the failure."""
        found = super()._read_event(seg, wait_s)
        if not found and seg.driver.poll() is not None and seg.driver.lost:
            self._fail("driver_died", "force client died: "
                       + procs.tail(self.work / "driver.log", 3))
        return found

    def _record(self, status: str, seg_info: dict[str, Any]) -> None:
        try:
            declared = json.loads((self.group / GROUP_FILE).read_text())
        except (OSError, ValueError):
            declared = {}
        seg_info["batch"] = {"group": self.group.name,
                             "batch_size": declared.get("batch_size"),
                             "runs_in_plan_group": len(declared.get("runs") or [])}
        super()._record(status, seg_info)


def model_key(spec: RunSpec) -> tuple[str, str | None, str, str | None]:
    """What runs must share to be served by one client: the model, its file and options, and
    the interpreter it runs under."""
    return (spec.model_label, spec.model_file, json.dumps(spec.model_options, sort_keys=True),
            spec.model_python)


def make_groups(todo: list[RunSpec], batch: int) -> list[list[RunSpec]]:
    """Groups of up to ``batch`` runs of the same model, in plan order."""
    by_model: dict[tuple, list[RunSpec]] = {}
    for spec in todo:
        by_model.setdefault(model_key(spec), []).append(spec)
    groups = []
    for specs in by_model.values():
        groups.extend(specs[i:i + batch] for i in range(0, len(specs), batch))
    return groups


def task_units(plan: list[RunSpec], batch: int) -> list[list[RunSpec]]:
    """What one Slurm array task (``--task K``) runs: plan entry K, or with ``--batch N``
    group K of the whole plan (:func:`make_groups`; the same on every node and at every
    resubmission, since it depends on the plan only, not on which runs are done)."""
    return make_groups(plan, batch) if batch > 1 else [[spec] for spec in plan]


def task_runs(plan: list[RunSpec], task: int, batch: int) -> list[RunSpec]:
    """The runs of ``--task K`` (see :func:`task_units`); UserError when K is outside."""
    units = task_units(plan, batch)
    if not 0 <= task < len(units):
        what = f"{len(units)} groups of up to {batch} runs" if batch > 1 else "the plan"
        raise UserError(f"--task {task} is outside {what} (0..{len(units) - 1})")
    return units[task]


def pending_tasks(plan: list[RunSpec], todo: list[RunSpec], batch: int) -> list[int]:
    """Indices of the array tasks that still have a run to do."""
    waiting = {spec.out_file for spec in todo}
    return [k for k, unit in enumerate(task_units(plan, batch))
            if any(spec.out_file in waiting for spec in unit)]


def check_batch(plan: list[RunSpec], batch: int) -> None:
    """UserError when ``--batch`` cannot serve these runs."""
    if batch < 1:
        raise UserError(f"--batch {batch}: give a number of runs per force client, 1 or more")
    if batch == 1:
        return
    for spec in plan:
        if uses_lammps(spec):
            raise UserError(f"--batch {batch}: run {spec.name} is served by LAMMPS "
                            "(--engine lammps or a pair-style model), which has no batched "
                            "client; drop --batch for it")


class GroupLauncher(LocalLauncher):
    """The local launcher with one shared force client per group of runs.

    ``jobs`` counts groups running at once: it runs ``jobs x batch`` runners, and a group's
    client starts with its first runner.
    """

    def __init__(self, jobs: int, batch: int, out: Path, **kwargs: Any):
        super().__init__(max(1, jobs) * batch, **kwargs)
        self.batch = batch
        self.root = Path(out).expanduser().resolve() / GROUPS_DIR
        self.group_of: dict[str, int] = {}
        self.groups: list[list[RunSpec]] = []
        self.folders: dict[int, Path] = {}
        self.clients: dict[int, subprocess.Popen] = {}
        self.ended: dict[int, int] = {}
        self.client_stats: list[dict[str, Any]] = []

    def run(self, plan: list[RunSpec], skipped: list[RunSpec], busy: Any = ()):
        """Run the plan group by group (see :class:`LocalLauncher.run`)."""
        self.groups = make_groups(plan, self.batch)
        ordered = [spec for group in self.groups for spec in group]
        self.group_of = {spec.out_file: k for k, group in enumerate(self.groups)
                         for spec in group}
        try:
            return super().run(ordered, skipped, busy)
        finally:
            for k in list(self.clients):
                self._close_group(k)
            if self.root.is_dir() and not any(self.root.iterdir()):
                self.root.rmdir()

    def _runner_args(self, spec: RunSpec) -> list[str]:
        k = self.group_of[spec.out_file]
        if k not in self.clients:
            self._open_group(k, spec)
        return ["--group", str(self.folders[k])]

    def _open_group(self, k: int, spec: RunSpec) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{spec.model_label}-g{k:03d}-", dir=self.root))
        for sub in (JOIN, LEFT, LEAVE):
            (folder / sub).mkdir()
        (folder / GROUP_FILE).write_text(json.dumps({
            "batch_size": self.batch, "runs": [s.name for s in self.groups[k]]}))
        env = dict(os.environ, OMP_NUM_THREADS=str(spec.omp_threads), PYTHONUNBUFFERED="1")
        # Waiting OpenMP threads sleep instead of spinning: a group client shares its cores
        # with N i-PI servers and supervisors, and spinning threads starve them.
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        if spec.model_python:  # the model's own interpreter (--model-python)
            env = client_env(env, folder)
        client = procs.start(client_command(spec.model_python, "harness.batch_driver") + [
            "--group", str(folder), "--protocol", str(CLIENT_PROTOCOL)],
            folder / "client.log", env=env, death_signal=signal.SIGTERM)
        (folder / CLIENT_PID).write_text(str(client.pid))
        self.folders[k], self.clients[k] = folder, client

    def _finish(self, run: _Active, summary) -> None:
        super()._finish(run, summary)
        k = self.group_of[run.spec.out_file]
        self.ended[k] = self.ended.get(k, 0) + 1
        if self.ended[k] == len(self.groups[k]) or self.stopping:
            (self.folders[k] / DONE).touch()
        if self.ended[k] == len(self.groups[k]):
            self._close_group(k)

    def _close_group(self, k: int) -> None:
        """Tell the client no run will come, reap it, remove the folder if it ended cleanly."""
        folder, client = self.folders[k], self.clients.pop(k)
        (folder / DONE).touch()
        if self.stopping:
            procs.stop(client, signal.SIGTERM, 30)
        else:
            _reap(client, 30)
        stats = folder / STATS_FILE
        if stats.is_file():
            self.client_stats.append(json.loads(stats.read_text()))
        if client.returncode != 0 and not self.quiet:
            self.stream.write(f"\ngroup force client {folder.name} ended with "
                              f"{procs.describe_exit(client.returncode)}: "
                              f"{procs.tail(folder / 'client.log', 3)}\n")
        shutil.rmtree(folder, ignore_errors=True)  # each run's log holds what concerns it


def _reap(client: subprocess.Popen, timeout_s: float) -> None:
    """Wait for a client told ``done`` to exit; stop it if it does not."""
    try:
        client.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        procs.stop(client, signal.SIGTERM, 10)
