"""Runs whose forces come from LAMMPS: ``--engine ipi`` with a LAMMPS client, ``--engine lammps``.

Both derive from :class:`harness.supervisor.Supervisor` and write the same H5MD contract;
:mod:`harness.runner` chooses between them (:func:`harness.runner.supervisor_class`).

* :class:`LammpsClientSupervisor` (``--engine ipi``, pair-style models): i-PI integrates as
  for every model; the force client is :mod:`harness.engines.lammps_client`, which serves
  LAMMPS ``fix ipi`` to i-PI (per-step watchdog, unit fix-up, EXIT handled as success).
* :class:`NativeSupervisor` (``--engine lammps``): LAMMPS integrates
  (``lammps_inputs/nvt.in``, optionally under ``mpirun -n N`` / ``srun``); its dump and
  ``fix print`` lines are read from named pipes and written to the H5MD file, with the frame,
  stamp, check, flush and stall bookkeeping of the i-PI supervisor (this class overrides only
  reading the streams, which frames to keep and how LAMMPS ends). The watchdog checks every
  frame (not every step). Native runs are not resumable: an unfinished file is set aside and
  the run starts over.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np

from harness import REPO_DIR, h5md, models, procs, provenance
from harness.engines import get_engine, lammps_data, lammps_env
from harness.engines.ipi_run import IpiSupervisor
from harness.engines.lammps_streams import DumpStream, PrintStream
from harness.errors import UserError
from harness.plan import RunSpec
from harness.stability.criteria import Frame
from harness.stability.watchdog import WatchdogSettings, build_frame_criteria, first_event
from harness.structures import read_structure
from harness.supervisor import PROPERTY_COLUMNS, Segment, Supervisor

NVT_INPUT = REPO_DIR / "lammps_inputs" / "nvt.in"
CLIENT_INPUT = REPO_DIR / "lammps_inputs" / "ipi_client.in"
#: LAMMPS errors that mean the model drove the system apart: a result, not an infrastructure
#: failure.
MODEL_ERRORS = ("Lost atoms", "Out of range atoms", "Non-numeric atom coords",
                "Bond atoms missing", "Neighbor list overflow")
LAMMPS_LOG = "log.lammps"


def engine_of(spec: RunSpec) -> str:
    """The spec's engine (``ipi`` for specs written before engines existed)."""
    return getattr(spec, "engine", "ipi") or "ipi"


def uses_lammps(spec: RunSpec) -> bool:
    """Whether LAMMPS computes the forces of this run (native, or as i-PI's client)."""
    if engine_of(spec) == "lammps":
        return True
    family = models.get_family(spec.model)
    return family.ase_calculator is None and family.lammps_pair is not None


def run_elements(atoms) -> list[str]:
    """The atom-type order of a run: its elements, sorted (the same in both engines)."""
    return sorted(set(atoms.get_chemical_symbols()))


def lammps_command(spec: RunSpec) -> lammps_env.LammpsCommand:
    """The resolved LAMMPS executable (and MPI launcher) of a run."""
    return lammps_env.command(getattr(spec, "lammps_exe", None),
                              getattr(spec, "mpi_launcher", "auto") or "auto")


def check_spec(spec: RunSpec) -> None:
    """Check, before any run starts, that the model can run on the chosen engine and LAMMPS.

    Raises
    ------
    UserError
        Unknown engine, a family without a LAMMPS pair style for ``--engine lammps``, or a
        LAMMPS build that lacks the pair style's package.
    """
    get_engine(engine_of(spec))  # a known engine
    family = models.get_family(spec.model)
    if not uses_lammps(spec):
        return
    if family.lammps_pair is None:
        raise UserError(f"model {spec.model!r} has no LAMMPS pair style, so it cannot run with "
                        "--engine lammps: use --engine ipi")
    if family.lammps_requirement is not None:
        lammps_env.check_requirement(lammps_command(spec), family.lammps_requirement,
                                     spec.model)
    if getattr(spec, "mpi_ranks", 1) < 1:
        raise UserError(f"--mpi-ranks {spec.mpi_ranks}: give at least 1")


def lammps_seed(seed: int) -> int:
    """The run's seed mapped into LAMMPS's Marsaglia generator range (1..900000000)."""
    return seed % 900_000_000 + 1


def write_inputs(spec: RunSpec, work: Path, atoms) -> tuple[Path, Path]:
    """The data file and the pair-style include of a run, in its work folder."""
    family = models.get_family(spec.model)
    elements = run_elements(atoms)
    model_file = Path(spec.model_file) if spec.model_file else None
    data, pair = work / "start.data", work / "pair.in"
    lammps_data.write_data(data, atoms, elements, spec.periodic)
    lammps_data.write_pair_file(pair, family.lammps_pair(model_file, elements))
    return data, pair


def lammps_error(log: Path) -> str | None:
    """The first ``ERROR`` line of a LAMMPS log, if any."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    match = re.search(r"^ERROR.*$", text, re.M)
    return match.group(0).strip() if match else None


class FrameWatch:
    """The watchdog's position/force criteria applied to whole frames (every stride)."""

    def __init__(self, spec: RunSpec, atoms):
        settings = WatchdogSettings.from_dict(spec.watchdog)
        cell = np.asarray(atoms.cell) if spec.periodic else None
        self.checks = build_frame_criteria(settings, atoms.numbers, atoms.positions, cell)

    def check(self, frame: dict[str, Any]) -> dict[str, Any] | None:
        """The first event on this frame, as a failure record, or None."""
        event = first_event(self.checks, Frame(int(frame["step"]), float(frame["time"]),
                                               frame["positions"], frame["forces"],
                                               float(frame["potential"])))
        return None if event is None else {**event.to_dict(), "source": "watchdog (frames)"}


