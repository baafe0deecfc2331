"""Intervals and decisions from the replicas: bootstrap over runs (or time blocks), exact intervals.

Every verdict the report prints rests on a number computed from a group of runs (one model at one
temperature). The runs are independent samples, so the spread of that number is measured by
resampling them: :func:`bootstrap` resamples each group's *units* (the runs themselves, or time
blocks of the runs when a group has fewer than four, see :func:`units`) with replacement and
recomputes the statistic. :func:`bootstrap_histograms` does the same much faster for the common
case "sum the per-unit histograms, then compute one number from the sums" (JS divergences of
Ramachandran or distance densities). Counts need no resampling: :func:`proportion_interval`
(fraction of intact runs) and :func:`poisson_rate_interval` (failures per simulated ns) are exact.
:func:`decide` turns an interval and a tolerance into ``agrees`` / ``differs`` / ``inconclusive``
/ ``no_reference``; ``pairwise`` (in :mod:`analysis.model_pairs`, also reachable here) compares
every pair of models against their own between-replica noise. See docs/statistics.md for the
rules and the measured calibration.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import special
from scipy import stats as sps

INTERVAL_KINDS = ("percentile", "basic", "debiased", "bca")


@dataclass
class Interval:
    """A number with its confidence interval.

    Attributes
    ----------
    value : float
        The statistic on the original data (not a bootstrap mean).
    low, high : float
        Bounds of the interval (``level`` confidence, 95% unless stated).
    n_units : int
        How many independent units it rests on (runs, time blocks, or trials for a proportion).
    method : str
        Where the spread comes from: ``"runs"`` or ``"time blocks"`` (bootstrap), ``"wilson"``,
        ``"exact"`` (Poisson), ``"log-log band"`` (Kaplan-Meier median).
    level : float
        Confidence level.
    unclipped : tuple, optional
        The bounds before they were clipped to the statistic's possible range (set by
        :func:`analysis.observables.base.clipped`): the resampling spread itself.
    """

    value: float
    low: float
    high: float
    n_units: int
    method: str
    level: float = 0.95
    unclipped: tuple[float | None, float | None] | None = field(default=None, repr=False,
                                                                compare=False)

    def text(self, fmt: str = "{:.3g}", unit: str = "") -> str:
        """``"0.36 [0.31, 0.42] bits"``: the value, the interval, the unit."""
        out = f"{_fmt(fmt, self.value)} [{_fmt(fmt, self.low)}, {_fmt(fmt, self.high)}]"
        return f"{out} {unit}" if unit else out

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON (``value``, ``ci_low``, ``ci_high``, ``n_units``, ``method``)."""
        d = asdict(self)
        d.pop("unclipped")
        d["ci_low"], d["ci_high"] = d.pop("low"), d.pop("high")
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in d.items()}


def _fmt(fmt: str, x: float) -> str:
    return "-" if x is None or not math.isfinite(x) else fmt.format(x)


def units(per_run: Sequence[np.ndarray], min_runs: int = 4,
          n_blocks: int = 8) -> tuple[list[np.ndarray], str]:
    """The resampling units of a group: its runs, or time blocks of them when runs are few.

    Parameters
    ----------
    per_run : sequence of arrays
        One array per run, time (frames) along axis 0.
    min_runs : int
        With at least this many runs, the runs are the units (method ``"runs"``).
    n_blocks : int
        Otherwise about this many contiguous time blocks in total are cut, the same number from
        every run (``ceil(n_blocks / n_runs)`` each, fewer when a run has fewer frames),
        method ``"time blocks"``. Blocks of one run are correlated at their boundaries, so
        blocks should be longer than the correlation time of the observable.

    Returns
    -------
    (list of arrays, method)
        Runs that are single numbers cannot be cut: they come back as they are, ``"runs"``.
    """
    runs = [np.asarray(r) for r in per_run]
    if len(runs) >= min_runs or not runs or any(r.ndim == 0 for r in runs):
        return runs, "runs"  # enough runs, or one number per run: nothing to cut
    per = max(1, math.ceil(n_blocks / len(runs)))
    blocks: list[np.ndarray] = []
    for r in runs:
        if len(r) == 0:
            continue
        blocks.extend(np.array_split(r, min(per, len(r)), axis=0))
    return blocks, "time blocks"


