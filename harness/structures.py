"""Reading a start structure without importing ``ase.io``.

Every run reads its start structure at least twice (the launcher checks it against the model,
the supervisor writes the first frame and the i-PI input from it). ``ase.io`` pulls in SciPy
through its trajectory and constraint modules: about 0.8 s of CPU per process, more than the
harness spends on a short run itself. The start files the harness ships and writes are plain
extended XYZ with only species and positions (``Properties=species:S:1:pos:R:3``, an optional
``Lattice`` and ``pbc``, optionally ``initial_charges``); those are parsed here into
:class:`ase.Atoms` (``import ase`` alone is cheap), without the comment line's other keys
(``atoms.info`` stays empty; ASE would put them there and an ``energy`` into a calculator,
which nothing in a run uses). Anything else (other formats, more per-atom columns) goes to
:func:`ase.io.read`, so numbers, positions, cell and pbc are always what ASE would give.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

#: ``key=value`` or ``key="quoted value"`` in an extended XYZ comment line.
_PAIR = re.compile(r'(\w+)=("([^"]*)"|\S+)')
_SIMPLE_PROPERTIES = "species:S:1:pos:R:3"
_WITH_CHARGES = _SIMPLE_PROPERTIES + ":initial_charges:R:1"


def read_structure(path: str | Path) -> Any:
    """The first frame of a structure file as :class:`ase.Atoms`.

    Parameters
    ----------
    path
        Any file :func:`ase.io.read` reads; extended XYZ with species and positions only is
        read here directly (same numbers, cell and pbc as ASE).
    """
    atoms = _read_simple_extxyz(Path(path))
    if atoms is None:
        from ase.io import read

        atoms = read(path)
    return atoms


def _read_simple_extxyz(path: Path) -> Any:
    """Parse a species+positions extended XYZ file, or ``None`` when it is anything else."""
    if path.suffix.lower() not in (".xyz", ".extxyz"):
        return None
    try:
        with open(path, encoding="ascii") as handle:
            n_atoms = int(handle.readline())
            comment = handle.readline()
            rows = [handle.readline().split() for _ in range(n_atoms)]
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    fields = {m.group(1): m.group(3) if m.group(3) is not None else m.group(2)
              for m in _PAIR.finditer(comment)}
    columns = {_SIMPLE_PROPERTIES: 4, _WITH_CHARGES: 5}.get(fields.get("Properties", ""))
    if columns is None or n_atoms < 1 or any(len(row) != columns for row in rows):
        return None
    try:
        positions = np.array([[float(x) for x in row[1:4]] for row in rows])
        charges = [float(row[4]) for row in rows] if columns == 5 else None
        cell = (np.array([float(x) for x in fields["Lattice"].split()]).reshape(3, 3)
                if "Lattice" in fields else np.zeros((3, 3)))
    except ValueError:
        return None
    pbc_text = fields.get("pbc", "T T T" if "Lattice" in fields else "F F F").split()
    if len(pbc_text) != 3 or not set(pbc_text) <= {"T", "F"}:
        return None
    from ase import Atoms

    atoms = Atoms(symbols=[row[0] for row in rows], positions=positions, cell=cell,
                  pbc=[p == "T" for p in pbc_text], charges=charges)
    return atoms

