"""Verdict statistics shared by the observables: bootstrap intervals of a distance (clipped to
its range), decisions against a tolerance, the smallest detectable difference, and the control's
constants. The observable contract (:mod:`analysis.observables.base`) re-exports these names;
the presentation of verdicts and model pairs is :mod:`analysis.observables.presentation`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: Bootstrap resamples and seed (fixed: reruns print the same intervals).
N_RESAMPLES = 1000
SEED = 0
#: A verdict's control: each model run replaced by its own opening (this many ps from its first
#: frame) repeated over the run's length, as in the Ramachandran verdict. A model that never
#: gets further than its start looks like this.
CONTROL_OPENING_PS = 0.1
#: What an observable's declaration may say of its control (:attr:`TrajectoryObservable.control`).
CONTROL_KINDS = ("veto", "stated", "none")

# --- intervals -----------------------------------------------------------------------------

def interval(groups: Sequence[np.ndarray], distance: Callable[..., Any], method: str,
             vectorized: bool = False, paired: bool = False, upper: float | None = None,
             bootstrap: bool = True):
    """95% bootstrap interval of ``distance(sum of group 1's units, sum of group 2's, ...)`` >= 0.

    Each group is an array of summable units (runs or time blocks), resampled independently
    (:func:`analysis.stats.bootstrap_histograms`, basic interval: distances are biased upward),
    or with ``paired`` unit i of every group together (runs from the same start).
    With ``vectorized=True``, ``distance`` takes sums with a leading resample axis and returns
    one value per resample (much faster for histogram divergences).
    ``upper`` is the largest value the distance can take (1 for a Jensen-Shannon divergence
    in bits): the bounds are clipped to ``[0, upper]``.
    Returns ``analysis.stats.Interval``; without the bootstrap (``bootstrap`` False, from
    :attr:`analysis.settings.AnalysisSettings.bootstrap`) or with a single unit its bounds are
    None.
    """
    from analysis import stats

    if not bootstrap or any(len(g) < 2 for g in groups):
        sums = [np.asarray(g).sum(axis=0) for g in groups]
        value = (float(np.asarray(distance(*[s[None] for s in sums]))[0]) if vectorized
                 else float(distance(*sums)))
        return stats.Interval(value, None, None, sum(len(g) for g in groups), method)
    result = stats.bootstrap_histograms(list(groups), distance, n_resamples=N_RESAMPLES,
                                        seed=SEED, method=method, interval="basic",
                                        vectorized=vectorized, paired=paired)
    return clipped(result, upper)


def clipped(result, upper: float | None = None):
    """A distance lies in ``[0, upper]``: the basic interval (2 value - bootstrap quantiles)
    can reach below zero near a zero distance and beyond ``upper`` (1 bit for a JS
    divergence) near the largest; its bounds are truncated to the possible range, non-finite
    bounds None. The bounds before clipping are kept in ``result.unclipped`` (the resampling
    spread, from which the smallest detectable difference follows)."""
    low, high = finite(result.low), finite(result.high)
    result.unclipped = (low, high)
    top = np.inf if upper is None else float(upper)
    result.low = None if low is None else min(max(0.0, low), top)
    result.high = None if high is None else min(max(0.0, high), top)
    return result


def interval_columns(groups: Sequence[np.ndarray], distances: Callable[..., np.ndarray],
                     method: str, paired: bool = False, upper: float | None = None,
                     bootstrap: bool = True) -> list:
    """:func:`interval` for several distances of the same resamples (one pass).

    ``distances(sums_1, sums_2)`` takes sums with a leading resample axis and returns a
    ``(resamples, m)`` array (:func:`analysis.stats.bootstrap_histograms_columns`); one
    interval per column, clipped to ``[0, upper]`` as in :func:`interval`.
    """
    from analysis import stats

    if not bootstrap or any(len(g) < 2 for g in groups):
        sums = [np.asarray(g).sum(axis=0)[None] for g in groups]
        n = sum(len(g) for g in groups)
        return [stats.Interval(float(v), None, None, n, method)
                for v in np.asarray(distances(*sums), dtype=float)[0]]
    found = stats.bootstrap_histograms_columns(list(groups), distances, n_resamples=N_RESAMPLES,
                                               seed=SEED, method=method, interval="basic",
                                               paired=paired)
    return [clipped(result, upper) for result in found]


def finite(x: float | None) -> float | None:
    """``x``, or None when it is None, NaN or infinite (JSON-safe)."""
    return None if x is None or not np.isfinite(x) else float(x)


#: The reason code of each decision made by the tolerance alone (``Verdict.reason``).
REASONS = {"agrees": "within_tolerance", "differs": "beyond_tolerance",
           "inconclusive": "straddles_tolerance"}


def detectable(ci, bar: float) -> float | None:
    """The smallest true distance a design with this interval would call ``differs``: the bar
    plus the resampling spread below the value (bounds before clipping), None without one."""
    unclipped = getattr(ci, "unclipped", None)
    low = unclipped[0] if unclipped else ci.low
    if ci.value is None or low is None or not np.isfinite(ci.value):
        return None
    return float(bar + max(0.0, ci.value - low))


def decide(ci, tolerance: float, bootstrap: bool = True) -> str:
    """The decision for a distance interval against a tolerance.

    Without bounds: the point value decides when the bootstrap is switched off (``bootstrap``
    False: timing runs), else a single unit gives no spread to judge from: inconclusive.
    """
    from analysis import stats

    if ci.value is None or not np.isfinite(ci.value):
        return "inconclusive"
    if ci.low is None or ci.high is None:
        if bootstrap:
            return "inconclusive"
        return "agrees" if ci.value <= tolerance else "differs"
    return stats.decide(ci, tolerance)
