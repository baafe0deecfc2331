"""Divergences between two probability distributions (histograms), shared by the observables.

Used by the Ramachandran densities and the surface distance distributions; tested against
scipy.spatial.distance.jensenshannon in tests/test_ramachandran.py.
"""

from __future__ import annotations

import numpy as np


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0: identical, 1: disjoint) of two distributions."""
    p = np.asarray(p, float).ravel()
    q = np.asarray(q, float).ravel()
    p = p / p.sum()
    q = q / q.sum()
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return 0.5 * kl(p) + 0.5 * kl(q)


def hellinger(p: np.ndarray, q: np.ndarray) -> float:
    """Hellinger distance (0: identical, 1: disjoint) of two distributions."""
    p = np.asarray(p, float).ravel()
    q = np.asarray(q, float).ravel()
    p = p / p.sum()
    q = q / q.sum()
    return float(np.sqrt(max(0.0, 1.0 - np.sum(np.sqrt(p * q)))))
