"""Analytic ASE calculators for the MAPbI3 observable tests (``--model ase:perovskite_models:...``).

Unlike the harness's ``harmonic`` family (tuned for the MD driver, which always asks for new
forces), these follow ASE's caching rules, so optimisers and finite differences see fresh
forces after every move.
"""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes


class IsotropicWell(Calculator):
    """E = k/2 sum_i |r_i - r0_i|^2 around the first positions seen: every atom has
    harmonic frequencies sqrt(k / m_i), three times."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, k: float = 1.0):
        super().__init__()
        self.k = float(k)
        self.origin: np.ndarray | None = None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.origin is None:
            self.origin = self.atoms.positions.copy()
        d = self.atoms.positions - self.origin
        self.results = {"energy": 0.5 * self.k * float(np.sum(d * d)), "forces": -self.k * d}


def isotropic_well(k: float = 1.0) -> IsotropicWell:
    """Factory for ``--model ase:perovskite_models:isotropic_well``."""
    return IsotropicWell(k)
