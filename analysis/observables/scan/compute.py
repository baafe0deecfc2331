"""Molecule-surface interaction-energy scan along the surface normal (TEA 2023 Fig. 3b).

From a structure relaxed with the model, the molecule is moved rigidly along the normal of the
averaged sheet plane so that its centre of mass sits at D = d_min, d_min + step, ..., d_max
(0.1 A steps by default) and the model's energy is evaluated at each point, in increasing D,
with one calculator (as an MD would call it). Energies are reported relative to the lowest
one with 3 A <= D <= 4 A (the paper's zero, because some models misbehave far out), together
with the value at D = 8 A and at infinite separation: E(sheet alone) + E(molecule alone),
each in the same periodic cell, with fresh calculators.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis.observables.surface.geometry import SurfaceGroups, analyse
from harness.errors import UserError

#: The window whose lowest energy is the zero of every profile (Angstrom).
ZERO_WINDOW_ANGSTROM = (3.0, 4.0)
#: The distance at which models are compared in the paper (beyond typical MLFF cut-offs).
PROBE_ANGSTROM = 8.0


@dataclass
class ScanResult:
    """One model's scan: absolute energies (eV) on the grid and the derived numbers."""

    model: str
    distances: list[float]
    energies: list[float]
    separated_energy: float
    relaxed_D: float
    relax_steps: int
    relax_converged: bool
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def zero(self) -> float:
        """The lowest energy with D in :data:`ZERO_WINDOW_ANGSTROM`."""
        d = np.asarray(self.distances)
        inside = (d >= ZERO_WINDOW_ANGSTROM[0] - 1e-9) & (d <= ZERO_WINDOW_ANGSTROM[1] + 1e-9)
        if not inside.any():
            raise UserError("the scan grid does not reach 3-4 A: widen --d-min/--d-max")
        return float(np.min(np.asarray(self.energies)[inside]))

    def relative(self) -> np.ndarray:
        """Delta U(D) = E(D) - zero, eV."""
        return np.asarray(self.energies) - self.zero

    def at(self, distance: float) -> float | None:
        """Delta U at a grid distance (None when the grid misses it)."""
        d = np.asarray(self.distances)
        hit = np.flatnonzero(np.abs(d - distance) < 1e-6)
        return float(self.relative()[hit[0]]) if hit.size else None

    def summary(self) -> dict[str, Any]:
        """The numbers a table shows (eV)."""
        rel = self.relative()
        d = np.asarray(self.distances)
        inside = (d >= ZERO_WINDOW_ANGSTROM[0] - 1e-9) & (d <= ZERO_WINDOW_ANGSTROM[1] + 1e-9)
        return {"model": self.model, "D_min_angstrom": float(d[inside][np.argmin(rel[inside])]),
                "dU_8A_eV": self.at(PROBE_ANGSTROM),
                "dU_far_eV": float(rel[-1]), "D_far_angstrom": float(d[-1]),
                "dU_infinite_eV": self.separated_energy - self.zero,
                "relaxed_D_angstrom": self.relaxed_D}

    def to_json(self) -> str:
        """JSON text of the scan."""
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> ScanResult:
        """Read a scan written by :meth:`to_json`."""
        return cls(**json.loads(text))


def grid(d_min: float, d_max: float, step: float) -> np.ndarray:
    """Distances d_min, d_min + step, ... up to d_max inclusive, rounded to 1e-9 A."""
    if not (0 < step and 0 < d_min < d_max):
        raise UserError(f"scan grid {d_min}..{d_max} step {step}: give 0 < d-min < d-max and "
                        "a positive step (Angstrom)")
    n = int(np.floor((d_max - d_min) / step + 1e-9))
    return np.round(d_min + step * np.arange(n + 1), 9)


def displaced(atoms, groups: SurfaceGroups, distance: float) -> np.ndarray:
    """Positions with the molecule moved rigidly along the sheet normal to height ``distance``."""
    geo = analyse(atoms.positions, atoms.numbers, groups, _cell(atoms))
    shift = (distance - geo["D"][0]) * geo["normal"][0]
    out = atoms.positions.copy()
    out[groups.molecule] += shift
    return out


def _cell(atoms) -> np.ndarray | None:
    return np.asarray(atoms.cell) if atoms.pbc.any() else None


