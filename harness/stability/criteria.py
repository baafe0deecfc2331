"""Stability criteria of TEA 2023 and of other MLFF benchmarks, one class each.

====================  ===================================================  ===============
criterion             breaks when                                          from
====================  ===================================================  ===============
``bond_break``        a bond of the starting structure exceeds its         TEA 2023
                      threshold (2 A organic, 4.3 A Pb-I; challenge.toml)
``atom_collapse``     two atoms closer than 0.5 A                          TEA 2023
``non_finite``        NaN/inf in positions, forces or energy               TEA 2023
``temperature``       T > target + 10,000 K, or T jumps 100x between       MLIPAudit
                      frames, or T is not finite
``bond_deviation``    a bond deviates > 0.5 A from its reference length    MDsim
``h_detached``        an H atom is > 2.5 A from every heavy atom           MLIPAudit
``max_force``         an atom feels |F| > 100 eV/A                         mlipx
``energy_drift``      the conserved energy drifts > 1 meV/atom/ps after     LAMBench
                      the first 20% (whole trajectory, after the run)
====================  ===================================================  ===============

Criteria are deterministic functions of one frame (``temperature`` also of the previous
frame), so re-evaluating a stored trajectory reproduces what the watchdog saw.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from ase.data import chemical_symbols, covalent_radii

if TYPE_CHECKING:  # SciPy costs ~0.5 s of CPU to import: only where a tree is built
    from scipy.spatial import cKDTree

#: Bond if d < BOND_FACTOR * (r_cov_i + r_cov_j) in the starting structure (C-H: 1.28 A).
BOND_FACTOR = 1.2


@dataclass(frozen=True)
class Frame:
    """What a criterion may look at (internal units: Angstrom, eV, eV/A, K, ps)."""

    step: int
    time_ps: float
    positions: np.ndarray
    forces: np.ndarray | None = None
    energy: float | None = None
    temperature: float | None = None


@dataclass(frozen=True)
class Event:
    """The first sign of a broken run."""

    kind: str
    step: int
    time_ps: float
    message: str
    atoms: list[int] = field(default_factory=list)
    elements: list[str] = field(default_factory=list)
    distance_angstrom: float | None = None
    value: float | None = None
    count: int = 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @property
    def label(self) -> str:
        """E.g. ``C-N (12-15)`` for a bond, the kind otherwise."""
        if len(self.atoms) == 2 and len(self.elements) == 2:
            return f"{self.elements[0]}-{self.elements[1]} ({self.atoms[0]}-{self.atoms[1]})"
        return self.kind


class Geometry:
    """Atoms, cell and minimum-image distances shared by the criteria."""

    def __init__(self, numbers: np.ndarray, cell: np.ndarray | None = None):
        self.numbers = np.asarray(numbers, dtype=int)
        self.symbols = [chemical_symbols[z] for z in self.numbers]
        self.cell = None if cell is None else np.asarray(cell, dtype=float)
        self.inv_cell = None if self.cell is None else np.linalg.inv(self.cell)
        self.orthorhombic = self.cell is not None and np.allclose(self.cell,
                                                                  np.diag(np.diag(self.cell)))

    def vectors(self, positions: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Minimum-image vectors r_j - r_i."""
        d = positions[j] - positions[i]
        if self.cell is not None:
            frac = d @ self.inv_cell
            frac -= np.round(frac)
            d = frac @ self.cell
        return d

    def tree(self, positions: np.ndarray, subset: np.ndarray | None = None) -> cKDTree:
        """A k-d tree (periodic when the cell is orthorhombic): O(N log N) neighbour search."""
        from scipy.spatial import cKDTree

        pts = positions if subset is None else positions[subset]
        if self.orthorhombic:
            box = np.diag(self.cell)
            wrapped = np.mod(pts, box)
            # np.mod(-1e-17, L) rounds to L itself, which cKDTree refuses (atoms on a face)
            wrapped[wrapped >= box] = 0.0
            return cKDTree(wrapped, boxsize=box)
        return cKDTree(pts)

    def pair(self, i: int, j: int) -> tuple[list[int], list[str]]:
        """Atom indices and elements of a pair, lower index first."""
        a, b = sorted((int(i), int(j)))
        return [a, b], [self.symbols[a], self.symbols[b]]


