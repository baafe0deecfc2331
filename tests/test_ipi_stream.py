"""The bin-frame reader against i-PI's own writer and reader (independent implementation)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from ipi.engine.atoms import Atoms
from ipi.engine.cell import Cell
from ipi.utils.io import print_file
from ipi.utils.io.backends import io_binary

from harness.engines import ipi_server
from harness.engines.ipi_stream import BinFrameStream, FrameAssembler


def _ipi_frame(step: int, rng: np.random.Generator, natoms: int = 5,
               printer=io_binary.print_binary) -> tuple[bytes, np.ndarray, np.ndarray]:
    atoms = Atoms(natoms)
    atoms.names[:] = ["C", "H", "H", "O", "N"][:natoms]
    atoms.q[:] = rng.normal(size=3 * natoms) * 10
    cell = Cell()
    cell.h = np.diag([30.0, 31.0, 32.0]) + np.triu(rng.normal(size=(3, 3)) * 0.1, 1)
    buf = io.BytesIO()
    original = io_binary.print_binary
    io_binary.print_binary = printer
    try:
        print_file("bin", atoms, cell, buf, title=f"Step:  {step:10d}  Bead:   {0:5d} ",
                   key="positions", dimension="length", units="angstrom", cell_units="angstrom")
    finally:
        io_binary.print_binary = original
    return buf.getvalue(), atoms.q.copy(), cell.h.copy()


def test_shim_writes_the_same_bytes_as_ipi() -> None:
    rng = np.random.default_rng(1)
    ours, _, _ = _ipi_frame(7, np.random.default_rng(1), printer=ipi_server._print_binary_to_stream)
    theirs, _, _ = _ipi_frame(7, rng)
    assert ours == theirs


def _read_with_ipi(blob: bytes, tmp_path: Path):
    single = tmp_path / "frame.bin"
    single.write_bytes(blob)
    with open(single, "rb") as handle:
        return io_binary.read_binary(handle)


def test_reader_matches_ipi_reader(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    frames = [_ipi_frame(step, rng)[0] for step in (0, 20, 40)]
    stream = BinFrameStream(tmp_path / "pos_0.bin", "positions", "angstrom", "angstrom")
    try:
        blob = b"".join(frames)
        stream.buffer.extend(blob[:100])  # a partial frame yields nothing
        assert stream.frames() == []
        stream.buffer.extend(blob[100:-7])
        got = stream.frames()
        assert [g[0] for g in got] == [0, 20]
        stream.buffer.extend(blob[-7:])
        got += stream.frames()
    finally:
        stream.close()
    assert [g[0] for g in got] == [0, 20, 40]
    for (step, cell_rows, values), blob in zip(got, frames, strict=True):
        title, cell, q, names, _ = _read_with_ipi(blob, tmp_path)
        assert f"Step:  {step:10d}" in title
        np.testing.assert_array_equal(values.ravel(), q)  # bit-identical, full precision
        np.testing.assert_array_equal(cell_rows, cell.T)
        assert names == ["C", "H", "H", "O", "N"]


def test_assembler_orders_and_drops_duplicates() -> None:
    asm = FrameAssembler(required=("a", "b"))
    asm.add(0, "a", 1)
    asm.add(0, "b", 2)
    asm.add(10, "a", 3)
    assert [f["step"] for f in asm.complete()] == [0]
    asm.add(10, "b", 4)
    asm.add(0, "a", 9)  # i-PI repeats outputs on exit/restart
    assert [f["step"] for f in asm.complete()] == [10]
    assert asm.complete() == []
