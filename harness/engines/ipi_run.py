"""One MD run through i-PI, supervised (:class:`IpiSupervisor`).

The supervisor starts the i-PI server and the force client (``harness.driver``) on a unix
socket in a private directory, reads i-PI's frame streams from named pipes, writes the H5MD
trajectory as it goes, and records how the run ended. It resumes a killed run from the newest
i-PI checkpoint that the trajectory already covers, so no frame is duplicated or lost, and a
completed run keeps its last checkpoint so that a longer ``--time`` continues it exactly.

The frame and stall bookkeeping (frames out of the assembler, wall-clock stamps, checks,
buffered writes, progress, the stall limit, the end-of-run record) is engine-neutral and lives
in :class:`harness.supervisor.Supervisor`; this module adds what is i-PI's: its input, its
streams, its checkpoints, and the force client it serves.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from harness import h5md, procs, provenance, sockets, units
from harness.driver import MODEL_CLOCK_FILE
from harness.engines import ipi_input
from harness.engines.ipi_stream import BinFrameStream, PropertiesStream
from harness.model_python import CLIENT_PROTOCOL, client_command, client_env
from harness.plan import RunSpec
from harness.stability.monitor import EVENT_FILE, RING_FILE
from harness.structures import read_structure
from harness.supervisor import (  # noqa: F401 - re-exported for the engines' users
    POLL_INTERVAL_S,
    PROGRESS_INTERVAL_S,
    PROPERTY_COLUMNS,
    RESUMABLE_FAILURES,
    Outcome,
    Segment,
    Supervisor,
    work_dir,
)


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



class IpiSupervisor(Supervisor):
    """i-PI integrates; the harness's python force client (or, in subclasses, LAMMPS or a
    group's shared client) computes the forces; see the module docstring."""

    LOG_FILES: tuple[str, ...] = ("ipi.log", "driver.log")
    ENGINE_NAME = "i-PI"

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

    def _prune_checkpoints(self) -> None:
        """Keep the newest checkpoint the trajectory covers, and any newer ones."""
        last = self.assembler.last_emitted
        covered = [(s, p) for s, p in checkpoints(self.work) if s <= last and p.name != "RESTART"]
        for _, path in covered[:-1]:
            path.unlink(missing_ok=True)

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
