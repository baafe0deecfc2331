"""Calibration and speed of analysis.stats / analysis.survival on synthetic data with a known truth.

Prints the numbers quoted in docs/statistics.md:

1. fraction of intact runs: exact coverage (binomial sums over true fractions 0.005..0.995)
   of Wilson and Clopper-Pearson for n = 2..12, and a Monte-Carlo check of the percentile
   bootstrap over runs at n = 12;
2. JS divergence between two groups of 12 runs: coverage and decision rates of every interval
   kind (percentile, basic, debiased, BCa; with and without expanded tails), for few and many
   samples per run, with runs that vary among themselves (Dirichlet) or not, on a 1D
   36-bin grid and a 2D 72x72 Ramachandran-like grid; and two groups of the same distribution
   (truth 0) against several tolerances;
3. peak position of summed noisy spectra;
4. the mean of 1-3 correlated runs through time blocks;
5. median time to failure from the Kaplan-Meier band (exponential failures, runs censored at
   their length);
6. CPU and wall time of 1000 resamples of 12 + 12 runs of 72x72 histograms.

Usage: ``python benchmarks/stats_calibration.py [--experiments 400] [--parts all] [--json F]``.
Each experiment is seeded, so the rates are reproducible. With 400 experiments a rate near 95%
has a standard error of about 1.1 points.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats as sps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from stats_synthetic import (  # noqa: E402
    block_mean_coverage,
    bootstrap_fraction,
    fraction_coverage,
    js_intervals,
    peak_coverage,
    rates,
    two_mode_density,
    von_mises_density,
)

from analysis import stats, survival  # noqa: E402
from analysis.divergence import jensen_shannon  # noqa: E402


def clopper_pearson(k: int, n: int, level: float = 0.95) -> stats.Interval:
    """Exact binomial interval, for comparison with Wilson."""
    a = 1 - level
    lo = 0.0 if k == 0 else sps.beta.ppf(a / 2, k, n - k + 1)
    hi = 1.0 if k == n else sps.beta.ppf(1 - a / 2, k + 1, n - k)
    return stats.Interval(k / n, lo, hi, n, "clopper-pearson", level)


def part_fraction(n_exp: int) -> dict:
    grid = np.linspace(0.005, 0.995, 199)
    out: dict = {"exact": {}, "monte_carlo_n12": {}}
    for name, fn in (("wilson", stats.proportion_interval), ("clopper_pearson", clopper_pearson)):
        for n in range(2, 13):
            ks = np.arange(n + 1)
            inside = np.array([(iv.low <= grid) & (grid <= iv.high)
                               for iv in (fn(int(k), n) for k in ks)])
            cover = (sps.binom.pmf(ks[:, None], n, grid[None, :]) * inside).sum(axis=0)
            out["exact"][f"{name} n={n}"] = {
                "mean": round(float(cover.mean()), 4), "min": round(float(cover.min()), 4),
                "share_in_90_99": round(float(((cover >= 0.9) & (cover <= 0.99)).mean()), 3)}
    for p in (0.5, 0.75, 0.9):
        out["monte_carlo_n12"][f"p={p}"] = {
            "wilson": fraction_coverage(p, 12, n_exp, seed=1),
            "percentile_bootstrap": fraction_coverage(p, 12, n_exp, seed=1,
                                                      interval=bootstrap_fraction)}
    return out


def show(key: str, value: object) -> None:
    """Print one result as soon as it is known (parts take minutes on a loaded machine)."""
    print(f"  {key}: {json.dumps(value)}", flush=True)


def part_js(n_exp: int) -> dict:
    da, db = von_mises_density(36, 0.0, 2.0), von_mises_density(36, 0.5, 3.0)
    truth = jensen_shannon(da, db)
    out: dict = {"truth_bits_1d": truth}
    kinds = [("percentile", False), ("percentile", True), ("basic", False), ("basic", True),
             ("debiased", True), ("bca", False)]
    for spr, conc in ((500, None), (2000, 2000), (10000, 2000)):
        for kind, expand in kinds:
            ivs = js_intervals(da, db, 12, spr, n_exp, seed=2, concentration=conc,
                               interval=kind, expand=expand)
            r = rates(ivs, truth, tolerance=truth)
            key = f"1d spr={spr} conc={conc} {kind}{' expanded' if expand else ''}"
            out[key] = {"coverage": r["coverage"], "differs_at_tol_truth": r["differs"],
                        "agrees_at_tol_truth": r["agrees"]}
            show(key, out[key])
    for kind in ("percentile", "basic"):
        ivs = js_intervals(da, da, 12, 500, n_exp, seed=6, interval=kind)
        out[f"same 1d spr=500 {kind}"] = {
            f"differs tol={tol}": rates(ivs, 0.0, tol)["differs"] for tol in (0.0005, 0.002, 0.01)}
        show(f"same 1d spr=500 {kind}", out[f"same 1d spr=500 {kind}"])
    ra, rb = two_mode_density(72), two_mode_density(72, shift=0.3)
    truth2 = jensen_shannon(ra, rb)
    out["truth_bits_2d"] = truth2
    show("truth_bits_2d", truth2)
    n2 = max(100, n_exp // 4)
    for kind in ("percentile", "basic"):
        ivs = js_intervals(ra, rb, 12, 20000, n2, seed=3, concentration=5000, interval=kind)
        r = rates(ivs, truth2, tolerance=truth2)
        key = f"2d 72x72 spr=20000 conc=5000 {kind} ({n2} exp)"
        out[key] = {"coverage": r["coverage"], "differs_at_tol_truth": r["differs"]}
        show(key, out[key])
        ivs = js_intervals(ra, ra, 12, 20000, n2, seed=4, concentration=5000, interval=kind)
        key = f"2d 72x72 same {kind} ({n2} exp)"
        out[key] = {f"differs tol={tol}": rates(ivs, 0.0, tol)["differs"]
                    for tol in (0.005, 0.02)}
        show(key, out[key])
    return out


def part_peak(n_exp: int) -> dict:
    out = {}
    for kind, expand in (("percentile", False), ("percentile", True), ("basic", True),
                         ("debiased", True), ("bca", False)):
        for n_runs in (12, 5):
            out[f"{kind}{' expanded' if expand else ''} runs={n_runs}"] = peak_coverage(
                n_runs, n_exp, seed=4, interval=kind, expand=expand)
    return out


def part_blocks(n_exp: int) -> dict:
    out = {}
    for n_runs in (1, 2, 3):
        for expand in (False, True):
            rate, _ = block_mean_coverage(n_runs, 4000, 0.9, n_exp, seed=5, expand=expand)
            out[f"runs={n_runs}{' expanded' if expand else ''}"] = rate
    return out


def part_median(n_exp: int) -> dict:
    """Exponential failures (mean 100 ps), runs 150 ps long: true median 69.3 ps."""
    rng = np.random.default_rng(11)
    truth = 100.0 * math.log(2)
    out = {}
    for n_runs in (6, 12, 24):
        hits = reached = 0
        for _ in range(n_exp):
            t = rng.exponential(100.0, n_runs)
            failed = t < 150.0
            med = survival.kaplan_meier(np.minimum(t, 150.0), failed).median()
            hits += med.low <= truth <= med.high
            reached += math.isfinite(med.value)
        out[f"runs={n_runs}"] = {"coverage": hits / n_exp, "median_reached": reached / n_exp}
    return out


def part_speed(repeats: int = 3) -> dict:
    rng = np.random.default_rng(1)
    a = rng.poisson(5.0, (12, 72, 72)).astype(float)
    b = rng.poisson(5.5, (12, 72, 72)).astype(float)

    def summed(ua: list, ub: list) -> float:
        return jensen_shannon(np.sum(ua, axis=0), np.sum(ub, axis=0))

    cases = {
        "bootstrap (generic, list of units)": lambda: stats.bootstrap([list(a), list(b)], summed),
        "bootstrap_histograms (fn per resample)":
            lambda: stats.bootstrap_histograms([a, b], jensen_shannon),
        "bootstrap_histograms (vectorized JS)":
            lambda: stats.bootstrap_histograms([a, b], stats.jensen_shannon_rows,
                                               vectorized=True),
        "pairwise 3 models (histograms)":
            lambda: stats.pairwise({"a": a, "b": b, "c": a[::-1]}, jensen_shannon,
                                   histograms=True),
        "pairwise 3 models (histograms, vectorized JS)":
            lambda: stats.pairwise({"a": a, "b": b, "c": a[::-1]}, stats.jensen_shannon_rows,
                                   histograms=True, vectorized=True),
    }
    out = {}
    for name, fn in cases.items():
        wall, cpu = math.inf, math.inf
        for _ in range(repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall = min(wall, time.perf_counter() - w0)
            cpu = min(cpu, time.process_time() - c0)
        out[name] = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}
    return out


PARTS = {"fraction": part_fraction, "js": part_js, "peak": part_peak, "blocks": part_blocks,
         "median": part_median}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=400)
    parser.add_argument("--parts", default="all",
                        help="comma-separated: " + ",".join([*PARTS, "speed"]))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    chosen = [*PARTS, "speed"] if args.parts == "all" else args.parts.split(",")
    results = {}
    for name in chosen:
        t0 = time.perf_counter()
        results[name] = part_speed() if name == "speed" else PARTS[name](args.experiments)
        print(f"== {name} ({time.perf_counter() - t0:.0f} s)")
        print(json.dumps(results[name], indent=1))
        sys.stdout.flush()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
