"""Orientation of the methylammonium C->N bonds in the lattice frame (TEA 2023, Fig. 4a).

For every MA cation and frame: the unit vector from C to N (minimum image), rotated into
the lattice frame (x along a, y in the a-b plane, z along c for the orthorhombic cells used
here), as the polar angle theta from z and the azimuth phi of its x-y projection from x.
The 2D histogram of (theta, phi) and the participation ratios of the four phi quadrants
(-pi..-pi/2, -pi/2..0, 0..pi/2, pi/2..pi) summarise a trajectory set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis import framesets
from harness.errors import UserError

QUADRANTS = ("-pi..-pi/2", "-pi/2..0", "0..pi/2", "pi/2..pi")
#: C-N pairs are found in the starting structure: the N nearest to each C, within this.
CN_BOND_MAX_ANGSTROM = 1.8


def cn_pairs(numbers: np.ndarray, positions: np.ndarray, cell: np.ndarray | None) -> np.ndarray:
    """(k, 2) indices (C, N) of the cations, from the nearest N of every C.

    Raises
    ------
    UserError
        When a C has no N within 1.8 A or two C share one N.
    """
    carbons = np.nonzero(numbers == 6)[0]
    nitrogens = np.nonzero(numbers == 7)[0]
    if len(carbons) == 0 or len(nitrogens) == 0:
        raise UserError("no C-N bonds (methylammonium) in these trajectories")
    d = np.linalg.norm(framesets.minimum_image(
        positions[nitrogens][None, :] - positions[carbons][:, None], cell), axis=-1)
    nearest = np.argmin(d, axis=1)
    if d[np.arange(len(carbons)), nearest].max() > CN_BOND_MAX_ANGSTROM or \
            len(set(nearest.tolist())) != len(carbons):
        raise UserError("could not pair every C with its own N in the starting structure")
    return np.stack([carbons, nitrogens[nearest]], axis=1)


def angles(positions: np.ndarray, pairs: np.ndarray, cell: np.ndarray | None,
           ) -> tuple[np.ndarray, np.ndarray]:
    """theta (0..pi) and phi (-pi..pi) of the C->N unit vectors, shape (frames, cations).

    Parameters
    ----------
    positions
        (frames, atoms, 3) in A.
    pairs
        (cations, 2) C and N indices.
    cell
        Cell rows (A), or None for no periodicity.
    """
    vec = framesets.minimum_image(positions[:, pairs[:, 1]] - positions[:, pairs[:, 0]], cell)
    if cell is not None:
        vec = vec @ framesets.cell_frame(cell).T
    unit = vec / np.linalg.norm(vec, axis=-1, keepdims=True)
    theta = np.arccos(np.clip(unit[..., 2], -1.0, 1.0))
    phi = np.arctan2(unit[..., 1], unit[..., 0])
    return theta, phi


def quadrant_ratios(phi: np.ndarray) -> np.ndarray:
    """Fractions of phi values in the four quadrants (sum 1); phi = pi goes to the last."""
    edges = np.array([-np.pi, -np.pi / 2, 0.0, np.pi / 2, np.pi])
    counts, _ = np.histogram(np.ravel(phi), bins=edges)
    total = counts.sum()
    return counts / total if total else np.zeros(4)


@dataclass
class Orientation:
    """Result for one group of trajectories."""

    theta: np.ndarray
    phi: np.ndarray
    histogram: np.ndarray
    theta_edges: np.ndarray
    phi_edges: np.ndarray
    quadrants: np.ndarray
    n_samples: int
    n_trajectories: int


def from_files(paths: list[Path], bins: int = 60, every: int = 1,
               skip_ps: float = 0.0) -> Orientation:
    """The C->N orientation distribution over a group of trajectories."""
    thetas, phis = [], []
    for path in paths:
        meta = framesets.info(path)
        pairs = cn_pairs(meta.numbers, meta.start_positions, meta.cell)
        skip = int(round(skip_ps / meta.frame_dt_ps)) if meta.frame_dt_ps > 0 else 0
        atoms = np.unique(pairs)
        local = np.searchsorted(atoms, pairs)
        for k, block in enumerate(framesets.blocks(path, "positions", 8192, every, atoms)):
            if k == 0 and skip:
                block = block[skip // every:]
            theta, phi = angles(block, local, meta.cell)
            thetas.append(theta.ravel())
            phis.append(phi.ravel())
    theta = np.concatenate(thetas) if thetas else np.zeros(0)
    phi = np.concatenate(phis) if phis else np.zeros(0)
    hist, t_edges, p_edges = np.histogram2d(theta, phi, bins=(bins // 2, bins),
                                            range=((0, np.pi), (-np.pi, np.pi)), density=True)
    return Orientation(theta, phi, hist, t_edges, p_edges, quadrant_ratios(phi), len(theta),
                       len(paths))


def plot(result: Orientation, ax=None, title: str = ""):
    """(phi, theta) density with quadrant ratios written at their maxima, like Fig. 4a."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    ax.pcolormesh(result.phi_edges, result.theta_edges, result.histogram, cmap="viridis",
                  shading="flat")
    centres_phi = 0.5 * (result.phi_edges[1:] + result.phi_edges[:-1])
    centres_theta = 0.5 * (result.theta_edges[1:] + result.theta_edges[:-1])
    for q in range(4):
        cols = np.nonzero((centres_phi >= -np.pi + q * np.pi / 2)
                          & (centres_phi < -np.pi / 2 + q * np.pi / 2))[0]
        sub = result.histogram[:, cols]
        if sub.size == 0:
            continue
        it, ip = np.unravel_index(np.argmax(sub), sub.shape)
        ax.text(centres_phi[cols[ip]], centres_theta[it], f"{result.quadrants[q]:.2f}",
                color="white", ha="center", va="center", fontsize=9, weight="bold")
    for x in (-np.pi / 2, 0, np.pi / 2):
        ax.axvline(x, color="white", lw=0.5, alpha=0.5)
    ax.set_xlabel(r"$\phi$ (rad)")
    ax.set_ylabel(r"$\theta$ (rad)")
    ax.set_xlim(-np.pi, np.pi)
    ax.set_ylim(np.pi, 0)
    if title:
        ax.set_title(title, fontsize=9)
    return ax