def resample_indices(sizes: Sequence[int], n_resamples: int, seed: int) -> list[np.ndarray]:
    """Bootstrap indices, one ``(n_resamples, size)`` integer array per group, seeded.

    :func:`bootstrap` and :func:`bootstrap_histograms` draw through this, so the same seed gives
    the same resamples (and the same numbers) on both paths.
    """
    rng = np.random.default_rng(seed)
    return [rng.integers(0, n, size=(n_resamples, n)) for n in sizes]


def _counts(idx: np.ndarray) -> np.ndarray:
    """``(R, n)`` index draws -> ``(R, n)`` how often each unit was drawn in each resample."""
    r, n = idx.shape
    flat = (np.arange(r)[:, None] * n + idx).ravel()
    return np.bincount(flat, minlength=r * n).reshape(r, n).astype(float)


def paired_sizes(sizes: Sequence[int]) -> int:
    """The number of pairs of a paired bootstrap: every group must hold one unit per pair."""
    if len(set(sizes)) != 1:
        raise ValueError(f"a paired bootstrap needs one unit per pair in every group, got "
                         f"{list(sizes)} units")
    return int(sizes[0])


def _check_groups(groups: Sequence[Sequence[Any]]) -> list[list[Any]]:
    out = [list(g) for g in groups]
    if not out or any(len(g) == 0 for g in out):
        raise ValueError("bootstrap needs at least one unit in every group")
    return out


def bootstrap(groups: Sequence[Sequence[Any]], statistic: Callable[..., float], *,
              n_resamples: int = 1000, seed: int = 0, level: float = 0.95,
              method: str = "runs", interval: str = "percentile",
              expand: bool = True) -> Interval:
    """Bootstrap interval of ``statistic(*groups)``, resampling each group's units independently.

    Parameters
    ----------
    groups : sequence of sequences
        One sequence of units per group (runs or time blocks, see :func:`units`); a unit is
        anything the statistic understands (an array of frames, a histogram, a number).
    statistic : callable
        ``statistic(units_of_group_1, units_of_group_2, ...) -> float``, each argument a list.
    n_resamples, seed, level : int, int, float
        Resamples (>= 1000 for a 95% interval), seed (same inputs, same numbers), confidence.
    method : str
        Label stored in the interval: ``"runs"`` or ``"time blocks"``.
    interval : str
        ``"percentile"`` (default: peak positions, means, ratios, medians) or ``"basic"``
        (recommended for divergences and distances, whose plug-in estimate is biased upward:
        the basic interval reflects the replicates about the value and so removes that bias to
        first order; the percentile interval then undercovers, and calls two groups of the
        same distribution ``differs`` whenever the tolerance is below the bias). Also
        ``"debiased"`` (percentile shifted by the bootstrap bias) and ``"bca"``. Measured
        coverages in docs/statistics.md.
    expand : bool
        Widen the tails for small groups (:func:`expanded_alpha`; not for BCa). Measured on a
        peak position: 12 runs 94% plain, 96% expanded; 5 runs 86% / 93%; 8 time blocks of
        1-3 runs 86% / 93-95%.

    Returns
    -------
    Interval
        ``value`` is the statistic on the original data. Resamples where the statistic is not
        finite are dropped; if more than half are, the bounds are NaN.
    """
    data = _check_groups(groups)
    value = float(statistic(*data))
    idx = resample_indices([len(g) for g in data], n_resamples, seed)
    boot = np.empty(n_resamples)
    for r in range(n_resamples):
        boot[r] = statistic(*[[g[i] for i in ix[r]] for g, ix in zip(data, idx, strict=True)])

    def jackknife() -> list[np.ndarray]:
        return [np.array([statistic(*[[u for j, u in enumerate(h) if j != i] if h is g else h
                                      for h in data]) for i in range(len(g))])
                if len(g) > 1 else np.zeros(1) for g in data]

    low, high = _bounds(boot, value, level, interval, jackknife,
                        min(len(g) for g in data), expand)
    return Interval(value, low, high, sum(len(g) for g in data), method, level)


