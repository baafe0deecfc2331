"""The i-PI socket wire protocol, in one place for every force client.

i-PI talks to a force client over a stream socket with fixed 12-byte headers (STATUS, INIT,
POSDATA, GETFORCE, FORCEREADY, EXIT, and the client's NEEDINIT / READY / HAVEDATA answers)
followed by raw native-endian arrays in atomic units (Bohr, Hartree). Used by the one-run
driver (:mod:`harness.driver`), the batched group client (:mod:`harness.batch_driver`) and the
LAMMPS relay (:mod:`harness.engines.lammps_client`, which speaks the server side to LAMMPS).
"""

from __future__ import annotations

import socket
import time

import numpy as np

HEADER_LEN = 12

# i-PI's own conversion factors (ipi.utils.units), copied so that a force client runs where
# i-PI is not installed (--model-python) and gives the same numbers to the last bit.
#: Bohr per Angstrom.
BOHR_PER_ANGSTROM = 1.8897261
#: Angstrom per Bohr.
ANGSTROM_PER_BOHR = 1.0 / BOHR_PER_ANGSTROM
#: Hartree per eV.
HARTREE_PER_EV = 0.036749326
#: Hartree/Bohr per eV/Angstrom, as the product of the two above: the forces a client sends are
#: then the exact gradient of the energy it sends (harness.units.ipi_atomic_units). i-PI's own
#: table entry for ev/ang (below) is 1.07e-7 off that product, which left a floor of that
#: relative size in the conserved energy.
HARTREE_BOHR_PER_EV_ANGSTROM = HARTREE_PER_EV * ANGSTROM_PER_BOHR
#: i-PI's table value of the force unit ev/ang (what i-PI itself uses to write forces out).
IPI_TABLE_HARTREE_BOHR_PER_EV_ANGSTROM = 0.019446904


class SocketClosed(Exception):
    """The peer closed the connection."""


def header(text: str) -> bytes:
    """A protocol header: the word in capitals, padded with spaces to 12 bytes."""
    return text.upper().ljust(HEADER_LEN).encode()


STATUS = header("STATUS")
INIT = header("INIT")
POSDATA = header("POSDATA")
GETFORCE = header("GETFORCE")
FORCEREADY = header("FORCEREADY")
EXIT = header("EXIT")
NEEDINIT = header("NEEDINIT")
READY = header("READY")
HAVEDATA = header("HAVEDATA")


def recv_exact(sock: socket.socket, nbytes: int) -> bytes:
    """Exactly ``nbytes`` from the socket; :class:`SocketClosed` when the peer is gone.

    A timeout set on the socket (``sock.settimeout``) applies to each underlying read.
    """
    view = bytearray(nbytes)
    got = 0
    while got < nbytes:
        chunk = sock.recv_into(memoryview(view)[got:], nbytes - got)
        if chunk == 0:
            raise SocketClosed
        got += chunk
    return bytes(view)


def recv_header(sock: socket.socket) -> bytes:
    """The next 12-byte header."""
    return recv_exact(sock, HEADER_LEN)


def recv_int(sock: socket.socket) -> int:
    """One int32."""
    return int(np.frombuffer(recv_exact(sock, 4), np.int32)[0])


def recv_init(sock: socket.socket) -> bytes:
    """The body of an INIT message (replica index, then a length-prefixed string)."""
    recv_int(sock)
    return recv_exact(sock, recv_int(sock))


def recv_posdata(sock: socket.socket) -> tuple[np.ndarray, np.ndarray]:
    """The body of a POSDATA message: cell (3x3, columns are cell vectors) and positions
    (flat, 3 natoms), both in Bohr. The inverse cell is read and dropped."""
    cell = np.frombuffer(recv_exact(sock, 72), np.float64).reshape(3, 3)
    recv_exact(sock, 72)
    natoms = recv_int(sock)
    positions = np.frombuffer(recv_exact(sock, 24 * natoms), np.float64)
    return cell, positions


def send_posdata(sock: socket.socket, cell: np.ndarray, positions: np.ndarray) -> None:
    """POSDATA (server side): cell, its inverse and flat positions in the peer's length unit."""
    cell = np.ascontiguousarray(cell, np.float64)
    inverse = np.linalg.inv(cell) if abs(np.linalg.det(cell)) > 0 else np.zeros((3, 3))
    positions = np.ascontiguousarray(positions, np.float64)
    sock.sendall(POSDATA + cell.tobytes() + inverse.tobytes()
                 + np.int32(len(positions) // 3).tobytes() + positions.tobytes())


def send_forces(sock: socket.socket, energy: float, forces: np.ndarray) -> None:
    """FORCEREADY and its body: energy, natoms, forces, a zero virial, no extra string."""
    forces = np.ascontiguousarray(forces, np.float64).ravel()
    sock.sendall(FORCEREADY + np.float64(energy).tobytes()
                 + np.int32(len(forces) // 3).tobytes() + forces.tobytes()
                 + np.zeros(9, np.float64).tobytes() + np.int32(0).tobytes())


def recv_forces(sock: socket.socket) -> tuple[float, np.ndarray]:
    """The body after FORCEREADY (server side): energy and flat forces; virial and extra
    string are read and dropped."""
    energy = float(np.frombuffer(recv_exact(sock, 8), np.float64)[0])
    natoms = recv_int(sock)
    forces = np.frombuffer(recv_exact(sock, 24 * natoms), np.float64)
    recv_exact(sock, 72)
    extra = recv_int(sock)
    if extra:
        recv_exact(sock, extra)
    return energy, forces


def status_answer(initialised: bool, have_data: bool) -> bytes:
    """The client's answer to STATUS."""
    if have_data:
        return HAVEDATA
    return READY if initialised else NEEDINIT


def try_connect(address: str) -> socket.socket | None:
    """One attempt to connect to a unix socket; None while the server is not listening yet."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(address)
        return sock
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None


def connect(address: str, timeout_s: float) -> socket.socket:
    """Connect to i-PI's unix socket, retrying until ``timeout_s`` (the server may be starting).

    Raises
    ------
    TimeoutError
        When nothing listened on ``address`` within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        sock = try_connect(address)
        if sock is not None:
            return sock
        if time.monotonic() > deadline:
            raise TimeoutError(f"no i-PI server on {address} after {timeout_s:.0f} s")
        time.sleep(0.05)
