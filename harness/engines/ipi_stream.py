"""Reading i-PI's output streams as they are written (named pipes, no copy on disk).

i-PI writes positions, velocities and forces in its ``bin`` format (float64, so full
precision) and the properties as text lines. Each stream goes into a FIFO that the run
supervisor reads without blocking; :class:`FrameAssembler` joins the four streams by step.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: i-PI's binary frame title: "Step:  %10d  Bead:   %5d " + "<key>{<units>}  cell{<units>}".
_TITLE_HEAD_LEN = len(f"Step:  {0:10d}  Bead:   {0:5d} ")


_F_SETPIPE_SZ = 1031  # Linux fcntl
PIPE_BYTES = 1 << 20


class StreamFormatError(RuntimeError):
    """An i-PI stream did not have the layout this reader expects."""


class FifoStream:
    """A non-blocking reader of one named pipe."""

    def __init__(self, path: Path):
        self.path = path
        if path.exists():
            path.unlink()
        os.mkfifo(path, 0o600)
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.buffer = bytearray()
        try:  # a deep pipe lets the supervisor read in batches without ever blocking i-PI
            fcntl.fcntl(self.fd, _F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass

    def read_available(self) -> int:
        """Move whatever the pipe holds into the buffer; returns the number of bytes read."""
        total = 0
        while True:
            try:
                chunk = os.read(self.fd, 1 << 20)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buffer.extend(chunk)
            total += len(chunk)
        return total

    def close(self) -> None:
        """Close and remove the pipe."""
        try:
            os.close(self.fd)
        except OSError:
            pass
        self.path.unlink(missing_ok=True)


class BinFrameStream(FifoStream):
    """One quantity (positions, velocities, forces) in i-PI's bin format.

    Parameters
    ----------
    path
        The FIFO to create.
    key, units, cell_units
        As in the i-PI ``<trajectory>`` element; they fix the length of each frame's title.
    factor
        Multiplies the values (unit conversion to the harness's units).
    """

    def __init__(self, path: Path, key: str, units: str, cell_units: str, factor: float = 1.0):
        super().__init__(path)
        self.title_len = bin_title_length(key, units, cell_units)
        self.factor = factor

    def frames(self) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Complete frames in the buffer as (step, cell rows (3, 3) A, values (n, 3))."""
        out, used = parse_bin_frames(bytes(self.buffer), self.title_len, self.factor,
                                     self.path.name)
        del self.buffer[:used]
        return out


def bin_title_length(key: str, units: str, cell_units: str) -> int:
    """Characters of the title of one frame of an i-PI ``bin`` trajectory of ``key``."""
    return _TITLE_HEAD_LEN + len(f"{key}{{{units}}}  cell{{{cell_units}}}")


def parse_bin_frames(buf: bytes, title_len: int, factor: float = 1.0, name: str = "stream"
                     ) -> tuple[list[tuple[int, np.ndarray, np.ndarray]], int]:
    """The complete frames at the head of i-PI ``bin`` bytes and how many bytes they take.

    Returns ``[(step, cell rows (3, 3), values (n, 3) * factor), ...]`` and the bytes used;
    a frame cut short at the end (still being written) is left for the next read.
    """
    out = []
    pos = 0
    while len(buf) - pos >= 80:
        natoms = int(np.frombuffer(buf, np.int64, 1, pos + 72)[0])
        names_at = pos + 80 + 24 * natoms
        if len(buf) < names_at + 8:
            break
        nlen = int(np.frombuffer(buf, np.int64, 1, names_at)[0])
        title_at = names_at + 8 + 4 * nlen
        end = title_at + 4 * title_len
        if len(buf) < end:
            break
        title = bytes(buf[title_at:end]).decode("utf-32-le", errors="replace")
        if not title.startswith("Step:") or not title.endswith("}"):
            raise StreamFormatError(f"{name}: unexpected i-PI bin frame title {title[:60]!r}")
        step = int(title.split()[1])
        cell = np.frombuffer(buf, np.float64, 9, pos).reshape(3, 3).T.copy()
        values = np.frombuffer(buf, np.float64, 3 * natoms, pos + 80).reshape(natoms, 3)
        out.append((step, cell, values * factor))
        pos = end
    return out, pos


class PropertiesStream(FifoStream):
    """i-PI's properties output: one text line of numbers per frame, '#' lines skipped."""

    def __init__(self, path: Path, columns: tuple[str, ...]):
        super().__init__(path)
        self.columns = columns

    def rows(self) -> list[dict[str, float]]:
        """Complete lines in the buffer, parsed as {column: value}."""
        out = []
        end = self.buffer.rfind(b"\n")
        if end < 0:
            return out
        lines = bytes(self.buffer[: end + 1]).decode().splitlines()
        del self.buffer[: end + 1]
        for line in lines:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            values = [float(x) for x in line.split()]
            if len(values) != len(self.columns):
                raise StreamFormatError(f"properties line has {len(values)} columns, "
                                        f"expected {len(self.columns)}: {line[:80]!r}")
            out.append(dict(zip(self.columns, values, strict=True)))
        return out


@dataclass
class FrameAssembler:
    """Joins the per-quantity streams into whole frames, in step order, without duplicates.

    i-PI repeats its last outputs on exit and its first outputs after a restart; any step at
    or below the last emitted one is dropped.
    """

    required: tuple[str, ...]
    last_emitted: int = -1
    pending: dict[int, dict[str, Any]] = field(default_factory=dict)

    def add(self, step: int, key: str, value: Any) -> None:
        """Add one quantity of one step."""
        if step <= self.last_emitted:
            return
        self.pending.setdefault(step, {"step": step})[key] = value

    def complete(self) -> list[dict[str, Any]]:
        """Frames that have every quantity, oldest first."""
        out = []
        for step in sorted(self.pending):
            frame = self.pending[step]
            if not all(k in frame for k in self.required):
                break
            out.append(frame)
            del self.pending[step]
            self.last_emitted = step
        return out
