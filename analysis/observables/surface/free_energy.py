"""Free-energy profile F(D) of the molecule-surface distance, two independent ways.

* Histogram: F(D) = -kT ln P(D) + const. D is a height above a plane, so the accessible volume
  at each D is the same (the cell's area times dD): no Jacobian term, unlike a radial distance.
* Thermodynamic integration of the mean force: dF/dD = -<F_D | D>, with F_D the force
  conjugate to D. D = n.(R_mol - R_sheet) (centre of mass of the molecule minus centroid of
  the sheet, all sheet atoms of equal mass); with the total centre of mass as the other
  coordinate, F_D = (M_sheet F_mol - M_mol F_sheet) / M . n, where F_mol and F_sheet are the
  summed forces on the two groups. For a translation-invariant model F_sheet = -F_mol and
  F_D = F_mol . n. F(D) = -integral <F_D> dD (trapezoid over bins with enough samples).

Both give F up to a constant; profiles are shifted so that their minimum is zero. The
adsorption free energy is the depth: F at the far end of the sampled range minus the minimum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.units import KB_EV_PER_K

#: Bins with fewer samples than this are left out of the mean-force integration.
MIN_SAMPLES_PER_BIN = 20


@dataclass
class Profile:
    """F(D) on bin centres (Angstrom, eV); NaN where the data do not reach."""

    centres: np.ndarray
    free_energy: np.ndarray
    counts: np.ndarray
    temperature_K: float
    method: str

    def depth(self) -> tuple[float, float] | None:
        """(adsorption free energy in eV, D where it is read): F at the farthest sampled D
        minus the minimum; None without at least two defined bins."""
        ok = np.flatnonzero(np.isfinite(self.free_energy))
        if ok.size < 2:
            return None
        far = ok[-1]
        return float(self.free_energy[far] - np.nanmin(self.free_energy)), float(self.centres[far])

    def to_dict(self) -> dict:
        """JSON-ready form (NaN as None)."""
        return {"method": self.method, "temperature_K": self.temperature_K,
                "D_angstrom": self.centres.tolist(),
                "F_eV": [None if not np.isfinite(v) else float(v) for v in self.free_energy],
                "counts": self.counts.astype(int).tolist()}


def bin_edges(lo: float, hi: float, width: float) -> np.ndarray:
    """Edges from ``lo`` to at least ``hi`` in steps of ``width`` (Angstrom)."""
    n = max(1, int(np.ceil((hi - lo) / width - 1e-9)))
    return lo + width * np.arange(n + 1)


def histogram_profile(distance: np.ndarray, temperature_K: float, edges: np.ndarray) -> Profile:
    """F(D) = -kT ln P(D), zero at its minimum; NaN in empty bins."""
    counts, _ = np.histogram(distance, bins=edges)
    kt = KB_EV_PER_K * temperature_K
    with np.errstate(divide="ignore"):
        free = -kt * np.log(counts / max(counts.sum(), 1) / np.diff(edges))
    free[counts == 0] = np.nan
    if np.isfinite(free).any():
        free -= np.nanmin(free)
    return Profile(0.5 * (edges[1:] + edges[:-1]), free, counts, temperature_K, "histogram")


def conjugate_force(forces: np.ndarray, masses: np.ndarray, molecule: np.ndarray,
                    surface: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """F_D per frame (eV/A): forces (F, N, 3), masses (N,), index arrays, normal (F, 3)."""
    m_mol = masses[molecule].sum()
    m_sheet = masses[surface].sum()
    f_mol = forces[:, molecule].sum(axis=1)
    f_sheet = forces[:, surface].sum(axis=1)
    total = (m_sheet * f_mol - m_mol * f_sheet) / (m_mol + m_sheet)
    return np.einsum("fk,fk->f", total, normal)


def mean_force_profile(distance: np.ndarray, force: np.ndarray, temperature_K: float,
                       edges: np.ndarray, min_samples: int = MIN_SAMPLES_PER_BIN) -> Profile:
    """F(D) by integrating the binned mean force over the longest run of well-sampled bins."""
    counts, _ = np.histogram(distance, bins=edges)
    sums, _ = np.histogram(distance, bins=edges, weights=force)
    centres = 0.5 * (edges[1:] + edges[:-1])
    free = np.full(centres.shape, np.nan)
    good = counts >= min_samples
    best, start = (0, 0), None
    for i, flag in enumerate(np.append(good, False)):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            if i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    lo, hi = best
    if hi - lo >= 2:
        mean = sums[lo:hi] / counts[lo:hi]
        steps = -0.5 * (mean[1:] + mean[:-1]) * np.diff(centres[lo:hi])
        free[lo:hi] = np.concatenate([[0.0], np.cumsum(steps)])
        free -= np.nanmin(free)
    return Profile(centres, free, counts, temperature_K, "mean force")


def spring_constant(profile: Profile, window_eV: float | None = None) -> tuple[float, float]:
    """Least-squares parabola F = k/2 (D - D0)^2 + c near the minimum: (k in eV/A^2, D0 in A).

    Bins up to ``window_eV`` above the minimum are used (default 2 kT), weighted by their
    counts, which is the inverse variance of -kT ln(count) up to a constant.
    """
    kt = KB_EV_PER_K * profile.temperature_K
    window = 2.0 * kt if window_eV is None else window_eV
    ok = np.isfinite(profile.free_energy) & (profile.free_energy <= window)
    x, y, w = profile.centres[ok], profile.free_energy[ok], profile.counts[ok].astype(float)
    coeff = np.polyfit(x, y, 2, w=np.sqrt(w))
    return float(2 * coeff[0]), float(-coeff[1] / (2 * coeff[0]))
