"""Radial distribution functions per element pair (Pb-I, C-N, N-I, ...).

Convention of ASE >= 3.27 and LAMMPS ``compute rdf``: for elements A and B,

    g_AB(r) = n_AB(r) / (N_A * (N_B / V) * V_shell(r))

where n_AB(r) counts ordered pairs (i in A, j in B, i != j) with r_(k-1) < |r_ij| <= r_k,
V_shell is the exact volume of the spherical shell of the bin, and V is the cell volume of
the frame; g is averaged over frames. Distances use the minimum image, which requires
r_max to be at most half the smallest perpendicular width of the cell.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase.data import atomic_numbers

from analysis import framesets
from analysis.framesets import FrameSelection
from harness.errors import UserError

#: Default largest distance: second Pb-Pb and I-I shells of MAPbI3 (~6.3 A) fit.
DEFAULT_R_MAX_ANGSTROM = 8.0
MAX_R_MAX_ANGSTROM = 30.0
#: Frames read and histogrammed at a time.
READ_BLOCK_FRAMES = 512


def parse_pair(text: str) -> tuple[str, str]:
    """``Pb-I`` -> ("Pb", "I"); UserError for anything else."""
    parts = text.split("-")
    if len(parts) != 2 or not all(p in atomic_numbers for p in parts):
        raise UserError(f"--pairs {text!r}: write element pairs like Pb-I,C-N")
    return parts[0], parts[1]


def max_radius(cell: np.ndarray) -> float:
    """Half the smallest perpendicular width of a cell."""
    volume = abs(np.linalg.det(cell))
    widths = [volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3]))
              for i in range(3)]
    return 0.5 * min(widths)


def image_offsets(cell: np.ndarray, r_max: float) -> np.ndarray:
    """Lattice translations (K, 3) in A that can bring a minimum-image pair within r_max.

    Just the zero vector when r_max is at most half the smallest cell width; otherwise
    every translation n . cell with |n_i| <= ceil(r_max / width_i + 1/2).
    """
    if r_max <= max_radius(cell) + 1e-12:
        return np.zeros((1, 3))
    volume = abs(np.linalg.det(cell))
    reach = [int(np.ceil(r_max * np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3]))
                         / volume + 0.5)) for i in range(3)]
    grid = np.array(np.meshgrid(*[np.arange(-n, n + 1) for n in reach], indexing="ij"))
    return grid.reshape(3, -1).T @ cell


def histogram_frames(positions: np.ndarray, cell: np.ndarray, a_idx: np.ndarray,
                     b_idx: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Sum over frames of g_AB(r) per frame (divide by the number of frames to average).

    Pairs are counted over all periodic images within r_max (the minimum image alone when
    r_max is at most half the smallest cell width), so r_max may exceed that limit.
    """
    dr = edges[1] - edges[0]
    nbins = len(edges) - 1
    vec = positions[:, b_idx][:, None, :, :] - positions[:, a_idx][:, :, None, :]
    vec = framesets.minimum_image(vec, cell)
    same = a_idx[:, None] == b_idx[None, :]
    counts = np.zeros(nbins + 1)
    for offset in image_offsets(cell, edges[-1]):
        dist = np.linalg.norm(vec + offset, axis=-1)
        if not offset.any():
            dist = dist[:, ~same]
        bins = np.ceil(dist[dist <= edges[-1]] / dr).astype(np.int64)
        counts += np.bincount(bins, minlength=nbins + 1)[: nbins + 1]
    volume = abs(np.linalg.det(cell))
    shells = 4.0 / 3.0 * np.pi * (edges[1:] ** 3 - edges[:-1] ** 3)
    return counts[1:] / (len(a_idx) * len(b_idx) / volume * shells)


def contributions(path: Path, pairs: list[tuple[str, str]], r_max: float, nbins: int,
                  selection: FrameSelection, n_blocks: int = 1) -> np.ndarray:
    """Summed per-frame g(r) of every pair and the frame count, per time block of one run.

    Returns (n_blocks, n_pairs * nbins + 1): for block k, the sum over its frames of g_AB(r)
    per pair (pairs one after the other), then the number of frames. Rows add up over blocks
    and runs; :func:`curves` turns a sum into averaged g(r).
    """
    meta = framesets.info(path)
    if meta.cell is None:
        raise UserError(f"{path}: not periodic; RDFs here need a cell")
    if not 0 < r_max <= MAX_R_MAX_ANGSTROM:
        raise UserError(f"--r-max {r_max:g}: give a distance in A between 0 and "
                        f"{MAX_R_MAX_ANGSTROM:g}")
    edges = np.linspace(0.0, r_max, nbins + 1)
    index = []
    for a, b in pairs:
        ia = np.nonzero(meta.numbers == atomic_numbers[a])[0]
        ib = np.nonzero(meta.numbers == atomic_numbers[b])[0]
        if len(ia) == 0 or len(ib) == 0 or (a == b and len(ia) < 2):
            raise UserError(f"--pairs {a}-{b}: not enough {a} or {b} atoms in {path}")
        index.append((ia, ib))
    out = np.zeros((n_blocks, len(pairs) * nbins + 1))
    for k, block in selection.blocks(path, "positions", READ_BLOCK_FRAMES, meta,
                                     n_blocks=n_blocks):
        for j, (ia, ib) in enumerate(index):
            out[k, j * nbins:(j + 1) * nbins] += histogram_frames(block, meta.cell, ia, ib, edges)
        out[k, -1] += len(block)
    return out


def curves(total: np.ndarray, n_pairs: int, nbins: int, r_max: float
           ) -> tuple[np.ndarray, np.ndarray, int]:
    """Bin centres (A), g(r) per pair (n_pairs, nbins) and frame count of summed contributions."""
    edges = np.linspace(0.0, r_max, nbins + 1)
    n_frames = int(round(total[-1]))
    g = total[:-1].reshape(n_pairs, nbins) / max(total[-1], 1e-300)
    return 0.5 * (edges[1:] + edges[:-1]), g, n_frames


def first_peak(r: np.ndarray, g: np.ndarray) -> float | None:
    """Position of the highest maximum of g(r) (A); None when g is zero everywhere."""
    if not np.any(g > 0):
        return None
    return float(r[int(np.argmax(g))])


def plot(results: dict[str, tuple[np.ndarray, np.ndarray]], pair: str, ax=None):
    """One pair's g(r) for several groups on one axes: label -> (r, g)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    for name, (r, g) in results.items():
        ax.plot(r, g, label=name, lw=1.2)
    ax.set_xlabel("r (A)")
    ax.set_ylabel(f"g(r) {pair}")
    ax.legend(frameon=False, fontsize=8)
    return ax
