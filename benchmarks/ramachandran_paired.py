"""Known truth for the Ramachandran verdict paired by start: error rates by number of starts.

The chain of ``tests/test_ramachandran.py::_start_chains``: three basins on the torus, two
that exchange and one trap that the reference leaves with probability 1/5000 per frame. Model
and reference run from the same starts (100 frames each); each experiment judges the model
paired by start (``stats.bootstrap_histograms(..., paired=True)``, basic 95% interval) against
the tolerance of 0.15 bits. The truth of each model is the divergence of 200 runs per start.
Prints one table row per (starts, model): how often ``agrees``, ``differs``, and how often the
interval covers the truth. A wrong ``agrees`` is one whose truth lies beyond the tolerance.
About 2 minutes on 2 cores.

Usage: ``python benchmarks/ramachandran_paired.py [--experiments 100]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import test_ramachandran as chains  # noqa: E402

from analysis.observables import base  # noqa: E402
from analysis.observables.ramachandran import compute as rama  # noqa: E402

#: Basins of the starts (2 = the trap), as in the test for 12; 6 and 4 starts are subsets.
STARTS = {12: [2, 2, 0, 0, 0, 0, 1, 1, 1, 1, 0, 1], 6: [2, 0, 0, 1, 1, 0], 4: [2, 2, 0, 0]}
REFERENCE = (0.03, 0.03, 1 / 5000)
MODELS = {"the reference's own chain": REFERENCE,
          "exchange shifted, trap left at 1/20": (0.1, 0.005, 1 / 20),
          "exchange shifted more, trap left at 1/10": (0.3, 0.002, 1 / 10)}


def js(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return rama.worst_js_rows(a, b, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiments", type=int, default=100)
    parser.add_argument("--tolerance", type=float, default=0.15)
    args = parser.parse_args()
    k, tol = args.experiments, args.tolerance
    print("| model | starts | true JS (bits) | agrees | differs | covers | split-half |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for n_starts, basins in STARTS.items():
        chains._START_BASINS = np.array(basins)
        for name, model in MODELS.items():
            rng = np.random.default_rng(99)
            truth = float(js(chains._start_chains(rng, 100, model, 200).sum(0)[None],
                             chains._start_chains(rng, 100, REFERENCE, 200).sum(0)[None])[0])
            rng = np.random.default_rng(1)
            agrees = differs = covers = 0
            split = []
            for _ in range(k):
                um = chains._start_chains(rng, 100, model)
                ur = chains._start_chains(rng, 100, REFERENCE)
                half = n_starts // 2
                split.append(float(js(ur[:half].sum(0)[None], ur[half:].sum(0)[None])[0]))
                ci = base.interval([um, ur], js, "runs paired by start", vectorized=True,
                                   paired=True)
                agrees += ci.high <= tol
                differs += ci.low > tol
                covers += ci.low <= truth <= ci.high
            print(f"| {name} | {n_starts} | {truth:.3f} | {agrees / k:.0%} | "
                  f"{differs / k:.0%} | {covers / k:.0%} | {np.median(split):.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
