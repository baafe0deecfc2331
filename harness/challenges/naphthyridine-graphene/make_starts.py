"""Generate the structures of TEA Challenge 2023, Challenge III: 1,8-naphthyridine on graphene.

What
----
* ``reference/relaxed-xtb.xyz``: the complex relaxed with periodic GFN2-xTB (tblite), the
  structure the interaction-energy scan starts from.
* ``starts/start-00.xyz`` ... ``start-11.xyz``: 12 MD starting structures, the relaxed
  molecule placed rigidly at heights and orientations inside the physisorption well.
* ``starts/selection.json``: atom groups, the geometry of every start, settings, versions.

Atom order in every file: 60 sheet C atoms (0-59), then the molecule (60-75, RDKit order of
the SMILES ``c1cnc2ncccc2c1`` with H appended; N atoms 62 and 64).

Why these choices
-----------------
* Sheet: a rectangular 5 x 3 supercell of graphene's 4-atom orthorhombic cell, 60 C atoms,
  12.3 x 12.8 A in-plane, 30 A along c (periodic in all three directions; the sheet sees its own
  image 30 A away, the molecule at D = 10 A still 20 A from the image sheet). With the
  16-atom molecule (about 7.5 A long including H) the closest H-H contact between periodic
  images is about 5 A. One periodic GFN2-xTB call costs about 2 s for these 76 atoms on one
  core here, against about 5 s for a 6 x 4 sheet (96 C) and 20 s for 8 x 5 (160 C)
  (benchmarks/surface_xtb_cost.py); a 0.2 ps reference MD (400 steps) stays under 20 min.
  The paper does not state its sheet size. tblite samples the Gamma point only: the 5 x 3
  cell does not fold graphene's Dirac points onto Gamma, so its xTB sheet has a small
  artificial gap; that changes the metallic screening, not the dispersion-dominated
  physisorption this challenge probes, and it keeps the SCF robust in MD.
* Lattice constant: the minimum of a parabola through xTB energies of the bare sheet at
  five lattice constants, so the sheet is not strained at the reference level.
* Starts: rigid placements of the relaxed molecule (heights 3.1 - 3.9 A, azimuths spread over
  the sheet's 60-degree symmetry, small tilts and slants of both signs, lateral shifts),
  chosen from a fixed list so that every model starts from identical structures.

Run::

    OMP_NUM_THREADS=1 python make_starts.py

Runtime: about 10 min on one core (lattice scan 10 s; BFGS relaxation of the complex,
about 100 steps at 2-4 s each).
"""

from __future__ import annotations

import argparse
import json
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SMILES = "c1cnc2ncccc2c1"
SHEET_REPEATS = (5, 3)
VACUUM_C_ANGSTROM = 30.0
N_SHEET = 4 * SHEET_REPEATS[0] * SHEET_REPEATS[1]
#: (D in A, azimuth, tilt, slant in degrees, lateral shift in fractions of a and b)
START_PLACEMENTS = (
    (3.40, 0.0, 0.0, 0.0, 0.00, 0.00),
    (3.25, 30.0, 5.0, -8.0, 0.10, 0.05),
    (3.55, 60.0, 0.0, 8.0, 0.20, 0.10),
    (3.10, 90.0, 8.0, 0.0, 0.05, 0.20),
    (3.70, 120.0, 10.0, -12.0, 0.30, 0.15),
    (3.35, 150.0, 3.0, 12.0, 0.15, 0.30),
    (3.90, 15.0, 12.0, 5.0, 0.25, 0.25),
    (3.45, 45.0, 6.0, -15.0, 0.35, 0.05),
    (3.20, 75.0, 15.0, -4.0, 0.05, 0.35),
    (3.60, 105.0, 2.0, 15.0, 0.40, 0.20),
    (3.30, 135.0, 10.0, -10.0, 0.20, 0.40),
    (3.80, 165.0, 4.0, 4.0, 0.45, 0.45),
)


