"""Generate the 12 MD starting structures of TEA Challenge 2023, Challenge IV (MAPbI3).

What
----
Orthorhombic (Pnma) methylammonium lead iodide, CH3NH3PbI3, as a 96-atom periodic cell
(8 formula units: 8 C, 8 N, 48 H, 8 Pb, 24 I).  Output in ``starts/``:

* ``start-00.xyz`` ... ``start-11.xyz``: extended XYZ with cell and ``pbc=T``, identical
  atom order (C, N, H, Pb, I blocks; cation k = C k, N k, H 6k..6k+5 with the three
  methyl H first).  ``info``: ``cation_flips`` (which cations were turned head to tail).
* ``structure.json``: the asymmetric unit, cell, supercell, the cation index table
  (C, N and H indices of every MA) and all generation settings.

Source of the structure
-----------------------
The asymmetric unit below is the Pnma structure of F. Brivio, J. M. Frost, J. M. Skelton,
A. J. Jackson, O. J. Weber, M. T. Weller, A. R. Goni, A. M. A. Leguy, P. R. F. Barnes and
A. Walsh, "Lattice dynamics and vibrational spectra of the orthorhombic, tetragonal and
cubic phases of methylammonium lead iodide", Phys. Rev. B 92, 144308 (2015),
DOI 10.1103/PhysRevB.92.144308: the low-temperature neutron structure of Weller et al.
(Chem. Commun. 51, 4180, 2015, DOI 10.1039/C4CC09944C) relaxed with PBEsol, published by the
authors as ``MAPbI3-Orthorhombic-1.vasp`` in github.com/WMD-group/Phonons (2015_MAPbI3).
It keeps the experimental Pnma symmetry and has every H position (the raw neutron
refinement has large H displacement parameters). The coordinates are typed in here from
that listing, reduced to the asymmetric unit; nothing is downloaded.

How "2x2x2" is read
-------------------
TEA 2023 simulated "the 2x2x2 MAPbI3 system". We read this as 2x2x2 pseudocubic perovskite
units (one Pb, three I and one MA each): 8 formula units, 96 atoms, twice the 48-atom Pnma
cell.  The literal 2x2x2 pseudocubic cell is monoclinic for Pnma (its in-plane vectors
a+c and a-c are not orthogonal when a != c; here gamma = 94.5 deg), so we use the
orthogonal cell with the same 8 formula units: the Pnma cell doubled along a.  Axes are
relabelled cyclically so that the long Pnma b axis (normal to the mirror planes that hold
the cations) is z, as in TEA's Fig. 4a ("z aligned with the c-axis"):
x = Pnma c (9.04 A), y = 2 x Pnma a (16.71 A), z = Pnma b (12.66 A).
Reading "2x2x2" as 2x2x2 Pnma cells (384 atoms) is also possible: ``--supercell 2 2 2``
builds it (x, y, z multiples of the relabelled Pnma cell), but periodic GFN2-xTB of 384
atoms is out of reach for reference runs here.

Starts
------
start-00 is the published structure. Starts 01-11 differ in cation orientation and
displacements (seeded): every MA is turned head to tail (C and N swapped about the
molecular centre) with probability 1/2, rotated about its own C-N axis by a random angle,
tilted by up to ``--max-tilt`` degrees about a random axis through its centre, and all
atoms get Gaussian displacements of ``--sigma`` A. A draw that brings an H closer than
``--min-h-contact`` A to an I or Pb, or any two atoms closer than 0.9 A, is redrawn.

Run::

    python make_starts.py            # about 1 s
"""

from __future__ import annotations

import argparse
import json
from importlib.metadata import version
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

#: Pnma lattice (A) of the published structure (a, b, c).
PNMA_CELL = (8.35416, 12.66141, 9.04334)
#: Asymmetric unit (label, element, Wyckoff, x, y, z), fractional, standard Pnma setting.
ASYMMETRIC_UNIT = (
    ("C", "C", "4c", 0.03278, 0.25, 0.93725),
    ("N", "N", "4c", 0.95886, 0.25, 0.08605),
    ("HC1", "H", "4c", 0.16378, 0.25, 0.94964),
    ("HC2", "H", "8d", 0.99395, 0.32124, 0.87767),
    ("HN1", "H", "4c", 0.83384, 0.25, 0.07870),
    ("HN2", "H", "8d", 0.99536, 0.31672, 0.14527),
    ("Pb", "Pb", "4b", 0.0, 0.0, 0.5),
    ("I1", "I", "4c", 0.03838, 0.25, 0.51160),
    ("I2", "I", "8d", 0.31605, 0.97767, 0.69316),
)
#: The eight general-position operations of Pnma (No. 62): rotation (diagonal) + shift.
PNMA_OPS = (
    ((1, 1, 1), (0, 0, 0)), ((-1, -1, 1), (0.5, 0, 0.5)), ((-1, 1, -1), (0, 0.5, 0)),
    ((1, -1, -1), (0.5, 0.5, 0.5)), ((-1, -1, -1), (0, 0, 0)), ((1, 1, -1), (0.5, 0, 0.5)),
    ((1, -1, 1), (0, 0.5, 0)), ((-1, 1, 1), (0.5, 0.5, 0.5)),
)
N_STARTS = 12


