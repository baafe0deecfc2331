"""Starting structures for the peptide challenges: conformers -> GFN2-xTB -> diverse picks.

What
----
From a peptide's SMILES (explicit hydrogens added by RDKit) this samples conformers, relaxes a
diverse subset with GFN2-xTB and picks ``--n-starts`` structures that cover different regions
of backbone dihedral space. Each challenge's ``make_starts.py`` holds a :class:`PeptideSpec`
(SMILES, charge, which dihedrals drive the selection) and calls :func:`main`. Output (in the
challenge's ``starts/``):

* ``start-00.xyz`` ...: extended XYZ, identical atom order (RDKit order of the SMILES with
  explicit H appended), no cell, ``pbc=False``; ``info`` holds the GFN2-xTB energy in eV
  (``energy``) and the backbone dihedrals in degrees (``phi1`` ...). For a charged peptide the
  RDKit formal charges are stored per atom (``initial_charges``), so calculators that read
  ``Atoms.get_initial_charges()`` (tblite) see the right total charge.
* ``selection.json``: 0-based atom quadruples of all backbone dihedrals, per start its
  dihedrals and xTB energy, and all settings and package versions.

Why
---
The challenges run MD from several starting points spread over the Ramachandran map, so that
models are probed in more than one basin. Picking the starts by farthest-point sampling on the
torus of the selected backbone dihedrals makes the choice reproducible and maximally spread
instead of hand-picked.

How
---
1. RDKit ETKDGv3 embedding of ``--n-conformers`` conformers (fixed seed, single thread),
   MMFF94 pre-optimisation.
2. Conformers with a broken topology, wrong chirality or a cis amide bond are dropped;
   ``--n-xtb`` of the rest are chosen by farthest-point sampling on the torus of all backbone
   dihedrals (lowest MMFF energy first).
3. Each is optimised with GFN2-xTB (tblite ASE calculator, the spec's total charge) using ASE
   BFGS to ``--fmax`` eV/A, at most ``--max-steps`` steps.
4. Optimised structures are checked again (topology, chirality, trans amides), near-duplicates
   are removed, structures more than ``--energy-window`` eV above the lowest one are dropped,
   and ``--n-starts`` are chosen by farthest-point sampling in the spec's selection dihedrals,
   starting from the lowest-energy structure.

The backbone (phi_i = C(i-1)-N(i)-CA(i)-C(i), psi_i = N(i)-CA(i)-C(i)-N(i+1)) comes from the
bond graph by :mod:`harness.challenges.backbone`, the same code the analysis uses to check
the quadruples of a ``challenge.toml``. The result is deterministic for a fixed seed and
single-threaded runs (set ``OMP_NUM_THREADS=1``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

from harness.challenges import backbone


@dataclass(frozen=True)
class PeptideSpec:
    """What a challenge's start generator needs to know about its peptide.

    Attributes
    ----------
    smiles
        The molecule, with stereo centres.
    n_atoms
        Expected atom count with explicit hydrogens (a guard against a wrong SMILES).
    description
        One line for ``selection.json``.
    select
        Dihedral names (``phi1``, ``psi2``, ...) spanning the space the starts are spread in.
    charge
        Total charge (sum of RDKit formal charges must equal it).
    n_conformers, n_xtb, fmax, max_steps, energy_window
        Defaults of ``--n-conformers``, ``--n-xtb``, ``--fmax``, ``--max-steps`` and
        ``--energy-window``.
    outdir
        Default output folder.
    """

    smiles: str
    n_atoms: int
    description: str
    select: tuple[str, ...]
    outdir: Path
    charge: int = 0
    n_conformers: int = 1000
    n_xtb: int = 60
    fmax: float = 0.05
    max_steps: int = 600
    energy_window: float = 0.6


@dataclass
class Candidate:
    """A conformer with its coordinates, energy and backbone dihedrals.

    Attributes
    ----------
    source : int
        Index of the RDKit conformer it came from.
    positions : numpy.ndarray
        Cartesian coordinates in Angstrom, shape (n_atoms, 3).
    energy : float
        Energy (MMFF in kcal/mol or GFN2-xTB in eV, depending on the stage).
    dihedrals : numpy.ndarray
        All backbone dihedrals in degrees, in chain order (phi1, psi1, phi2, ...).
    n_steps : int
        Optimiser steps used (0 for MMFF-stage candidates).
    converged : bool
        Whether the xTB optimisation reached ``fmax``.
    """

    source: int
    positions: np.ndarray
    energy: float
    dihedrals: np.ndarray
    n_steps: int = 0
    converged: bool = True


def build_molecule(spec: PeptideSpec):
    """Build the peptide with explicit hydrogens.

    Returns
    -------
    rdkit.Chem.Mol
        Molecule with explicit H and no conformers.
    """
    from rdkit import Chem

    mol = Chem.AddHs(Chem.MolFromSmiles(spec.smiles))
    if mol.GetNumAtoms() != spec.n_atoms:
        raise RuntimeError(f"expected {spec.n_atoms} atoms, got {mol.GetNumAtoms()}")
    charge = sum(a.GetFormalCharge() for a in mol.GetAtoms())
    if charge != spec.charge:
        raise RuntimeError(f"SMILES has total formal charge {charge}, spec says {spec.charge}")
    return mol


def dihedral_deg(pos: np.ndarray, quad: list[int]) -> float:
    """Signed dihedral angle in degrees, in (-180, 180].

    Parameters
    ----------
    pos : numpy.ndarray
        Coordinates, shape (n_atoms, 3).
    quad : list of int
        Four atom indices.

    Returns
    -------
    float
        Dihedral angle (IUPAC sign convention).
    """
    p0, p1, p2, p3 = (pos[i] for i in quad)
    b0 = p0 - p1
    b1 = p2 - p1
    b2 = p3 - p2
    b1n = b1 / np.linalg.norm(b1)
    v = b0 - np.dot(b0, b1n) * b1n
    w = b2 - np.dot(b2, b1n) * b1n
    x = np.dot(v, w)
    y = np.dot(np.cross(b1n, v), w)
    return float(np.degrees(np.arctan2(y, x)))


def all_dihedrals(pos: np.ndarray, quads: dict[str, list[int]]) -> np.ndarray:
    """Backbone dihedrals in the order of ``quads``.

    Parameters
    ----------
    pos : numpy.ndarray
        Coordinates, shape (n_atoms, 3).
    quads : dict of str to list of int
        Output of :func:`dihedral_quadruples`.

    Returns
    -------
    numpy.ndarray
        Angles in degrees.
    """
    return np.array([dihedral_deg(pos, q) for q in quads.values()])


def reference_bonds(mol) -> set[tuple[int, int]]:
    """Bond set of the molecular graph.

    Parameters
    ----------
    mol : rdkit.Chem.Mol
        The peptide.

    Returns
    -------
    set of tuple of int
        Sorted index pairs.
    """
    return {
        tuple(sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))) for b in mol.GetBonds()
    }


def geometric_bonds(
    symbols: list[str], pos: np.ndarray, scale: float = 1.2
) -> set[tuple[int, int]]:
    """Bonds inferred from distances and scaled covalent radii.

    Parameters
    ----------
    symbols : list of str
        Element symbols.
    pos : numpy.ndarray
        Coordinates, shape (n_atoms, 3).
    scale : float
        Factor on the sum of covalent radii.

    Returns
    -------
    set of tuple of int
        Sorted index pairs closer than ``scale * (r_i + r_j)``.
    """
    from ase.data import atomic_numbers, covalent_radii

    radii = np.array([covalent_radii[atomic_numbers[s]] for s in symbols])
    d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
    cut = scale * (radii[:, None] + radii[None, :])
    i, j = np.nonzero(np.triu(d < cut, k=1))
    return {(int(a), int(b)) for a, b in zip(i, j, strict=True)}


def chirality_ok(mol, pos: np.ndarray) -> bool:
    """Check that the stereo centres keep the SMILES chirality.

    Parameters
    ----------
    mol : rdkit.Chem.Mol
        The peptide (its stereo tags are the reference).
    pos : numpy.ndarray
        Coordinates to test.

    Returns
    -------
    bool
        True if the CIP labels from 3D match the reference labels.
    """
    from rdkit import Chem
    from rdkit.Chem import rdCIPLabeler

    ref = Chem.Mol(mol)
    rdCIPLabeler.AssignCIPLabels(ref)
    test = Chem.Mol(mol)
    test.RemoveAllConformers()
    conf = Chem.Conformer(test.GetNumAtoms())
    for k, xyz in enumerate(pos):
        conf.SetAtomPosition(k, xyz.tolist())
    test.AddConformer(conf, assignId=True)
    Chem.AssignStereochemistryFrom3D(test)
    rdCIPLabeler.AssignCIPLabels(test)
    for a_ref, a_test in zip(ref.GetAtoms(), test.GetAtoms(), strict=True):
        if a_ref.HasProp("_CIPCode"):
            if not a_test.HasProp("_CIPCode"):
                return False
            if a_ref.GetProp("_CIPCode") != a_test.GetProp("_CIPCode"):
                return False
    return True


def structure_ok(
    mol,
    symbols: list[str],
    pos: np.ndarray,
    bonds: set[tuple[int, int]],
    omegas: list[list[int]],
    min_abs_omega: float,
) -> tuple[bool, str]:
    """Topology, chirality and trans-amide check.

    Parameters
    ----------
    mol : rdkit.Chem.Mol
        The peptide.
    symbols : list of str
        Element symbols.
    pos : numpy.ndarray
        Coordinates.
    bonds : set of tuple of int
        Reference bond set.
    omegas : list of list of int
        Amide dihedral quadruples.
    min_abs_omega : float
        Minimum |omega| in degrees for an amide to count as trans.

    Returns
    -------
    tuple of (bool, str)
        Verdict and a reason if it failed.
    """
    if geometric_bonds(symbols, pos) != bonds:
        return False, "bonds"
    if not chirality_ok(mol, pos):
        return False, "chirality"
    for q in omegas:
        if abs(dihedral_deg(pos, q)) < min_abs_omega:
            return False, "cis-amide"
    return True, ""


def torus_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance on the torus of angles in degrees.

    Parameters
    ----------
    a : numpy.ndarray
        Angles, shape (..., k).
    b : numpy.ndarray
        Angles, broadcastable to ``a``.

    Returns
    -------
    numpy.ndarray
        Distances in degrees, shape (...).
    """
    d = np.abs(a - b) % 360.0
    d = np.minimum(d, 360.0 - d)
    return np.sqrt(np.sum(d * d, axis=-1))


