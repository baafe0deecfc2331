"""LAMMPS data files for a run: atoms typed by the model's element order, box as fix ipi sets it.

``fix ipi`` centres the box on the origin (``boxlo = -cell/2``) every step, so the native
runs use the same box for a gas-phase molecule: a periodic cube of
:data:`harness.engines.ipi_input.GAS_PHASE_BOX_ANGSTROM` centred on the origin (no periodic
image comes within any model's cutoff), and the two engines see identical coordinates.
Periodic systems keep their cell's origin (forces do not depend on it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers

from harness.engines.ipi_input import GAS_PHASE_BOX_ANGSTROM
from harness.errors import UserError


def box_lengths(atoms: Atoms, periodic: bool) -> np.ndarray:
    """Edge lengths (A) of the orthorhombic box of a run."""
    if not periodic:
        return np.full(3, GAS_PHASE_BOX_ANGSTROM)
    par = atoms.cell.cellpar()
    if abs(par[3:] - 90).max() > 1e-6:
        raise UserError("only orthorhombic cells are supported by the LAMMPS route for now")
    return np.asarray(par[:3], float)


def type_of(atoms: Atoms, elements: list[str]) -> np.ndarray:
    """LAMMPS atom types (1-based, in the model's element order) of each atom."""
    index = {el: i + 1 for i, el in enumerate(elements)}
    missing = sorted(set(atoms.get_chemical_symbols()) - set(index))
    if missing:
        raise UserError(f"the model covers {','.join(elements)} but the structure also has "
                        f"{','.join(missing)}: use a model trained on all its elements")
    return np.array([index[s] for s in atoms.get_chemical_symbols()], dtype=int)


def write_data(path: Path, atoms: Atoms, elements: list[str], periodic: bool,
               velocities: np.ndarray | None = None) -> None:
    """Write a LAMMPS ``atom_style atomic`` data file (metal units: A, A/ps).

    Every element of the model gets a type (and mass), present or not, so that the
    model's ``pair_coeff * * ... C H N O`` line maps types to elements in order.
    """
    lengths = box_lengths(atoms, periodic)
    types = type_of(atoms, elements)
    lines = [f"LAMMPS data file written by tea-harness ({len(atoms)} atoms)", "",
             f"{len(atoms)} atoms", f"{len(elements)} atom types", ""]
    for axis, length in zip("xyz", lengths, strict=True):
        low = 0.0 if periodic else -float(length) / 2  # the cell's own origin when periodic
        lines.append(f"{low!r} {low + float(length)!r} {axis}lo {axis}hi")
    lines += ["", "Masses", ""]
    lines += [f"{i + 1} {float(atomic_masses[atomic_numbers[el]])!r}  # {el}"
              for i, el in enumerate(elements)]
    lines += ["", "Atoms  # atomic", ""]
    for i, (t, pos) in enumerate(zip(types, atoms.positions, strict=True)):
        lines.append(f"{i + 1} {t} {float(pos[0])!r} {float(pos[1])!r} {float(pos[2])!r}")
    if velocities is not None:
        lines += ["", "Velocities", ""]
        lines += [f"{i + 1} {float(v[0])!r} {float(v[1])!r} {float(v[2])!r}"
                  for i, v in enumerate(velocities)]
    path.write_text("\n".join(lines) + "\n")


def write_pair_file(path: Path, pair_lines: list[str]) -> None:
    """The model's pair_style/pair_coeff lines, for ``include`` in the inputs."""
    path.write_text("\n".join(pair_lines) + "\n")
