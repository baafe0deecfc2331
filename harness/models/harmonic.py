"""``harmonic``: an isotropic harmonic well, the same potential as i-PI's ``harmonic`` driver.

E = k/2 * sum_i |r_i|^2. Cheap (microseconds per call) and analytic: every atom oscillates
with angular frequency sqrt(k/m). Used for plumbing tests and for the overhead benchmark,
where it is compared with ``i-pi-py_driver -m harmonic`` on the same system.
Option ``k`` in eV/Angstrom^2 (default 1.0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.models import ModelFamily


def _calculator(model_file: Path | None, options: dict[str, Any]):
    from ase.calculators.calculator import Calculator, all_changes

    class HarmonicWell(Calculator):
        """E = k/2 sum |r|^2, forces -k r (eV, Angstrom)."""

        implemented_properties = ["energy", "forces"]

        def __init__(self, k: float = 1.0):
            super().__init__()
            self.k = float(k)

        def check_state(self, atoms, tol=1e-15):
            # calculate() keeps a reference, not a copy, of the atoms: ASE's comparison would
            # see no change and return stale results, so report a change on every call
            return ["positions"]

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            # no super().calculate(): it copies the Atoms, which costs more than the model
            self.atoms = atoms
            pos = atoms.positions
            self.results = {
                "energy": 0.5 * self.k * float(np.sum(pos * pos)),
                "forces": -self.k * pos,
            }

    return HarmonicWell(**options)


FAMILY = ModelFamily(
    name="harmonic",
    description="isotropic harmonic well (analytic; plumbing tests and overhead benchmarks)",
    ase_calculator=_calculator,
    packages=("ase",),
    options=("k",),
)
