"""Cost of one periodic GFN2-xTB energy+forces call for 1,8-naphthyridine on graphene sheets
of several sizes: the measurement behind the sheet size of Challenge III.

Each size: the flat molecule 3.4 A above a rectangular n_a x n_b sheet (4 C per cell), 30 A
along c, pbc in all three directions; one first call (SCF from scratch), then ``--repeats``
calls after small random displacements (SCF restarted from the previous density, as in MD).

Run::

    OMP_NUM_THREADS=1 python benchmarks/surface_xtb_cost.py [--sizes 5x3,6x3,6x4] [--repeats 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "harness" / "challenges" / "naphthyridine-graphene" / "make_starts.py"


def _builder():
    spec = importlib.util.spec_from_file_location("make_starts", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(nx: int, ny: int, repeats: int) -> dict:
    """Timings (s) of the first and the following calls for one sheet size."""
    from ase import Atoms
    from tblite.ase import TBLite

    from analysis.observables.surface.geometry import SurfaceGroups, orient_molecule

    builder = _builder()
    sheet = builder.rectangular_graphene(2.4494, (nx, ny), builder.VACUUM_C_ANGSTROM)
    symbols, pos = builder.molecule()
    system = sheet + Atoms(symbols, positions=pos)
    n_sheet = len(sheet)
    groups = SurfaceGroups.from_table(
        {"surface": list(range(n_sheet)), "molecule": list(range(n_sheet, len(system))),
         "n_side": [i for i, s in enumerate(system.get_chemical_symbols()) if s == "N"]},
        system.numbers)
    system.positions = orient_molecule(system.positions, system.numbers, groups, 0, 0, 0, 3.4,
                                       system.cell.sum(0) / 2, np.asarray(system.cell))
    system.calc = TBLite(method="GFN2-xTB", verbosity=0)
    rng = np.random.default_rng(0)
    times = []
    for _ in range(repeats + 1):
        t0 = time.perf_counter()
        system.get_potential_energy()
        system.get_forces()
        times.append(time.perf_counter() - t0)
        system.positions = system.positions + rng.normal(0, 0.005, system.positions.shape)
    return {"sheet": f"{nx}x{ny}", "atoms": len(system), "sheet_C": n_sheet,
            "cell_angstrom": np.round(system.cell.lengths(), 3).tolist(),
            "first_call_s": round(times[0], 3), "median_next_s": round(float(np.median(times[1:])),
                                                                      3)}


def main() -> None:
    """Measure and print one JSON line per size."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="5x3,6x3,6x4")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for size in args.sizes.split(","):
        nx, ny = (int(v) for v in size.lower().split("x"))
        print(json.dumps(measure(nx, ny, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