def expand_pnma() -> tuple[list[str], list[str], np.ndarray]:
    """Apply the Pnma operations to the asymmetric unit.

    Returns
    -------
    labels, symbols, frac
        Site labels, elements and fractional coordinates (48, 3) in the Pnma cell.
    """
    labels, symbols, frac = [], [], []
    for label, element, _wyckoff, *xyz in ASYMMETRIC_UNIT:
        seen: list[np.ndarray] = []
        for rot, shift in PNMA_OPS:
            p = np.mod(np.array(rot) * np.array(xyz) + np.array(shift), 1.0)
            if any(np.allclose(np.mod(p - q + 0.5, 1.0) - 0.5, 0, atol=1e-4) for q in seen):
                continue
            seen.append(p)
            labels.append(label)
            symbols.append(element)
            frac.append(p)
    return labels, symbols, np.array(frac)


def build_cell(supercell: tuple[int, int, int] = (1, 2, 1)):
    """The relabelled (x = c, y = a, z = b) Pnma cell, repeated ``supercell`` times.

    Atoms are ordered C, N, H, Pb, I with each cation's atoms grouped (see module doc).

    Returns
    -------
    ase.Atoms
        The periodic structure (orthorhombic cell, pbc on).
    """
    from ase import Atoms

    labels, symbols, frac = expand_pnma()
    a, b, c = PNMA_CELL
    frac_xyz = frac[:, [2, 0, 1]]  # cyclic relabelling keeps the handedness
    lengths = np.array([c, a, b])
    reps = np.array(supercell)
    all_frac, all_sym, all_lab = [], [], []
    for shift in np.ndindex(*reps):
        all_frac.append((frac_xyz + shift) / reps)
        all_sym += symbols
        all_lab += labels
    frac_all = np.concatenate(all_frac)
    cell = np.diag(lengths * reps)
    pos = frac_all @ cell
    return _ordered(Atoms(symbols=all_sym, positions=pos, cell=cell, pbc=True), all_lab)


def _ordered(atoms, labels: list[str]):
    """Reorder: C block, N block, H block (per cation: 3 methyl H, 3 ammonium H), Pb, I."""
    from ase.geometry import get_distances

    idx = {lab: [i for i, x in enumerate(labels) if x == lab] for lab in set(labels)}
    carbons, nitrogens = idx["C"], idx["N"]
    hc = idx["HC1"] + idx["HC2"]
    hn = idx["HN1"] + idx["HN2"]
    order_c, order_n, order_h = [], [], []
    used_n: set[int] = set()
    for ci in carbons:
        d = get_distances(atoms.positions[ci], atoms.positions[nitrogens], atoms.cell, True)[1][0]
        ni = nitrogens[int(np.argmin(d))]
        if ni in used_n or d.min() > 1.7:
            raise RuntimeError("could not pair C and N atoms into cations")
        used_n.add(ni)
        dh_c = get_distances(atoms.positions[ci], atoms.positions[hc], atoms.cell, True)[1][0]
        dh_n = get_distances(atoms.positions[ni], atoms.positions[hn], atoms.cell, True)[1][0]
        h_of_c = [hc[k] for k in np.argsort(dh_c)[:3]]
        h_of_n = [hn[k] for k in np.argsort(dh_n)[:3]]
        if max(dh_c[np.argsort(dh_c)[:3]]) > 1.25 or max(dh_n[np.argsort(dh_n)[:3]]) > 1.25:
            raise RuntimeError("an H is not bonded to its C or N")
        order_c.append(ci)
        order_n.append(ni)
        order_h += h_of_c + h_of_n
    order = order_c + order_n + order_h + idx["Pb"] + idx["I1"] + idx["I2"]
    if sorted(order) != list(range(len(atoms))):
        raise RuntimeError("atom bookkeeping failed")
    return atoms[order]


