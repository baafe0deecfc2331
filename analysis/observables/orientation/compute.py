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
from analysis.framesets import FrameSelection
from harness.errors import UserError

QUADRANTS = ("-pi..-pi/2", "-pi/2..0", "0..pi/2", "pi/2..pi")
#: C-N pairs are found in the starting structure: the N nearest to each C, within this.
CN_BOND_MAX_ANGSTROM = 1.8
#: Frames read at a time.
READ_BLOCK_FRAMES = 8192


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


def pairs_from_groups(carbon: list[int] | None, nitrogen: list[int] | None,
                      numbers: np.ndarray, positions: np.ndarray,
                      cell: np.ndarray | None) -> np.ndarray:
    """(k, 2) C and N indices: the challenge's ``[groups] carbon``/``nitrogen`` when declared
    (checked: same length, C and N atoms), else found by :func:`cn_pairs`."""
    if not carbon and not nitrogen:
        return cn_pairs(numbers, positions, cell)
    c, n = np.asarray(carbon or [], int), np.asarray(nitrogen or [], int)
    if len(c) != len(n) or len(c) == 0 or max(c.max(), n.max()) >= len(numbers) \
            or np.any(numbers[c] != 6) or np.any(numbers[n] != 7):
        raise UserError("[groups] carbon and nitrogen of the challenge must list as many C as "
                        "N atoms (0-based indices), cation by cation")
    return np.stack([c, n], axis=1)


def contributions(path: Path, bins: int, selection: FrameSelection, n_blocks: int = 1,
                  carbon: list[int] | None = None,
                  nitrogen: list[int] | None = None) -> np.ndarray:
    """Counts of one run per time block: 4 phi quadrants, the (theta, phi) histogram
    (bins // 2 x bins), sum of |cos theta|, number of samples; rows add up."""
    meta = framesets.info(path)
    pairs = pairs_from_groups(carbon, nitrogen, meta.numbers, meta.start_positions, meta.cell)
    atoms = np.unique(pairs)
    local = np.searchsorted(atoms, pairs)
    edges = np.array([-np.pi, -np.pi / 2, 0.0, np.pi / 2, np.pi])
    out = np.zeros((n_blocks, 4 + (bins // 2) * bins + 2))
    for k, block in selection.blocks(path, "positions", READ_BLOCK_FRAMES, meta, atoms,
                                     n_blocks):
        theta, phi = angles(block, local, meta.cell)
        out[k, :4] += np.histogram(phi.ravel(), bins=edges)[0]
        hist, _, _ = np.histogram2d(theta.ravel(), phi.ravel(), bins=(bins // 2, bins),
                                    range=((0, np.pi), (-np.pi, np.pi)))
        out[k, 4:-2] += hist.ravel()
        out[k, -2] += np.abs(np.cos(theta)).sum()
        out[k, -1] += theta.size
    return out


@dataclass
class Orientation:
    """The orientation distribution of a group (from summed contributions)."""

    histogram: np.ndarray
    theta_edges: np.ndarray
    phi_edges: np.ndarray
    quadrants: np.ndarray
    mean_abs_cos_theta: float | None
    n_samples: int


def from_total(total: np.ndarray, bins: int) -> Orientation:
    """Density (normalised like ``np.histogram2d(density=True)``), quadrant ratios, samples."""
    n = float(total[-1])
    hist = total[4:-2].reshape(bins // 2, bins)
    t_edges = np.linspace(0, np.pi, bins // 2 + 1)
    p_edges = np.linspace(-np.pi, np.pi, bins + 1)
    area = (t_edges[1] - t_edges[0]) * (p_edges[1] - p_edges[0])
    density = hist / (hist.sum() * area) if hist.sum() else hist
    quadrants = total[:4] / total[:4].sum() if total[:4].sum() else np.zeros(4)
    return Orientation(density, t_edges, p_edges, quadrants,
                       float(total[-2] / n) if n else None, int(round(n)))


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