def bond_topology(geom: Geometry, positions: np.ndarray) -> np.ndarray:
    """Bonded pairs (k, 2) of a structure from covalent radii (d < 1.2 (r_i + r_j))."""
    radii = covalent_radii[geom.numbers]
    cutoff = BOND_FACTOR * 2 * radii.max()
    pairs = np.array(sorted(geom.tree(positions).query_pairs(cutoff)), dtype=int).reshape(-1, 2)
    if len(pairs) == 0:
        return pairs
    dist = np.linalg.norm(geom.vectors(positions, pairs[:, 0], pairs[:, 1]), axis=1)
    return pairs[dist < BOND_FACTOR * (radii[pairs[:, 0]] + radii[pairs[:, 1]])]


class BondBreak:
    """A bond of the starting structure longer than its threshold (TEA 2023)."""

    name = "bond_break"

    def __init__(self, geom: Geometry, bonds: np.ndarray, default_angstrom: float = 2.0,
                 pair_thresholds: dict[str, float] | None = None):
        self.geom, self.bonds = geom, bonds
        thresholds = np.full(len(bonds), float(default_angstrom))
        for key, value in (pair_thresholds or {}).items():
            a, b = key.split("-")
            for k, (i, j) in enumerate(bonds):
                if {geom.symbols[i], geom.symbols[j]} == {a, b}:
                    thresholds[k] = float(value)
        self.thresholds = thresholds

    def check(self, frame: Frame) -> Event | None:
        if len(self.bonds) == 0:
            return None
        d = np.linalg.norm(self.geom.vectors(frame.positions, self.bonds[:, 0],
                                             self.bonds[:, 1]), axis=1)
        broken = np.nonzero(d > self.thresholds)[0]
        if len(broken) == 0:
            return None
        worst = broken[np.argmax(d[broken] - self.thresholds[broken])]
        atoms, elements = self.geom.pair(*self.bonds[worst])
        return Event("bond_break", frame.step, frame.time_ps,
                     f"bond {elements[0]}-{elements[1]} ({atoms[0]}-{atoms[1]}) stretched to "
                     f"{d[worst]:.2f} A > {self.thresholds[worst]:g} A"
                     + (f"; {len(broken)} bonds broken at once" if len(broken) > 1 else ""),
                     atoms, elements, float(d[worst]), count=len(broken))


class BondDeviation(BondBreak):
    """A bond more than 0.5 A away from its reference length (MDsim, 'Forces are not enough')."""

    name = "bond_deviation"

    def __init__(self, geom: Geometry, bonds: np.ndarray, reference: np.ndarray,
                 max_deviation_angstrom: float = 0.5):
        super().__init__(geom, bonds)
        self.reference = np.linalg.norm(geom.vectors(reference, bonds[:, 0], bonds[:, 1]), axis=1)
        self.max_dev = float(max_deviation_angstrom)

    def check(self, frame: Frame) -> Event | None:
        if len(self.bonds) == 0:
            return None
        d = np.linalg.norm(self.geom.vectors(frame.positions, self.bonds[:, 0],
                                             self.bonds[:, 1]), axis=1)
        dev = np.abs(d - self.reference)
        k = int(np.argmax(dev))
        if dev[k] <= self.max_dev:
            return None
        atoms, elements = self.geom.pair(*self.bonds[k])
        return Event(self.name, frame.step, frame.time_ps,
                     f"bond {elements[0]}-{elements[1]} ({atoms[0]}-{atoms[1]}) is {d[k]:.2f} A, "
                     f"{dev[k]:.2f} A from its reference {self.reference[k]:.2f} A",
                     atoms, elements, float(d[k]), value=float(dev[k]),
                     count=int(np.sum(dev > self.max_dev)))