class LammpsClientSupervisor(IpiSupervisor):
    """i-PI integrates; LAMMPS ``fix ipi`` (through :mod:`lammps_client`) computes forces."""

    def _client_module(self) -> str:
        return "harness.engines.lammps_client"


class NativeSupervisor(Supervisor):
    """LAMMPS integrates; see the module docstring."""

    LOG_FILES = (LAMMPS_LOG, "lammps.out")
    ENGINE_NAME = "LAMMPS"

    def __init__(self, spec: RunSpec, progress: bool = False):
        super().__init__(spec, progress)
        self.atoms = read_structure(spec.start_file)
        self.frame_watch = FrameWatch(spec, self.atoms)
        self.command = lammps_command(spec)

    def _prepare(self, address: str) -> str:
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "spec.json").write_text(self.spec.to_json())
        if self.out.exists():
            self._set_aside("not-resumable")
        h5md.create(self.out, self.atoms.numbers, self.atoms.get_masses(), self.spec.periodic,
                    self.spec.to_json(), provenance.collect(self.spec), self.atoms.positions,
                    np.asarray(self.atoms.cell))
        return ""

    def _start(self) -> Segment:
        self.work.mkdir(parents=True, exist_ok=True)
        seg = Segment(work=self.work, socket_dir=self.work / "no-socket", address="")
        try:
            self._prepare("")
            data, pair = write_inputs(self.spec, self.work, self.atoms)
            seg.streams = {
                "frames": DumpStream(self.work / "frames.fifo"),
                "props": PrintStream(self.work / "thermo.fifo", PROPERTY_COLUMNS),
            }
            (self.work / LAMMPS_LOG).unlink(missing_ok=True)
            seg.ipi = procs.start(self._argv(data, pair), self.work / "lammps.out",
                                  cwd=self.work, env=self._env(), death_signal=signal.SIGTERM,
                                  new_session=True)
        except BaseException:
            self._teardown(seg)
            raise
        return seg

    def _env(self) -> dict[str, str]:
        return dict(self.command.env, OMP_NUM_THREADS=str(self.spec.omp_threads))

    def _argv(self, data: Path, pair: Path) -> list[str]:
        spec = self.spec
        tau = 0.0 if spec.thermostat == "nve" else spec.thermostat_tau_fs
        if spec.thermostat not in ("langevin", "nve"):
            raise UserError(f"thermostat {spec.thermostat!r} is not supported by --engine "
                            "lammps; use langevin")
        variables = {"data": data, "pair_file": pair, "temperature": repr(spec.temperature_K),
                     "seed": lammps_seed(spec.seed), "dt_fs": repr(spec.dt_fs), "tau_fs": repr(tau),
                     "n_steps": spec.n_steps, "stride": spec.stride,
                     "frames": self.work / "frames.fifo", "thermo_file": self.work / "thermo.fifo"}
        args = ["-in", str(NVT_INPUT), "-log", LAMMPS_LOG, "-screen", "none", "-nocite"]
        for key, value in variables.items():
            args += ["-var", key, str(value)]
        return self.command.argv(getattr(spec, "mpi_ranks", 1), *args)

    def _feed(self, seg: Segment) -> None:
        """Give the assembler LAMMPS's dump frames (positions, velocities, forces, box) and
        ``fix print`` rows."""
        for step, edges, values in seg.streams["frames"].frames():
            for key, array in values.items():
                self.assembler.add(step, key, array)
            self.assembler.add(step, "box", edges)
        for row in seg.streams["props"].rows():
            self.assembler.add(int(round(row["step"])), "props", row)

    def _keep(self, frame: dict[str, Any]) -> bool:
        """LAMMPS runs on while being stopped: frames past the event window are dropped."""
        return self.failure is None or frame["step"] <= self._keep_until()

    def _check_frame(self, frame: dict[str, Any]) -> None:
        """The i-PI supervisor's checks, then the watchdog on the whole frame (LAMMPS has no
        per-step client to watch)."""
        super()._check_frame(frame)
        if self.failure is None:
            event = self.frame_watch.check(frame)
            if event is not None:
                self.failure = event
                self.stop_requested = self.stop_requested or "failed"

    def _keep_until(self) -> int:
        """Last step kept after a failure event: the event plus the --after-event window."""
        assert self.failure is not None
        after = int(self.spec.watchdog.get("after_event_steps", 0) or 0)
        return int(self.failure.get("step", 0)) + after

    def _processes_ended(self, seg: Segment) -> bool:
        """Whether LAMMPS exited (then read its last frames and judge the end)."""
        if seg.ipi.poll() is None:
            return False
        self._pump(seg, 0.0)
        self._ended(seg)
        return True

    def _ended(self, seg: Segment) -> None:
        """LAMMPS exited: a finished run, a model that broke, or a LAMMPS failure."""
        error = lammps_error(self.work / LAMMPS_LOG)
        if seg.ipi.returncode == 0 and self.assembler.last_emitted >= self.spec.n_steps:
            return
        if error and any(text in error for text in MODEL_ERRORS):
            self._fail("lammps_model_error", error)
            return
        reason = error or procs.tail(self.work / "lammps.out", 3) \
            or procs.tail(self.work / LAMMPS_LOG, 3)
        self._fail("server_exited", f"LAMMPS stopped at step {max(self.assembler.last_emitted, 0)}"
                   f" of {self.spec.n_steps} ({procs.describe_exit(seg.ipi.returncode)}): "
                   f"{reason}")

    def _stop_children(self, seg: Segment) -> None:
        proc = seg.ipi
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline:
                if seg.streams:
                    self._pump(seg, 0.1)
                else:
                    time.sleep(0.1)
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        procs.stop(proc, signal.SIGKILL, 5)
        if seg.streams:
            self._pump(seg, 0.0)