def rectangular_graphene(a: float, repeats: tuple[int, int], c: float):
    """Graphene in its orthorhombic 4-atom cell (a x sqrt(3) a), repeated, at z = c/2.

    Returns
    -------
    ase.Atoms
        ``4 * nx * ny`` C atoms, periodic in all three directions.
    """
    from ase import Atoms

    b = a * np.sqrt(3.0)
    bond = a / np.sqrt(3.0)
    basis = np.array([[0.0, 0.0, 0.0], [0.0, bond, 0.0], [a / 2, b / 2, 0.0],
                      [a / 2, b / 2 + bond, 0.0]])
    nx, ny = repeats
    pos = [basis + [i * a, j * b, c / 2] for i in range(nx) for j in range(ny)]
    return Atoms("C" * 4 * nx * ny, positions=np.concatenate(pos), cell=[nx * a, ny * b, c],
                 pbc=True)


def xtb_calculator():
    """The reference calculator: periodic GFN2-xTB via tblite, default settings."""
    from tblite.ase import TBLite

    return TBLite(method="GFN2-xTB", verbosity=0)


def optimal_lattice_constant(trial: np.ndarray) -> tuple[float, list[float]]:
    """Lattice constant (A) minimising the bare sheet's xTB energy (parabola through trials)."""
    energies = []
    for a in trial:
        sheet = rectangular_graphene(float(a), SHEET_REPEATS, VACUUM_C_ANGSTROM)
        sheet.calc = xtb_calculator()
        energies.append(float(sheet.get_potential_energy()))
    coeff = np.polyfit(trial, energies, 2)
    return float(-coeff[1] / (2 * coeff[0])), energies


def molecule():
    """1,8-naphthyridine (C8H6N2) from RDKit with MMFF geometry: symbols and positions."""
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles(SMILES))
    AllChem.EmbedMolecule(mol, randomSeed=20230)
    AllChem.MMFFOptimizeMolecule(mol)
    return [a.GetSymbol() for a in mol.GetAtoms()], mol.GetConformer().GetPositions()


def groups_for(symbols: list[str]) -> dict[str, list[int]]:
    """Atom groups of the complex: sheet, molecule and the molecule's N atoms."""
    n_total = len(symbols)
    return {"surface": list(range(N_SHEET)), "molecule": list(range(N_SHEET, n_total)),
            "n_side": [i for i in range(N_SHEET, n_total) if symbols[i] == "N"]}


def build_complex(a: float):
    """Sheet plus a flat molecule 3.4 A above it, centred in the cell."""
    from ase import Atoms

    from analysis.observables.surface.geometry import SurfaceGroups, orient_molecule

    sheet = rectangular_graphene(a, SHEET_REPEATS, VACUUM_C_ANGSTROM)
    symbols, pos = molecule()
    system = sheet + Atoms(symbols, positions=pos)
    groups = SurfaceGroups.from_table(groups_for(system.get_chemical_symbols()), system.numbers)
    centre = system.cell.sum(axis=0) / 2 + [0.3 * a, 0.0, 0.0]
    system.positions = orient_molecule(system.positions, system.numbers, groups, 0.0, 0.0,
                                       np.radians(90.0), 3.4, centre, np.asarray(system.cell))
    return system, groups


def relax(system, fmax: float, max_steps: int) -> tuple[int, bool]:
    """BFGS relaxation with xTB; returns steps and convergence."""
    from ase.optimize import BFGS

    system.calc = xtb_calculator()
    opt = BFGS(system, logfile="-", maxstep=0.1)
    converged = bool(opt.run(fmax=fmax, steps=max_steps))
    return int(opt.nsteps), converged