#: Resamples summed at a time in :func:`bootstrap_histograms` (bounds memory, not results).
RESAMPLE_CHUNK = 100


def bootstrap_histograms(groups_of_hists: Sequence[Sequence[np.ndarray] | np.ndarray],
                         fn: Callable[..., float], *, n_resamples: int = 1000, seed: int = 0,
                         level: float = 0.95, method: str = "runs",
                         interval: str = "percentile", vectorized: bool = False,
                         expand: bool = True, paired: bool = False) -> Interval:
    """Fast bootstrap of ``fn(sum of group 1's histograms, sum of group 2's, ...)``.

    Each unit is a histogram (any shape, the same within a group). A resample of a group is a
    row of integer counts (how often each unit was drawn), so all resampled sums of a group are
    one matrix product ``counts @ stacked_histograms``. Same seed, same numbers as
    :func:`bootstrap` with a statistic that sums the histograms.

    Parameters
    ----------
    groups_of_hists : sequence
        Per group, its units' histograms (a list of equal-shape arrays or one stacked array).
    fn : callable
        ``fn(summed_hist_1, summed_hist_2, ...) -> float``; with ``vectorized=True`` it gets
        arrays with a leading resample axis and returns one value per resample.
    n_resamples, seed, level, method, interval, expand
        As in :func:`bootstrap` (``interval="basic"`` for divergences).
    paired : bool
        Unit i of each group is one pair (the same start run by a model and by the reference):
        resample pairs, one draw for all groups, so what the pairs share (which start) cancels
        and only how they differ spreads the interval. Not with ``interval="bca"``.

    Returns
    -------
    Interval
    """
    if paired and interval == "bca":
        raise ValueError("a paired bootstrap_histograms does not do BCa intervals")
    flats, shapes = _stacks(groups_of_hists)
    totals = [f.sum(axis=0) for f in flats]

    def one(args: list[np.ndarray]) -> float:
        if vectorized:
            return float(np.asarray(fn(*[a[None] for a in args]), dtype=float)[0])
        return float(fn(*args))

    value = one([t.reshape(s) for t, s in zip(totals, shapes, strict=True)])
    boot = np.empty(n_resamples)
    for part, sums in _resampled_sums(flats, shapes, n_resamples, seed, paired):
        if vectorized:
            boot[part] = np.asarray(fn(*sums), dtype=float)
        else:
            boot[part] = [fn(*[s[r] for s in sums]) for r in range(len(sums[0]))]

    def jackknife() -> list[np.ndarray]:
        out = []
        for k, f in enumerate(flats):
            if len(f) < 2:
                out.append(np.zeros(1))
                continue
            vals = []
            for i in range(len(f)):
                args = [t.reshape(s) for t, s in zip(totals, shapes, strict=True)]
                args[k] = (totals[k] - f[i]).reshape(shapes[k])
                vals.append(one(args))
            out.append(np.asarray(vals, dtype=float))
        return out

    low, high = _bounds(boot, value, level, interval, jackknife,
                        min(len(f) for f in flats), expand)
    return Interval(value, low, high, sum(len(f) for f in flats), method, level)


def _stacks(groups_of_hists: Sequence[Sequence[np.ndarray] | np.ndarray]
            ) -> tuple[list[np.ndarray], list[tuple[int, ...]]]:
    """Each group's units flattened to rows, and each group's unit shape."""
    flats, shapes = [], []
    for g in groups_of_hists:
        h = np.asarray(g, dtype=float)
        if h.ndim == 0 or len(h) == 0:
            raise ValueError("bootstrap needs at least one unit in every group")
        flats.append(h.reshape(len(h), -1))
        shapes.append(h.shape[1:])
    return flats, shapes