class AtomCollapse:
    """Two atoms closer than ``min_distance_angstrom`` (0.5 A)."""

    name = "atom_collapse"

    def __init__(self, geom: Geometry, min_distance_angstrom: float = 0.5):
        self.geom, self.min_d = geom, float(min_distance_angstrom)

    def check(self, frame: Frame) -> Event | None:
        pairs = self.geom.tree(frame.positions).query_pairs(self.min_d, output_type="ndarray")
        if len(pairs) == 0:
            return None
        d = np.linalg.norm(self.geom.vectors(frame.positions, pairs[:, 0], pairs[:, 1]), axis=1)
        k = int(np.argmin(d))
        atoms, elements = self.geom.pair(*pairs[k])
        return Event(self.name, frame.step, frame.time_ps,
                     f"atoms {elements[0]}{atoms[0]} and {elements[1]}{atoms[1]} collapsed to "
                     f"{d[k]:.2f} A < {self.min_d:g} A", atoms, elements, float(d[k]),
                     count=len(pairs))


class HDetached:
    """An H atom farther than 2.5 A from every heavy atom (MLIPAudit)."""

    name = "h_detached"

    def __init__(self, geom: Geometry, max_distance_angstrom: float = 2.5):
        self.geom, self.max_d = geom, float(max_distance_angstrom)
        self.h = np.nonzero(geom.numbers == 1)[0]
        self.heavy = np.nonzero(geom.numbers > 1)[0]

    def check(self, frame: Frame) -> Event | None:
        if len(self.h) == 0 or len(self.heavy) == 0:
            return None
        tree = self.geom.tree(frame.positions, self.heavy)
        pts = frame.positions[self.h]
        if self.geom.orthorhombic:
            pts = np.mod(pts, np.diag(self.geom.cell))
        dist, idx = tree.query(pts, k=1)
        far = np.nonzero(dist > self.max_d)[0]
        if len(far) == 0:
            return None
        k = far[np.argmax(dist[far])]
        atoms, elements = self.geom.pair(self.h[k], self.heavy[idx[k]])
        return Event(self.name, frame.step, frame.time_ps,
                     f"H{self.h[k]} is {dist[k]:.2f} A from the nearest heavy atom "
                     f"(> {self.max_d:g} A)", atoms, elements, float(dist[k]), count=len(far))


class NonFinite:
    """NaN or inf in positions, forces or energy."""

    name = "non_finite"

    def __init__(self, geom: Geometry):
        self.geom = geom

    def check(self, frame: Frame) -> Event | None:
        for label, values in (("positions", frame.positions), ("forces", frame.forces)):
            # a sum is finite only if every element is (fast path, runs every step)
            if values is not None and not math.isfinite(float(values.sum())):
                bad = np.unique(np.nonzero(~np.isfinite(values))[0])
                return Event(self.name, frame.step, frame.time_ps,
                             f"non-finite {label} on {len(bad)} atoms", bad[:10].tolist(),
                             [self.geom.symbols[i] for i in bad[:10]], count=len(bad))
        if frame.energy is not None and not math.isfinite(frame.energy):
            return Event(self.name, frame.step, frame.time_ps, "non-finite potential energy")
        return None


class MaxForce:
    """An atom with |F| above 100 eV/A (mlipx)."""

    name = "max_force"

    def __init__(self, geom: Geometry, max_force_ev_per_angstrom: float = 100.0):
        self.geom, self.max_f = geom, float(max_force_ev_per_angstrom)

    def check(self, frame: Frame) -> Event | None:
        if frame.forces is None:
            return None
        norms = np.linalg.norm(frame.forces, axis=1)
        k = int(np.argmax(norms))
        if not norms[k] > self.max_f:
            return None
        return Event(self.name, frame.step, frame.time_ps,
                     f"|F| on {self.geom.symbols[k]}{k} is {norms[k]:.3g} eV/A > {self.max_f:g}",
                     [k], [self.geom.symbols[k]], value=float(norms[k]),
                     count=int(np.sum(norms > self.max_f)))


class Temperature:
    """T above target + 10,000 K, a 100x jump between frames, or non-finite (MLIPAudit)."""

    name = "temperature"

    def __init__(self, target_K: float, max_excess_K: float = 10_000.0, max_jump: float = 100.0):
        self.target, self.excess, self.jump = float(target_K), float(max_excess_K), float(max_jump)
        self.previous: float | None = None

    def check(self, frame: Frame) -> Event | None:
        temp = frame.temperature
        if temp is None:
            return None
        previous, self.previous = self.previous, temp
        if not math.isfinite(temp):
            return Event(self.name, frame.step, frame.time_ps, "temperature is not finite",
                         value=temp)
        if temp > self.target + self.excess:
            return Event(self.name, frame.step, frame.time_ps,
                         f"temperature {temp:.0f} K > target + {self.excess:g} K", value=temp)
        if previous is not None and previous > 0 and temp > self.jump * previous:
            return Event(self.name, frame.step, frame.time_ps,
                         f"temperature jumped {temp / previous:.0f}x to {temp:.0f} K", value=temp)
        return None