def farthest_point_sampling(points: np.ndarray, n: int, first: int) -> list[int]:
    """Greedy farthest-point sampling with the torus metric.

    Parameters
    ----------
    points : numpy.ndarray
        Angles in degrees, shape (n_points, k).
    n : int
        Number of points to pick (capped at ``n_points``).
    first : int
        Index of the first point.

    Returns
    -------
    list of int
        Selected indices in pick order.
    """
    chosen = [first]
    dmin = torus_distance(points, points[first])
    while len(chosen) < min(n, len(points)):
        nxt = int(np.argmax(dmin))
        if dmin[nxt] <= 0.0:
            break
        chosen.append(nxt)
        dmin = np.minimum(dmin, torus_distance(points, points[nxt]))
    return chosen


def embed_conformers(mol, n_conf: int, seed: int) -> tuple[object, np.ndarray]:
    """ETKDGv3 embedding followed by MMFF94 optimisation.

    Parameters
    ----------
    mol : rdkit.Chem.Mol
        Peptide with explicit H.
    n_conf : int
        Number of conformers to embed.
    seed : int
        Random seed for ETKDG.

    Returns
    -------
    tuple
        The molecule with conformers and an array of MMFF energies
        (kcal/mol; NaN where MMFF did not converge).
    """
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.Mol(mol)
    params = AllChem.ETKDGv3()
    params.randomSeed = seed
    params.numThreads = 1
    params.pruneRmsThresh = -1.0
    cids = list(AllChem.EmbedMultipleConfs(mol, numConfs=n_conf, params=params))
    if not cids:
        raise RuntimeError("ETKDG embedding failed")
    res = AllChem.MMFFOptimizeMoleculeConfs(mol, numThreads=1, maxIters=5000)
    energies = np.array([e if conv == 0 else np.nan for conv, e in res])
    return mol, energies