def _resampled_sums(flats: list[np.ndarray], shapes: list[tuple[int, ...]], n_resamples: int,
                    seed: int, paired: bool = False):
    """Yield ``(slice of resamples, [resampled sums of each group])``, in chunks.

    1000 resamples of 4 x 72 x 72 densities at once would be 166 MB a group; chunks of
    :data:`RESAMPLE_CHUNK` bound the memory without changing any number. ``paired``: unit i of
    every group belongs to the same pair (e.g. runs from the same start), and one draw of
    pairs resamples all groups (:func:`paired_sizes`).
    """
    sizes = [len(f) for f in flats]
    if paired:
        idx = resample_indices([paired_sizes(sizes)], n_resamples, seed) * len(flats)
    else:
        idx = resample_indices(sizes, n_resamples, seed)
    counts = [_counts(ix) for ix in idx]
    for start in range(0, n_resamples, RESAMPLE_CHUNK):
        part = slice(start, min(start + RESAMPLE_CHUNK, n_resamples))
        yield part, [(c[part] @ f).reshape((-1, *s))
                     for c, f, s in zip(counts, flats, shapes, strict=True)]


def bootstrap_histograms_columns(groups_of_hists: Sequence[Sequence[np.ndarray] | np.ndarray],
                                 fn: Callable[..., np.ndarray], *, n_resamples: int = 1000,
                                 seed: int = 0, level: float = 0.95, method: str = "runs",
                                 interval: str = "basic", expand: bool = True,
                                 paired: bool = False) -> list[Interval]:
    """:func:`bootstrap_histograms` for several statistics of the same resamples at once.

    ``fn(sums_1, sums_2, ...)`` gets the resampled sums with a leading resample axis (as with
    ``vectorized=True``) and returns a ``(resamples, m)`` array: m statistics, e.g. the
    divergence of each dihedral pair and their maximum. One interval per column, each equal
    to what :func:`bootstrap_histograms` gives for that column alone (same seed, same draws),
    for a fraction of the cost. Not for ``interval="bca"`` (it needs a jackknife per column).
    ``paired`` as in :func:`bootstrap_histograms`.
    """
    if interval == "bca":
        raise ValueError("bootstrap_histograms_columns does not do BCa intervals")
    flats, shapes = _stacks(groups_of_hists)
    totals = [f.sum(axis=0).reshape((1, *s)) for f, s in zip(flats, shapes, strict=True)]
    values = np.asarray(fn(*totals), dtype=float)[0]
    boot = np.empty((n_resamples, len(values)))
    for part, sums in _resampled_sums(flats, shapes, n_resamples, seed, paired):
        boot[part] = np.asarray(fn(*sums), dtype=float)
    n_units = sum(len(f) for f in flats)
    out = []
    for j, value in enumerate(values):
        low, high = _bounds(boot[:, j], float(value), level, interval, list,
                            min(len(f) for f in flats), expand)
        out.append(Interval(float(value), low, high, n_units, method, level))
    return out


@functools.lru_cache(maxsize=256)
def expanded_alpha(alpha: float, n: int) -> float:
    """Tail probability for an expanded percentile interval (Hesterberg 2015).

    The bootstrap spread of a mean of ``n`` units is ``sqrt((n - 1) / n)`` times too small and
    normal rather than Student-t; quantiles at ``alpha' / 2`` with
    ``z(alpha' / 2) = sqrt(n / (n - 1)) * t(alpha / 2, n - 1)`` undo both. For 12 runs a 95%
    interval uses the 1.1% and 98.9% quantiles; for 8 time blocks 0.6% and 99.4%.
    """
    if n < 2:
        return alpha
    z = math.sqrt(n / (n - 1)) * sps.t.ppf(1 - alpha / 2, n - 1)
    return float(2 * sps.norm.sf(z))


