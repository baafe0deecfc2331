"""One MD run through i-PI, supervised (:class:`Supervisor`).

The supervisor starts the i-PI server and the force client (``harness.driver``) on a unix
socket in a private directory, reads i-PI's frame streams from named pipes, writes the H5MD
trajectory as it goes, and records how the run ended. It resumes a killed run from the newest
i-PI checkpoint that the trajectory already covers, so no frame is duplicated or lost.

The frame and stall bookkeeping (frames out of the assembler, wall-clock stamps, checks,
buffered writes, progress, the stall limit, the end-of-run record) is engine-neutral: the
native LAMMPS supervisor (:mod:`harness.engines.lammps_run`) overrides only how streams are
read (:meth:`Supervisor._feed`), which frames to keep, and how the engine's processes end.
Which supervisor serves a run is decided in :mod:`harness.runner`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import h5md, procs, provenance, runlock, sockets, storage, units
from harness.driver import MODEL_CLOCK_FILE, read_model_clock
from harness.engines import ipi_input
from harness.engines.ipi_stream import BinFrameStream, FrameAssembler, PropertiesStream
from harness.model_python import CLIENT_PROTOCOL, client_command, client_env
from harness.plan import RunSpec
from harness.stability.criteria import Frame
from harness.stability.monitor import EVENT_FILE, RING_FILE
from harness.stability.watchdog import WatchdogSettings, build_temperature_criterion
from harness.structures import read_structure

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


def _ipi_command() -> list[str]:
    return [sys.executable, "-m", "harness.engines.ipi_server"]


def checkpoints(work: Path) -> list[tuple[int, Path]]:
    """(step, file) of i-PI checkpoints in the work folder, newest step last."""
    found = []
    for path in list(work.glob(f"{ipi_input.CHECKPOINT_PREFIX}_*")) + [work / "RESTART"]:
        if path.is_file() and path.name[0] != "#":
            try:
                text = path.read_text()
            except (OSError, UnicodeDecodeError):
                continue
            if text.rstrip().endswith("</simulation>"):  # cut short (full disk): unusable
                found.append((ipi_input.checkpoint_step(text), path))
    return sorted(found)


class Supervisor:
    """Runs one RunSpec to an :class:`Outcome`; see the module docstring."""

    #: The logs of the run's processes in its work folder (kept beside a failed run's file).
    LOG_FILES: tuple[str, ...] = ("ipi.log", "driver.log")

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

    # ----------------------------------------------------------------- set-up
    def _prepare(self, address: str) -> str:
        """Create or resume the trajectory; return the i-PI input text for this segment."""
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "spec.json").write_text(self.spec.to_json())
        try:
            last = h5md.last_step(self.out) if self.out.exists() else None
        except (OSError, KeyError):
            last = self._set_aside("unreadable")
        if last is not None:
            self._extend_if_asked()
            usable = [(s, p) for s, p in checkpoints(self.work) if s <= last]
            if not usable:  # the work folder is gone (scratch wiped) during an extension
                usable = self._kept_checkpoint(last)
            if usable:
                step, path = usable[-1]
                self.frames_on_disk = h5md.truncate_after(self.out, step)
                kept = h5md.last_value(self.out, "model_time")
                self.model_time_offset = kept if kept is not None and math.isfinite(kept) else 0.0
                self.assembler.last_emitted = step
                # every resume point, recorded now: a segment killed later records nothing,
                # and the speed analysis must not count the pause before it as MD time
                resumed = h5md.read_meta(self.out)["provenance"].get("resumed_at_steps", [])
                h5md.set_status(self.out, "running", None,
                                {"resumed_at_steps": [*resumed, int(step)]})
                return ipi_input.make_restart_input(path.read_text(), address, self.spec)
            if last > 0:
                self._set_aside("no-checkpoint")
        atoms = read_structure(self.spec.start_file)
        h5md.create(self.out, atoms.numbers, atoms.get_masses(), self.spec.periodic,
                    self.spec.to_json(), provenance.collect(self.spec), atoms.positions,
                    np.asarray(atoms.cell))
        for stale in self.work.glob(f"{ipi_input.CHECKPOINT_PREFIX}_*"):
            stale.unlink()
        (self.work / "RESTART").unlink(missing_ok=True)
        return ipi_input.make_input(self.spec, address, Path(self.spec.start_file))

    def _extend_if_asked(self) -> None:
        """A completed run asked for more steps: its kept final checkpoint goes back into the
        work folder, and the resume below continues from it (:func:`extension`)."""
        meta = h5md.read_meta(self.out)
        how = extension(self.spec, meta)
        if how == FROM_CHECKPOINT:
            xml = h5md.read_final_checkpoint(self.out)
        elif how == FROM_LAST_FRAME:
            xml = self._last_frame_input(meta)
        else:
            return
        if xml is None:
            return
        step = ipi_input.checkpoint_step(xml)
        (self.work / f"{ipi_input.CHECKPOINT_PREFIX}_final_{step}").write_text(xml)
        h5md.extend_run_spec(self.out, self.spec.n_steps, how)
        print(f"{self.spec.name}: extending the completed run from step {step} to "
              f"{self.spec.n_steps} ({how})", file=sys.stderr, flush=True)

    def _kept_checkpoint(self, last: int) -> list[tuple[int, Path]]:
        """The final checkpoint the file kept from an earlier completion, back in the work
        folder, when the trajectory covers it (then the run goes on from there, exactly)."""
        try:
            xml = h5md.read_final_checkpoint(self.out)
        except (OSError, KeyError):
            return []
        if xml is None or ipi_input.checkpoint_step(xml) > last:
            return []
        step = ipi_input.checkpoint_step(xml)
        path = self.work / f"{ipi_input.CHECKPOINT_PREFIX}_kept_{step}"
        path.write_text(xml)
        return [(step, path)]

    def _last_frame_input(self, meta: dict[str, Any]) -> str:
        """i-PI input from the file's last frame (positions, velocities, conserved energy)."""
        from ase import Atoms
        from ase.io import write

        last = meta["n_frames"] - 1
        frame = h5md.read_frames(self.out, last, last + 1)
        energies = h5md.read_observables(self.out, ("conserved_energy", "potential_energy",
                                                    "kinetic_energy"))
        atoms = Atoms(numbers=meta["species"], positions=frame["positions"][0])
        structure = self.work / "last-frame.extxyz"
        write(structure, atoms, format="extxyz")
        ethermo = float(energies["conserved_energy"][last] - energies["potential_energy"][last]
                        - energies["kinetic_energy"][last])
        if not math.isfinite(ethermo):
            ethermo = 0.0
        step = int(meta["steps"][last])
        seed = (int(self.spec.seed) * 1_000_003 + step) % (2**31 - 1)  # afresh, reproducible
        return ipi_input.make_last_frame_input(self.spec, structure,
                                               frame["velocities"][0].ravel().tolist(), step,
                                               ethermo, seed)

    def _set_aside(self, why: str) -> None:
        """Keep a trajectory that cannot be resumed under another name; never overwrite data."""
        target = self.out.with_name(f"{self.out.stem}.{why}.{int(time.time())}.h5")
        self.out.rename(target)
        print(f"{self.out}: cannot resume ({why}); kept as {target.name}, starting over",
              file=sys.stderr, flush=True)

    def _open_streams(self) -> dict[str, Any]:
        vel_factor = 0.01  # m/s -> Angstrom/ps
        return {
            "positions": BinFrameStream(self.work / ipi_input.STREAMS["positions"],
                                        "positions", "angstrom", "angstrom"),
            "velocities": BinFrameStream(self.work / ipi_input.STREAMS["velocities"],
                                         "velocities", "m/s", "angstrom", vel_factor),
            "forces": BinFrameStream(self.work / ipi_input.STREAMS["forces"],
                                     "forces", "ev/ang", "angstrom",
                                     units.ipi_force_output_factor()),
            "props": PropertiesStream(self.work / ipi_input.PROPERTIES_FILE, PROPERTY_COLUMNS),
        }

    def _start(self) -> Segment:
        self.work.mkdir(parents=True, exist_ok=True)
        record = self.work / "socket_dir"
        if record.is_file():  # left by a supervisor that was killed (kill -9 cannot clean up)
            sockets.remove_stale(Path(record.read_text().strip()))
        socket_dir, address = sockets.make_private_folder()
        record.write_text(str(socket_dir))
        seg = Segment(work=self.work, socket_dir=socket_dir, address=address)
        try:
            (self.work / "input.xml").write_text(self._prepare(seg.address))
            seg.streams = self._open_streams()
            env = dict(os.environ, OMP_NUM_THREADS=str(self.spec.omp_threads),
                       PYTHONUNBUFFERED="1")
            seg.ipi = procs.start(_ipi_command() + ["input.xml"], self.work / "ipi.log",
                                  cwd=self.work, env=env)
            for stale in (EVENT_FILE, RING_FILE, MODEL_CLOCK_FILE):
                (self.work / stale).unlink(missing_ok=True)
            self._start_client(seg, env)
        except BaseException:
            self._teardown(seg)
            raise
        return seg

    def _start_client(self, seg: Segment, env: dict[str, str]) -> None:
        """Start the run's force client on the segment's socket (``seg.driver``).

        A run in a ``--batch`` group overrides this to join the group's shared client.
        """
        cmd = [sys.executable, "-m", self._client_module()]
        if self.spec.model_python:  # the model's own interpreter (--model-python)
            cmd = client_command(self.spec.model_python, self._client_module())
            env = client_env(env, self.work)
        seg.driver = procs.start(
            cmd + ["--spec", str(self.work / "spec.json"),
                   "--address", sockets.full_path(seg.address),
                   "--first-step", str(max(self.assembler.last_emitted, 0)),
                   "--protocol", str(CLIENT_PROTOCOL)],
            self.work / "driver.log", cwd=self.work, env=env)

    def _client_module(self) -> str:
        """The force client's module (``harness.driver`` serves ASE calculators)."""
        return "harness.driver"

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

    def _feed(self, seg: Segment) -> None:
        """Give the assembler what the streams brought (i-PI: positions, velocities, forces
        with the cell, and the properties)."""
        for key in ("positions", "velocities", "forces"):
            for step, cell, values in seg.streams[key].frames():
                self.assembler.add(step, key, values)
                if key == "positions":
                    self.assembler.add(step, "box", cell)
        for row in seg.streams["props"].rows():
            self.assembler.add(int(round(row["step"])), "props", row)

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

    def _prune_checkpoints(self) -> None:
        """Keep the newest checkpoint the trajectory covers, and any newer ones."""
        last = self.assembler.last_emitted
        covered = [(s, p) for s, p in checkpoints(self.work) if s <= last and p.name != "RESTART"]
        for _, path in covered[:-1]:
            path.unlink(missing_ok=True)

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
                           f"i-PI stopped at step {last} of {self.spec.n_steps} "
                           f"({procs.describe_exit(seg.ipi.returncode)}): "
                           + procs.tail(self.work / "ipi.log", 3))
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

    def _keep_final_checkpoint(self, last: int) -> None:
        """Store the checkpoint of the last step in the file, so a longer ``--time`` can
        continue the run exactly; without one (or on a write error) the run stays complete."""
        final = [p for s, p in checkpoints(self.work) if s == last]
        if not final:
            return
        try:
            h5md.store_final_checkpoint(self.out, final[-1].read_text())
        except (OSError, KeyError) as exc:
            print(f"{self.out}: could not keep the final checkpoint ({exc}); the run is "
                  "complete but cannot be extended", file=sys.stderr, flush=True)

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


