"""The force client: serves any registered model to i-PI over a unix socket.

One code path for every ASE-calculator family: the driver builds the calculator from the
registry, then answers i-PI's socket protocol (STATUS / INIT / POSDATA / GETFORCE / EXIT).
Unlike a plain client it never spins: a closed socket or a dead server ends it at once.

Run as ``python -m harness.driver --spec SPEC.json --address /tmp/ipi_<id>/sock``.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path

import numpy as np

HEADER_LEN = 12


def _msg(text: str) -> bytes:
    return text.upper().ljust(HEADER_LEN).encode()


class SocketClosed(Exception):
    """The server closed the connection."""


def _recv_exact(sock: socket.socket, nbytes: int) -> bytes:
    view = bytearray(nbytes)
    got = 0
    while got < nbytes:
        chunk = sock.recv_into(memoryview(view)[got:], nbytes - got)
        if chunk == 0:
            raise SocketClosed
        got += chunk
    return bytes(view)


class ModelServer:
    """Evaluates an ASE calculator on the structures i-PI sends, in i-PI's atomic units."""

    def __init__(self, calculator, symbols: list[str], periodic: bool, monitor=None):
        from ase import Atoms
        from ipi.utils.units import unit_to_internal, unit_to_user

        self.atoms = Atoms(symbols=symbols, pbc=periodic)
        self.atoms.calc = calculator
        self.calculator = calculator
        self.periodic = periodic
        self.changes = ["positions", "cell"] if periodic else ["positions"]
        # the first call must say everything changed: calculators such as ASE's EMT set
        # themselves up only when told the atomic numbers are new
        self.first_changes = ["positions", "numbers", "cell", "pbc"]
        self.monitor = monitor
        self.bohr_to_ang = unit_to_user("length", "angstrom", 1.0)
        self.ev_to_ha = unit_to_internal("energy", "electronvolt", 1.0)
        self.evang_to_au = unit_to_internal("force", "ev/ang", 1.0)
        self.calls = 0

    def compute(self, cell_au: np.ndarray, pos_au: np.ndarray) -> tuple[float, np.ndarray]:
        """Energy (Hartree) and forces (Hartree/Bohr) for one structure in atomic units.

        i-PI sends the cell as column vectors; ASE wants rows. The virial is not computed
        (NVT only) and is sent as zeros.
        """
        self.atoms.positions[:] = pos_au.reshape(-1, 3) * self.bohr_to_ang
        if self.periodic:
            self.atoms.cell[:] = cell_au.T * self.bohr_to_ang
        # Call the calculator directly: ASE's get_potential_energy would first compare the
        # atoms with the cached ones (costly for cheap models); the positions always changed.
        changes = self.changes if self.calls else self.first_changes
        self.calculator.calculate(self.atoms, ["energy", "forces"], changes)
        results = self.calculator.results
        energy = float(results["energy"])
        forces = np.asarray(results["forces"], dtype=np.float64)
        self.calls += 1
        if self.monitor is not None:
            self.monitor.observe(self.atoms.positions, forces, energy)
        return energy * self.ev_to_ha, forces * self.evang_to_au


def serve(sock: socket.socket, server: ModelServer) -> str:
    """Answer i-PI until it says EXIT (returns 'exit') or closes the socket (returns 'closed')."""
    initialised = have_data = False
    energy = 0.0
    forces = np.zeros(0)
    natoms = 0
    try:
        while True:
            header = _recv_exact(sock, HEADER_LEN)
            if header == _msg("STATUS"):
                state = "HAVEDATA" if have_data else ("READY" if initialised else "NEEDINIT")
                sock.sendall(_msg(state))
            elif header == _msg("INIT"):
                _recv_exact(sock, 4)
                length = int(np.frombuffer(_recv_exact(sock, 4), np.int32)[0])
                _recv_exact(sock, length)
                initialised = True
            elif header == _msg("POSDATA"):
                cell = np.frombuffer(_recv_exact(sock, 72), np.float64).reshape(3, 3)
                _recv_exact(sock, 72)  # inverse cell, unused
                natoms = int(np.frombuffer(_recv_exact(sock, 4), np.int32)[0])
                pos = np.frombuffer(_recv_exact(sock, 24 * natoms), np.float64)
                energy, forces = server.compute(cell, pos)
                have_data = True
            elif header == _msg("GETFORCE"):
                sock.sendall(_msg("FORCEREADY"))
                sock.sendall(np.float64(energy).tobytes() + np.int32(natoms).tobytes()
                             + np.ascontiguousarray(forces, np.float64).tobytes()
                             + np.zeros(9, np.float64).tobytes() + np.int32(0).tobytes())
                have_data = False
                if server.monitor is not None and server.monitor.done:
                    return "event"
            elif header == _msg("EXIT"):
                return "exit"
            else:
                raise RuntimeError(f"unexpected message from i-PI: {header!r}")
    except (SocketClosed, ConnectionResetError, BrokenPipeError):
        return "closed"


def connect(address: str, timeout_s: float) -> socket.socket:
    """Connect to i-PI's unix socket, retrying until ``timeout_s`` (the server may be starting)."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(address)
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _monitor(spec, start, first_step: int):
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
    args = parser.parse_args(argv)

    from ase.io import read

    from harness import models
    from harness.plan import RunSpec

    spec = RunSpec.from_json(Path(args.spec).read_text())
    family = models.get_family(spec.model)
    model_file = Path(spec.model_file) if spec.model_file else None
    calculator = family.ase_calculator(model_file, dict(spec.model_options))
    start = read(spec.start_file)
    monitor = None if args.no_watchdog else _monitor(spec, start, args.first_step)
    server = ModelServer(calculator, start.get_chemical_symbols(), spec.periodic, monitor)
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
    print(json.dumps({"driver": outcome, "force_calls": server.calls}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