def _bounds(boot: np.ndarray, value: float, level: float, interval: str,
            jackknife: Callable[[], list[np.ndarray]], n_small: int,
            expand: bool) -> tuple[float, float]:
    """Interval bounds from bootstrap replicates: percentile, basic, debiased or BCa."""
    if interval not in INTERVAL_KINDS:
        raise ValueError(f"interval must be one of {INTERVAL_KINDS}, not {interval!r}")
    finite = boot[np.isfinite(boot)]
    if len(finite) == 0 or len(finite) < 0.5 * len(boot) or not math.isfinite(value):
        return math.nan, math.nan
    boot = finite
    alpha = 1.0 - level
    if interval == "bca":
        return _bca(boot, value, alpha, jackknife)
    if expand:
        alpha = expanded_alpha(alpha, n_small)
    lo, hi = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    if interval == "basic":
        return float(2 * value - hi), float(2 * value - lo)
    if interval == "debiased":
        bias = float(np.mean(boot)) - value
        return float(lo - bias), float(hi - bias)
    return float(lo), float(hi)


def _bca(boot: np.ndarray, value: float, alpha: float,
         jackknife: Callable[[], list[np.ndarray]]) -> tuple[float, float]:
    """BCa (Efron 1987): bias correction from where the value sits among the replicates,
    acceleration from the jackknife influence of every unit of every group."""
    frac = (np.sum(boot < value) + 0.5 * np.sum(boot == value)) / len(boot)
    frac = min(max(frac, 1.0 / (2 * len(boot))), 1 - 1.0 / (2 * len(boot)))
    z0 = sps.norm.ppf(frac)
    num = den = 0.0
    for jack in jackknife():
        n = len(jack)
        if n < 2:
            continue
        u = (n - 1) * (jack.mean() - jack)
        num += np.sum(u ** 3) / n ** 3
        den += np.sum(u ** 2) / n ** 2
    a = num / (6 * den ** 1.5) if den > 0 else 0.0
    z = sps.norm.ppf([alpha / 2, 1 - alpha / 2])
    adj = sps.norm.cdf(z0 + (z0 + z) / (1 - a * (z0 + z)))
    lo, hi = np.quantile(boot, adj)
    return float(lo), float(hi)


def decide(interval: Interval | None, tolerance: float | None) -> str:
    """Three decisions from an interval of a difference (or distance) and a tolerance.

    ``"agrees"`` when the whole interval lies within ``[-tolerance, tolerance]``, ``"differs"``
    when it lies wholly outside (above ``tolerance`` or below ``-tolerance``), ``"inconclusive"``
    otherwise (also when its bounds are not finite), ``"no_reference"`` when there is no
    interval or no tolerance. For a non-negative distance: agrees iff ``high <= tolerance``,
    differs iff ``low > tolerance``.
    """
    if interval is None or tolerance is None:
        return "no_reference"
    low, high = interval.low, interval.high
    if not (math.isfinite(low) and math.isfinite(high)):
        return "inconclusive"
    tol = abs(float(tolerance))
    if -tol <= low and high <= tol:
        return "agrees"
    if low > tol or high < -tol:
        return "differs"
    return "inconclusive"


def proportion_interval(k: int, n: int, level: float = 0.95) -> Interval:
    """Interval of a fraction ``k / n`` (e.g. runs intact): Wilson score interval.

    Chosen from exact coverages (binomial sums over a grid of true fractions) for n = 2..12
    (docs/statistics.md): Wilson averages 95.3-95.7% for every n (it dips to 83-89% for true
    fractions very close to 0 or 1); Clopper-Pearson never undercovers but averages 98.2-99.7%
    (over 99% for n <= 4: too wide for the few runs a group has); a percentile bootstrap over
    runs has zero width when all runs survive and covers 75% at n = 12, p = 0.9.
    """
    if n <= 0:
        return Interval(math.nan, 0.0, 1.0, 0, "wilson", level)
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    z = sps.norm.ppf(0.5 + level / 2)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return Interval(p, low, high, n, "wilson", level)


