"""Geometry of a planar molecule on a periodic sheet: D, incline, tilt and slant per frame.

Definitions (TEA 2023 Challenge III, Fig. 3a; drawing and derivation in docs/surface.md):

* The averaged graphene plane (AGP) is the least-squares plane through the sheet atoms among
  the planes compatible with the sheet's periodicity. A sheet periodic along the cell vectors
  a and b returns to itself after one period, so its mean plane must contain a and b: the
  normal is n = a x b / |a x b| and the least-squares offset is the mean of n . r over the sheet
  atoms (their heights are first unwrapped along c, so a sheet split by the boundary counts
  once). Without a cell (a flake) the plane is the free least-squares (SVD) plane.
* D is the distance from the AGP to the molecule's centre of mass, by minimum image along the
  cell's c vector; n is then oriented from the sheet towards the molecule.
* The molecule's frame (heavy atoms only): m, the normal of their least-squares plane;
  e_s (short axis), the in-plane unit vector from the heavy-atom centroid towards the midpoint
  of the N atoms ("the N side"); e_l = m x e_s (long axis).
* With a = n.e_s, b = n.e_l, c = n.m (the surface normal in the molecule's frame)::

      incline = atan2(sqrt(a^2 + b^2), |c|)   in [0, pi/2]
      tilt    = atan2(|b|, sqrt(a^2 + c^2))   in [0, pi/2]
      slant   = atan2(a, |c|)                 in [-pi/2, pi/2]

  A flat-lying molecule rotated first by tilt about its short axis and then by slant about its
  (tilted) long axis has n = (sin(slant) cos(tilt), sin(tilt), cos(slant) cos(tilt)) in its
  frame, so these formulas return the two angles exactly and cos(incline) = cos(tilt)
  cos(slant). slant < 0 means the N side points towards the surface. The atan2 forms stay
  accurate near pi/2, where arcsin/arccos lose half the digits.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from ase.data import atomic_masses

from harness.errors import UserError

#: Bond length cut-off (Angstrom) used to make the molecule whole across the cell boundary.
BOND_CUTOFF_ANGSTROM = 1.9


@dataclass(frozen=True)
class SurfaceGroups:
    """Atom indices (0-based) of the sheet, the molecule, its heavy atoms and its N side."""

    surface: np.ndarray
    molecule: np.ndarray
    heavy: np.ndarray
    n_side: np.ndarray

    @classmethod
    def from_table(cls, groups: dict[str, Any], numbers: np.ndarray) -> SurfaceGroups:
        """Groups from a challenge's ``[groups]`` table (keys surface, molecule, n_side).

        Raises
        ------
        UserError
            When a key is missing or an index is out of range.
        """
        try:
            surface = np.asarray(groups["surface"], dtype=int)
            molecule = np.asarray(groups["molecule"], dtype=int)
            n_side = np.asarray(groups["n_side"], dtype=int)
        except KeyError as exc:
            raise UserError(f"challenge [groups] lacks {exc}: a surface challenge needs "
                            "surface, molecule and n_side atom lists") from None
        n_atoms = len(numbers)
        for name, idx in (("surface", surface), ("molecule", molecule), ("n_side", n_side)):
            if idx.size == 0 or idx.min() < 0 or idx.max() >= n_atoms:
                raise UserError(f"challenge group {name!r} has indices outside 0..{n_atoms - 1}")
        heavy = molecule[numbers[molecule] > 1]
        return cls(surface=surface, molecule=molecule, heavy=heavy, n_side=n_side)


def _minimum_image(vectors: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Shortest periodic images of difference vectors (..., 3) in a cell (..., 3, 3) of rows."""
    frac = np.einsum("...j,...jk->...k", vectors, np.linalg.inv(cell))
    frac -= np.round(frac)
    return np.einsum("...j,...jk->...k", frac, cell)


