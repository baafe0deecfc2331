"""Must-show of issue 28: a model whose equilibrium is wrong is not `agrees`, at any length.

Known truth: a two-basin chain on one dihedral pair (basin 0 "right-handed", basin 1
"left-handed", 12 degrees of noise around each centre, the chain of
``tests/test_ramachandran.py::_start_points`` without its trap). The reference's equilibrium
sits 9% in basin 1, the model's 98% (true JS between the two equilibria about 0.7 bits). Both
run from the same 12 starts (one in basin 1, as start 0 of Challenge I on pair A), 100 frames
per ps. Each experiment judges the model paired by start as the Ramachandran verdict does:

* the model's runs against the reference's runs cut to the same length, a paired bootstrap
  over starts (``analysis.observables.base.interval``, basic 95% interval) against the
  tolerance of 0.15 bits: ``agrees`` when the interval lies within it;
* the control: each model run's first 0.1 ps (10 frames) repeated over its length, judged by
  the same rule; the verdict stays ``agrees`` only where the control ``differs`` (otherwise
  ``inconclusive``, reason ``control_not_excluded``).

Two speeds: the basins relax in about 20 ps (slow: the model's runs stay near their starts for
picoseconds, which is what fooled the paired rule alone) and in about 2 ps. Prints per (speed,
length) how often the paired rule alone says ``agrees``, how often the control agrees, and how
often the verdict with its control says ``agrees`` (must stay at or below 5%) or ``differs``.
The last rows give the reference's own chain as the model (a right model): what the control
costs, since from these starts a right model cannot be told from one that stays put either.

This is the single-pair core of the rule (``verdict.rule`` adds the reference's split-half and
the per-pair bars of a two-pair study on top, which can only make ``agrees`` rarer).

Usage: ``python benchmarks/chain_controls.py [--experiments 100]``; about 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout, not an installed copy

import test_ramachandran as chains  # noqa: E402

from analysis.observables import base  # noqa: E402
from analysis.observables.ramachandran import compute as rama  # noqa: E402

FRAMES_PER_PS = 100
CONTROL_FRAMES = 10  # 0.1 ps, the control's opening (analysis/observables/ramachandran)
STARTS = np.array([1] + [0] * 11)  # one start in the left-handed basin
LENGTHS = [25, 50, 200, 1000, 2000]  # frames: 0.25 to 20 ps
REFERENCE_LEFT, MODEL_LEFT = 0.09, 0.98


def process(left: float, relax_frames: float) -> tuple[float, float, float]:
    """Per-frame probabilities (0 -> 1, 1 -> 0, trap escape) of a chain with equilibrium
    ``left`` in basin 1 that relaxes in ``relax_frames`` frames."""
    rate = 1.0 / relax_frames
    return left * rate, (1.0 - left) * rate, 0.0


def histograms(points: np.ndarray) -> np.ndarray:
    """Unit histograms (36 bins, one pair) of runs given as (runs, frames, 2) points."""
    settings = rama.Settings(bins=36)
    rows = []
    for run in points.astype(np.float32):
        n = len(run)
        data = rama.Trajectories([None], np.array([0, n]), np.zeros(n), run)
        rows.append(rama.unit_histograms(data, 1, settings, 1)[0])
    return np.array(rows)


def js(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return rama.worst_js_rows(a, b, 1)


def truth(relax: float, rng: np.random.Generator) -> float:
    """JS of the two chains' long-run histograms (200 long runs per start each)."""
    n = int(20 * relax)
    model = chains._start_points(rng, n, process(MODEL_LEFT, relax), 200, STARTS)
    ref = chains._start_points(rng, n, process(REFERENCE_LEFT, relax), 200, STARTS)
    return float(js(histograms(model[:, n // 2:]).sum(0)[None],
                    histograms(ref[:, n // 2:]).sum(0)[None])[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiments", type=int, default=100)
    parser.add_argument("--tolerance", type=float, default=0.15)
    args = parser.parse_args()
    k, tol = args.experiments, args.tolerance
    start = time.perf_counter()
    print("| model, relaxation | run length | paired rule alone: agrees | control agrees | "
          "verdict with control: agrees | differs | inconclusive |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for relax_ps, left in ((20.0, MODEL_LEFT), (2.0, MODEL_LEFT), (20.0, REFERENCE_LEFT)):
        relax = relax_ps * FRAMES_PER_PS
        rng = np.random.default_rng(7)
        which = "wrong model (98% left)" if left == MODEL_LEFT else "right model (9% left)"
        if left == MODEL_LEFT:
            print(f"<!-- true JS of the equilibria at {relax_ps:g} ps relaxation: "
                  f"{truth(min(relax, 500.0), rng):.3f} bits -->", flush=True)
        for n in LENGTHS:
            rng = np.random.default_rng(1000 + n)
            alone = control_agrees = agrees = differs = 0
            for _ in range(k):
                model = chains._start_points(rng, n, process(left, relax), 1, STARTS)
                ref = chains._start_points(rng, n, process(REFERENCE_LEFT, relax), 1, STARTS)
                opening = model[:, :CONTROL_FRAMES]
                reps = -(-n // CONTROL_FRAMES)
                control = np.concatenate([opening] * reps, axis=1)[:, :n]
                um, ur, uc = histograms(model), histograms(ref), histograms(control)
                ci = base.interval([um, ur], js, "runs paired by start", vectorized=True,
                                   paired=True)
                cc = base.interval([uc, ur], js, "runs paired by start", vectorized=True,
                                   paired=True)
                model_agrees = ci.high <= tol
                alone += model_agrees
                control_agrees += cc.high <= tol
                agrees += model_agrees and cc.low > tol
                differs += ci.low > tol
            print(f"| {which}, {relax_ps:g} ps | {n / FRAMES_PER_PS:g} ps ({n} frames) | "
                  f"{alone / k:.0%} | "
                  f"{control_agrees / k:.0%} | {agrees / k:.0%} | {differs / k:.0%} | "
                  f"{(k - agrees - differs) / k:.0%} |", flush=True)
    print(f"<!-- {k} experiments per row, {time.perf_counter() - start:.0f} s -->")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