def cation_table(n_cations: int) -> list[dict[str, object]]:
    """Indices of every cation's atoms in the ordering of :func:`_ordered`."""
    h0 = 2 * n_cations
    return [{"C": k, "N": n_cations + k, "H_methyl": [h0 + 6 * k + j for j in range(3)],
             "H_ammonium": [h0 + 6 * k + 3 + j for j in range(3)]} for k in range(n_cations)]


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def perturb(atoms, cations, rng: np.random.Generator, max_tilt_deg: float, sigma: float):
    """One randomised start: flips, spins and tilts of the cations, then thermal-like noise."""
    new = atoms.copy()
    pos = new.positions
    flips = []
    for cat in cations:
        members = [cat["C"], cat["N"], *cat["H_methyl"], *cat["H_ammonium"]]
        # unwrap the cation around its C
        vec = new.cell.cartesian_positions(
            np.mod(new.cell.scaled_positions(pos[members]) - new.cell.scaled_positions(
                pos[[cat["C"]]]) + 0.5, 1.0) - 0.5)
        local = vec + pos[cat["C"]]
        centre = 0.5 * (local[0] + local[1])
        rel = local - centre
        axis = rel[1] - rel[0]
        rot = _rotation(axis, rng.uniform(0, 2 * np.pi / 3))
        flip = bool(rng.random() < 0.5)
        if flip:
            perp = np.cross(axis, rng.normal(size=3))
            rot = _rotation(perp, np.pi) @ rot
        tilt_axis = np.cross(axis, rng.normal(size=3))
        rot = _rotation(tilt_axis, np.radians(rng.uniform(0, max_tilt_deg))) @ rot
        pos[members] = centre + rel @ rot.T
        flips.append(flip)
    pos += rng.normal(scale=sigma, size=pos.shape)
    new.positions = pos
    new.wrap()
    return new, flips


def contacts_ok(atoms, min_h_contact: float) -> bool:
    """No H closer than ``min_h_contact`` to I/Pb, no two atoms closer than 0.9 A."""
    d = atoms.get_all_distances(mic=True)
    np.fill_diagonal(d, np.inf)
    sym = np.array(atoms.get_chemical_symbols())
    h = sym == "H"
    heavy_inorganic = np.isin(sym, ["I", "Pb"])
    return d.min() > 0.9 and d[np.ix_(h, heavy_inorganic)].min() > min_h_contact


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outdir", type=Path, default=HERE / "starts")
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--supercell", type=int, nargs=3, default=(1, 2, 1),
                        help="repeats of the relabelled Pnma cell (x=c, y=a, z=b)")
    parser.add_argument("--max-tilt", type=float, default=20.0, help="degrees")
    parser.add_argument("--sigma", type=float, default=0.03, help="A")
    parser.add_argument("--min-h-contact", type=float, default=2.3, help="A")
    args = parser.parse_args()

    from ase.io import write

    base = build_cell(tuple(args.supercell))
    n_cat = base.get_chemical_symbols().count("C")
    cations = cation_table(n_cat)
    rng = np.random.default_rng(args.seed)
    args.outdir.mkdir(parents=True, exist_ok=True)
    for old in args.outdir.glob("start-*.xyz"):
        old.unlink()
    redraws = 0
    for k in range(N_STARTS):
        if k == 0:
            atoms, flips = base.copy(), [False] * n_cat
        else:
            while True:
                atoms, flips = perturb(base, cations, rng, args.max_tilt, args.sigma)
                if contacts_ok(atoms, args.min_h_contact):
                    break
                redraws += 1
        atoms.info = {"cation_flips": "".join("1" if f else "0" for f in flips),
                      "challenge": "mapbi3"}
        write(args.outdir / f"start-{k:02d}.xyz", atoms, format="extxyz")
    meta = {
        "formula": base.get_chemical_formula(), "n_atoms": len(base),
        "cell_angstrom": np.diag(base.cell).round(5).tolist(),
        "pnma_cell_angstrom": PNMA_CELL, "axes": "x = Pnma c, y = Pnma a, z = Pnma b",
        "supercell_of_relabelled_pnma": list(args.supercell),
        "asymmetric_unit": [list(row) for row in ASYMMETRIC_UNIT],
        "cations": cations, "seed": args.seed, "max_tilt_deg": args.max_tilt,
        "sigma_angstrom": args.sigma, "min_h_contact_angstrom": args.min_h_contact,
        "redraws": redraws, "versions": {"ase": version("ase"), "numpy": np.__version__},
    }
    (args.outdir / "structure.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {N_STARTS} starts of {len(base)} atoms ({base.get_chemical_formula()}) "
          f"to {args.outdir}; {redraws} redraws")


if __name__ == "__main__":
    main()
