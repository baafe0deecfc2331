"""Synthetic replicas with a known truth, for the calibration of analysis.stats.

Shared by tests/test_stats.py (small, seconds) and benchmarks/stats_calibration.py (large).
Each ``*_coverage`` function repeats an experiment ``n_experiments`` times: draw a group of
runs from a known law, compute the 95% interval the harness would print, and count how often
it holds the true value. Every function is seeded: the same arguments give the same rates.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import signal

from analysis import stats
from analysis.divergence import jensen_shannon


def von_mises_density(n_bins: int, centre: float, kappa: float) -> np.ndarray:
    """A von Mises density on ``n_bins`` equal bins of [-pi, pi) (bin probabilities, sum 1)."""
    centres = -np.pi + (np.arange(n_bins) + 0.5) * 2 * np.pi / n_bins
    w = np.exp(kappa * np.cos(centres - centre))
    return w / w.sum()


def two_mode_density(n_bins: int, shift: float = 0.0) -> np.ndarray:
    """A 2D Ramachandran-like density on an ``n_bins`` x ``n_bins`` torus grid (two basins)."""
    a = np.outer(von_mises_density(n_bins, -1.4 + shift, 4.0), von_mises_density(n_bins, 2.4, 4))
    b = np.outer(von_mises_density(n_bins, -1.3, 5.0), von_mises_density(n_bins, -0.7 + shift, 5))
    d = 0.6 * a + 0.4 * b
    return d / d.sum()


def run_histograms(rng: np.random.Generator, density: np.ndarray, n_runs: int,
                   samples_per_run: int, concentration: float | None = None) -> np.ndarray:
    """Per-run histograms of ``samples_per_run`` draws from ``density``.

    With ``concentration`` every run first gets its own density, Dirichlet with mean
    ``density`` (runs that visit the basins in different proportions, as correlated MD
    sampling does); the expected pooled histogram is still ``density``.
    """
    flat = density.ravel()
    out = np.empty((n_runs, flat.size))
    for r in range(n_runs):
        p = flat if concentration is None else rng.dirichlet(concentration * flat + 1e-9)
        out[r] = rng.multinomial(samples_per_run, p / p.sum())
    return out.reshape((n_runs, *density.shape))


def fraction_coverage(p: float, n_runs: int, n_experiments: int, seed: int = 0,
                      interval: Callable[[int, int], stats.Interval] | None = None) -> float:
    """Coverage of the interval of a fraction of intact runs (truth ``p``), Wilson by default."""
    interval = interval or stats.proportion_interval
    rng = np.random.default_rng(seed)
    hits = 0
    for k in rng.binomial(n_runs, p, size=n_experiments):
        iv = interval(int(k), n_runs)
        hits += iv.low <= p <= iv.high
    return hits / n_experiments


def bootstrap_fraction(k: int, n: int, seed: int = 0) -> stats.Interval:
    """Percentile bootstrap of a fraction over runs (for comparison with Wilson)."""
    runs = np.array([[1.0, 1.0]] * k + [[0.0, 1.0]] * (n - k))
    return stats.bootstrap_histograms([runs], lambda s: s[..., 0] / s[..., 1], vectorized=True,
                                      seed=seed, expand=False)


def js_experiment(seed: int, density_a: np.ndarray, density_b: np.ndarray, n_runs: int,
                  samples_per_run: int, concentration: float | None = None,
                  interval: str = "percentile", n_resamples: int = 1000,
                  expand: bool = True) -> stats.Interval:
    """One experiment: two groups of runs, the bootstrap interval of their JS divergence."""
    rng = np.random.default_rng(seed)
    ha = run_histograms(rng, density_a, n_runs, samples_per_run, concentration)
    hb = run_histograms(rng, density_b, n_runs, samples_per_run, concentration)
    return stats.bootstrap_histograms([ha, hb], stats.jensen_shannon_rows, vectorized=True,
                                      interval=interval, seed=seed, n_resamples=n_resamples,
                                      expand=expand)


def js_intervals(density_a: np.ndarray, density_b: np.ndarray, n_runs: int,
                 samples_per_run: int, n_experiments: int, seed: int = 0,
                 concentration: float | None = None, interval: str = "percentile",
                 expand: bool = True) -> list[stats.Interval]:
    """The JS intervals of ``n_experiments`` independent experiments."""
    return [js_experiment(seed * 100003 + e, density_a, density_b, n_runs, samples_per_run,
                          concentration, interval, expand=expand)
            for e in range(n_experiments)]


def rates(intervals: list[stats.Interval], truth: float,
          tolerance: float | None = None) -> dict[str, float]:
    """How often the intervals cover ``truth``, and how often each decision comes out."""
    n = len(intervals)
    out = {"truth": truth, "coverage": sum(iv.low <= truth <= iv.high for iv in intervals) / n}
    for decision in ("agrees", "differs", "inconclusive", "no_reference"):
        out[decision] = sum(stats.decide(iv, tolerance) == decision for iv in intervals) / n
    return out


def js_coverage(density_a: np.ndarray, density_b: np.ndarray, n_runs: int,
                samples_per_run: int, n_experiments: int, seed: int = 0,
                concentration: float | None = None, interval: str = "percentile",
                tolerance: float | None = None, expand: bool = True) -> dict[str, float]:
    """Coverage of the JS interval (truth: JS of the two densities) and decision rates."""
    ivs = js_intervals(density_a, density_b, n_runs, samples_per_run, n_experiments, seed,
                       concentration, interval, expand)
    return rates(ivs, jensen_shannon(density_a, density_b), tolerance)


def lorentzian(n_bins: int, centre: float, width: float) -> np.ndarray:
    """A Lorentzian line on bins 0..n_bins-1 (a vibrational band, peak height 1)."""
    x = np.arange(n_bins)
    return 1.0 / (1.0 + ((x - centre) / width) ** 2)


def peak_positions(spectra: np.ndarray) -> np.ndarray:
    """Sub-bin peak positions of spectra (rows): parabola through the maximum and neighbours."""
    s = np.atleast_2d(spectra)
    i = np.clip(np.argmax(s, axis=1), 1, s.shape[1] - 2)
    rows = np.arange(len(s))
    left, mid, right = s[rows, i - 1], s[rows, i], s[rows, i + 1]
    denom = left - 2 * mid + right
    with np.errstate(divide="ignore", invalid="ignore"):
        shift = np.where(denom != 0, 0.5 * (left - right) / denom, 0.0)
    return i + shift


def peak_experiment(seed: int, centre: float, n_runs: int, segments: int = 20,
                    n_bins: int = 64, width: float = 3.0,
                    interval: str = "percentile", expand: bool = True) -> stats.Interval:
    """One experiment: ``n_runs`` noisy spectra (Welch average of ``segments`` periodograms:
    Gamma noise per bin), peak of their sum with its bootstrap interval."""
    rng = np.random.default_rng(seed)
    line = lorentzian(n_bins, centre, width)
    spectra = line * rng.gamma(segments, 1.0 / segments, size=(n_runs, n_bins))
    return stats.bootstrap_histograms([spectra], peak_positions, vectorized=True,
                                      interval=interval, seed=seed, expand=expand)


def peak_coverage(n_runs: int, n_experiments: int, seed: int = 0, centre: float = 30.0,
                  segments: int = 20, interval: str = "percentile",
                  expand: bool = True) -> float:
    """Coverage of the peak position interval; the line sits on a bin centre, so the
    parabolic estimate is unbiased by symmetry and the truth is ``centre``."""
    hits = 0
    for e in range(n_experiments):
        iv = peak_experiment(seed * 100003 + e, centre, n_runs, segments, interval=interval,
                             expand=expand)
        hits += iv.low <= centre <= iv.high
    return hits / n_experiments


def ar1_series(rng: np.random.Generator, n_frames: int, phi: float, mean: float) -> np.ndarray:
    """A correlated time series (AR(1), correlation time ~ 1 / (1 - phi) frames)."""
    noise = rng.normal(size=n_frames) * np.sqrt(1 - phi * phi)
    noise[0] = rng.normal()
    return signal.lfilter([1.0], [1.0, -phi], noise) + mean


def block_mean_coverage(n_runs: int, n_frames: int, phi: float, n_experiments: int,
                        seed: int = 0, n_blocks: int = 8,
                        expand: bool = True) -> tuple[float, str]:
    """Coverage of the mean of a group with fewer than 4 runs, via time blocks (truth 0)."""
    rng = np.random.default_rng(seed)
    hits = 0
    method = ""
    for e in range(n_experiments):
        runs = [ar1_series(rng, n_frames, phi, 0.0) for _ in range(n_runs)]
        blocks, method = stats.units(runs, n_blocks=n_blocks)
        sums = np.array([[b.sum(), len(b)] for b in blocks])
        iv = stats.bootstrap_histograms([sums], lambda s: s[..., 0] / s[..., 1],
                                        vectorized=True, seed=e, method=method, expand=expand)
        hits += iv.low <= 0.0 <= iv.high
    return hits / n_experiments, method


def failure_runs(rng: np.random.Generator, n_runs: int, length_ps: float, rate_per_ns: float,
                 shape: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(times_ps, failed)`` of runs with a known failure law, censored at ``length_ps``.

    Failure times are Weibull with ``shape`` (1: exponential, a constant hazard of
    ``rate_per_ns``; above 1: a hazard that grows as a run goes on, e.g. a model failing once
    it has drifted), scaled so that the mean number of failures per ns over the first ns equals
    ``rate_per_ns`` (cumulative hazard ``rate_per_ns * (t / 1 ns) ** shape``).
    """
    if rate_per_ns <= 0:
        return np.full(n_runs, float(length_ps)), np.zeros(n_runs, dtype=bool)
    scale_ps = 1000.0 * rate_per_ns ** (-1.0 / shape)
    fail_ps = scale_ps * rng.weibull(shape, size=n_runs)
    failed = fail_ps < length_ps
    return np.where(failed, fail_ps, float(length_ps)), failed


def stability_decisions(rate_per_ns: float, n_runs: int, length_ps: float,
                        n_experiments: int, seed: int = 0, shape: float = 1.0,
                        **rule_options: float) -> dict[str, float]:
    """Shares of ``agrees`` / ``differs`` / ``inconclusive`` the stability rule gives on run
    sets with a known failure law (:func:`failure_runs`), ``n_experiments`` seeded sets."""
    from analysis.observables.stability import rule

    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(("agrees", "differs", "inconclusive"), 0)
    for _ in range(n_experiments):
        times, failed = failure_runs(rng, n_runs, length_ps, rate_per_ns, shape)
        counts[rule.judge(times, failed, np.full(n_runs, float(length_ps)),
                          **rule_options).decision] += 1
    return {k: v / n_experiments for k, v in counts.items()}