def energies_along(atoms, groups: SurfaceGroups, calculator, distances: np.ndarray,
                   progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Energies (eV) of the rigid displacements, evaluated in the given order with one
    calculator. ``atoms`` is not modified."""
    work = atoms.copy()
    work.calc = calculator
    out = np.empty(len(distances))
    for i, distance in enumerate(distances):
        work.positions = displaced(atoms, groups, float(distance))
        out[i] = work.get_potential_energy()
        if progress is not None:
            progress(i + 1, len(distances))
    return out


def separated_energy(atoms, groups: SurfaceGroups, make_calculator: Callable[[], Any]) -> float:
    """E(sheet alone) + E(molecule alone), each in the cell of ``atoms``, fresh calculators."""
    total = 0.0
    for indices in (groups.surface, groups.molecule):
        part = atoms[list(map(int, indices))]
        part.calc = make_calculator()
        total += float(part.get_potential_energy())
    return total


def relax(atoms, calculator, fmax: float, max_steps: int) -> tuple[int, bool]:
    """BFGS relaxation in place (cell fixed); returns steps and convergence."""
    if max_steps <= 0:
        return 0, False
    from ase.optimize import BFGS

    atoms.calc = calculator
    opt = BFGS(atoms, logfile=None, maxstep=0.1)
    converged = bool(opt.run(fmax=fmax, steps=max_steps))
    return int(opt.nsteps), converged


def _print_progress(label: str) -> Callable[[int, int], None]:
    t0 = time.perf_counter()

    def show(done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            rate = (time.perf_counter() - t0) / done
            print(f"  {label}: {done}/{total} points, {rate:.2f} s each, "
                  f"{rate * (total - done):.0f} s left", file=sys.stderr, flush=True)

    return show


def run_scan(atoms, groups: SurfaceGroups, make_calculator: Callable[[], Any], model: str,
             distances: np.ndarray, fmax: float = 0.05, max_relax_steps: int = 200,
             verbose: bool = False) -> ScanResult:
    """Relax ``atoms`` (a copy) with the model, scan, and compute the separated energy."""
    work = atoms.copy()
    calculator = make_calculator()
    t0 = time.perf_counter()
    steps, converged = relax(work, calculator, fmax, max_relax_steps)
    if verbose:
        print(f"  {model}: relaxed in {steps} steps (converged {converged}, "
              f"{time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    relaxed_d = float(analyse(work.positions, work.numbers, groups, _cell(work))["D"][0])
    work.calc = None
    energies = energies_along(work, groups, calculator, distances,
                              _print_progress(model) if verbose else None)
    return ScanResult(model=model, distances=[float(d) for d in distances],
                      energies=[float(e) for e in energies],
                      separated_energy=separated_energy(work, groups, make_calculator),
                      relaxed_D=relaxed_d, relax_steps=steps, relax_converged=converged,
                      settings={"fmax_eV_per_A": fmax, "max_relax_steps": max_relax_steps,
                                "step_angstrom": float(np.round(distances[1] - distances[0], 9))
                                if len(distances) > 1 else None})


def load_scans(folder: Path) -> list[ScanResult]:
    """Every ``scan-*.json`` in a folder, sorted by model."""
    scans = [ScanResult.from_json(p.read_text()) for p in sorted(folder.glob("scan-*.json"))]
    return sorted(scans, key=lambda s: s.model)


def plot(scans: list[ScanResult], ax=None, reference: str | None = None):
    """Delta U(D) of every scan on one axes, dashed lines at infinite separation; returns ax.

    With ``reference`` (a model name among the scans), the difference model - reference at
    8 A is written above the curves, as in the paper's Fig. 3b.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.2))
    ref = next((s for s in scans if s.model == reference), None)
    for k, scan in enumerate(scans):
        colour = f"C{k}"
        ax.plot(scan.distances, scan.relative(), color=colour, label=scan.model)
        ax.axhline(scan.separated_energy - scan.zero, color=colour, lw=0.8, ls="--")
        if ref is not None and scan is not ref and scan.at(PROBE_ANGSTROM) is not None \
                and ref.at(PROBE_ANGSTROM) is not None:
            diff = scan.at(PROBE_ANGSTROM) - ref.at(PROBE_ANGSTROM)
            ax.annotate(f"{diff:+.3f}", (PROBE_ANGSTROM, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(0, -12 * (k + 1)), textcoords="offset points", color=colour,
                        ha="center", fontsize=8)
    ax.axvline(PROBE_ANGSTROM, color="grey", lw=0.5)
    ax.set_xlabel("D, molecule centre of mass above the sheet plane (Å)")
    ax.set_ylabel("ΔU (eV), zero at the minimum in 3-4 Å")
    top = max(float(np.max(s.separated_energy - s.zero)) for s in scans) if scans else 1.0
    ax.set_ylim(-0.05 * top - 0.05, 1.6 * top + 0.1)
    ax.legend(title="dashed: infinite separation", fontsize=8)
    return ax
