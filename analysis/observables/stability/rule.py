"""The stability rule: failures per simulated ns against a tolerance, and a minimum run length.

A group's runs (one model at one temperature) are pooled on simulated time: ``k`` failures in
an exposure of ``E`` ns (every run counted up to its failure or the time it reached) give a
rate ``k / E`` failures per ns with its exact (Garwood) 95% interval
(:func:`analysis.survival.failure_rate`). The decision, against :data:`MAX_FAILURES_PER_NS`:

* ``differs`` when the whole interval lies above the tolerance. A failure is evidence at any
  run length, so short runs can decide this.
* ``agrees`` when the interval's upper bound lies at or below the tolerance *on the evidence
  runs only*: the failed runs and the runs that reached at least :data:`MIN_RUN_PS`. The time
  of a shorter run that did not fail is never evidence of stability (a hazard that grows once a
  run has drifted is invisible to it), so 12 completed runs of 10 fs are never ``agrees``.
* ``inconclusive`` otherwise, with its reason (:data:`REASONS`) and the simulated time without
  a further failure that would make it ``agrees``.

Because the rate rests on time, a failure late in a long run weighs less than one at its start
(the late one's run adds its time to the exposure). The failed share of the runs (Wilson) and
the Kaplan-Meier fraction intact at the planned length stay as descriptions. Pure functions of
arrays: the synthetic calibration (``benchmarks/stability_calibration.py``) calls :func:`judge`
as the report does. See docs/statistics.md, "Stability".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from analysis import stats, survival

#: Tolerance: a model is stable at a temperature when, with 95% confidence, its runs fail at
#: most this often per ns of simulated time (one failure per 2 ns; a 1 ns run then stays
#: intact with probability at least exp(-0.5) = 0.61).
MAX_FAILURES_PER_NS = 0.5

#: A run that did not fail is evidence of stability only when it reached at least this time:
#: half of the ns the tolerance speaks of. Shorter runs cannot see failures that come once a
#: run has drifted (100 runs of 100 ps would call a model stable that loses 86% of its 1 ns
#: runs late, benchmarks/stability_calibration.py).
MIN_RUN_PS = 500.0

#: Why a decision came out as it did (data; the renderer phrases it).
REASONS = {
    "rate_within_tolerance": "agrees",
    "rate_above_tolerance": "differs",
    "runs_too_short": "inconclusive",
    "too_little_time": "inconclusive",
    "no_time": "inconclusive",
}


@dataclass
class Scope:
    """What a stability verdict rests on: how many runs, how long, how much simulated time.

    ``planned_ps_min``/``planned_ps_max``: the runs' planned lengths; ``exposure_ns``: the
    simulated time of all runs; ``evidence_ns``: the part that counts towards ``agrees``
    (failed runs, and runs that reached ``min_run_ps``).
    """

    n_runs: int
    planned_ps_min: float
    planned_ps_max: float
    exposure_ns: float
    evidence_ns: float
    min_run_ps: float
    statistic: str = "failures per ns"

    def label(self) -> str:
        """``12 runs x 0.5 ps, failures per ns`` (a range when the planned lengths differ)."""
        lo, hi = _length(self.planned_ps_min), _length(self.planned_ps_max)
        length = lo if lo == hi else f"{lo} to {hi}"
        runs = "1 run" if self.n_runs == 1 else f"{self.n_runs} runs"
        return f"{runs} x {length}, {self.statistic}"

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON, with the label."""
        return {**asdict(self), "label": self.label()}


def _length(ps: float) -> str:
    """``10 fs`` below 0.1 ps, else ``0.5 ps`` / ``1000 ps``."""
    return f"{ps * 1000:.4g} fs" if 0 < ps < 0.1 else f"{ps:.4g} ps"


