"""Error rates of the stability verdict on synthetic run sets with a known failure rate.

Each experiment draws a group of runs whose failure times follow a known law (exponential with
a true rate in failures per ns, or a Weibull whose hazard grows as a run goes on), censors them
at the run length, and applies the rule the report uses
(:func:`analysis.observables.stability.rule.judge`). The tables give P(agrees) and P(differs)
per true rate and run length; the tolerance is ``rule.MAX_FAILURES_PER_NS`` (0.5 per ns), so
true rates above it should never be ``agrees`` and rates below it never ``differs``. For
comparison, the old rule (at most 30% of runs failing, Wilson interval) on the same run sets.
The numbers are quoted in docs/statistics.md ("Stability").

Usage: ``python benchmarks/stability_calibration.py [--experiments 400] [--runs 12]``.
Seeded: the same arguments print the same table. Public tools only (numpy, scipy).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from stats_synthetic import failure_runs, stability_decisions  # noqa: E402

from analysis import stats  # noqa: E402
from analysis.observables.stability import rule  # noqa: E402

TRUE_RATES_PER_NS = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 50.0)
LENGTHS_PS = (0.01, 0.5, 100.0, 500.0, 1000.0, 2000.0)
#: Late-onset failures (Weibull shape 3): (runs, length ps, true failures per ns over 1 ns).
LATE_ONSET = ((12, 1000.0, 2.0), (24, 500.0, 2.0), (100, 100.0, 2.0), (12, 1000.0, 0.1),
              (24, 500.0, 0.1), (100, 100.0, 0.1))


def old_rule_agrees(rate_per_ns: float, n_runs: int, length_ps: float, n_experiments: int,
                    seed: int) -> float:
    """P(agrees) of the former rule, 'at most 30% of runs failing' (Wilson), same run sets."""
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(n_experiments):
        _, failed = failure_runs(rng, n_runs, length_ps, rate_per_ns)
        ci = stats.proportion_interval(int(failed.sum()), n_runs)
        hits += stats.decide(ci, 0.3) == "agrees"
    return hits / n_experiments


def constant_hazard_table(n_runs: int, n_experiments: int) -> list[str]:
    """Markdown rows: P(agrees) / P(differs) per true rate (rows) and run length (columns)."""
    head = " | ".join(f"{n_runs} x {_length(L)}" for L in LENGTHS_PS)
    rows = [f"| true failures per ns | {head} | old rule P(agrees), {n_runs} x 10 fs / 1 ns |",
            "|---:" + "|---" * (len(LENGTHS_PS) + 1) + "|"]
    for i, rate in enumerate(TRUE_RATES_PER_NS):
        cells = []
        for j, length in enumerate(LENGTHS_PS):
            r = stability_decisions(rate, n_runs, length, n_experiments, seed=100 * i + j)
            cells.append(f"{_pct(r['agrees'])} / {_pct(r['differs'])}")
        old = [old_rule_agrees(rate, n_runs, L, n_experiments, seed=7 + i) for L in (0.01, 1000)]
        mark = " (tolerance)" if rate == rule.MAX_FAILURES_PER_NS else ""
        rows.append(f"| {rate:g}{mark} | " + " | ".join(cells)
                    + f" | {_pct(old[0])} / {_pct(old[1])} |")
    return rows


def late_onset_table(n_experiments: int) -> list[str]:
    """Markdown rows: the rule on failures whose hazard grows with time (Weibull shape 3)."""
    rows = ["| runs x length | true failures per ns over 1 ns (fraction intact at 1 ns) | "
            "P(agrees) | P(differs) |", "|---|---:|---:|---:|"]
    for k, (n_runs, length, rate) in enumerate(LATE_ONSET):
        r = stability_decisions(rate, n_runs, length, n_experiments, seed=900 + k, shape=3.0)
        rows.append(f"| {n_runs} x {_length(length)} | {rate:g} ({np.exp(-rate):.2f}) | "
                    f"{_pct(r['agrees'])} | {_pct(r['differs'])} |")
    return rows


def _length(length_ps: float) -> str:
    if length_ps < 1:
        return f"{length_ps * 1000:g} fs"
    return f"{length_ps / 1000:g} ns" if length_ps >= 1000 else f"{length_ps:g} ps"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if 0 < x < 0.1 else f"{100 * x:.0f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--experiments", type=int, default=400)
    parser.add_argument("--runs", type=int, default=12)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    print(f"Stability rule: tolerance {rule.MAX_FAILURES_PER_NS:g} failures per ns, minimum "
          f"run {rule.MIN_RUN_PS:g} ps; {args.experiments} experiments per cell.\n")
    print("P(agrees) / P(differs), constant hazard (exponential failure times):\n")
    print("\n".join(constant_hazard_table(args.runs, args.experiments)))
    print("\nHazard growing with time (Weibull shape 3):\n")
    print("\n".join(late_onset_table(args.experiments)))
    print(f"\n{time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
