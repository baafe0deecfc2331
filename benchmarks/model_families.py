"""Cost of one energy+forces call per model family on Challenge I's 42-atom peptide.

Builds the tiny test models (tests/tiny_models.py: random 2-layer 8-channel MACE; sGDML and
FCHL19 on 20 GFN2-xTB frames), then times each family's calculator as the driver calls it
(positions changed, one call), on one thread; minimum and median over repeats.

    OMP_NUM_THREADS=1 python benchmarks/model_families.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.io import read

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def time_calls(calc, atoms, repeats: int) -> list[float]:
    """Seconds per call, moving one atom a little each time (as MD does)."""
    rng = np.random.default_rng(0)
    calc.calculate(atoms, ["energy", "forces"], ["positions", "numbers", "cell", "pbc"])
    times = []
    for _ in range(repeats):
        atoms.positions += rng.normal(scale=1e-3, size=atoms.positions.shape)
        start = time.perf_counter()
        calc.calculate(atoms, ["energy", "forces"], ["positions"])
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    """Print one line per family."""
    import tiny_models

    from harness import models
    from harness.challenges import load

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    start = read(load("alanine-tetrapeptide").starts[0])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = {"gap": models.get_family("gap").default_model_file("alanine-tetrapeptide"),
                 "mace": tiny_models.make_mace(work / "tiny.model"),
                 "sgdml": tiny_models.make_sgdml(work / "tiny.npz"),
                 "fchl19": tiny_models.make_fchl19(work / "fchl19.npz", work),
                 "xtb": None, "ase:ase.calculators.emt:EMT": None}
        print(f"{'family':30s} {'min ms':>8s} {'median ms':>10s}   (42 atoms, 1 thread)")
        for name, path in files.items():
            calc = models.get_family(name).ase_calculator(path, {})
            times = time_calls(calc, start.copy(), args.repeats)
            print(f"{name:30s} {1e3 * min(times):8.2f} {1e3 * statistics.median(times):10.2f}")


if __name__ == "__main__":
    main()
