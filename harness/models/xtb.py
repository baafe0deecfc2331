"""``xtb``: GFN2-xTB through tblite, the reference level of the shipped challenges.

Options: ``method`` (default GFN2-xTB), ``accuracy``, ``electronic_temperature`` (K),
``charge``, ``multiplicity``, ``max_iterations``: passed to ``tblite.ase.TBLite``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.models import ModelFamily

#: GFN2-xTB has parameters for H to Rn (Z = 1..86).
MAX_ATOMIC_NUMBER = 86


def _calculator(model_file: Path | None, options: dict[str, Any]):
    from tblite.ase import TBLite

    settings = {"method": "GFN2-xTB", "verbosity": 0}
    settings.update(options)
    return TBLite(**settings)


def _elements(model_file: Path | None) -> set[str]:
    from ase.data import chemical_symbols

    return set(chemical_symbols[1:MAX_ATOMIC_NUMBER + 1])


FAMILY = ModelFamily(
    name="xtb",
    description="GFN2-xTB via tblite: the reference method (no model file)",
    ase_calculator=_calculator,
    packages=("tblite",),
    requires=("tblite",),
    install_hint="pip install tblite",
    model_elements=_elements,
    options=("method", "accuracy", "electronic_temperature", "charge", "multiplicity",
             "max_iterations", "guess", "mixer_damping", "solvation", "verbosity"),
)
