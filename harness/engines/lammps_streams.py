"""Reading native LAMMPS output as it is written: a text dump and ``fix print`` lines (FIFOs).

``lammps_inputs/nvt.in`` writes ``dump custom`` frames (id, unwrapped positions,
velocities and the model's forces before the thermostat's, ``%.17g``, sorted by id: every
float round-trips exactly) and one ``fix print`` line per
frame. Both go into named pipes that the supervisor drains without blocking, so nothing
is stored twice on disk.
"""

from __future__ import annotations

import numpy as np

from harness.engines.ipi_stream import FifoStream, StreamFormatError

DUMP_COLUMNS = ("id", "xu", "yu", "zu", "vx", "vy", "vz", "f_model_forces[1]",
                "f_model_forces[2]", "f_model_forces[3]")


class DumpStream(FifoStream):
    """``dump custom`` frames of ``lammps_inputs/nvt.in`` (metal units)."""

    def frames(self) -> list[tuple[int, np.ndarray, dict[str, np.ndarray]]]:
        """Complete frames as (step, box edges (3, 3) A, {positions, velocities, forces})."""
        out = []
        while True:
            head = self._header()
            if head is None:
                break
            step, natoms, edges, body_at = head
            end = body_at
            for _ in range(natoms):
                end = self.buffer.find(b"\n", end) + 1
                if end == 0:
                    return out
            table = np.array(bytes(self.buffer[body_at:end]).split(), dtype=np.float64)
            table = table.reshape(natoms, len(DUMP_COLUMNS))
            del self.buffer[:end]
            order = np.argsort(table[:, 0], kind="stable")
            table = table[order]
            out.append((step, edges, {"positions": table[:, 1:4], "velocities": table[:, 4:7],
                                      "forces": table[:, 7:10]}))
        return out

    def _header(self) -> tuple[int, int, np.ndarray, int] | None:
        """Parse the 9 header lines of the next frame (None if not all there yet)."""
        lines: list[bytes] = []
        at = 0
        for _ in range(9):
            nl = self.buffer.find(b"\n", at)
            if nl < 0:
                return None
            lines.append(bytes(self.buffer[at:nl]))
            at = nl + 1
        if not lines[0].startswith(b"ITEM: TIMESTEP") or not lines[8].startswith(b"ITEM: ATOMS"):
            raise StreamFormatError(f"{self.path.name}: not a LAMMPS dump frame: "
                                    f"{lines[0][:40]!r}")
        columns = tuple(lines[8].decode().split()[2:])
        if columns != DUMP_COLUMNS:
            raise StreamFormatError(f"{self.path.name}: dump columns {columns}, expected "
                                    f"{DUMP_COLUMNS}")
        bounds = np.array([[float(x) for x in line.split()[:2]] for line in lines[5:8]])
        return int(lines[1]), int(lines[3]), np.diag(bounds[:, 1] - bounds[:, 0]), at


class PrintStream(FifoStream):
    """``fix print`` lines: whitespace-separated numbers, '#' lines skipped."""

    def __init__(self, path, columns: tuple[str, ...]):
        super().__init__(path)
        self.columns = columns

    def rows(self) -> list[dict[str, float]]:
        """Complete lines as {column: value}."""
        end = self.buffer.rfind(b"\n")
        if end < 0:
            return []
        lines = bytes(self.buffer[:end + 1]).decode().splitlines()
        del self.buffer[:end + 1]
        out = []
        for line in lines:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            values = [float(x) for x in line.split()]
            if len(values) != len(self.columns):
                raise StreamFormatError(f"fix print line has {len(values)} values, expected "
                                        f"{len(self.columns)}: {line[:80]!r}")
            out.append(dict(zip(self.columns, values, strict=True)))
        return out
