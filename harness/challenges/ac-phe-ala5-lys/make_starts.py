"""Generate the 12 MD starting structures of TEA Challenge 2023, Challenge II.

Protonated Ac-Phe-Ala5-Lys (100 atoms, charge +1, gas phase): the C terminus is a neutral
carboxylic acid and the lysine side chain is protonated (NH3+), the protonation state that
gives the 100 atoms and +1 charge of "protonated Ac-Phe-Ala5-Lys". Conformers by RDKit ->
GFN2-xTB relaxations (charge +1) -> 12 structures by farthest-point sampling in the dihedral
pairs A, B, C of ``challenge.toml`` (phi1/psi1, phi4/psi4, phi6/psi6). The pipeline is
:mod:`harness.challenges.peptide_starts`. Run::

    OMP_NUM_THREADS=1 python harness/challenges/ac-phe-ala5-lys/make_starts.py

Fewer conformers (120) and xTB relaxations (16), a looser force threshold (0.2 eV/A: the
starts are MD starting points, not minima to report) and a wider energy window (1.5 eV: the
conformers of a charged 100-atom peptide spread more in energy) than for Challenge I: the
molecule is 2.4x larger and one xTB call costs about 10x as much (0.2-0.4 s here).
``starts/selection.json`` records the settings.
"""

from __future__ import annotations

from pathlib import Path

from harness.challenges.peptide_starts import PeptideSpec, main

SPEC = PeptideSpec(
    smiles="CC(=O)N[C@@H](Cc1ccccc1)C(=O)N[C@@H](C)C(=O)N[C@@H](C)C(=O)N[C@@H](C)C(=O)"
           "N[C@@H](C)C(=O)N[C@@H](C)C(=O)N[C@@H](CCCC[NH3+])C(=O)O",
    n_atoms=100,
    charge=1,
    description="Ac-Phe-Ala5-Lys, protonated (Lys NH3+, C-terminal COOH), charge +1, gas phase",
    select=("phi1", "psi1", "phi4", "psi4", "phi6", "psi6"),
    outdir=Path(__file__).resolve().parent / "starts",
    n_conformers=120,
    n_xtb=16,
    fmax=0.2,
    max_steps=300,
    energy_window=1.5,
)

if __name__ == "__main__":
    main(SPEC)
