"""The run supervisor's engine-neutral base: one RunSpec to one H5MD trajectory.

A supervisor starts an MD engine and its force client for one run, reads the frames the engine
streams out, writes them into the trajectory as they come (buffered, ``h5md.append``), checks
each frame (non-finite values, the temperature watchdog), watches for stalls and dead
processes, and records how the run ended (:class:`Outcome`; ``status``, the failure, the
segments in the provenance). That bookkeeping is the same for every engine and lives here.

An engine gives the rest (:mod:`harness.engines`, one registry entry each):

* :meth:`Supervisor._start`: create or resume the trajectory, start the engine's processes,
  return the :class:`Segment` (processes, streams, socket);
* :meth:`Supervisor._feed`: hand the frames read from its streams to the assembler;
* optionally :meth:`Supervisor._prune_checkpoints`, :meth:`Supervisor._keep_final_checkpoint`
  (i-PI keeps checkpoints for resume and extension), :meth:`Supervisor._keep` and
  :meth:`Supervisor._processes_ended` (LAMMPS runs on while it is stopped), ``LOG_FILES`` and
  ``ENGINE_NAME``.

The engines: :class:`harness.engines.ipi_run.IpiSupervisor` (i-PI with the python force client;
:class:`harness.engines.lammps_run.LammpsClientSupervisor` with LAMMPS as the client;
:class:`harness.batch.MemberSupervisor` with a group's shared client) and
:class:`harness.engines.lammps_run.NativeSupervisor` (LAMMPS integrates).
Which one runs a spec: :func:`harness.engines.get_engine` via :mod:`harness.runner`.
"""

from __future__ import annotations

import json
import math
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import h5md, procs, provenance, runlock, storage
from harness.driver import MODEL_CLOCK_FILE, read_model_clock
from harness.engines.ipi_stream import FrameAssembler
from harness.plan import RunSpec
from harness.stability.criteria import Frame
from harness.stability.monitor import EVENT_FILE, RING_FILE
from harness.stability.watchdog import WatchdogSettings, build_temperature_criterion

PROPERTY_COLUMNS = ("step", "time", "potential", "kinetic", "conserved", "temperature")
PROGRESS_INTERVAL_S = 1.0
POLL_INTERVAL_S = 0.1
#: Failure kinds of the storage, not of the run: the work folder (checkpoints) is kept and
#: the same command resumes the run once the cause is fixed (space freed).
RESUMABLE_FAILURES = ("disk_full", "write_error")


@dataclass
class Outcome:
    """How a run ended."""

    status: str  # completed | failed | interrupted | skipped
    frames: int = 0
    last_step: int = 0
    failure: dict[str, Any] | None = None
    wall_s: float = 0.0
    note: str = ""  # why a run was skipped (held by another process, already finished)

    def to_json(self) -> str:
        """One JSON line (what the runner prints last)."""
        return json.dumps({"outcome": self.__dict__})


@dataclass
class Segment:
    """The processes, pipes and socket of one segment (a start or a resume).

    ``ipi`` is the engine's main process (i-PI, or LAMMPS for native runs); ``driver`` the
    force client (a process, or a group's shared client seen through a handle)."""

    work: Path
    socket_dir: Path
    address: str
    streams: dict[str, Any] = field(default_factory=dict)
    ipi: Any = None
    driver: Any = None


def work_dir(spec: RunSpec) -> Path:
    """Where the run keeps its i-PI input, checkpoints and logs while unfinished."""
    out = Path(spec.out_file)
    return out.parent / f".{out.stem}.work"



