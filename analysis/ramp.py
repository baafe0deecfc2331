"""Breaking temperatures of heating-ramp runs (``--protocol ramp``): survival over temperature.

A ramp run's *breaking temperature* is the thermostat temperature at its first failure event
(:func:`harness.protocols.ramp.Ramp.temperature_at_step`); a run that reaches the end is
censored at the end temperature, a run still going or interrupted at the temperature it
reached, and a run stopped by the machinery (a dead client, a hang: not the model's doing) at
the temperature it reached too. Per model and ramp the Kaplan-Meier estimate over temperature
(:func:`analysis.survival.kaplan_meier`, temperatures in place of times) gives the fraction of
runs intact with its 95% band and the median breaking temperature with its interval (read off
the band; None where it is not reached); the log-rank test compares every pair of models on
the same ramp. Computing only: the figure is :func:`plot`, the command and the report section
live in :mod:`analysis.commands.ramp`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from analysis import survival
from analysis.stats import Interval


@dataclass(frozen=True)
class RampRun:
    """One ramp run: its model, ramp, and breaking (or censoring) temperature."""

    path: Path
    challenge: str
    model: str
    ramp: Any  # harness.protocols.ramp.Ramp
    temperature_K: float
    failed: bool
    failure_kind: str | None


@dataclass
class ModelRamp:
    """One model on one ramp: its runs, Kaplan-Meier curve and median breaking temperature."""

    model: str
    runs: list[RampRun]
    curve: survival.KaplanMeier
    median: Interval

    @property
    def n_failed(self) -> int:
        """Runs that broke before the end."""
        return sum(r.failed for r in self.runs)

    def breaking_temperature_K(self) -> dict[str, float | None]:
        """``{"value", "ci_low", "ci_high"}`` of the median (None: not reached)."""
        def finite(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None
        return {"value": finite(self.median.value), "ci_low": finite(self.median.low),
                "ci_high": finite(self.median.high)}


@dataclass
class RampResult:
    """All models on one ramp of one challenge, with the log-rank p of every pair."""

    challenge: str
    ramp: Any
    models: list[ModelRamp]
    p_values: dict[tuple[str, str], float] = field(default_factory=dict)

    def table(self) -> list[dict[str, Any]]:
        """Rows for ``report.json`` (``tables.breaking_temperature``)."""
        return [{"challenge": self.challenge, "ramp": self.ramp.label, "model": m.model,
                 "start_K": self.ramp.start_K, "end_K": self.ramp.end_K,
                 "rate_K_per_ps": self.ramp.rate_K_per_ps, "n_runs": len(m.runs),
                 "n_failed": m.n_failed, "breaking_temperature_K": m.breaking_temperature_K(),
                 "breaking_temperatures_K": [r.temperature_K for r in m.runs],
                 "failed": [r.failed for r in m.runs]} for m in self.models]

    def pair_table(self) -> list[dict[str, Any]]:
        """Rows for ``report.json`` (``tables.breaking_temperature_log_rank``)."""
        return [{"challenge": self.challenge, "ramp": self.ramp.label, "model_a": a,
                 "model_b": b, "p_value": p} for (a, b), p in self.p_values.items()]


def read_run(path: Path) -> RampRun | None:
    """The :class:`RampRun` of a trajectory file; None when it is not a ramp run."""
    from harness import h5md
    from harness.launch import INFRASTRUCTURE_FAILURES
    from harness.protocols.ramp import Ramp

    meta = h5md.read_meta(path)
    spec = meta["run_spec"]
    if spec.get("protocol") != "ramp":
        return None
    ramp = Ramp.from_options(spec["protocol_options"])
    n_steps = int(spec["n_steps"])
    failure = meta["failure"] or {}
    failed = meta["status"] == "failed" and failure.get("kind") not in INFRASTRUCTURE_FAILURES
    if failure.get("step") is not None:
        step = int(failure["step"])
    else:
        step = int(meta["steps"][-1]) if meta["n_frames"] else 0
    model = str(spec["model_label"]).removesuffix(f"-{ramp.label}")
    return RampRun(path, str(spec["challenge"]), model, ramp,
                   ramp.temperature_at_step(step, n_steps), failed, failure.get("kind"))


def analyse(paths: list[Path], level: float = 0.95) -> list[RampResult]:
    """Every (challenge, ramp) among the files, models side by side."""
    groups: dict[tuple[str, Any], dict[str, list[RampRun]]] = defaultdict(
        lambda: defaultdict(list))
    for path in paths:
        run = read_run(path)
        if run is not None:
            groups[(run.challenge, run.ramp)][run.model].append(run)
    results = []
    for (challenge, ramp), by_model in sorted(groups.items(), key=lambda kv: (
            kv[0][0], kv[0][1].label)):
        models = [model_ramp(name, runs, level) for name, runs in sorted(by_model.items())]
        result = RampResult(challenge, ramp, models)
        for a, b in combinations(models, 2):
            test = survival.log_rank(*_arrays(a.runs), *_arrays(b.runs))
            result.p_values[(a.model, b.model)] = test.p_value
        results.append(result)
    return results


def _arrays(runs: list[RampRun]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([r.temperature_K for r in runs]), np.array([r.failed for r in runs]))


def model_ramp(model: str, runs: list[RampRun], level: float = 0.95) -> ModelRamp:
    """Kaplan-Meier over temperature and the median breaking temperature of one model."""
    curve = survival.kaplan_meier(*_arrays(runs), level=level)
    return ModelRamp(model, sorted(runs, key=lambda r: r.path), curve, curve.median())


def median_breaking_temperature(temperatures_K: Any, failed: Any,
                                level: float = 0.95) -> Interval:
    """The Kaplan-Meier median of breaking temperatures (``inf`` bounds: not reached)."""
    return survival.kaplan_meier(temperatures_K, failed, level=level).median()


def plot(result: RampResult, ax: Any = None) -> Any:
    """Runs intact against thermostat temperature, one curve (and band) per model."""
    curves = {m.model: m.curve for m in result.models}
    ax = survival.plot_survival(ax, curves, title=f"{result.challenge}: heating "
                                f"{result.ramp.text} (Kaplan-Meier, 95% band)")
    ax.set_xlabel("thermostat temperature (K)")
    ax.set_xlim(result.ramp.start_K, result.ramp.end_K * 1.02)
    return ax
