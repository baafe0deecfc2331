"""Survival of MD runs: Kaplan-Meier with confidence bands, median time to failure, log-rank.

A run either fails (an event at the time it failed) or does not: it completed, was stopped, or
is still running, and is *censored* at the simulated time it reached (we know it survived that
long, not longer). :func:`kaplan_meier` estimates the fraction of runs still intact against
simulated time with a 95% pointwise band (Greenwood variance on the log(-log) scale, so the
band stays inside [0, 1]); :meth:`KaplanMeier.median` gives the median time to failure with its
interval read off that band; :func:`log_rank` tests whether two groups fail at the same rate;
:func:`failure_rate` counts failures per simulated ns with an exact Poisson interval.
:func:`plot_survival` draws the curves and bands (nothing is written). Times in ps.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from analysis.stats import Interval, poisson_rate_interval


@dataclass
class KaplanMeier:
    """A Kaplan-Meier curve: a step function, right-continuous, starting at (0, 1).

    Attributes
    ----------
    time_ps : array
        0 and every distinct failure time; the curve holds its value until the next time.
    survival, low, high : arrays
        Estimated fraction intact from each time on, and its pointwise band (NaN where the
        band is undefined: after the last run at risk failed).
    at_risk, failures : arrays
        Runs at risk just before each time, and failures at it (0 at time 0).
    end_ps : float
        The last time any run was observed (failure or censoring): the curve ends there.
    n_runs : int
    level : float
    """

    time_ps: np.ndarray
    survival: np.ndarray
    low: np.ndarray
    high: np.ndarray
    at_risk: np.ndarray
    failures: np.ndarray
    end_ps: float
    n_runs: int
    level: float = 0.95

    def at(self, t_ps: float) -> float:
        """Estimated fraction intact at time ``t_ps`` (NaN beyond the last observed time)."""
        if t_ps > self.end_ps:
            return math.nan
        return float(self.survival[np.searchsorted(self.time_ps, t_ps, side="right") - 1])

    def median(self) -> Interval:
        """Median time to failure (ps) with its interval from the pointwise band.

        The median is the first time the curve drops to 0.5 or below; its lower bound the
        first time the band's lower edge does, its upper bound the first time the upper edge
        does (the interval read from the log(-log) band, as R's ``survfit`` does). A time the
        curve or an edge never reaches is ``inf`` ("not reached within the runs").
        """
        value = _first_at_or_below(self.time_ps, self.survival, 0.5)
        low = _first_at_or_below(self.time_ps, np.nan_to_num(self.low, nan=0.0), 0.5)
        high = _first_at_or_below(self.time_ps, np.nan_to_num(self.high, nan=0.0), 0.5)
        return Interval(value, low, high, self.n_runs, "log-log band", self.level)

    def as_dict(self) -> dict[str, Any]:
        """Plain lists for JSON (NaN as None)."""
        def clean(a: np.ndarray) -> list:
            return [None if not math.isfinite(x) else float(x) for x in a]
        return {"time_ps": clean(self.time_ps), "fraction": clean(self.survival),
                "ci_low": clean(self.low), "ci_high": clean(self.high),
                "at_risk": [int(x) for x in self.at_risk],
                "failures": [int(x) for x in self.failures], "end_ps": self.end_ps,
                "n_runs": self.n_runs}


def _first_at_or_below(times: np.ndarray, values: np.ndarray, threshold: float) -> float:
    hit = np.nonzero(values <= threshold)[0]
    return float(times[hit[0]]) if len(hit) else math.inf


def _as_arrays(times_ps: Iterable[float], failed: Iterable[bool]) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(list(times_ps), dtype=float)
    f = np.asarray(list(failed), dtype=bool)
    if t.shape != f.shape:
        raise ValueError(f"times ({t.size}) and failed flags ({f.size}) differ in length")
    if np.any(~np.isfinite(t)) or np.any(t < 0):
        raise ValueError("times must be finite and >= 0")
    return t, f


def kaplan_meier(times_ps: Iterable[float], failed: Iterable[bool],
                 level: float = 0.95) -> KaplanMeier:
    """Kaplan-Meier estimate with a pointwise band (Greenwood, log(-log) transform).

    Parameters
    ----------
    times_ps : iterable of float
        Per run, the time it failed, or the time it reached when it did not fail (censored).
    failed : iterable of bool
        Per run, whether it failed. A censored run counts as at risk at its own time (a run
        failing and one censored at the same time: the censored one was still at risk).
    level : float
        Confidence level of the band.
    """
    t, f = _as_arrays(times_ps, failed)
    z = sps.norm.ppf(0.5 + level / 2)
    event_times = np.unique(t[f])
    times, surv, low, high = [0.0], [1.0], [1.0], [1.0]
    risk, fails = [len(t)], [0]
    s, greenwood = 1.0, 0.0
    for u in event_times:
        n = int(np.sum(t >= u))
        d = int(np.sum((t == u) & f))
        s *= 1.0 - d / n
        greenwood = greenwood + d / (n * (n - d)) if n > d else math.inf
        lo, hi = _loglog_band(s, greenwood, z)
        times.append(float(u))
        surv.append(s)
        low.append(lo)
        high.append(hi)
        risk.append(n)
        fails.append(d)
    end = float(t.max()) if len(t) else 0.0
    return KaplanMeier(np.array(times), np.array(surv), np.array(low), np.array(high),
                       np.array(risk), np.array(fails), end, len(t), level)


def _loglog_band(s: float, greenwood: float, z: float) -> tuple[float, float]:
    """Band of S on the log(-log S) scale: S ** exp(+-z * se), se from Greenwood's sum."""
    if s >= 1.0:
        return 1.0, 1.0
    if s <= 0.0 or not math.isfinite(greenwood):
        return (0.0, math.nan)
    se = math.sqrt(greenwood) / abs(math.log(s))
    return s ** math.exp(z * se), s ** math.exp(-z * se)


@dataclass
class LogRank:
    """Log-rank test of two groups: do they fail at the same rate?

    ``observed_*`` failures against ``expected_*`` under the null hypothesis (same hazard);
    ``statistic`` is chi-square with 1 degree of freedom, ``p_value`` its upper tail.
    """

    statistic: float
    p_value: float
    observed_a: int
    expected_a: float
    observed_b: int
    expected_b: float

    @property
    def sooner(self) -> str | None:
        """``"a"`` or ``"b"``: the group failing more than expected; None if neither."""
        if self.observed_a > self.expected_a:
            return "a"
        if self.observed_b > self.expected_b:
            return "b"
        return None

    def text(self, name_a: str, name_b: str) -> str:
        """``"model A fails sooner than model B, p = 0.003"``."""
        p = f"p = {self.p_value:.2g}" if math.isfinite(self.p_value) else "p = -"
        if self.sooner == "a":
            return f"{name_a} fails sooner than {name_b}, {p}"
        if self.sooner == "b":
            return f"{name_b} fails sooner than {name_a}, {p}"
        return f"{name_a} and {name_b} fail alike, {p}"


def log_rank(times_a: Iterable[float], failed_a: Iterable[bool], times_b: Iterable[float],
             failed_b: Iterable[bool]) -> LogRank:
    """Two-group log-rank (Mantel-Cox) test.

    At each distinct failure time with ``n`` runs at risk (``n_a`` in group a) and ``d``
    failures, group a expects ``d * n_a / n`` of them, with hypergeometric variance
    ``d (n_a / n)(1 - n_a / n)(n - d) / (n - 1)``; the statistic is
    ``(O_a - E_a)^2 / V`` (chi-square, 1 dof). With no failure at all, p = 1.
    """
    ta, fa = _as_arrays(times_a, failed_a)
    tb, fb = _as_arrays(times_b, failed_b)
    t = np.concatenate([ta, tb])
    f = np.concatenate([fa, fb])
    in_a = np.concatenate([np.ones(len(ta), bool), np.zeros(len(tb), bool)])
    observed_a = expected_a = variance = 0.0
    for u in np.unique(t[f]):
        at_risk = t >= u
        n = int(at_risk.sum())
        n_a = int((at_risk & in_a).sum())
        d = int(np.sum((t == u) & f))
        observed_a += int(np.sum((t == u) & f & in_a))
        expected_a += d * n_a / n
        if n > 1:
            variance += d * (n_a / n) * (1 - n_a / n) * (n - d) / (n - 1)
    total = int(f.sum())
    if variance > 0:
        statistic = (observed_a - expected_a) ** 2 / variance
        p = float(sps.chi2.sf(statistic, 1))
    else:
        statistic, p = 0.0, 1.0
    return LogRank(float(statistic), p, int(observed_a), float(expected_a),
                   total - int(observed_a), float(total - expected_a))


def failure_rate(times_ps: Iterable[float], failed: Iterable[bool],
                 level: float = 0.95) -> Interval:
    """Failures per simulated ns with an exact Poisson interval.

    The exposure is the simulated time of all runs together, each up to its failure or its end
    (a failed run stops contributing when it fails). Assumes a constant hazard; the
    Kaplan-Meier curve shows whether that holds.
    """
    t, f = _as_arrays(times_ps, failed)
    exposure_ns = float(t.sum()) / 1000.0
    if exposure_ns <= 0:
        return Interval(math.nan, math.nan, math.nan, int(f.sum()), "exact", level)
    return poisson_rate_interval(int(f.sum()), exposure_ns, level)


def from_records(records: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """``(times_ps, failed)`` of run records (anything with ``reached_ps`` and ``status``).

    A run with status ``failed`` is an event at its reached time; every other run
    (completed, running, interrupted) is censored at its reached time.
    """
    return (np.array([float(r.reached_ps) for r in records]),
            np.array([r.status == "failed" for r in records]))


def plot_survival(ax: Any, curves: Mapping[str, KaplanMeier], *, bands: bool = True,
                  title: str | None = "Survival of MD runs (Kaplan-Meier, 95% band)") -> Any:
    """Draw survival curves as steps with shaded bands on ``ax`` (created if None).

    Each curve runs from 0 to its ``end_ps``; the legend gives its number of runs. Returns
    the axes; nothing is written.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    for label, km in curves.items():
        x = np.append(km.time_ps, max(km.end_ps, km.time_ps[-1]))
        y = np.append(km.survival, km.survival[-1])
        (line,) = ax.step(x, y, where="post", label=f"{label} ({km.n_runs} runs)")
        if bands:
            lo = np.append(km.low, km.low[-1])
            hi = np.append(km.high, km.high[-1])
            ax.fill_between(x, lo, hi, step="post", alpha=0.2, color=line.get_color(),
                            linewidth=0)
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("fraction of runs intact")
    ax.set_ylim(-0.02, 1.05)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    return ax
