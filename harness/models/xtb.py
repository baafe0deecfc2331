"""``xtb``: GFN2-xTB through tblite, the reference level of the shipped challenges.

Options: ``method`` (default GFN2-xTB), ``accuracy``, ``electronic_temperature`` (K),
``charge``, ``multiplicity``, ``max_iterations``: passed to ``tblite.ase.TBLite``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from harness.models import ModelFamily

#: GFN2-xTB has parameters for H to Rn (Z = 1..86).
MAX_ATOMIC_NUMBER = 86


#: A structure continues a trajectory the pool holds when no atom moved more than this (A,
#: minimum image) since that trajectory's last call: an MD step moves an atom by hundredths
#: of an Angstrom, two walkers of a ladder differ by far more somewhere.
SAME_TRAJECTORY_A = 0.3
#: Trajectories kept (least recently used dropped beyond): the walkers of a ladder, the
#: replicas of a batched client. Each holds tblite's wavefunction and matrices: negligible
#: for a peptide, tens of MB for a periodic cell of a few hundred atoms.
MAX_TRAJECTORIES = 32


def restart_per_trajectory(make: Any, limit: int = MAX_TRAJECTORIES) -> Any:
    """An ASE calculator holding one tblite calculator per trajectory it is asked about.

    tblite starts each SCC from the previous call's wavefunction. A client that serves several
    trajectories in turn (the walkers of a replica-exchange ladder through one client, the
    replicas of a batched client) would start each call from another trajectory's
    wavefunction. On Challenge I, 8 walkers at 500-1200 K, 0.5 fs steps, one thread, beside
    other work (2026-12-08): 88-93 ms per call with a calculator per walker, 108-130 ms with
    one shared. Each call here goes to the calculator whose last structure it continues
    (:data:`SAME_TRAJECTORY_A`, minimum image), else to a new one (the least recently used
    dropped beyond ``limit``), so every trajectory restarts from its own previous step, and
    one trajectory alone sees exactly what one plain calculator would.

    Parameters
    ----------
    make
        Returns a fresh tblite calculator.
    limit
        Trajectories kept.
    """
    from ase.calculators.calculator import Calculator, all_changes

    class RestartPerTrajectory(Calculator):
        implemented_properties = list(type(make()).implemented_properties)
        #: as tblite's own: with ``cache_api`` False, ``reset()`` drops every wavefunction,
        #: so the next call starts from scratch (single points that must not depend on the
        #: frame evaluated before, ``analysis triage``/``errors``)
        default_parameters = {"cache_api": True}

        def __init__(self) -> None:
            self.pool: list[tuple[np.ndarray, np.ndarray, Any]] = []  # most recent first
            super().__init__()

        def reset(self) -> None:
            super().reset()
            if not self.parameters.get("cache_api", True):
                self.pool.clear()

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            calc = self._pick(self.atoms)
            changes = all_changes if calc.atoms is None else calc.check_state(self.atoms)
            calc.calculate(self.atoms, properties, changes)
            self.results = dict(calc.results)

        def _pick(self, atoms: Any) -> Any:
            numbers, positions = atoms.numbers, atoms.positions
            cell = np.asarray(atoms.cell) if atoms.pbc.any() else None
            best, best_d = None, np.inf
            for k, (nums, pos, _) in enumerate(self.pool):
                if nums.shape == numbers.shape and (nums == numbers).all():
                    d = _largest_displacement(pos, positions, cell)
                    if d < best_d:
                        best, best_d = k, d
            if best is not None and best_d < SAME_TRAJECTORY_A:
                _, _, calc = self.pool.pop(best)
            else:
                calc = make()
                if len(self.pool) >= limit:
                    self.pool.pop()
            self.pool.insert(0, (numbers.copy(), positions.copy(), calc))
            return calc

    return RestartPerTrajectory()


def _largest_displacement(a: np.ndarray, b: np.ndarray, cell: np.ndarray | None) -> float:
    from analysis.framesets import minimum_image

    periodic = cell is not None and abs(np.linalg.det(cell)) > 1e-9
    d = minimum_image(b - a, cell if periodic else None)
    return float(np.sqrt((d * d).sum(axis=1)).max()) if len(d) else 0.0


def _tblite(options: dict[str, Any]):
    from tblite.ase import TBLite

    settings = {"method": "GFN2-xTB", "verbosity": 0}
    settings.update(options)
    return TBLite(**settings)


def _calculator(model_file: Path | None, options: dict[str, Any]):
    return restart_per_trajectory(lambda: _tblite(options))


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