def write_structures(relaxed, groups, settings: dict, energy: float) -> None:
    """Write the relaxed reference (xTB energy ``energy``), the 12 starts and selection.json."""
    from ase.io import write

    from analysis.observables.surface.geometry import analyse, orient_molecule

    (HERE / "reference").mkdir(exist_ok=True)
    (HERE / "starts").mkdir(exist_ok=True)
    cell = np.asarray(relaxed.cell)
    geo = analyse(relaxed.positions, relaxed.numbers, groups, cell)
    relaxed.info = {"energy": round(energy, 8),
                    "D": round(float(geo["D"][0]), 6)}
    clean = relaxed.copy()
    clean.calc = None
    write(HERE / "reference" / "relaxed-xtb.xyz", clean, format="extxyz")
    starts = []
    for k, (height, azimuth, tilt, slant, fa, fb) in enumerate(START_PLACEMENTS):
        atoms = clean.copy()
        lateral = cell.sum(axis=0) / 2 + fa * cell[0] + fb * cell[1]
        atoms.positions = orient_molecule(atoms.positions, atoms.numbers, groups,
                                          np.radians(tilt), np.radians(slant),
                                          np.radians(azimuth), height, lateral, cell)
        got = analyse(atoms.positions, atoms.numbers, groups, cell)
        row = {"file": f"start-{k:02d}.xyz", "D_angstrom": round(float(got["D"][0]), 4)}
        row.update({f"{name}_deg": round(float(np.degrees(got[name][0])), 3)
                    for name in ("incline", "tilt", "slant")})
        row["azimuth_deg"] = azimuth
        atoms.info = {"start": k, **{key: val for key, val in row.items() if key != "file"}}
        write(HERE / "starts" / row["file"], atoms, format="extxyz")
        starts.append(row)
    doc = {"system": "1,8-naphthyridine (C8H6N2) on graphene (C60), periodic in a, b; "
                     "vacuum along c", "smiles": SMILES, "n_atoms": len(clean),
           "groups": groups_for(clean.get_chemical_symbols()),
           "cell_angstrom": np.diag(cell).round(6).tolist(), "starts": starts,
           "settings": settings}
    (HERE / "starts" / "selection.json").write_text(json.dumps(doc, indent=1) + "\n")


def main(argv: list[str] | None = None) -> None:
    """Build, relax and write the structures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--fmax", type=float, default=0.05, help="eV/A")
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--starts-only", action="store_true",
                        help="rewrite the starts from the existing reference/relaxed-xtb.xyz")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    if args.starts_only:
        from ase.io import read

        from analysis.observables.surface.geometry import SurfaceGroups

        relaxed = read(HERE / "reference" / "relaxed-xtb.xyz")
        groups = SurfaceGroups.from_table(groups_for(relaxed.get_chemical_symbols()),
                                          relaxed.numbers)
        settings = json.loads((HERE / "starts" / "selection.json").read_text())["settings"]
        write_structures(relaxed, groups, settings, float(relaxed.get_potential_energy()))
        print(f"rewrote {len(START_PLACEMENTS)} starts from the relaxed structure")
        return
    trial = np.array([2.44, 2.46, 2.48, 2.50, 2.52])
    a, energies = optimal_lattice_constant(trial)
    print(f"xTB lattice constant {a:.4f} A ({time.perf_counter() - t0:.0f} s)", flush=True)
    system, groups = build_complex(a)
    steps, converged = relax(system, args.fmax, args.max_steps)
    print(f"relaxed in {steps} steps, converged {converged} "
          f"({time.perf_counter() - t0:.0f} s)", flush=True)
    settings = {"reference": "GFN2-xTB (tblite ASE calculator, default accuracy and electronic "
                             "temperature), Gamma point, pbc in a, b, c",
                "sheet_repeats": list(SHEET_REPEATS), "vacuum_c_angstrom": VACUUM_C_ANGSTROM,
                "lattice_constant_angstrom": round(a, 5),
                "lattice_scan": {"a_angstrom": trial.tolist(), "energy_eV": energies},
                "relaxation": f"ASE BFGS maxstep 0.1 A, fmax {args.fmax} eV/A, "
                              f"{steps} steps, converged {converged}",
                "placements": "rigid copies of the relaxed molecule, START_PLACEMENTS in "
                              "make_starts.py",
                "versions": {"tblite": version("tblite"), "ase": version("ase"),
                             "rdkit": version("rdkit"), "numpy": np.__version__}}
    write_structures(system, groups, settings, float(system.get_potential_energy()))
    print(f"wrote {len(START_PLACEMENTS)} starts ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
