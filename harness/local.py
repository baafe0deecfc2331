"""Local launcher: runs the plan as parallel runner processes with a live progress line."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from harness import h5md, procs
from harness.plan import RunSpec
from harness.provenance import command_line
from harness.runner import work_dir

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
    simulated_ps: float = 0.0
    wall_s: float = 0.0


def existing_status(spec: RunSpec) -> str | None:
    """Status recorded in the run's trajectory, or None when there is none (or it is unreadable)."""
    path = Path(spec.out_file)
    if not path.exists():
        return None
    try:
        return h5md.read_meta(path)["status"]
    except (OSError, KeyError):
        return None


def pending(plan: list[RunSpec], retry_failed: bool) -> tuple[list[RunSpec], list[RunSpec]]:
    """Split the plan into runs to do and runs already finished."""
    todo, done = [], []
    for spec in plan:
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


class LocalLauncher:
    """Runs specs as ``python -m harness.runner`` children, ``jobs`` at a time."""

    def __init__(self, jobs: int, stream: TextIO = sys.stderr, live: bool = True):
        self.jobs = max(1, jobs)
        self.stream = stream
        self.live = live and stream.isatty()
        self.quiet = not live
        self.stopping = False
        self._last_line = time.monotonic()

    def _spawn(self, spec: RunSpec) -> _Active:
        work = work_dir(spec)
        work.mkdir(parents=True, exist_ok=True)
        spec_file = work / "spec.json"
        spec_file.write_text(spec.to_json())
        env = dict(os.environ, TEA_HARNESS_COMMAND=command_line(), PYTHONUNBUFFERED="1")
        proc = procs.start([sys.executable, "-m", "harness.runner", str(spec_file), "--progress",
                            *self._runner_args(spec)],
                           work / "runner.log", env=env, death_signal=signal.SIGKILL,
                           new_session=True, stdout_pipe=True)
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

    def run(self, plan: list[RunSpec], skipped: list[RunSpec]) -> Summary:
        """Run every spec of ``plan``; Ctrl-C stops the runs softly (they resume next time)."""
        summary = Summary(skipped=[s.name for s in skipped])
        queue = list(plan)
        active: list[_Active] = []
        start = time.monotonic()
        old = signal.signal(signal.SIGINT, self._on_interrupt)
        old_term = signal.signal(signal.SIGTERM, self._on_interrupt)
        selector = selectors.DefaultSelector()
        try:
            while queue or active:
                while queue and len(active) < self.jobs and not self.stopping:
                    run = self._spawn(queue.pop(0))
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
        if status == "completed":
            summary.completed.append(run.spec.name)
        elif status == "failed":
            failure = outcome.get("failure") or {}
            summary.failed.append((run.spec.name, failure.get("message", ""),
                                   failure.get("kind", "")))
        elif status == "interrupted":
            summary.interrupted.append(run.spec.name)
        else:
            log = work_dir(run.spec) / "runner.log"
            reason = f"runner {procs.describe_exit(run.proc.returncode)}: {procs.tail(log, 2)}"
            summary.failed.append((run.spec.name, reason, "runner_error"))
        if not self.live and not self.quiet:
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
