"""Cost of the in-run watchdog per MD step, against system size and against a GFN2-xTB step.

The watchdog (TEA criteria: non-finite, bond break, atom collapse) runs in the force client
at every step. Systems: copies of the Challenge I peptide on a grid (15 A apart), N = 42 to
~10,000 atoms; positions jittered every call so nothing is cached.
Usage: ``python benchmarks/watchdog_cost.py [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase.io import read

from harness import challenges
from harness.stability.monitor import StepMonitor
from harness.stability.watchdog import WatchdogSettings, build_frame_criteria


def replicated(n_copies: int):
    """The peptide repeated on a cubic grid."""
    atoms = read(challenges.load("alanine-tetrapeptide").starts[0])
    side = int(np.ceil(n_copies ** (1 / 3)))
    grid = [(i, j, k) for i in range(side) for j in range(side) for k in range(side)][:n_copies]
    numbers = np.tile(atoms.numbers, n_copies)
    positions = np.concatenate([atoms.positions + 15.0 * np.array(g) for g in grid])
    return numbers, positions


def time_monitor(n_copies: int, calls: int) -> float:
    """Seconds per watchdog call."""
    numbers, positions = replicated(n_copies)
    checks = build_frame_criteria(WatchdogSettings(), numbers, positions, None)
    monitor = StepMonitor(checks, 0, 0.5e-3, 21)
    rng = np.random.default_rng(0)
    forces = rng.normal(size=positions.shape)
    jitter = [positions + rng.normal(scale=0.02, size=positions.shape) for _ in range(4)]
    start = time.perf_counter()
    for k in range(calls):
        monitor.observe(jitter[k % 4], forces, -1.0)
    assert monitor.event is None
    return (time.perf_counter() - start) / calls


def time_xtb(calls: int = 20) -> float:
    """Seconds per GFN2-xTB energy+forces call on the 42-atom peptide (one thread)."""
    from tblite.ase import TBLite

    atoms = read(challenges.load("alanine-tetrapeptide").starts[0])
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    atoms.get_forces()
    start = time.perf_counter()
    for _ in range(calls):
        atoms.positions += 1e-4
        atoms.get_forces()
    return (time.perf_counter() - start) / calls


def main() -> None:
    """Print the cost per step for each size and the overhead on an xTB step."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--json")
    args = parser.parse_args()
    rows = []
    for copies, calls in ((1, 2000), (24, 500), (238, 100), (2400, 20)):
        t = time_monitor(copies, calls)
        rows.append({"atoms": 42 * copies, "us_per_step": t * 1e6,
                     "ns_per_atom": t * 1e9 / (42 * copies)})
        print(f"{42 * copies:7d} atoms: {t * 1e6:9.1f} us/step  {t * 1e9 / (42 * copies):7.1f} "
              "ns/atom")
    xtb = time_xtb()
    overhead = 100 * rows[0]["us_per_step"] * 1e-6 / xtb
    print(f"GFN2-xTB step on the peptide: {xtb * 1e3:.1f} ms; watchdog adds {overhead:.2f}%")
    if args.json:
        Path(args.json).write_text(json.dumps({"sizes": rows, "xtb_ms": xtb * 1e3,
                                               "overhead_percent_xtb": overhead}, indent=1))


if __name__ == "__main__":
    main()
