"""LAMMPS as i-PI's force client, behind a thin relay that plays i-PI to LAMMPS ``fix ipi``.

i-PI  <--unix socket-->  this relay  <--private unix socket-->  LAMMPS (fix ipi, any MPI size)

Why a relay rather than connecting LAMMPS straight to i-PI:

* **Units.** ``fix ipi`` converts with 8-digit constants (Bohr = 0.52917721 A,
  Hartree = 3.1668152e-6 / k_B) that differ from i-PI's by up to 1e-7 relative, so forces
  through i-PI would differ from native LAMMPS by ~1e-7 eV/A. The relay undoes LAMMPS's
  constants and applies i-PI's, exactly as the python driver does: i-PI + LAMMPS forces equal
  native LAMMPS forces to round-off.
* **The watchdog** sees every step's positions and forces, as for the python models, and
  stops the run on the step a bond breaks.
* **EXIT is success.** When i-PI has finished it sends EXIT; LAMMPS then stops with
  "ERROR: Got EXIT message from i-PI. Now leaving!" and a non-zero code. The relay knows it
  sent the EXIT and reports a normal end.

Run as ``python -m harness.engines.lammps_client --spec SPEC.json --address SOCKET`` (the same
arguments as :mod:`harness.driver`). Its folder is the run's work folder.
"""

from __future__ import annotations

import argparse
import json
import select
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import numpy as np

from harness import driver, ipi_wire, procs, sockets
from harness.engines import lammps_run
from harness.model_python import parse_client_args

#: fix ipi's conversion constants (src/MISC/fix_ipi.cpp, metal units: angstrom = 1,
#: boltz = 8.617343e-5 eV/K); checked against native LAMMPS forces in the tests.
FIX_IPI_BOHR_A = 0.52917721
FIX_IPI_HARTREE_PER_EV = 3.1668152e-06 / 8.617343e-05
ACCEPT_TIMEOUT_S = 120.0
LOG = "lammps_client.log"


class LammpsRelay:
    """Duck-types :class:`harness.driver.ModelServer`: forwards each structure to LAMMPS."""

    def __init__(self, conn: socket.socket, natoms: int, monitor=None):
        from harness.units import ipi_atomic_units

        self.conn = conn
        self.natoms = natoms
        self.monitor = monitor
        self.calls = 0
        self.bohr_to_ang, self.ev_to_ha, self.evang_to_au = ipi_atomic_units()
        self.to_lammps = self.bohr_to_ang / FIX_IPI_BOHR_A  # i-PI bohr -> fix ipi "bohr"

    def compute(self, cell_au: np.ndarray, pos_au: np.ndarray) -> tuple[float, np.ndarray]:
        """Energy (Hartree) and forces (Hartree/Bohr, i-PI's units) from LAMMPS."""
        scale = self.to_lammps
        ipi_wire.send_posdata(self.conn, np.asarray(cell_au) * scale, np.asarray(pos_au) * scale)
        self.conn.sendall(ipi_wire.GETFORCE)
        head = ipi_wire.recv_header(self.conn)
        if head != ipi_wire.FORCEREADY:
            raise RuntimeError(f"LAMMPS answered {head!r} to GETFORCE")
        energy, forces = ipi_wire.recv_forces(self.conn)
        energy_ev = energy / FIX_IPI_HARTREE_PER_EV
        forces_ev = forces / (FIX_IPI_HARTREE_PER_EV * FIX_IPI_BOHR_A)
        self.calls += 1
        if self.monitor is not None:
            self.monitor.observe((pos_au * self.bohr_to_ang).reshape(-1, 3),
                                 forces_ev.reshape(-1, 3), energy_ev)
        return energy_ev * self.ev_to_ha, forces_ev * self.evang_to_au