def bond_tree(positions: np.ndarray, cell: np.ndarray | None) -> list[tuple[int, int]]:
    """(parent, child) edges of a breadth-first spanning tree of the bonds of one molecule.

    ``positions`` are the molecule's atoms in one frame; bonds are minimum-image distances below
    :data:`BOND_CUTOFF_ANGSTROM`. Atoms not connected to atom 0 hang directly off it.
    """
    diff = positions[None, :, :] - positions[:, None, :]
    if cell is not None:
        diff = _minimum_image(diff, cell)
    bonded = np.linalg.norm(diff, axis=-1) < BOND_CUTOFF_ANGSTROM
    seen = {0}
    edges: list[tuple[int, int]] = []
    queue = deque([0])
    while queue:
        parent = queue.popleft()
        for child in np.flatnonzero(bonded[parent]):
            if int(child) not in seen:
                seen.add(int(child))
                edges.append((parent, int(child)))
                queue.append(int(child))
    edges += [(0, i) for i in range(len(positions)) if i not in seen]
    return edges


def make_whole(positions: np.ndarray, cells: np.ndarray | None,
               edges: list[tuple[int, int]]) -> np.ndarray:
    """Molecule positions (F, n, 3) unwrapped along the bond tree so that no bond spans the cell."""
    out = positions.copy()
    if cells is None:
        return out
    for parent, child in edges:
        out[:, child] = out[:, parent] + _minimum_image(out[:, child] - out[:, parent], cells)
    return out


