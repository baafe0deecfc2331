"""Calibration of the median breaking temperature's interval (``analysis ramp``) on a known truth.

Truth: breaking temperatures drawn from an Arrhenius escape over a barrier under a linear
ramp (``tests/ramp_toy.py::ArrheniusEscape``: rate ``nu exp(-E / kB T)``, ``T = 300 K +
500 K/ps t``, closed-form cumulative hazard), whose median breaking temperature is exact.
Runs intact at the end (3000 K) are censored there. Each experiment draws ``--replicas`` runs
(12 as in TEA), computes the Kaplan-Meier median with its 95% interval exactly as
``analysis ramp`` does (:func:`analysis.ramp.median_breaking_temperature`) and checks whether
the interval holds the true median; an upper bound that is not reached counts as open.

Why this truth and not many MD runs of a cheap model: the interval is a statement about the
sample of breaking temperatures; MD only supplies the sample. The escape model gives the exact
median for any censoring, and 1000 experiments cost seconds (12 000 MD runs would cost days on
this machine). Without censoring the Kaplan-Meier median interval is distribution-free (it
depends only on ranks), so the shape of the escape law matters only through the fraction
censored at the end, which the scenarios vary; the MD plumbing (temperature at the failure
step, censoring at the end, kill and resume) is tested on real runs in tests/test_ramp.py.

Usage: ``python benchmarks/ramp_calibration.py [--experiments 1000] [--json F]``. Seeded.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy.optimize import brentq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from ramp_toy import ArrheniusEscape  # noqa: E402

from analysis import ramp, stats  # noqa: E402

START_K, END_K, RATE_K_PER_PS, BARRIER_EV = 300.0, 3000.0, 500.0, 1.0


def escape_for_censoring(fraction: float) -> ArrheniusEscape:
    """The escape model (1 eV barrier) whose runs are intact at the end with ``fraction``."""
    def gap(log_nu: float) -> float:
        model = ArrheniusEscape(BARRIER_EV, 10.0 ** log_nu, START_K, END_K, RATE_K_PER_PS)
        return float(model.survival(END_K)) - fraction
    log_nu = brentq(gap, 0.0, 6.0, xtol=1e-6) if fraction > 1e-9 else 3.0
    return ArrheniusEscape(BARRIER_EV, 10.0 ** log_nu, START_K, END_K, RATE_K_PER_PS)


def coverage(model: ArrheniusEscape, replicas: int, experiments: int, seed: int) -> dict:
    """Coverage of the true median by the 95% interval, and how the intervals look."""
    rng = np.random.default_rng(seed)
    hits = reached = open_high = 0
    widths = []
    for _ in range(experiments):
        temps, failed = model.sample(rng, replicas)
        med = ramp.median_breaking_temperature(temps, failed)
        truth = model.median_K
        hits += med.low <= truth <= med.high  # high = inf: open above
        reached += math.isfinite(med.value)
        open_high += not math.isfinite(med.high)
        if math.isfinite(med.high):
            widths.append(med.high - med.low)
    rate = stats.proportion_interval(hits, experiments)
    return {"replicas": replicas, "experiments": experiments, "true_median_K": model.median_K,
            "censored_fraction": float(model.survival(END_K)), "coverage": hits / experiments,
            "coverage_low": rate.low, "coverage_high": rate.high,
            "median_reached": reached / experiments, "upper_bound_open": open_high / experiments,
            "median_width_K": float(np.median(widths)) if widths else None}


SCENARIOS = ((0.0, 6), (0.0, 12), (0.0, 24), (0.25, 12), (0.40, 12))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    rows = [coverage(escape_for_censoring(frac), n, args.experiments, seed=1000 + k)
            for k, (frac, n) in enumerate(SCENARIOS)]
    print("| runs censored at 3000 K | replicas | true median (K) | coverage of the 95% "
          "interval [its 95% interval] | median reached | upper bound open | median width "
          "(K) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        width = "-" if r["median_width_K"] is None else f"{r['median_width_K']:.0f}"
        print(f"| {r['censored_fraction']:.0%} | {r['replicas']} | {r['true_median_K']:.0f} | "
              f"{r['coverage']:.1%} [{r['coverage_low']:.1%}, {r['coverage_high']:.1%}] | "
              f"{r['median_reached']:.0%} | {r['upper_bound_open']:.0%} | {width} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
