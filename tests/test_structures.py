"""The start-structure reader that avoids ``ase.io``: the same atoms as ASE, or ASE itself."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ase.io import read, write

from harness.structures import _read_simple_extxyz, read_structure

REPO = Path(__file__).resolve().parent.parent
STARTS = sorted(REPO.glob("harness/challenges/*/starts/start-*.xyz"))


@pytest.mark.parametrize("path", STARTS[::4], ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_shipped_starts_read_as_ase_reads_them(path: Path) -> None:
    ours, theirs = _read_simple_extxyz(path), read(path)
    assert ours is not None, "every shipped start should take the fast path"
    np.testing.assert_array_equal(ours.numbers, theirs.numbers)
    np.testing.assert_array_equal(ours.positions, theirs.positions)
    np.testing.assert_array_equal(ours.cell.array, theirs.cell.array)
    np.testing.assert_array_equal(ours.pbc, theirs.pbc)
    np.testing.assert_array_equal(ours.get_masses(), theirs.get_masses())
    np.testing.assert_array_equal(ours.get_initial_charges(), theirs.get_initial_charges())
    assert set(ours.arrays) == set(theirs.arrays)


def test_anything_else_goes_to_ase(tmp_path: Path) -> None:
    atoms = read(STARTS[0])
    atoms.set_velocities(np.full((len(atoms), 3), 0.01))  # an extra per-atom column
    extra = tmp_path / "with-momenta.xyz"
    write(extra, atoms, format="extxyz")
    assert _read_simple_extxyz(extra) is None
    np.testing.assert_allclose(read_structure(extra).get_momenta(), atoms.get_momenta())
    other = tmp_path / "start.pdb"
    write(other, atoms)
    assert _read_simple_extxyz(other) is None
    np.testing.assert_allclose(read_structure(other).positions, atoms.positions, atol=1e-3)
    damaged = tmp_path / "cut.xyz"
    damaged.write_text(STARTS[0].read_text()[:300])
    assert _read_simple_extxyz(damaged) is None  # ASE then names the problem itself


def test_launcher_and_supervisor_start_without_scipy_or_ase_io() -> None:
    """Each run starts a launcher and a supervisor process; SciPy and ase.io would add ~0.8 s
    of CPU to each (the watchdog imports SciPy's k-d tree only where it builds one)."""
    import subprocess
    import sys

    code = ("import sys, harness.launch, harness.runner; "
            "print(sorted(m for m in ('scipy', 'ase.io') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert out.strip() == "[]"
