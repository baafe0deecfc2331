"""An analytic molecule-surface calculator for the scan tests (loaded via ``ase:surface_toy:make``).

E = -depth * exp(-(h - 3.4)^2) with h = molecule centre-of-mass z - mean z of the first 60
atoms (the sheet of naphthyridine-graphene); the sheet or the molecule alone has E = 0.
Forces are zero: the scans using it do not relax.
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

N_SHEET = 60


class SurfaceToy(Calculator):
    """Gaussian well in the molecule-sheet height (eV, Angstrom)."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, depth: float = 0.5):
        super().__init__()
        self.depth = float(depth)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        n = len(self.atoms)
        energy = 0.0
        if n > N_SHEET + 1:
            pos = self.atoms.positions
            masses = self.atoms.get_masses()[N_SHEET:]
            h = masses @ pos[N_SHEET:, 2] / masses.sum() - pos[:N_SHEET, 2].mean()
            energy = -self.depth * float(np.exp(-(h - 3.4) ** 2))
        self.results = {"energy": energy, "forces": np.zeros((n, 3))}


def make(**options) -> SurfaceToy:
    """Factory for the harness's generic ``ase:`` model route."""
    return SurfaceToy(**options)
