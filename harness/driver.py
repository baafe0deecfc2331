"""The force client: serves any registered model to i-PI over a unix socket.

One code path for every ASE-calculator family: the driver builds the calculator from the
registry, then answers i-PI's socket protocol (:mod:`harness.ipi_wire`). Unlike a plain
client it never spins: a closed socket or a dead server ends it at once. The batched client
(:mod:`harness.batch_driver`) reuses :class:`ModelServer` for each run of its group.

Run as ``python -m harness.driver --spec SPEC.json --address /tmp/ipi_<id>/sock``. It imports
only the standard library, numpy, ASE and the model's packages, so it also runs under a model's
own interpreter where the harness is not installed (``--model-python``,
:mod:`harness.model_python`).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import sys
import time
from pathlib import Path

import numpy as np

from harness import ipi_wire
from harness.ipi_wire import SocketClosed, connect  # noqa: F401 - re-exported for callers
from harness.model_python import parse_client_args

#: The file in a run's work folder where its force client keeps the model's cumulative time.
MODEL_CLOCK_FILE = "model_clock"
_CLOCK_FORMAT = "<dd"  # force calls, seconds in the model


class ModelClock:
    """Cumulative time one run spent in the model's calls, in a 16-byte file.

    The supervisor reads it when frames arrive and stores it as the H5MD observable
    ``model_time``, so the report can split each MD step into the model's call and the rest
    (i-PI, the socket, the watchdog, writing). One ``pwrite`` per force call (microseconds).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self.calls = 0
        self.seconds = 0.0
        self._write()

    def add(self, seconds: float) -> None:
        """Count one force call that spent ``seconds`` in the model."""
        self.calls += 1
        self.seconds += seconds
        self._write()

    def _write(self) -> None:
        try:
            os.pwrite(self.fd, struct.pack(_CLOCK_FORMAT, self.calls, self.seconds), 0)
        except OSError:  # a full disk must not stop the forces; the series shows NaN then
            pass

    def close(self) -> None:
        """Close the file (it stays for the supervisor's last read)."""
        os.close(self.fd)


