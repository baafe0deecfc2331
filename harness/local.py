"""Local launcher: runs the plan as parallel runner processes with a live progress line."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from harness import h5md, procs, runlock
from harness.engines.ipi_run import (
    EXTENDABLE,
    FROM_CHECKPOINT,
    RESUMABLE_FAILURES,
    extension,
    finished_status,
)
from harness.plan import RunSpec
from harness.provenance import command_line

LOG_INTERVAL_S = 30.0


@dataclass
class _Active:
    spec: RunSpec
    proc: subprocess.Popen
    started: float
    step: int = 0
    first_step: int | None = None
    outcome: dict | None = None
    partial: bytes = b""
    signalled: bool = False


@dataclass
class Summary:
    """What a launch did."""

    completed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)  # name, message, kind
    interrupted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: Runs held by another live launch (name, who holds it): left to their writer.
    busy: list[tuple[str, str]] = field(default_factory=list)
    simulated_ps: float = 0.0
    wall_s: float = 0.0


def existing_status(spec: RunSpec) -> str | None:
    """Status recorded in the run's trajectory, or None when there is none (or it is unreadable).

    A run that failed for a storage fault (``disk_full``, ``write_error``) counts as
    ``interrupted``: the same command resumes it.
    """
    path = Path(spec.out_file)
    if not path.exists():
        return None
    try:
        meta = h5md.read_meta(path)
    except (OSError, KeyError):
        return None
    if meta["status"] == "failed" and (meta["failure"] or {}).get("kind") in RESUMABLE_FAILURES:
        return "interrupted"
    why = extension(spec, meta)
    if why in EXTENDABLE:  # completed, asked for more steps: it goes on
        how = ("from its final checkpoint" if why == FROM_CHECKPOINT else "from its last "
               "frame (positions, velocities; the thermostat's random numbers start afresh)")
        print(f"{spec.name}: completed at {meta['run_spec']['n_steps']} steps, extended to "
              f"{spec.n_steps} {how}", flush=True)
        return "interrupted"
    if why is not None:
        print(f"{spec.name}: completed at {meta['run_spec']['n_steps']} steps, not extended "
              f"to {spec.n_steps}: {why}", file=sys.stderr, flush=True)
    return meta["status"]


def pending(plan: list[RunSpec], retry_failed: bool,
            busy: list[tuple[RunSpec, str]] | None = None) -> tuple[list[RunSpec], list[RunSpec]]:
    """Split the plan into runs to do and runs already finished.

    Runs whose lock a live process holds are left alone (never deleted for a retry): they go
    to ``busy`` with a note on who holds them when that list is given, else to the runs to do
    (where the run's own lock makes it skip them).
    """
    todo, done = [], []
    for spec in plan:
        owner = runlock.holder(spec.out_file)
        if owner is not None:
            if busy is None:
                todo.append(spec)
            else:
                busy.append((spec, f"running elsewhere: held by {runlock.describe(owner)}"))
            continue
        status = existing_status(spec)
        if status == "completed" or (status == "failed" and not retry_failed):
            done.append(spec)
        else:
            if status == "failed":
                out = Path(spec.out_file)
                for stale in (out, out.with_suffix(".log"), out.with_suffix(".failure.extxyz")):
                    stale.unlink(missing_ok=True)
            todo.append(spec)
    return todo, done


#: Folder under ``--out`` holding each live launch's run specs and runner logs.
LAUNCHES = ".launches"


def launch_folder(plan: list[RunSpec]) -> Path:
    """A fresh folder for this launch's specs and runner logs (under ``--out`` when known).

    Folders of launches of this host whose process is gone (``kill -9``) are swept first.
    """
    if not plan:
        return Path(tempfile.mkdtemp(prefix="tea-launch-"))
    root = Path(plan[0].out_file).parents[3] / LAUNCHES
    root.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    for old in root.glob(f"{host}.*.*"):
        pid = old.name.rsplit(".", 2)[1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{host}.{os.getpid()}.", dir=root))


class LocalLauncher:
    """Runs specs as ``python -m harness.runner`` children, ``jobs`` at a time."""

    def __init__(self, jobs: int, stream: TextIO = sys.stderr, live: bool = True):
        self.jobs = max(1, jobs)
        self.stream = stream
        self.live = live and stream.isatty()
        self.quiet = not live
        self.stopping = False
        self._last_line = time.monotonic()

    def _spawn(self, spec: RunSpec, scratch: Path) -> _Active:
        # The spec and the runner's log live in this launch's own folder: the run's work
        # folder belongs to whoever holds the run's lock, which the runner takes first.
        spec_file = scratch / f"{spec.name.replace('/', '_')}.json"
        spec_file.write_text(spec.to_json())
        env = dict(os.environ, TEA_HARNESS_COMMAND=command_line(), PYTHONUNBUFFERED="1")
        proc = procs.start([sys.executable, "-m", "harness.runner", str(spec_file), "--progress",
                            *self._runner_args(spec)],
                           spec_file.with_suffix(".log"), env=env,
                           death_signal=signal.SIGKILL, new_session=True, stdout_pipe=True)
        os.set_blocking(proc.stdout.fileno(), False)
        return _Active(spec=spec, proc=proc, started=time.monotonic())

    def _runner_args(self, spec: RunSpec) -> list[str]:
        """Extra runner arguments for this run (the ``--batch`` launcher adds ``--group``)."""
        return []

    @staticmethod
    def _read(run: _Active) -> None:
        try:
            data = run.proc.stdout.read()
        except (BlockingIOError, ValueError):
            return
        if not data:
            return
        run.partial += data
        *lines, run.partial = run.partial.split(b"\n")
        for line in lines:
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "progress" in msg:
                run.step = msg["progress"]["step"]
                if run.first_step is None:
                    run.first_step = run.step
            elif "outcome" in msg:
                run.outcome = msg["outcome"]

    def run(self, plan: list[RunSpec], skipped: list[RunSpec],
            busy: list[tuple[RunSpec, str]] = ()) -> Summary:
        """Run every spec of ``plan``; Ctrl-C stops the runs softly (they resume next time).

        ``busy``: runs held by another launch (counted in the summary, not run).
        """
        summary = Summary(skipped=[s.name for s in skipped],
                          busy=[(s.name, why) for s, why in busy])
        for name, why in summary.busy:
            self._note(f"[skipped] {name}: {why}")
        scratch = launch_folder(plan)
        try:
            return self._run(plan, summary, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _note(self, line: str) -> None:
        """One line for the user, whatever the display (notes are never quiet)."""
        self.stream.write(("\n" if self.live else "") + line + "\n")
        self.stream.flush()

    def _next(self, queue: list[RunSpec], summary: Summary) -> RunSpec | None:
        """The next run to start; runs taken by another launch meanwhile are skipped."""
        while queue:
            spec = queue.pop(0)
            owner = runlock.holder(spec.out_file)
            if owner is not None:
                why = f"running elsewhere: held by {runlock.describe(owner)}"
                summary.busy.append((spec.name, why))
                self._note(f"[skipped] {spec.name}: {why}")
                continue
            done = finished_status(spec) if Path(spec.out_file).exists() else None
            if done is not None:
                summary.skipped.append(spec.name)
                continue
            return spec
        return None

    def _run(self, plan: list[RunSpec], summary: Summary, scratch: Path) -> Summary:
        queue = list(plan)
        active: list[_Active] = []
        start = time.monotonic()
        old = signal.signal(signal.SIGINT, self._on_interrupt)
        old_term = signal.signal(signal.SIGTERM, self._on_interrupt)
        selector = selectors.DefaultSelector()
        try:
            while queue or active:
                while queue and len(active) < self.jobs and not self.stopping:
                    spec = self._next(queue, summary)
                    if spec is None:
                        break
                    run = self._spawn(spec, scratch)
                    selector.register(run.proc.stdout, selectors.EVENT_READ, run)
                    active.append(run)
                if self.stopping:
                    for run in active:
                        if run.proc.poll() is None and not run.signalled:
                            run.proc.send_signal(signal.SIGTERM)  # once: it stops softly
                            run.signalled = True
                    queue.clear()
                for _key, _ in selector.select(timeout=0.5):
                    self._read(_key.data)
                for run in list(active):
                    self._read(run)
                    if run.proc.poll() is not None:
                        self._read(run)
                        selector.unregister(run.proc.stdout)
                        run.proc.stdout.close()
                        active.remove(run)
                        self._finish(run, summary)
                self._display(summary, active, len(queue), start)
        finally:
            signal.signal(signal.SIGINT, old)
            signal.signal(signal.SIGTERM, old_term)
            for run in active:
                procs.stop(run.proc, signal.SIGTERM, 60)
            selector.close()
        summary.wall_s = time.monotonic() - start
        if self.live:
            self.stream.write("\n")
        return summary

    def _on_interrupt(self, signum, frame) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.stream.write("\nstopping: runs save their state and can be resumed by running the "
                          "same command again\n")

    def _finish(self, run: _Active, summary: Summary) -> None:
        outcome = run.outcome or {}
        status = outcome.get("status")
        dt_ps = run.spec.dt_fs * 1e-3
        summary.simulated_ps += (outcome.get("last_step", run.step) - (run.first_step or 0)) * dt_ps
        if outcome.get("note") and status != "skipped":
            self._note(f"[note] {run.spec.name}: {outcome['note']}")
        if status == "completed":
            summary.completed.append(run.spec.name)
        elif status == "failed":
            failure = outcome.get("failure") or {}
            summary.failed.append((run.spec.name, failure.get("message", ""),
                                   failure.get("kind", "")))
        elif status == "interrupted":
            summary.interrupted.append(run.spec.name)
        elif status == "skipped":
            note = outcome.get("note", "")
            if note.startswith("already"):
                summary.skipped.append(run.spec.name)
            else:
                summary.busy.append((run.spec.name, note))
                self._note(f"[skipped] {run.spec.name}: {note}")
        else:
            log = Path(run.proc.args[3]).with_suffix(".log")
            reason = f"runner {procs.describe_exit(run.proc.returncode)}: {procs.tail(log, 2)}"
            summary.failed.append((run.spec.name, reason, "runner_error"))
        if not self.live and not self.quiet and status != "skipped":
            line = f"[{status or 'error'}] {run.spec.name}"
            if status == "failed":
                line += f": {(outcome.get('failure') or {}).get('message', '')}"
            self.stream.write(line + "\n")
            self.stream.flush()

    def _display(self, summary: Summary, active: list[_Active], queued: int, start: float) -> None:
        now = time.monotonic()
        if not self.live:  # logs (Slurm, CI): a plain line now and then
            if not self.quiet and now - self._last_line >= LOG_INTERVAL_S:
                self._last_line = now
                self.stream.write(self._status(summary, active, queued, start) + "\n")
                self.stream.flush()
            return
        self.stream.write("\r" + self._status(summary, active, queued, start) + " \x1b[K")
        self.stream.flush()

    def _status(self, summary: Summary, active: list[_Active], queued: int, start: float) -> str:
        running_ps = sum((r.step - (r.first_step or 0)) * r.spec.dt_fs * 1e-3 for r in active)
        total_ps = summary.simulated_ps + running_ps
        elapsed = max(time.monotonic() - start, 1e-9)
        ns_day = total_ps * 1e-3 / (elapsed / 86400.0)
        fractions = " ".join(f"{100 * r.step / r.spec.n_steps:3.0f}%" for r in active)
        return (f"done {len(summary.completed)}  failed {len(summary.failed)}  running "
                f"{len(active)} [{fractions}]  queued {queued}  |  {total_ps:8.2f} ps simulated  "
                f"{ns_day:7.3f} ns/day  {elapsed:6.0f} s")
