"""Generate the 12 MD starting structures of TEA Challenge 2023, Challenge I.

Ac-Ala3-NHMe (42 atoms, neutral, gas phase): 1000 RDKit conformers -> 60 GFN2-xTB relaxations
-> 12 structures by farthest-point sampling in (phi1, psi1, phi2, psi2). The pipeline is
:mod:`harness.challenges.peptide_starts` (its docstring explains each step). Run::

    OMP_NUM_THREADS=1 python harness/challenges/alanine-tetrapeptide/make_starts.py

Runtime: about 1.5 minutes on one core (~25 s embedding + MMFF, ~50 s for 60 xTB
optimisations). 1000 rather than a few hundred conformers are embedded because ETKDG/MMFF
rarely produces phi > 0 backbones; with 1000 a few exist and farthest-point sampling picks
them up.
"""

from __future__ import annotations

from pathlib import Path

from harness.challenges.peptide_starts import PeptideSpec, main

SPEC = PeptideSpec(
    smiles="CC(=O)N[C@@H](C)C(=O)N[C@@H](C)C(=O)N[C@@H](C)C(=O)NC",
    n_atoms=42,
    description="Ac-Ala3-NHMe (alanine tetrapeptide), neutral, gas phase",
    select=("phi1", "psi1", "phi2", "psi2"),
    outdir=Path(__file__).resolve().parent / "starts",
)

if __name__ == "__main__":
    main(SPEC)