#: Run-spec fields that must be the same for a completed run to be extended by ``--time``.
SAME_PROTOCOL = ("challenge", "model_label", "temperature_K", "replica", "seed", "dt_fs",
                 "stride", "thermostat", "thermostat_tau_fs")


#: :func:`extension`'s answers for a run that can go on: exactly, from the checkpoint its file
#: kept; or from its last frame (no checkpoint kept). Also recorded as ``extended[].from``.
FROM_CHECKPOINT = "final checkpoint"
FROM_LAST_FRAME = "last frame"
EXTENDABLE = (FROM_CHECKPOINT, FROM_LAST_FRAME)


def extension(spec: RunSpec, meta: dict[str, Any]) -> str | None:
    """Whether a completed run's file can go on to ``spec.n_steps``.

    None when nothing is asked (not completed, or no more steps); :data:`FROM_CHECKPOINT`
    when the file keeps its final i-PI checkpoint and the protocol is the same (exact);
    :data:`FROM_LAST_FRAME` when it keeps none but has velocities (files written before checkpoints
    were kept): the run goes on from its last frame's positions, velocities and conserved
    energy, with fresh thermostat random numbers; otherwise the reason it cannot (said once by
    the launcher; the run then stays as it is).
    """
    old = meta["run_spec"]
    if meta["status"] != "completed" or spec.n_steps <= int(old.get("n_steps", 0)):
        return None
    changed = [k for k in SAME_PROTOCOL if k in old and old[k] != getattr(spec, k, old[k])]
    if changed:
        return f"this launch changes its {', '.join(changed)}"
    if meta.get("has_final_checkpoint"):
        return FROM_CHECKPOINT
    if spec.engine != "ipi" or old.get("engine", "ipi") != "ipi":
        return "a native LAMMPS run cannot be extended"
    if not meta.get("has_velocities"):
        return "its file keeps neither a final checkpoint nor velocities to go on from"
    return FROM_LAST_FRAME


def finished_status(spec: RunSpec) -> str | None:
    """'completed' or 'failed' when the run's file says it ended for good, else None."""
    try:
        meta = h5md.read_meta(Path(spec.out_file))
    except (OSError, KeyError):
        return None
    if meta["status"] == "failed" and (meta["failure"] or {}).get("kind") in RESUMABLE_FAILURES:
        return None
    if extension(spec, meta) in EXTENDABLE:
        return None
    return meta["status"] if meta["status"] in ("completed", "failed") else None