def xtb_optimise(
    symbols: list[str], pos: np.ndarray, fmax: float, max_steps: int, charge: int = 0
) -> tuple[np.ndarray, float, int, bool]:
    """Relax a structure with GFN2-xTB.

    Parameters
    ----------
    symbols : list of str
        Element symbols.
    pos : numpy.ndarray
        Start coordinates in Angstrom.
    fmax : float
        Force convergence threshold in eV/A.
    max_steps : int
        Step cap for the optimiser.
    charge : int
        Total charge of the molecule.

    Returns
    -------
    tuple
        Optimised positions, energy in eV, steps taken, converged flag.
    """
    from ase import Atoms
    from ase.optimize import BFGS
    from tblite.ase import TBLite

    atoms = Atoms(symbols=symbols, positions=pos, pbc=False)
    settings = {"charge": charge} if charge else {}
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0, **settings)
    opt = BFGS(atoms, logfile=None, maxstep=0.2)
    converged = bool(opt.run(fmax=fmax, steps=max_steps))
    energy = float(atoms.get_potential_energy())
    return atoms.get_positions(), energy, int(opt.nsteps), converged


def deduplicate(
    cands: list[Candidate], ang_tol: float, e_tol: float
) -> list[Candidate]:
    """Remove near-duplicate minima (keep the lower-energy copy).

    Two structures are duplicates if every backbone dihedral agrees within
    ``ang_tol`` degrees and the energies agree within ``e_tol`` eV.

    Parameters
    ----------
    cands : list of Candidate
        xTB-optimised candidates.
    ang_tol : float
        Dihedral tolerance in degrees.
    e_tol : float
        Energy tolerance in eV.

    Returns
    -------
    list of Candidate
        Unique candidates sorted by energy.
    """
    unique: list[Candidate] = []
    for c in sorted(cands, key=lambda x: x.energy):
        dup = False
        for u in unique:
            d = np.abs(c.dihedrals - u.dihedrals) % 360.0
            d = np.minimum(d, 360.0 - d)
            if np.all(d < ang_tol) and abs(c.energy - u.energy) < e_tol:
                dup = True
                break
        if not dup:
            unique.append(c)
    return unique