def poisson_rate_interval(k: int, exposure: float, level: float = 0.95) -> Interval:
    """Exact (Garwood, chi-square) interval of a Poisson rate: ``k`` events in ``exposure``.

    For failures per simulated ns, ``exposure`` is the summed simulated time in ns of all runs
    (each counted up to its failure or its end). Lower bound ``chi2(a/2; 2k) / 2``, upper
    ``chi2(1 - a/2; 2k + 2) / 2``, both divided by the exposure; the lower bound is 0 at k = 0.
    """
    if exposure <= 0:
        raise ValueError(f"exposure must be positive, got {exposure}")
    if k < 0:
        raise ValueError(f"event count must be >= 0, got {k}")
    alpha = 1.0 - level
    low = 0.0 if k == 0 else sps.chi2.ppf(alpha / 2, 2 * k) / 2
    high = sps.chi2.ppf(1 - alpha / 2, 2 * k + 2) / 2
    return Interval(k / exposure, float(low / exposure), float(high / exposure), int(k),
                    "exact", level)


#: Split-R-hat above this says the chains have not mixed (Vehtari et al. 2021 recommend
#: 1.01 for final results; 1.1 is the classic, looser bound, used here as a flag).
RHAT_FLAG = 1.1


def split_rhat(chains: np.ndarray | Sequence[np.ndarray]) -> float:
    """Split potential scale reduction factor (Gelman-Rubin R-hat, chains cut in halves).

    Parameters
    ----------
    chains
        (m, n): m chains of n draws each (e.g. an indicator along each replica-exchange
        walker). Longer chains are cut to the shortest.

    Returns
    -------
    float
        sqrt(var+ / W), var+ = (n' - 1)/n' W + B/n' over the 2m half-chains of n' draws, W
        the mean within-half variance, B/n' the variance of the half means. Near 1 when every
        half samples the same distribution; inf when the halves are each constant but differ;
        1.0 when all draws are equal (no information); nan for fewer than 4 draws per chain.
        Calibration (tests/test_stats.py): AR(1) chains with one distribution stay below
        :data:`RHAT_FLAG`; one chain of six shifted by 1.5 standard deviations is flagged
        (by half a standard deviation it is not: R-hat is blind to small shifts).
    """
    rows = [np.asarray(c, dtype=float) for c in chains]
    n = min((len(r) for r in rows), default=0) // 2
    if n < 2 or len(rows) < 1:
        return float("nan")
    halves = np.array([h for r in rows for h in (r[:n], r[n:2 * n])])
    within = float(halves.var(axis=1, ddof=1).mean())
    between_over_n = float(halves.mean(axis=1).var(ddof=1))
    if within == 0.0:
        return 1.0 if between_over_n == 0.0 else float("inf")
    var_plus = (n - 1) / n * within + between_over_n
    return math.sqrt(var_plus / within)


def jensen_shannon_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Jensen-Shannon divergence in bits, row by row (leading axis: resamples).

    The vectorised form of :func:`analysis.divergence.jensen_shannon` for
    ``bootstrap_histograms(..., vectorized=True)``: 1000 resamples of 72x72 histograms in one
    call instead of 1000. Rows that sum to zero give NaN.
    """
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    p = p.reshape(len(p), -1)
    q = q.reshape(len(q), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = p / p.sum(axis=1, keepdims=True)
        q = q / q.sum(axis=1, keepdims=True)
    # JS = H(m) - (H(p) + H(q)) / 2 with H the Shannon entropy; entr(x) = -x ln x, 0 at x = 0.
    h_m = special.entr(0.5 * (p + q)).sum(axis=1)
    h_pq = special.entr(p).sum(axis=1) + special.entr(q).sum(axis=1)
    return np.maximum(h_m - 0.5 * h_pq, 0.0) / math.log(2)


_MODEL_PAIRS = ("pairwise", "split_noise", "PairDistance")


def __getattr__(name: str) -> Any:
    """``stats.pairwise``, ``stats.split_noise``, ``stats.PairDistance`` live in
    :mod:`analysis.model_pairs` (which builds on this module); they are reachable from here."""
    if name in _MODEL_PAIRS:
        from analysis import model_pairs

        return getattr(model_pairs, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