def sheet_plane(sheet: np.ndarray, cells: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Point on and unit normal of the averaged sheet plane, per frame.

    Parameters
    ----------
    sheet
        Sheet atom positions, shape (F, n, 3), Angstrom.
    cells
        Cells as rows, shape (F, 3, 3), or None for a non-periodic sheet.

    Returns
    -------
    tuple of numpy.ndarray
        ``point`` (F, 3) and ``normal`` (F, 3); the normal's sign is arbitrary here.
    """
    if cells is None:
        centroid = sheet.mean(axis=1)
        _, _, vt = np.linalg.svd(sheet - centroid[:, None, :])
        return centroid, vt[:, 2, :]
    normal = np.cross(cells[:, 0], cells[:, 1])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    period = np.einsum("fk,fk->f", cells[:, 2], normal)
    height = np.einsum("fnk,fk->fn", sheet, normal)
    # circular mean of the heights over the period: robust when the sheet straddles the boundary
    phase = 2 * np.pi * height / period[:, None]
    centre = np.arctan2(np.sin(phase).mean(1), np.cos(phase).mean(1)) * period / (2 * np.pi)
    height = centre[:, None] + (height - centre[:, None]
                                - period[:, None] * np.round((height - centre[:, None])
                                                             / period[:, None]))
    offset = height.mean(axis=1)
    # of the equivalent periodic planes, report the one through the atoms as stored
    raw = np.einsum("fnk,fk->fn", sheet, normal).mean(axis=1)
    offset += period * np.round((raw - offset) / period)
    # the in-plane position of the point does not matter: take the sheet centroid's
    lateral = sheet.mean(axis=1)
    lateral -= np.einsum("fk,fk->f", lateral, normal)[:, None] * normal
    return lateral + offset[:, None] * normal, normal


def molecule_frame(heavy: np.ndarray, n_side: np.ndarray) -> tuple[np.ndarray, ...]:
    """Body frame (e_s, e_l, m) of a planar molecule per frame, each (F, 3).

    ``heavy`` (F, h, 3): heavy-atom positions (whole molecule); ``n_side`` (F, k, 3): the atoms
    that mark the N side. m is the normal of the heavy atoms' least-squares plane, e_s the
    in-plane direction from their centroid to the N-side midpoint, e_l = m x e_s.
    """
    centroid = heavy.mean(axis=1)
    _, _, vt = np.linalg.svd(heavy - centroid[:, None, :])
    normal = vt[:, 2, :]
    towards_n = n_side.mean(axis=1) - centroid
    towards_n -= np.einsum("fk,fk->f", towards_n, normal)[:, None] * normal
    length = np.linalg.norm(towards_n, axis=1, keepdims=True)
    if np.any(length < 1e-6):
        raise UserError("the N-side atoms sit on the molecule's centroid: n_side must mark one "
                        "side of the molecule")
    short = towards_n / length
    long = np.cross(normal, short)
    return short, long, normal


def angles(normal: np.ndarray, short: np.ndarray, long: np.ndarray,
           mol_normal: np.ndarray) -> dict[str, np.ndarray]:
    """incline, tilt, slant (radians) from the surface normal and the molecule frame (F, 3)."""
    a = np.einsum("fk,fk->f", normal, short)
    b = np.einsum("fk,fk->f", normal, long)
    c = np.abs(np.einsum("fk,fk->f", normal, mol_normal))
    return {"incline": np.arctan2(np.hypot(a, b), c),
            "tilt": np.arctan2(np.abs(b), np.hypot(a, c)),
            "slant": np.arctan2(a, c)}


def analyse(positions: np.ndarray, numbers: np.ndarray, groups: SurfaceGroups,
            cells: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """D (Angstrom), incline, tilt, slant (rad) and the normal per frame.

    Parameters
    ----------
    positions
        (F, N, 3) or (N, 3) Angstrom.
    numbers
        Atomic numbers (N,).
    groups
        Atom groups.
    cells
        (F, 3, 3), (3, 3) rows, or None for no periodicity.

    Returns
    -------
    dict
        ``D``, ``incline``, ``tilt``, ``slant``, ``normal`` (F, 3, from sheet to molecule).
    """
    positions = np.asarray(positions, dtype=float)
    if positions.ndim == 2:
        positions = positions[None]
    n_frames = positions.shape[0]
    if cells is not None:
        cells = np.broadcast_to(np.asarray(cells, dtype=float), (n_frames, 3, 3))
    mol = positions[:, groups.molecule]
    edges = bond_tree(mol[0], None if cells is None else cells[0])
    mol = make_whole(mol, cells, edges)
    masses = atomic_masses[numbers[groups.molecule]]
    com = np.einsum("n,fnk->fk", masses, mol) / masses.sum()
    point, normal = sheet_plane(positions[:, groups.surface], cells)
    signed = np.einsum("fk,fk->f", com - point, normal)
    if cells is not None:
        period = np.einsum("fk,fk->f", cells[:, 2], normal)
        signed -= period * np.round(signed / period)
    normal = normal * np.where(signed < 0, -1.0, 1.0)[:, None]
    local = {int(i): k for k, i in enumerate(groups.molecule)}
    heavy = mol[:, [local[int(i)] for i in groups.heavy]]
    n_side = mol[:, [local[int(i)] for i in groups.n_side]]
    short, long, mol_normal = molecule_frame(heavy, n_side)
    out = {"D": np.abs(signed), "normal": normal}
    out.update(angles(normal, short, long, mol_normal))
    return out


def rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix (right-hand rule) by ``angle`` radians about ``axis``."""
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    x, y, z = axis
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def orient_molecule(positions: np.ndarray, numbers: np.ndarray, groups: SurfaceGroups,
                    tilt: float, slant: float, azimuth: float, height: float,
                    lateral: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Place the molecule rigidly with given tilt, slant, azimuth and height D above the sheet.

    The molecule is first laid flat (its normal along the sheet normal, its short axis along
    the cell's a direction rotated by ``azimuth`` about the normal), then tilted about its short
    axis and slanted about its tilted long axis; its centre of mass goes to ``lateral``
    (in-plane, Angstrom) at distance ``height`` from the averaged sheet plane. Returns the new
    positions of all atoms (N, 3); the sheet is untouched. Used to build starting structures.
    """
    out = np.array(positions, dtype=float)
    cells = np.asarray(cell, float)[None]
    mol = make_whole(out[None, groups.molecule], cells, bond_tree(out[groups.molecule], cell))[0]
    masses = atomic_masses[numbers[groups.molecule]]
    com = masses @ mol / masses.sum()
    local = {int(i): k for k, i in enumerate(groups.molecule)}
    short, long, mol_normal = (v[0] for v in molecule_frame(
        mol[None, [local[int(i)] for i in groups.heavy]],
        mol[None, [local[int(i)] for i in groups.n_side]]))
    point, normal = (v[0] for v in sheet_plane(out[None, groups.surface], cells))
    x_axis = cell[0] - (cell[0] @ normal) * normal
    x_axis /= np.linalg.norm(x_axis)
    target_short = rotation(normal, azimuth) @ x_axis
    target = np.stack([target_short, np.cross(normal, target_short), normal])
    flat = target.T @ np.stack([short, long, mol_normal])  # body frame -> flat, aligned frame
    spin = rotation(target[0], tilt)
    spin = rotation(spin @ target[1], -slant) @ spin
    body = (spin @ flat @ (mol - com).T).T
    lateral = np.asarray(lateral, float)
    centre = lateral - (lateral @ normal) * normal + (point @ normal + height) * normal
    out[groups.molecule] = body + centre
    return out