def write_outputs(
    spec: PeptideSpec,
    outdir: Path,
    mol,
    picked: list[Candidate],
    quads: dict[str, list[int]],
    settings: dict,
) -> None:
    """Write the extxyz start files and ``selection.json``.

    Parameters
    ----------
    spec : PeptideSpec
        The peptide.
    outdir : pathlib.Path
        Output folder (created if needed).
    mol : rdkit.Chem.Mol
        The molecule (element symbols and formal charges).
    picked : list of Candidate
        The selected structures in output order.
    quads : dict of str to list of int
        Dihedral quadruples.
    settings : dict
        Settings and versions recorded in the JSON file.
    """
    from ase import Atoms
    from ase.io import write

    outdir.mkdir(parents=True, exist_ok=True)
    symbols = [a.GetSymbol() for a in mol.GetAtoms()]
    formal = np.array([a.GetFormalCharge() for a in mol.GetAtoms()], dtype=float)
    names = list(quads)
    starts = []
    for k, c in enumerate(picked):
        atoms = Atoms(symbols=symbols, positions=c.positions, pbc=False)
        if formal.any():
            atoms.set_initial_charges(formal)
        atoms.info["energy"] = round(c.energy, 8)
        for name, val in zip(names, c.dihedrals, strict=True):
            atoms.info[name] = round(float(val), 3)
        atoms.info["start"] = k
        name = f"start-{k:02d}.xyz"
        write(outdir / name, atoms, format="extxyz")
        starts.append(
            {
                "file": name,
                "xtb_energy_eV": round(c.energy, 8),
                "xtb_relative_energy_eV": round(
                    c.energy - min(p.energy for p in picked), 6
                ),
                "dihedrals_deg": {
                    n: round(float(v), 3)
                    for n, v in zip(names, c.dihedrals, strict=True)
                },
                "source_conformer": c.source,
                "opt_steps": c.n_steps,
            }
        )
    doc = {
        "molecule": spec.description,
        "smiles": spec.smiles,
        "charge": spec.charge,
        "n_atoms": len(symbols),
        "symbols": symbols,
        "dihedral_definition": (
            "phi_i = C(i-1)-N(i)-CA(i)-C(i), psi_i = N(i)-CA(i)-C(i)-N(i+1); "
            "residue 1 = first residue after the acetyl cap; indices 0-based in "
            "the atom order of the start files; degrees, IUPAC sign"
        ),
        "dihedral_atoms": quads,
        "starts": starts,
        "settings": settings,
    }
    with open(outdir / "selection.json", "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")