class Supervisor:
    """Runs one RunSpec to an :class:`Outcome`; see the module docstring.

    An engine subclasses it and gives :meth:`_start` (create or resume the trajectory, start
    the engine and its force client, return the :class:`Segment`) and :meth:`_feed` (hand what
    the streams read to the frame assembler); the rest it may leave as it is.
    """

    #: The logs of the run's processes in its work folder (kept beside a failed run's file).
    LOG_FILES: tuple[str, ...] = ("engine.log", "driver.log")
    #: How the engine is named in messages ("i-PI stopped at step ...").
    ENGINE_NAME = "the engine"

    def __init__(self, spec: RunSpec, progress: bool = False):
        self.spec = spec
        self.out = Path(spec.out_file)
        self.work = work_dir(spec)
        self.progress = progress
        self.stop_requested: str | None = None
        self.buffer: list[dict[str, Any]] = []
        self.assembler = FrameAssembler(required=("positions", "velocities", "forces", "props"))
        self.frames_on_disk = 0
        self.last_flush = time.monotonic()
        self.last_frame_time = time.monotonic()
        self.failure: dict[str, Any] | None = None
        self.seen_frame = False
        self.frame_interval_max: float | None = None
        #: Upper bound of the frame interval from the first read (start-up time / frames).
        self.first_interval: float | None = None
        self.segment_started = time.monotonic()
        self.write_broken = False
        self.lock: runlock.RunLock | None = None
        #: Model time of the frames kept from earlier segments (the client's clock restarts).
        self.model_time_offset = 0.0
        self.temperature_check = build_temperature_criterion(
            WatchdogSettings.from_dict(spec.watchdog), spec.highest_temperature_K)

    def _set_aside(self, why: str) -> None:
        """Keep a trajectory that cannot be resumed under another name; never overwrite data."""
        target = self.out.with_name(f"{self.out.stem}.{why}.{int(time.time())}.h5")
        self.out.rename(target)
        print(f"{self.out}: cannot resume ({why}); kept as {target.name}, starting over",
              file=sys.stderr, flush=True)


    # ------------------------------------------------------- what an engine gives
    def _start(self) -> Segment:
        """Create or resume the trajectory, start the engine and the force client."""
        raise NotImplementedError

    def _feed(self, seg: Segment) -> None:
        """Give the assembler what the segment's streams brought (complete frames need
        ``positions``, ``velocities``, ``forces`` and ``props`` with PROPERTY_COLUMNS)."""
        raise NotImplementedError

    def _prune_checkpoints(self) -> None:
        """Drop the engine's checkpoints that the trajectory no longer needs (after a
        flush); engines without checkpoints keep nothing."""

    def _keep_final_checkpoint(self, last: int) -> None:
        """Keep what a longer ``--time`` needs to continue a completed run exactly (i-PI:
        its last checkpoint, in the file); engines that cannot leave it."""

    # ------------------------------------------------------------ frame flow
    def _pump(self, seg: Segment, timeout_s: float) -> int:
        """Read what the pipes hold, assemble frames, buffer them; returns new frames."""
        time.sleep(timeout_s)  # batch reads: waking per write would slow the engine down
        for stream in seg.streams.values():
            stream.read_available()
        self._feed(seg)
        frames = []
        received = time.time()  # the wall clock of the frames (H5MD observable wall_clock)
        complete = self.assembler.complete()
        model_s = read_model_clock(self.work / MODEL_CLOCK_FILE) if complete else None
        for frame in complete:
            if not self._keep(frame):
                continue
            frame["wall_clock"] = received
            if model_s is not None:  # else NaN (clients without a clock: LAMMPS)
                frame["model_time"] = self.model_time_offset + model_s
            props = frame.pop("props")
            frame.update({k: props[k] for k in PROPERTY_COLUMNS[1:]})
            frames.append(frame)
            self._check_frame(frame)
        self.buffer.extend(frames)
        self._frames_arrived(len(frames))
        return len(frames)

    def _keep(self, frame: dict[str, Any]) -> bool:
        """Whether an assembled frame belongs to the record (all of i-PI's do)."""
        return True

    def _frames_arrived(self, count: int) -> None:
        """Time the frame flow for the stall limit (see :meth:`_stall_limit`)."""
        if not count:
            return
        now = time.monotonic()
        if self.seen_frame:
            gap = (now - self.last_frame_time) / count
            self.frame_interval_max = max(self.frame_interval_max or 0.0, gap)
        else:  # start-up included: an upper bound until a real interval is measured
            self.first_interval = (now - self.segment_started) / count
        self.seen_frame = True
        self.last_frame_time = now

    def _check_frame(self, frame: dict[str, Any]) -> None:
        """Record the first non-finite frame as the failure event (the full watchdog: issue 3)."""
        if self.failure is not None:
            return
        for key in ("positions", "velocities", "forces"):
            if not np.all(np.isfinite(frame[key])):
                bad = np.unique(np.nonzero(~np.isfinite(frame[key]))[0]).tolist()
                self._fail("non_finite", f"non-finite {key}", step=frame["step"],
                           time_ps=frame["time"], atoms=bad[:20])
                return
        if not math.isfinite(frame["potential"]):
            self._fail("non_finite", "non-finite potential energy", step=frame["step"],
                       time_ps=frame["time"])
            return
        if self.temperature_check is not None:
            event = self.temperature_check.check(Frame(frame["step"], frame["time"],
                                                       frame["positions"],
                                                       temperature=frame["temperature"]))
            if event is not None:
                self.failure = event.to_dict()
                self.stop_requested = self.stop_requested or "failed"

    def _fail(self, kind: str, message: str, **details: Any) -> None:
        if self.failure is None:
            step = max(self.assembler.last_emitted, 0)
            details.setdefault("step", step)
            details.setdefault("time_ps", step * self.spec.dt_fs * 1e-3)
            self.failure = {"kind": kind, "message": message, **details}
            self.stop_requested = self.stop_requested or "failed"

    def _flush(self, force: bool = False) -> None:
        due = (len(self.buffer) >= self.spec.flush_every_frames
               or time.monotonic() - self.last_flush >= self.spec.flush_every_s)
        if self.write_broken:
            return
        if self.buffer and (force or due):
            try:
                h5md.append(self.out, self.buffer, reserve_bytes=storage.RESERVE_BYTES)
            except OSError as exc:
                self._write_failed(exc)
                return
            self.frames_on_disk += len(self.buffer)
            self.buffer = []
            self._prune_checkpoints()
        if force or due:
            self.last_flush = time.monotonic()

    def _write_failed(self, exc: BaseException | str) -> None:
        """A write of the trajectory failed: the file keeps its complete frames; stop."""
        self.write_broken = True
        self.buffer = []
        kind = "disk_full" if storage.is_full(self.out.parent, exc) else "write_error"
        what = "the disk is full" if kind == "disk_full" else f"write error ({exc})"
        self.failure = None  # a storage fault outranks what the run saw while it happened
        try:
            last = h5md.last_step(self.out) or 0
        except (OSError, KeyError):
            last = max(self.assembler.last_emitted, 0)
        self._fail(kind, f"cannot write {self.out}: {what}; it keeps its "
                   f"{self.frames_on_disk} complete frames; "
                   + ("free space and " if kind == "disk_full" else "fix the cause and ")
                   + "run the same command again to resume",
                   step=last, time_ps=last * self.spec.dt_fs * 1e-3)

    # ------------------------------------------------------------- lifecycle
    def _report(self, force: bool = False) -> None:
        if not self.progress:
            return
        now = time.monotonic()
        if force or now - getattr(self, "_last_report", 0.0) >= PROGRESS_INTERVAL_S:
            self._last_report = now
            step = max(self.assembler.last_emitted, 0)
            print(json.dumps({"progress": {"step": step, "n_steps": self.spec.n_steps}}),
                  flush=True)

    def _watch(self, seg: Segment) -> None:
        """Pump frames until the engine ends, a process dies, the run stalls or a stop is
        asked."""
        while True:
            self._pump(seg, POLL_INTERVAL_S)
            self._flush()
            self._report()
            if self.lock is not None and self.lock.lost.is_set():
                self.stop_requested = "lock_lost"
            if self.stop_requested or self._processes_ended(seg) or self._stalled():
                return

    def _processes_ended(self, seg: Segment) -> bool:
        """Whether i-PI or the force client ended (recording why, when it is a failure)."""
        if seg.ipi.poll() is not None:
            # i-PI also quits when a watchdog event made the driver disconnect; under
            # load it can be seen exiting before the driver has written its event.
            if self.assembler.last_emitted < self.spec.n_steps:
                self._read_event(seg, wait_s=10)
            return True
        if seg.driver.poll() is not None:
            # i-PI quits on the disconnect by itself; give it a moment to say so.
            try:
                seg.ipi.wait(timeout=5)
            except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired
                pass
            if not self._read_event(seg, wait_s=0) and (
                    self.assembler.last_emitted < self.spec.n_steps
                    or seg.ipi.poll() is None):
                code = procs.describe_exit(seg.driver.returncode)
                self._fail("driver_died", f"force client died ({code}): "
                           + procs.tail(self.work / "driver.log", 3))
            return True
        return False

    def _stalled(self) -> bool:
        """Whether no frame came for longer than the stall limit (then it is the failure)."""
        stalled = time.monotonic() - self.last_frame_time
        limit = self._stall_limit()
        if stalled <= limit:
            return False
        flag = "--stall-timeout" if self.seen_frame else "--startup-timeout"
        self._fail("stalled", f"no new frame for {stalled:.0f} s (limit {limit:.0f} s; "
                   f"raise it with {flag})")
        return True

    def _read_event(self, seg: Segment, wait_s: float) -> bool:
        """Take the watchdog's event as the failure, if the driver wrote one."""
        if wait_s > 0:
            try:
                seg.driver.wait(timeout=wait_s)
            except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired
                pass
        event_file = self.work / EVENT_FILE
        if not event_file.is_file():
            return False
        if self.failure is None:
            self.failure = json.loads(event_file.read_text())
            self.failure["source"] = "watchdog"
        return True

    def _stall_limit(self) -> float:
        """Seconds without a frame that count as a hang.

        ``--stall-timeout``, but never less than 5 times the slowest frame interval seen so
        far (slow models are not hangs), and at least ``--startup-timeout`` before the first
        frame (loading a large model can take a while). Until two reads have brought frames, the
        interval is bounded by the time to the first frames over their number.
        """
        if not self.seen_frame:
            return max(self.spec.stall_timeout_s, self.spec.startup_timeout_s)
        interval = self.frame_interval_max
        if interval is None:
            interval = self.first_interval or 0.0
        return max(self.spec.stall_timeout_s, 5 * interval)

    def _teardown(self, seg: Segment) -> None:
        """Stop and reap both children, drain the pipes, remove pipes and socket."""
        try:
            self._stop_children(seg)
        finally:
            for stream in seg.streams.values():
                stream.close()
            shutil.rmtree(seg.socket_dir, ignore_errors=True)

    def _stop_children(self, seg: Segment) -> None:
        if self.failure is not None and self.failure["kind"] == "stalled":
            procs.stop(seg.driver, signal.SIGKILL, 5)  # a hung client ignores polite signals
        if seg.ipi is not None and seg.ipi.poll() is None:
            # SIGTERM makes i-PI soft-exit: it writes RESTART and closes its outputs.
            seg.ipi.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 20
            while seg.ipi.poll() is None and time.monotonic() < deadline:
                if seg.streams:
                    self._pump(seg, 0.1)
                else:
                    time.sleep(0.1)
        procs.stop(seg.ipi, signal.SIGKILL, 5)
        procs.stop(seg.driver, signal.SIGTERM, 5)
        if seg.streams:
            self._pump(seg, 0.0)

    def run(self) -> Outcome:
        """Run (or resume) the simulation to its end; never raises for a model failure."""
        started = time.monotonic()
        try:
            seg = self._start()
        except OSError as exc:  # creating or resuming the trajectory: the storage failed
            self._write_failed(exc)
            self._record_safely("failed", {"start": provenance.now(), "outcome": "failed"})
            return Outcome(status="failed", frames=self.frames_on_disk,
                           last_step=max(self.assembler.last_emitted, 0), failure=self.failure,
                           wall_s=time.monotonic() - started)
        seg_info = {"start": provenance.now(), "from_step": max(self.assembler.last_emitted, 0)}
        for step in (self._watch, self._teardown):
            try:
                step(seg)
            except KeyboardInterrupt:
                self.stop_requested = self.stop_requested or "interrupted"
            except Exception as exc:  # noqa: BLE001 - a harness bug must still end the run cleanly
                self._fail("harness_error", f"{type(exc).__name__}: {exc}")
        if self.stop_requested == "lock_lost":  # another process owns the file now
            return Outcome(status="skipped", frames=self.frames_on_disk,
                           last_step=max(self.assembler.last_emitted, 0),
                           note="the run's lock was taken over by another process; stopped "
                           "without writing more", wall_s=time.monotonic() - started)
        self._flush(force=True)
        last = self.assembler.last_emitted
        if self.failure is None and self.stop_requested in (None, "failed"):
            if last < self.spec.n_steps:
                self._fail("server_exited",
                           f"{self.ENGINE_NAME} stopped at step {last} of {self.spec.n_steps} "
                           f"({procs.describe_exit(seg.ipi.returncode)}): "
                           + procs.tail(self.work / self.LOG_FILES[0], 3))
        self._blame_storage()
        status = self._status()
        if status == "failed" and not self._resumable() and (self.work / RING_FILE).is_file():
            self._store_pre_failure()
        seg_info.update(end=provenance.now(), to_step=max(last, 0), outcome=status)
        self._record_safely(status, seg_info)
        if status == "completed":
            self._keep_final_checkpoint(last)
            shutil.rmtree(self.work, ignore_errors=True)
        elif status == "failed" and not self._resumable():
            self._keep_logs()
            shutil.rmtree(self.work, ignore_errors=True)  # a failure is final: no resume
        return Outcome(status=status, frames=self.frames_on_disk, last_step=max(last, 0),
                       failure=self.failure, wall_s=time.monotonic() - started)

    def _status(self) -> str:
        if self.failure is not None:
            return "failed"
        return "interrupted" if self.stop_requested == "interrupted" else "completed"

    def _resumable(self) -> bool:
        return self.failure is not None and self.failure.get("kind") in RESUMABLE_FAILURES

    def _blame_storage(self) -> None:
        """A process that died of a full disk (i-PI writing a checkpoint) is a ``disk_full``."""
        if self.failure is None or self.failure.get("kind") not in (
                "server_exited", "driver_died", "harness_error"):
            return
        logs = " ".join(procs.tail(self.work / name, 30) for name in self.LOG_FILES)
        if storage.is_full(self.out.parent, logs + " " + self.failure.get("message", "")):
            self._write_failed(self.failure.get("message", "a write failed"))

    def _record_safely(self, status: str, seg_info: dict[str, Any]) -> None:
        """Record the status; on a full disk say so in one line (the file keeps its frames)."""
        try:
            self._record(status, seg_info)
        except (OSError, KeyError) as exc:
            print(f"{self.out}: could not record the status {status!r} ({exc}); its frames "
                  "are intact", file=sys.stderr, flush=True)

    def _record(self, status: str, seg_info: dict[str, Any]) -> None:
        meta = h5md.read_meta(self.out)
        segments = meta["provenance"].get("segments", []) + [seg_info]
        update: dict[str, Any] = {"segments": segments}
        if status in ("completed", "failed"):
            update["end_time"] = provenance.now()
        h5md.set_status(self.out, status, self.failure, update)

    def _store_pre_failure(self) -> None:
        """Keep the last steps before the event: in the H5MD file and as extxyz."""
        ring = dict(np.load(self.work / RING_FILE))
        h5md.write_pre_failure(self.out, ring)
        from harness.stability.export import write_extxyz

        write_extxyz(self.out.with_suffix(".failure.extxyz"), self.out, ring, self.failure)

    def _keep_logs(self) -> None:
        """Copy the ends of the run's logs beside its file (the work folder goes)."""
        log = self.out.with_suffix(".log")
        try:
            with open(log, "w") as handle:
                for name in self.LOG_FILES:
                    path = self.work / name
                    if path.is_file():
                        handle.write(f"===== {name}\n"
                                     f"{path.read_text(errors='replace')[-20000:]}\n")
        except OSError as exc:
            print(f"{log}: could not keep the logs ({exc})", file=sys.stderr, flush=True)
