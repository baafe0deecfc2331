"""Points on the torus of two angles (degrees): periodic DBSCAN, densities, divergences.

Every distance here is the Euclidean distance with the minimum-image convention on both
angles, ``sqrt(dphi^2 + dpsi^2)`` with ``d = min(|a - b| mod 360, 360 - |a - b| mod 360)``, so a
basin that straddles +-180 degrees is one basin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PERIOD_DEG = 360.0


def wrap(angles_deg: np.ndarray) -> np.ndarray:
    """Angles mapped to [0, 360) (the box of the periodic k-d tree)."""
    out = np.mod(np.asarray(angles_deg, dtype=np.float64), PERIOD_DEG)
    out[out >= PERIOD_DEG] = 0.0  # mod of tiny negatives can round up to 360
    return out


def torus_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Minimum-image Euclidean distance between angle vectors in degrees (last axis)."""
    d = np.abs(np.asarray(a, float) - np.asarray(b, float)) % PERIOD_DEG
    d = np.minimum(d, PERIOD_DEG - d)
    return np.sqrt(np.sum(d * d, axis=-1))


def circular_mean(angles_deg: np.ndarray) -> np.ndarray:
    """Circular mean of each column, in (-180, 180]."""
    rad = np.radians(np.asarray(angles_deg, float))
    return np.degrees(np.arctan2(np.sin(rad).mean(axis=0), np.cos(rad).mean(axis=0)))


def periodic_dbscan(points_deg: np.ndarray, eps_deg: float, min_samples: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's DBSCAN with the periodic distance, through a sparse neighbour graph.

    The eps-neighbourhoods come from a k-d tree with periodic box (``scipy.spatial.cKDTree``
    with ``boxsize=360``); DBSCAN runs on them as a precomputed sparse distance matrix, so its
    core/border/noise rules are scikit-learn's own.

    Returns
    -------
    labels, core_indices
        Cluster label per point (-1: noise; numbered as scikit-learn numbers them) and the
        indices of the core samples.
    """
    from scipy.spatial import cKDTree
    from sklearn.cluster import DBSCAN

    if not 0 < eps_deg < PERIOD_DEG / 2:
        raise ValueError(f"eps must be in (0, 180) degrees, got {eps_deg}")
    pts = wrap(points_deg)
    if len(pts) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    tree = cKDTree(pts, boxsize=PERIOD_DEG)
    graph = tree.sparse_distance_matrix(tree, eps_deg, output_type="coo_matrix").tocsr()
    db = DBSCAN(eps=eps_deg, min_samples=min_samples, metric="precomputed").fit(graph)
    return db.labels_.astype(np.int64), np.asarray(db.core_sample_indices_, dtype=np.int64)


def assign_to_cores(points_deg: np.ndarray, core_points_deg: np.ndarray,
                    core_labels: np.ndarray, eps_deg: float,
                    chunk: int = 1_000_000) -> np.ndarray:
    """Label each point like its nearest core point within eps (DBSCAN's border rule), else -1."""
    from scipy.spatial import cKDTree

    out = np.full(len(points_deg), -1, dtype=np.int64)
    if len(core_points_deg) == 0:
        return out
    tree = cKDTree(wrap(core_points_deg), boxsize=PERIOD_DEG)
    for start in range(0, len(points_deg), chunk):
        block = wrap(points_deg[start:start + chunk])
        dist, idx = tree.query(block, k=1, distance_upper_bound=eps_deg)
        hit = np.isfinite(dist)
        out[start:start + chunk][hit] = core_labels[idx[hit]]
    return out


@dataclass
class Clustering:
    """DBSCAN labels of every point and what was needed to get them."""

    labels: np.ndarray
    min_samples: int
    n_clustered: int
    subsampled: bool


def cluster(points_deg: np.ndarray, eps_deg: float, min_samples: int | None,
            min_fraction: float, max_points: int, seed: int = 0) -> Clustering:
    """Periodic DBSCAN on all points, or on a random subsample with the rest assigned.

    DBSCAN's memory grows with points x neighbours, so above ``max_points`` points it runs on
    a reproducible random subsample and every other point takes the label of its nearest core
    sample within eps. ``min_samples=None`` means ``max(5, round(min_fraction * n))`` for the
    ``n`` points DBSCAN sees, so the density threshold does not depend on trajectory length.
    """
    n = len(points_deg)
    subsampled = n > max_points
    if subsampled:
        rng = np.random.default_rng(seed)
        sub = np.sort(rng.choice(n, size=max_points, replace=False))
    else:
        sub = np.arange(n)
    resolved = int(min_samples) if min_samples else max(5, int(round(min_fraction * len(sub))))
    labels_sub, core = periodic_dbscan(points_deg[sub], eps_deg, resolved)
    if not subsampled:
        return Clustering(labels_sub, resolved, len(sub), False)
    labels = assign_to_cores(points_deg, points_deg[sub][core], labels_sub[core], eps_deg)
    labels[sub] = labels_sub
    return Clustering(labels, resolved, len(sub), True)


def density(points_deg: np.ndarray, bins: int, smooth_bins: float = 0.0) -> np.ndarray:
    """Probability per bin on a bins x bins grid over [-180, 180)^2, optionally smoothed.

    Smoothing is a Gaussian of ``smooth_bins`` bins with periodic (wrap) boundaries.
    Rows index the first angle, columns the second.
    """
    pts = np.asarray(points_deg, float)
    shifted = wrap(pts + 180.0) - 180.0
    hist, _, _ = np.histogram2d(shifted[:, 0], shifted[:, 1], bins=bins,
                                range=[[-180.0, 180.0], [-180.0, 180.0]])
    if smooth_bins > 0:
        from scipy.ndimage import gaussian_filter

        hist = gaussian_filter(hist, smooth_bins, mode="wrap")
    total = hist.sum()
    return hist / total if total > 0 else hist