def read_model_clock(path: Path) -> float | None:
    """Seconds in the model so far according to a :class:`ModelClock` file (None if unknown)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(struct.calcsize(_CLOCK_FORMAT))
    except OSError:
        return None
    if len(data) < struct.calcsize(_CLOCK_FORMAT):
        return None
    calls, seconds = struct.unpack(_CLOCK_FORMAT, data)
    return float(seconds) if np.isfinite(seconds) and seconds >= 0 and calls >= 0 else None


class ModelServer:
    """Evaluates an ASE calculator on the structures i-PI sends, in i-PI's atomic units.

    The work of :meth:`compute` is split in three so that a batched client can place every
    run's structure (:meth:`set_structure`), evaluate them together, and hand each run its
    result back (:meth:`finish`, which also feeds the run's watchdog). With a ``clock``
    (:class:`ModelClock`) the time in the model is recorded for the run.
    """

    def __init__(self, calculator, symbols: list[str], periodic: bool, monitor=None,
                 clock: ModelClock | None = None, vacuum_box: dict[str, float] | None = None):
        from ase import Atoms

        # A periodic-only model on a gas-phase run sees the molecule in a fixed cubic vacuum
        # box (harness.models.vacuum_box). Only the model sees it: i-PI integrates without
        # periodic boundaries (its cell is the 200 A placeholder of a gas-phase run) and the
        # trajectory holds i-PI's unwrapped positions and the forces computed in the box.
        self.box_edge = float(vacuum_box["edge_angstrom"]) if vacuum_box else None
        self.box_reach = (self.box_edge - float(vacuum_box["cutoff_angstrom"])
                          if vacuum_box else None)
        self.atoms = Atoms(symbols=symbols, pbc=periodic or self.box_edge is not None)
        if self.box_edge is not None:
            self.atoms.cell[:] = np.eye(3) * self.box_edge
        self.atoms.calc = calculator
        self.calculator = calculator
        self.periodic = periodic
        self.changes = ["positions", "cell"] if periodic else ["positions"]
        # the first call must say everything changed: calculators such as ASE's EMT set
        # themselves up only when told the atomic numbers are new
        self.first_changes = ["positions", "numbers", "cell", "pbc"]
        self.monitor = monitor
        self.clock = clock
        # i-PI's unit factors, copied into ipi_wire so that the client needs no i-PI; forces
        # as the exact gradient of the energy in i-PI's units (harness.units.ipi_atomic_units)
        self.bohr_to_ang = ipi_wire.ANGSTROM_PER_BOHR
        self.ev_to_ha = ipi_wire.HARTREE_PER_EV
        self.evang_to_au = ipi_wire.HARTREE_BOHR_PER_EV_ANGSTROM
        self.calls = 0

    def set_structure(self, cell_au: np.ndarray, pos_au: np.ndarray) -> None:
        """Place i-PI's structure (Bohr; the cell as column vectors) in ``self.atoms`` (A)."""
        self.atoms.positions[:] = pos_au.reshape(-1, 3) * self.bohr_to_ang
        if self.periodic:
            self.atoms.cell[:] = cell_au.T * self.bohr_to_ang
        elif self.box_reach is not None:
            extent = float(np.ptp(self.atoms.positions, axis=0).max())
            if extent > self.box_reach:
                raise RuntimeError(
                    f"the molecule spans {extent:.1f} A, more than its vacuum box of "
                    f"{self.box_edge:g} A less the model's cutoff allows ({self.box_reach:g} A): "
                    "periodic images would interact; the run stops here")

    def evaluate(self) -> tuple[float, np.ndarray]:
        """Energy (eV) and forces (eV/A) of the calculator at ``self.atoms``."""
        # Call the calculator directly: ASE's get_potential_energy would first compare the
        # atoms with the cached ones (costly for cheap models); the positions always changed.
        changes = self.changes if self.calls else self.first_changes
        self.calculator.calculate(self.atoms, ["energy", "forces"], changes)
        results = self.calculator.results
        return float(results["energy"]), np.asarray(results["forces"], dtype=np.float64)

    def record_model_time(self, seconds: float) -> None:
        """Add the time of this run's share of a model call to its clock (if it has one)."""
        if self.clock is not None:
            self.clock.add(seconds)

    def finish(self, energy_ev: float, forces_ev: np.ndarray) -> tuple[float, np.ndarray]:
        """Count the call, show it to the watchdog; energy (Hartree) and forces (Hartree/Bohr)."""
        self.calls += 1
        if self.monitor is not None:
            self.monitor.observe(self.atoms.positions, forces_ev, energy_ev)
        return energy_ev * self.ev_to_ha, forces_ev * self.evang_to_au

    def compute(self, cell_au: np.ndarray, pos_au: np.ndarray) -> tuple[float, np.ndarray]:
        """Energy (Hartree) and forces (Hartree/Bohr) for one structure in atomic units.

        The virial is not computed (NVT only) and is sent as zeros.
        """
        self.set_structure(cell_au, pos_au)
        started = time.perf_counter()
        result = self.evaluate()
        self.record_model_time(time.perf_counter() - started)
        return self.finish(*result)


def serve(sock: socket.socket, server: ModelServer) -> str:
    """Answer i-PI until it says EXIT (returns 'exit') or closes the socket (returns 'closed')."""
    initialised = have_data = False
    energy = 0.0
    forces = np.zeros(0)
    try:
        while True:
            head = ipi_wire.recv_header(sock)
            if head == ipi_wire.STATUS:
                sock.sendall(ipi_wire.status_answer(initialised, have_data))
            elif head == ipi_wire.INIT:
                ipi_wire.recv_init(sock)
                initialised = True
            elif head == ipi_wire.POSDATA:
                energy, forces = server.compute(*ipi_wire.recv_posdata(sock))
                have_data = True
            elif head == ipi_wire.GETFORCE:
                ipi_wire.send_forces(sock, energy, forces)
                have_data = False
                if server.monitor is not None and server.monitor.done:
                    return "event"
            elif head == ipi_wire.EXIT:
                return "exit"
            else:
                raise RuntimeError(f"unexpected message from i-PI: {head!r}")
    except (SocketClosed, ConnectionResetError, BrokenPipeError):
        return "closed"


def step_monitor(spec, start, first_step: int):
    """The per-step watchdog of a run (criteria and thresholds from its spec)."""
    from harness.stability.monitor import StepMonitor
    from harness.stability.watchdog import WatchdogSettings, build_frame_criteria

    settings = WatchdogSettings.from_dict(spec.watchdog)
    cell = np.asarray(start.cell) if spec.periodic else None
    checks = build_frame_criteria(settings, start.numbers, start.positions, cell)
    return StepMonitor(checks, first_step, spec.dt_fs * 1e-3, max(spec.stride, 10) + 1,
                       settings.after_event_steps)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the driver process."""
    parser = argparse.ArgumentParser(prog="python -m harness.driver")
    parser.add_argument("--spec", required=True, help="run spec JSON file")
    parser.add_argument("--address", required=True, help="unix socket path")
    parser.add_argument("--connect-timeout", type=float, default=120.0)
    parser.add_argument("--first-step", type=int, default=0,
                        help="i-PI step of the first force call (restart step when resuming)")
    parser.add_argument("--no-watchdog", action="store_true")
    args = parse_client_args(parser, argv)
    if args is None:
        return 2

    from ase.io import read

    from harness import models
    from harness.plan import RunSpec

    spec = RunSpec.from_json(Path(args.spec).read_text())
    family = models.get_family(spec.model)
    model_file = Path(spec.model_file) if spec.model_file else None
    calculator = family.ase_calculator(model_file, dict(spec.model_options))
    start = read(spec.start_file)
    monitor = None if args.no_watchdog else step_monitor(spec, start, args.first_step)
    clock = ModelClock(Path(args.spec).parent / MODEL_CLOCK_FILE)  # the run's work folder
    server = ModelServer(calculator, start.get_chemical_symbols(), spec.periodic, monitor, clock,
                         spec.vacuum_box)
    # Formal charges and magnetic moments stored in the start file (charged peptides, a new
    # challenge's --charge/--multiplicity) reach calculators that read
    # Atoms.get_initial_charges()/get_initial_magnetic_moments(), e.g. tblite's total charge
    # and unpaired electrons.
    server.atoms.set_initial_charges(start.get_initial_charges())
    server.atoms.set_initial_magnetic_moments(start.get_initial_magnetic_moments())
    sock = connect(args.address, args.connect_timeout)
    outcome = serve(sock, server)
    if outcome == "event":  # before disconnecting: i-PI exits as soon as the socket closes
        monitor.save(Path.cwd())
    sock.close()
    clock.close()
    print(json.dumps({"driver": outcome, "force_calls": server.calls,
                      "model_s": round(clock.seconds, 6)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
