"""``doublewell``: a tilted double well along the bond of a two-atom system (analytic test model).

With d = r_1 - r_0 (Angstrom)::

    E = h ((d_x / a)^2 - 1)^2 + c d_x + k/2 (d_y^2 + d_z^2)

The Boltzmann distribution of d_x at any temperature is known exactly,
p(x) ~ exp(-E(x) / kB T) (the centre of mass drops out), so replica exchange and samplers can be
checked against it (:func:`population_right`). Options (eV, Angstrom): ``h`` barrier height
(default 0.1), ``a`` half the distance between the minima (default 1.0), ``c`` tilt (default
0.02, the left well lower), ``k`` transverse spring (default 1.0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.models import ModelFamily
from harness.units import KB_EV_PER_K

DEFAULTS = {"h": 0.1, "a": 1.0, "c": 0.02, "k": 1.0}


def energy_x(x: np.ndarray, h: float, a: float, c: float) -> np.ndarray:
    """The part of the energy that depends on d_x (eV)."""
    return h * ((x / a) ** 2 - 1.0) ** 2 + c * x


def population_right(temperature_K: float, h: float = DEFAULTS["h"], a: float = DEFAULTS["a"],
                     c: float = DEFAULTS["c"]) -> float:
    """Exact equilibrium probability of d_x > 0 at a temperature (quadrature on a fine grid)."""
    x = np.linspace(-4.0 * a, 4.0 * a, 400_001)
    energy = energy_x(x, h, a, c)
    weight = np.exp(-(energy - energy.min()) / (KB_EV_PER_K * temperature_K))
    return float(weight[x > 0].sum() / weight.sum())


def _calculator(model_file: Path | None, options: dict[str, Any]):
    from ase.calculators.calculator import Calculator, all_changes

    settings = {**DEFAULTS, **{k: float(v) for k, v in options.items()}}

    class DoubleWell(Calculator):
        """The tilted double well of the module docstring."""

        implemented_properties = ["energy", "forces"]

        def check_state(self, atoms, tol=1e-15):
            return ["positions"]  # the atoms are not copied: always recompute

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            self.atoms = atoms
            if len(atoms) != 2:
                raise ValueError(f"doublewell needs exactly 2 atoms, got {len(atoms)}")
            h, a, c, k = settings["h"], settings["a"], settings["c"], settings["k"]
            d = atoms.positions[1] - atoms.positions[0]
            energy = float(energy_x(d[0], h, a, c)) + 0.5 * k * float(d[1] ** 2 + d[2] ** 2)
            grad = np.array([4.0 * h * ((d[0] / a) ** 2 - 1.0) * d[0] / a**2 + c,
                             k * d[1], k * d[2]])
            self.results = {"energy": energy, "forces": np.array([grad, -grad])}

    return DoubleWell()


FAMILY = ModelFamily(
    name="doublewell",
    description="tilted double well along a two-atom bond (analytic Boltzmann populations; "
    "replica-exchange tests)",
    ase_calculator=_calculator,
    packages=("ase",),
    options=("h", "a", "c", "k"),
)