@dataclass
class Judgement:
    """The stability rule applied to one group.

    ``rate`` (failures per ns on all simulated time) is the verdict's value and interval;
    ``evidence_high`` the upper bound on the evidence runs only (decides ``agrees``);
    ``needed_ns`` the further simulated time, in runs of at least ``min_run_ps`` and without a
    failure, after which ``agrees`` would follow (None when decided); ``failed_share`` and
    ``survival_at_planned`` (Kaplan-Meier at ``survival_at_ps``: the planned length, or the
    last time observed when no run got that far) are descriptions.
    """

    decision: str
    reason: str
    rate: stats.Interval
    evidence_high: float
    failures: int
    tolerance_per_ns: float
    scope: Scope
    needed_ns: float | None
    failed_share: stats.Interval
    survival_at_planned: stats.Interval
    survival_at_ps: float

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {"decision": self.decision, "reason": self.reason,
                "failures_per_ns": self.rate.as_dict(),
                "evidence_ci_high": _finite(self.evidence_high), "failures": self.failures,
                "tolerance_per_ns": self.tolerance_per_ns, "scope": self.scope.as_dict(),
                "needed_ns": self.needed_ns, "failed_share": self.failed_share.as_dict(),
                "survival_at_planned": self.survival_at_planned.as_dict(),
                "survival_at_ps": self.survival_at_ps}


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def judge(times_ps: Any, failed: Any, planned_ps: Any, *,
          tolerance_per_ns: float = MAX_FAILURES_PER_NS,
          min_run_ps: float = MIN_RUN_PS) -> Judgement:
    """Apply the stability rule to one group of runs.

    Parameters
    ----------
    times_ps : array-like
        Per run, the time it failed at, or the time it reached (completed, stopped, running).
    failed : array-like of bool
        Per run, whether it failed.
    planned_ps : array-like
        Per run, its planned length (only the scope and the survival description use it).
    tolerance_per_ns, min_run_ps : float
        The tolerance and the minimum length of a run that counts as evidence of stability.
    """
    t = np.asarray(times_ps, dtype=float)
    f = np.asarray(failed, dtype=bool)
    planned = np.asarray(planned_ps, dtype=float)
    evidence = f | (t >= min_run_ps)
    scope = Scope(len(t), float(planned.min(initial=math.inf)) if len(t) else 0.0,
                  float(planned.max(initial=0.0)), float(t.sum()) / 1000.0,
                  float(t[evidence].sum()) / 1000.0, float(min_run_ps))
    rate = survival.failure_rate(t, f)
    upper = _upper(int(f.sum()), scope.evidence_ns)
    decision, reason = _decide(rate, upper, t, f, tolerance_per_ns, min_run_ps)
    needed = (_needed_ns(int(f.sum()), scope.evidence_ns, tolerance_per_ns)
              if decision == "inconclusive" else None)
    at_ps = min(scope.planned_ps_max, float(t.max(initial=0.0)))
    return Judgement(decision, reason, rate, upper, int(f.sum()), tolerance_per_ns, scope,
                     needed, stats.proportion_interval(int(f.sum()), len(t)),
                     _survival_at(t, f, at_ps), at_ps)


def _upper(k: int, exposure_ns: float) -> float:
    """Upper bound of the exact 95% interval of k events in ``exposure_ns`` (inf at 0 ns)."""
    if exposure_ns <= 0:
        return math.inf
    return stats.poisson_rate_interval(k, exposure_ns).high


def _decide(rate: stats.Interval, evidence_high: float, t: np.ndarray, f: np.ndarray,
            tolerance: float, min_run_ps: float) -> tuple[str, str]:
    """(decision, reason) of :func:`judge`."""
    if not math.isfinite(rate.value):
        return "inconclusive", "no_time"
    if rate.low > tolerance:
        return "differs", "rate_above_tolerance"
    if evidence_high <= tolerance:
        return "agrees", "rate_within_tolerance"
    if rate.high <= tolerance or not np.any(~f & (t >= min_run_ps)):
        return "inconclusive", "runs_too_short"
    return "inconclusive", "too_little_time"


def _needed_ns(k: int, evidence_ns: float, tolerance: float) -> float | None:
    """Further evidence time (ns) without a failure after which the upper bound of ``k``
    failures reaches the tolerance; None when it already does."""
    total = sps.chi2.ppf(0.975, 2 * k + 2) / 2 / tolerance
    return float(total - evidence_ns) if total > evidence_ns else None


def _survival_at(t: np.ndarray, f: np.ndarray, at_ps: float) -> stats.Interval:
    """Kaplan-Meier fraction intact at ``at_ps`` (the planned length, or the last time
    observed when no run got that far), with its pointwise 95% band."""
    if not len(t):
        return stats.Interval(math.nan, math.nan, math.nan, 0, "log-log band")
    km = survival.kaplan_meier(t, f)
    i = int(np.searchsorted(km.time_ps, at_ps, side="right") - 1)
    return stats.Interval(float(km.survival[i]), float(km.low[i]), float(km.high[i]),
                          len(t), "log-log band")
