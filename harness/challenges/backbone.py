"""Peptide backbone from the bond graph: residues, phi/psi/omega quadruples, and checks.

Pure numpy/python (no RDKit), so the analysis can verify a challenge's dihedral quadruples
against the molecule itself. The graph rules:

* a *carbonyl carbon* is a C with three neighbours, one of them an O with no other neighbour;
* an *amide nitrogen* is an N bonded to a carbonyl carbon;
* an *alpha carbon* (CA) is a C with four neighbours bonded to an amide nitrogen and to a
  carbonyl carbon (N-methyl caps, acetyl methyls and side chains fail one of these);
* residues are ordered N -> C by following N(i) - C(i-1) peptide bonds.

Then ``phi_i = C(i-1)-N(i)-CA(i)-C(i)`` (when residue i's N is bonded to a carbonyl, e.g. the
acetyl cap) and ``psi_i = N(i)-CA(i)-C(i)-N(i+1)`` (when C(i) is bonded to an amide N, e.g. the
next residue or an N-methyl cap); residue 1 is the first residue after the N-terminal cap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Covalent radii in Angstrom (Cordero et al. 2008, as in ASE) for the elements of peptides.
_COVALENT_RADII = {"H": 0.31, "C": 0.76, "N": 0.71, "O": 0.66, "S": 1.05, "P": 1.07}


@dataclass(frozen=True)
class Residue:
    """Backbone atoms of one residue (0-based indices)."""

    n: int
    ca: int
    c: int


def bonds_from_geometry(symbols: list[str], positions: np.ndarray,
                        scale: float = 1.2) -> set[tuple[int, int]]:
    """Bonds between atoms closer than ``scale`` times the sum of their covalent radii."""
    radii = np.array([_COVALENT_RADII.get(s, 0.8) for s in symbols])
    pos = np.asarray(positions, dtype=float)
    dist = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    i, j = np.nonzero(np.triu(dist < scale * (radii[:, None] + radii[None, :]), k=1))
    return {(int(a), int(b)) for a, b in zip(i, j, strict=True)}


def _neighbours(n_atoms: int, bonds: set[tuple[int, int]]) -> list[set[int]]:
    nbr: list[set[int]] = [set() for _ in range(n_atoms)]
    for a, b in bonds:
        nbr[a].add(b)
        nbr[b].add(a)
    return nbr


def _carbonyl_carbons(symbols: list[str], nbr: list[set[int]]) -> set[int]:
    return {i for i, s in enumerate(symbols)
            if s == "C" and len(nbr[i]) == 3
            and any(symbols[j] == "O" and len(nbr[j]) == 1 for j in nbr[i])}


def residues(symbols: list[str], bonds: set[tuple[int, int]]) -> list[Residue]:
    """Backbone residues ordered from the N to the C terminus.

    Raises
    ------
    ValueError
        When no residue is found or the residues do not form one chain.
    """
    nbr = _neighbours(len(symbols), bonds)
    carbonyl = _carbonyl_carbons(symbols, nbr)
    amide_n = {i for i, s in enumerate(symbols) if s == "N" and nbr[i] & carbonyl}
    found = []
    for i, s in enumerate(symbols):
        if s != "C" or len(nbr[i]) != 4:
            continue
        ns = nbr[i] & amide_n
        cs = nbr[i] & carbonyl
        if len(ns) == 1 and len(cs) == 1:
            found.append(Residue(n=ns.pop(), ca=i, c=cs.pop()))
    if not found:
        raise ValueError("no peptide backbone residue (N-CA-C=O) in the bond graph")
    by_c = {r.c: r for r in found}
    next_of = {}
    for r in found:
        for prev_c in nbr[r.n] & carbonyl:
            if prev_c in by_c:
                next_of[by_c[prev_c].ca] = r
    firsts = [r for r in found if not any(nxt is r for nxt in next_of.values())]
    if len(firsts) != 1:
        raise ValueError(f"backbone residues form {len(firsts)} chains, expected one")
    chain = [firsts[0]]
    while chain[-1].ca in next_of:
        chain.append(next_of[chain[-1].ca])
    if len(chain) != len(found):
        raise ValueError("backbone residues do not form one linear chain")
    return chain


def backbone_dihedrals(symbols: list[str],
                       bonds: set[tuple[int, int]]) -> dict[str, list[int]]:
    """Quadruples of every defined phi_i and psi_i, named ``phi1``, ``psi1``, ... in chain order."""
    nbr = _neighbours(len(symbols), bonds)
    carbonyl = _carbonyl_carbons(symbols, nbr)
    quads: dict[str, list[int]] = {}
    for k, res in enumerate(residues(symbols, bonds), start=1):
        prev = sorted((nbr[res.n] & carbonyl) - {res.c})
        if prev:
            quads[f"phi{k}"] = [prev[0], res.n, res.ca, res.c]
        nxt = sorted(j for j in nbr[res.c] - {res.ca} if symbols[j] == "N")
        if nxt:
            quads[f"psi{k}"] = [res.n, res.ca, res.c, nxt[0]]
    return dict(sorted(quads.items(), key=lambda kv: (int(kv[0][3:]), kv[0][:3] == "psi")))


def omega_quadruples(symbols: list[str], bonds: set[tuple[int, int]]) -> list[list[int]]:
    """X-C-N-Y quadruples of every amide bond (X, Y: the heavy atoms beyond C and N).

    For the caps X is the acetyl methyl and Y the N-methyl carbon; trans amides have
    |omega| near 180 degrees.
    """
    nbr = _neighbours(len(symbols), bonds)
    carbonyl = _carbonyl_carbons(symbols, nbr)
    quads = []
    for c in sorted(carbonyl):
        for n in sorted(j for j in nbr[c] if symbols[j] == "N"):
            xs = sorted(j for j in nbr[c] - {n} if symbols[j] == "C")
            ys = sorted(j for j in nbr[n] - {c} if symbols[j] == "C")
            if xs and ys:
                quads.append([xs[0], c, n, ys[0]])
    return quads


def check_quadruple(symbols: list[str], bonds: set[tuple[int, int]], quad: list[int],
                    kind: str) -> str | None:
    """Why ``quad`` is not a backbone ``kind`` ('phi' or 'psi') dihedral, or None if it is.

    The quadruple must be exactly one of the molecule's phi_i (or psi_i) quadruples, in the
    conventional atom order.
    """
    if len(quad) != 4 or len(set(quad)) != 4:
        return f"{quad} is not four distinct atoms"
    if any(not 0 <= int(i) < len(symbols) for i in quad):
        return f"{quad} has indices outside 0..{len(symbols) - 1}"
    for a, b in zip(quad, quad[1:], strict=False):
        if (min(a, b), max(a, b)) not in bonds:
            return f"{quad}: atoms {a} and {b} are not bonded"
    quads = backbone_dihedrals(symbols, bonds)
    matches = [name for name, q in quads.items() if name.startswith(kind) and q == list(quad)]
    if not matches:
        allowed = ", ".join(f"{n}={q}" for n, q in quads.items() if n.startswith(kind))
        return f"{quad} is not a backbone {kind} dihedral; this molecule's are {allowed}"
    return None


def dihedral_angles(positions: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """Signed dihedral angles in radians, in (-pi, pi], IUPAC sign (as MDAnalysis).

    Parameters
    ----------
    positions
        Coordinates, shape (n_frames, n_atoms, 3) (or (n_atoms, 3) for one frame).
    quads
        Atom indices, shape (n_dihedrals, 4).

    Returns
    -------
    numpy.ndarray
        Shape (n_frames, n_dihedrals) (or (n_dihedrals,) for one frame).
    """
    pos = np.asarray(positions, dtype=np.float64)
    single = pos.ndim == 2
    if single:
        pos = pos[None]
    q = np.asarray(quads, dtype=np.intp)
    b0 = pos[:, q[:, 1]] - pos[:, q[:, 0]]
    b1 = pos[:, q[:, 2]] - pos[:, q[:, 1]]
    b2 = pos[:, q[:, 3]] - pos[:, q[:, 2]]
    n1 = np.cross(b0, b1)
    n2 = np.cross(b1, b2)
    m1 = np.cross(n1, b1 / np.linalg.norm(b1, axis=-1, keepdims=True))
    x = np.einsum("...k,...k->...", n1, n2)
    y = np.einsum("...k,...k->...", m1, n2)
    angles = -np.arctan2(y, x)
    return angles[0] if single else angles