def _accept(server: socket.socket, lammps) -> socket.socket:
    """Wait for LAMMPS to connect; fail at once if it died first."""
    deadline = time.monotonic() + ACCEPT_TIMEOUT_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([server], [], [], 0.2)
        if ready:
            conn, _ = server.accept()
            return conn
        if lammps.poll() is not None:
            break
    raise RuntimeError("LAMMPS did not connect ("
                       + (procs.describe_exit(lammps.returncode) if lammps.poll() is not None
                          else f"{ACCEPT_TIMEOUT_S:.0f} s") + "): "
                       + (lammps_run.lammps_error(Path(lammps_run.LAMMPS_LOG))
                          or procs.tail(Path(LOG), 3)))


def _finish_lammps(conn: socket.socket | None, lammps) -> str:
    """Send EXIT, wait for LAMMPS; returns how it ended ('EXIT message' means success)."""
    if conn is not None:
        try:
            conn.sendall(ipi_wire.EXIT)
        except OSError:
            pass
    try:
        lammps.wait(timeout=30)
    except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired
        procs.stop(lammps, signal.SIGTERM, 5)
    error = lammps_run.lammps_error(Path(lammps_run.LAMMPS_LOG)) or ""
    if "Got EXIT message from i-PI" in error:
        return "EXIT message (normal end)"
    return f"{procs.describe_exit(lammps.returncode)}: {error}"


def main(argv: list[str] | None = None) -> int:
    """Entry point: start LAMMPS, relay until i-PI says EXIT or the watchdog stops the run."""
    parser = argparse.ArgumentParser(prog="python -m harness.engines.lammps_client")
    parser.add_argument("--spec", required=True)
    parser.add_argument("--address", required=True, help="i-PI's unix socket path")
    parser.add_argument("--connect-timeout", type=float, default=120.0)
    parser.add_argument("--first-step", type=int, default=0)
    parser.add_argument("--no-watchdog", action="store_true")
    args = parse_client_args(parser, argv)
    if args is None:
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # run the clean-up below

    from ase.io import read

    from harness.plan import RunSpec

    spec = RunSpec.from_json(Path(args.spec).read_text())
    start = read(spec.start_file)
    monitor = None if args.no_watchdog else driver.step_monitor(spec, start, args.first_step)
    work = Path.cwd()
    data, pair = lammps_run.write_inputs(spec, work, start)
    sock_dir, lmp_address = sockets.make_private_folder("lmp")  # LAMMPS adds the prefix
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lammps = conn = ipi = None
    outcome, relay = "error", None
    try:
        server.bind(sockets.full_path(lmp_address))
        server.listen(1)
        cmd = lammps_run.lammps_command(spec)
        argv_ = cmd.argv(getattr(spec, "mpi_ranks", 1), "-in", str(lammps_run.CLIENT_INPUT),
                         "-log", lammps_run.LAMMPS_LOG, "-screen", "none", "-nocite",
                         "-var", "data", str(data), "-var", "pair_file", str(pair),
                         "-var", "address", lmp_address)
        env = dict(cmd.env, OMP_NUM_THREADS=str(spec.omp_threads))
        lammps = procs.start(argv_, work / LOG, cwd=work, env=env, death_signal=signal.SIGTERM)
        conn = _accept(server, lammps)
        relay = LammpsRelay(conn, len(start), monitor)
        ipi = ipi_wire.connect(args.address, args.connect_timeout)
        outcome = driver.serve(ipi, relay)
        if outcome == "event":  # before i-PI sees the socket close and ends the run
            monitor.save(work)
    except (ipi_wire.SocketClosed, ConnectionError) as exc:
        print(f"LAMMPS closed the connection ({exc}): "
              f"{lammps_run.lammps_error(Path(lammps_run.LAMMPS_LOG))}", file=sys.stderr)
        outcome = "lammps_died"
    finally:
        ended = _finish_lammps(conn, lammps) if lammps is not None else "not started"
        for handle in (ipi, conn, server):
            if handle is not None:
                handle.close()
        shutil.rmtree(sock_dir, ignore_errors=True)
    print(json.dumps({"driver": outcome, "force_calls": relay.calls if relay else 0,
                      "lammps": ended}), flush=True)
    return 1 if outcome == "lammps_died" else 0


if __name__ == "__main__":
    sys.exit(main())