def parse_args(spec: PeptideSpec, argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options.

    Parameters
    ----------
    spec : PeptideSpec
        The peptide (defaults of some options).
    argv : list of str, optional
        Arguments (default: ``sys.argv``).

    Returns
    -------
    argparse.Namespace
        Parsed options.
    """
    p = argparse.ArgumentParser(description=f"Starting structures for {spec.description}")
    p.add_argument("--n-conformers", type=int, default=spec.n_conformers)
    p.add_argument("--seed", type=int, default=20230)
    p.add_argument("--n-xtb", type=int, default=spec.n_xtb, help="xTB optimisations")
    p.add_argument("--n-starts", type=int, default=12)
    p.add_argument("--fmax", type=float, default=spec.fmax, help="eV/A")
    p.add_argument("--max-steps", type=int, default=spec.max_steps)
    p.add_argument(
        "--mmff-window",
        type=float,
        default=25.0,
        help="kcal/mol above the MMFF minimum kept for xTB",
    )
    p.add_argument(
        "--energy-window",
        type=float,
        default=spec.energy_window,
        help="eV above the xTB minimum allowed for a start",
    )
    p.add_argument("--dup-angle", type=float, default=15.0, help="deg")
    p.add_argument("--dup-energy", type=float, default=0.01, help="eV")
    p.add_argument("--min-abs-omega", type=float, default=150.0, help="deg")
    p.add_argument("--outdir", type=Path, default=spec.outdir)
    return p.parse_args(argv)


def main(spec: PeptideSpec, argv: list[str] | None = None) -> None:
    """Run the full pipeline and write the start structures.

    Parameters
    ----------
    spec : PeptideSpec
        The peptide.
    argv : list of str, optional
        Command-line arguments.
    """
    args = parse_args(spec, argv)
    if os.environ.get("OMP_NUM_THREADS") is None:
        print("note: OMP_NUM_THREADS not set; set it to 1 for reproducibility")
    t0 = time.perf_counter()

    mol = build_molecule(spec)
    symbols = [a.GetSymbol() for a in mol.GetAtoms()]
    bonds = reference_bonds(mol)
    quads = backbone.backbone_dihedrals(symbols, bonds)
    omegas = backbone.omega_quadruples(symbols, bonds)
    missing = sorted(set(spec.select) - set(quads))
    if missing:
        raise RuntimeError(f"selection dihedrals {missing} not in the backbone ({list(quads)})")
    for name, q in quads.items():
        for a, b in itertools.pairwise(q):
            if tuple(sorted((a, b))) not in bonds:
                raise RuntimeError(f"{name} quadruple {q} is not a bonded chain")

    # 1. embedding + MMFF
    mol_c, e_mmff = embed_conformers(mol, args.n_conformers, args.seed)
    confs = list(mol_c.GetConformers())
    t_embed = time.perf_counter() - t0
    print(f"embedded+MMFF {len(confs)} conformers in {t_embed:.1f} s")

    # 2. filter and pick a diverse subset for xTB
    rejected: dict[str, int] = {}
    mmff_cands: list[Candidate] = []
    for conf, e in zip(confs, e_mmff, strict=True):
        pos = np.array(conf.GetPositions())
        if not np.isfinite(e):
            rejected["mmff-not-converged"] = rejected.get("mmff-not-converged", 0) + 1
            continue
        ok, why = structure_ok(mol, symbols, pos, bonds, omegas, args.min_abs_omega)
        if not ok:
            rejected[why] = rejected.get(why, 0) + 1
            continue
        mmff_cands.append(
            Candidate(conf.GetId(), pos, float(e), all_dihedrals(pos, quads))
        )
    e_min = min(c.energy for c in mmff_cands)
    mmff_cands = [c for c in mmff_cands if c.energy - e_min <= args.mmff_window]
    mmff_cands.sort(key=lambda c: c.energy)
    print(f"MMFF candidates kept: {len(mmff_cands)}; rejected: {rejected}")
    pts = np.array([c.dihedrals for c in mmff_cands])
    pre = farthest_point_sampling(pts, args.n_xtb, first=0)
    pre_sel = [mmff_cands[i] for i in sorted(pre)]

    # 3. xTB optimisation
    xtb_cands: list[Candidate] = []
    xtb_rejected: dict[str, int] = {}
    t1 = time.perf_counter()
    for k, c in enumerate(pre_sel):
        pos, e, nst, conv = xtb_optimise(
            symbols, c.positions, args.fmax, args.max_steps, spec.charge
        )
        ok, why = structure_ok(mol, symbols, pos, bonds, omegas, args.min_abs_omega)
        tag = "ok" if ok else f"REJECT({why})"
        print(
            f"  xtb {k + 1:3d}/{len(pre_sel)} conf {c.source:3d}: E={e:.5f} eV "
            f"steps={nst:4d} conv={conv} {tag}",
            flush=True,
        )
        if not ok:
            xtb_rejected[why] = xtb_rejected.get(why, 0) + 1
            continue
        if not conv:
            xtb_rejected["not-converged"] = xtb_rejected.get("not-converged", 0) + 1
            continue
        xtb_cands.append(
            Candidate(c.source, pos, e, all_dihedrals(pos, quads), nst, conv)
        )
    t_xtb = time.perf_counter() - t1
    print(
        f"xTB optimisations: {len(pre_sel)} in {t_xtb:.1f} s; rejected {xtb_rejected}"
    )

    # 4. dedup, energy window, farthest-point sampling in (phi1, psi1, phi2, psi2)
    unique = deduplicate(xtb_cands, args.dup_angle, args.dup_energy)
    e0 = unique[0].energy
    pool = [c for c in unique if c.energy - e0 <= args.energy_window]
    print(f"unique minima: {len(unique)}, within {args.energy_window} eV: {len(pool)}")
    names = list(quads)
    sel_idx = [names.index(n) for n in spec.select]
    pts = np.array([c.dihedrals[sel_idx] for c in pool])
    picked_idx = farthest_point_sampling(pts, args.n_starts, first=0)
    if len(picked_idx) < args.n_starts:
        raise RuntimeError(f"only {len(picked_idx)} distinct structures available")
    picked = [pool[i] for i in picked_idx]

    # 5. verification
    for c in picked:
        ok, why = structure_ok(
            mol, symbols, c.positions, bonds, omegas, args.min_abs_omega
        )
        if not ok:
            raise RuntimeError(f"selected structure failed check: {why}")
    pts_sel = np.array([c.dihedrals[sel_idx] for c in picked])
    dmat = torus_distance(pts_sel[:, None, :], pts_sel[None, :, :])
    min_sep = float(np.min(dmat[np.triu_indices(len(picked), k=1)]))
    rmsd_min = min(
        float(np.sqrt(np.mean(np.sum((a.positions - b.positions) ** 2, axis=1))))
        for i, a in enumerate(picked)
        for b in picked[i + 1 :]
    )
    print(
        f"min torus separation ({','.join(spec.select)}): {min_sep:.1f} deg; "
        f"min unaligned coordinate RMS difference: {rmsd_min:.2f} A"
    )

    from rdkit import __version__ as rdkit_version

    settings = {
        "n_conformers": args.n_conformers,
        "embedding": "RDKit ETKDGv3, numThreads=1, no RMS pruning",
        "embed_seed": args.seed,
        "preopt": "MMFF94, maxIters=5000",
        "mmff_window_kcal_mol": args.mmff_window,
        "n_xtb_optimised": len(pre_sel),
        "xtb_preselection": "farthest-point sampling on the torus of all six "
        "backbone dihedrals, starting from the MMFF minimum",
        "xtb_method": f"GFN2-xTB (tblite ASE calculator), gas phase, charge {spec.charge}",
        "optimizer": "ASE BFGS, maxstep=0.2 A",
        "fmax_eV_A": args.fmax,
        "max_steps": args.max_steps,
        "filters": "bond graph equals SMILES graph (1.2 x covalent radii), "
        f"CIP labels preserved, all |omega| >= {args.min_abs_omega} deg",
        "duplicate_tolerance": {
            "angle_deg": args.dup_angle,
            "energy_eV": args.dup_energy,
        },
        "energy_window_eV": args.energy_window,
        "n_unique_minima": len(unique),
        "n_in_window": len(pool),
        "selection": "farthest-point sampling on the torus in "
        f"({', '.join(spec.select)}), periodic angular distance, starting from "
        "the lowest xTB energy structure",
        "min_selected_torus_separation_deg": round(min_sep, 2),
        "versions": {
            "rdkit": rdkit_version,
            "tblite": version("tblite"),
            "ase": version("ase"),
            "numpy": np.__version__,
        },
    }
    write_outputs(spec, args.outdir, mol, picked, quads, settings)

    print(f"\n{'start':>5} {'dE/eV':>8} " + " ".join(f"{n:>7}" for n in names))
    for k, c in enumerate(picked):
        print(
            f"{k:5d} {c.energy - e0:8.4f} " + " ".join(f"{v:7.1f}" for v in c.dihedrals)
        )
    print(f"\nwrote {len(picked)} starts to {args.outdir}")
    print(f"total time {time.perf_counter() - t0:.1f} s")