#: LAMBench's convention: the first fifth of a run is equilibration, left out of the fit.
DRIFT_DISCARD_FRACTION = 0.2
#: Default limit of the drift (meV/atom/ps). A velocity-Verlet run of a conservative model at
#: a sound time step drifts orders of magnitude less (the isotropic well at 0.25 fs:
#: below 1e-3, tests/test_drift.py); 1 meV/atom/ps over 1 ns is 1 eV/atom, far more than any
#: barrier the challenges probe, so a model or time step above it does not conserve energy.
DRIFT_LIMIT_MEV_PER_ATOM_PS = 1.0
#: Fewest frames the fit needs after the discarded part.
DRIFT_MIN_FRAMES = 3


def drift_mev_per_atom_ps(times_ps: np.ndarray, conserved_ev: np.ndarray, n_atoms: int,
                          discard_fraction: float = DRIFT_DISCARD_FRACTION) -> float | None:
    """Slope of the conserved energy in meV/atom/ps (LAMBench's convention).

    A least-squares line through i-PI's conserved quantity against time, after leaving out
    the first ``discard_fraction`` of the run's time span; non-finite values are left out.
    i-PI's ``conserved`` is the total energy plus the heat the thermostat exchanged (and the
    kinetic energy the centre-of-mass fix removed), so it is flat in NVT as in NVE when the
    forces are conservative and the time step is sound.

    Returns
    -------
    float or None
        The slope, or None when fewer than :data:`DRIFT_MIN_FRAMES` frames remain.
    """
    times = np.asarray(times_ps, dtype=float)
    energy = np.asarray(conserved_ev, dtype=float)
    if len(times) == 0:
        return None
    cut = times[0] + discard_fraction * (times[-1] - times[0])
    keep = (times >= cut) & np.isfinite(energy) & np.isfinite(times)
    if np.count_nonzero(keep) < DRIFT_MIN_FRAMES or np.ptp(times[keep]) <= 0:
        return None
    t, e = times[keep], energy[keep]
    # centred fit: the energies are large (-1767 eV) and the slopes tiny
    t = t - t.mean()
    slope = float(np.dot(t, e - e.mean()) / np.dot(t, t))
    return slope * 1000.0 / n_atoms


def energy_drift(times_ps: np.ndarray, conserved_ev: np.ndarray, n_atoms: int, step_ps: float,
                 max_mev_per_atom_ps: float = DRIFT_LIMIT_MEV_PER_ATOM_PS,
                 discard_fraction: float = DRIFT_DISCARD_FRACTION) -> Event | None:
    """Drift of the conserved energy (LAMBench-style; a whole-trajectory criterion).

    The slope of :func:`drift_mev_per_atom_ps` (first 20% of the run left out), flagged when
    its magnitude exceeds ``max_mev_per_atom_ps``. The event is placed at the last frame.
    """
    slope = drift_mev_per_atom_ps(times_ps, conserved_ev, n_atoms, discard_fraction)
    if slope is None or abs(slope) <= max_mev_per_atom_ps:
        return None
    return Event("energy_drift", int(round(times_ps[-1] / step_ps)), float(times_ps[-1]),
                 drift_reason(slope, max_mev_per_atom_ps), value=float(slope))


def drift_reason(slope: float, max_mev_per_atom_ps: float = DRIFT_LIMIT_MEV_PER_ATOM_PS) -> str:
    """Why a drift is flagged, in words."""
    return (f"conserved energy drifts {slope:.3g} meV/atom/ps, beyond the limit of "
            f"{max_mev_per_atom_ps:g} meV/atom/ps (fit after the first "
            f"{DRIFT_DISCARD_FRACTION:.0%} of the run)")
