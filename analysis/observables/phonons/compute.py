"""Harmonic (Gamma-point) vibrational frequencies of a model, as TEA 2023 did for MAPbI3.

Relax with ASE's BFGS to a maximum force component of ``fmax`` (0.005 eV/A), then build
the Hessian by central finite differences of the forces with displacements of ``delta``
(0.01 A) along every Cartesian direction of every atom:

    H[i,j] = -(F_j(x_i + delta) - F_j(x_i - delta)) / (2 delta),   H <- (H + H^T) / 2

and diagonalise the mass-weighted Hessian H / sqrt(m_i m_j). Frequencies are
nu = sqrt(lambda) / (2 pi c) in cm^-1, imaginary modes reported as negative numbers.
The cell is kept fixed. For a periodic cell these are the Gamma-point phonons of the
supercell, including the three acoustic modes near zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import units

from harness.errors import UserError

#: sqrt(eV / (A^2 amu)) expressed in cm^-1 (angular -> wavenumber included).
EV_A2_AMU_TO_CM = 1.0 / (2 * np.pi * units._c * 100) * np.sqrt(units._e / units._amu) * 1e10


@dataclass
class Phonons:
    """Result of :func:`harmonic_frequencies`."""

    frequencies_cm: np.ndarray
    relaxed_energy_ev: float
    relax_steps: int
    max_force_ev_per_angstrom: float
    n_force_calls: int
    settings: dict[str, Any] = field(default_factory=dict)


def relax(atoms, fmax: float = 0.005, max_steps: int = 2000, logfile: str | None = None
          ) -> tuple[int, float]:
    """BFGS relaxation in place; returns (steps, final max force component)."""
    from ase.optimize import BFGS

    opt = BFGS(atoms, logfile=logfile)
    opt.run(fmax=fmax, steps=max_steps)
    return int(opt.get_number_of_steps()), float(np.abs(atoms.get_forces()).max())


def hessian(atoms, delta: float = 0.01, progress=None) -> np.ndarray:
    """Symmetrised finite-difference Hessian (3N, 3N) in eV/A^2."""
    pos0 = atoms.get_positions()
    n = len(atoms)
    hess = np.zeros((3 * n, 3 * n))
    for i in range(n):
        for c in range(3):
            forces = []
            for sign in (1.0, -1.0):
                disp = pos0.copy()
                disp[i, c] += sign * delta
                atoms.set_positions(disp)
                forces.append(atoms.get_forces().ravel())
            hess[3 * i + c] = -(forces[0] - forces[1]) / (2 * delta)
            if progress is not None:
                progress(3 * i + c + 1, 3 * n)
    atoms.set_positions(pos0)
    return 0.5 * (hess + hess.T)


def frequencies(hess: np.ndarray, masses: np.ndarray) -> np.ndarray:
    """Harmonic frequencies (cm^-1, ascending; imaginary as negative) from a Hessian."""
    inv_sqrt_m = np.repeat(1.0 / np.sqrt(masses), 3)
    dyn = hess * inv_sqrt_m[:, None] * inv_sqrt_m[None, :]
    eig = np.linalg.eigvalsh(dyn)
    return np.sign(eig) * np.sqrt(np.abs(eig)) * EV_A2_AMU_TO_CM


def harmonic_frequencies(atoms, fmax: float = 0.005, delta: float = 0.01,
                         max_steps: int = 2000, do_relax: bool = True,
                         progress=None) -> Phonons:
    """Relax ``atoms`` (with its calculator attached) and compute its harmonic frequencies."""
    steps, final_fmax = relax(atoms, fmax, max_steps) if do_relax else (
        0, float(np.abs(atoms.get_forces()).max()))
    energy = float(atoms.get_potential_energy())
    if not (np.isfinite(energy) and np.all(np.isfinite(atoms.get_positions()))):
        raise UserError("the relaxation ended with non-finite positions or energy: the model "
                        "is unstable here; try --no-relax or another model")
    hess = hessian(atoms, delta, progress)
    if not np.all(np.isfinite(hess)):
        raise UserError("the model returned non-finite forces for a displaced structure")
    return Phonons(frequencies(hess, atoms.get_masses()), energy, steps, final_fmax,
                   6 * len(atoms), {"fmax": fmax, "delta": delta, "relax": do_relax,
                                    "max_steps": max_steps})
