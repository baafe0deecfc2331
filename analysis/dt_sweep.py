"""Time-step sweeps (``--protocol dt-sweep``): failures and energy conservation per time step.

Per model and time step, over its runs (same starts, seeds, thermostat and simulated time at
every step):

* **failure fraction**: runs that broke, with its Wilson interval
  (:func:`analysis.stats.proportion_interval`);
* **drift**: the slope of i-PI's conserved quantity (meV/atom/ps, after the first 20%;
  :func:`harness.stability.criteria.drift_mev_per_atom_ps`), mean and spread over runs;
* **RMS fluctuation** of the conserved quantity about its own least-squares line (meV/atom),
  mean and spread over runs. For velocity Verlet and smooth forces it grows as dt^2 (the
  integrator conserves a shadow energy that differs from the true one by O(dt^2)); rough or
  non-conservative forces leave that line. :attr:`ModelSweep.rms_exponent` is the slope of
  log RMS against log dt.

The *largest sound time step* is the largest dt at which no run broke and the mean |drift|
stays within the stated bound (default: the watchdog's 1 meV/atom/ps), every smaller dt sound
too. Computing only: the figure is :func:`plot`; the command is :mod:`analysis.commands.dt_sweep`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis.stats import Interval, proportion_interval
from harness.stability import criteria as C


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: its model, time step, failure and energy numbers."""

    path: Path
    challenge: str
    model: str
    dt_fs: float
    failed: bool
    drift_mev_per_atom_ps: float | None
    rms_mev_per_atom: float | None


def rms_fluctuation_mev_per_atom(times_ps: Any, conserved_ev: Any, n_atoms: int
                                 ) -> float | None:
    """RMS of the conserved quantity about its least-squares line, meV/atom (None: < 3
    finite frames)."""
    t = np.asarray(times_ps, dtype=float)
    e = np.asarray(conserved_ev, dtype=float)
    keep = np.isfinite(t) & np.isfinite(e)
    if np.count_nonzero(keep) < 3 or np.ptp(t[keep]) <= 0:
        return None
    t, e = t[keep] - t[keep].mean(), e[keep] - e[keep].mean()  # centred: large energies
    slope = float(np.dot(t, e) / np.dot(t, t))
    return float(np.sqrt(np.mean((e - slope * t) ** 2)) * 1000.0 / n_atoms)


def read_run(path: Path) -> SweepRun | None:
    """The :class:`SweepRun` of a trajectory; None when it is not a dt-sweep run."""
    from harness import h5md
    from harness.launch import INFRASTRUCTURE_FAILURES
    from harness.protocols.dt_sweep import label_for

    meta = h5md.read_meta(path)
    spec = meta["run_spec"]
    if spec.get("protocol") != "dt-sweep":
        return None
    dt = float(spec["dt_fs"])
    failure = meta["failure"] or {}
    failed = meta["status"] == "failed" and failure.get("kind") not in INFRASTRUCTURE_FAILURES
    n_atoms = len(meta["species"])
    times = np.asarray(meta["times_ps"], dtype=float)
    if failure.get("time_ps") is not None:  # the energies after a failure say nothing here
        cut = times <= float(failure["time_ps"])
    else:
        cut = np.ones(len(times), bool)
    conserved = h5md.read_observables(path, ("conserved_energy",))["conserved_energy"]
    times, conserved = times[cut], np.asarray(conserved)[cut]
    model = str(spec["model_label"]).removesuffix(label_for("", dt))
    return SweepRun(path, str(spec["challenge"]), model, dt, failed,
                    C.drift_mev_per_atom_ps(times, conserved, n_atoms),
                    rms_fluctuation_mev_per_atom(times, conserved, n_atoms))


@dataclass
class StepRow:
    """One model at one time step."""

    dt_fs: float
    runs: list[SweepRun]
    failed: Interval

    def _values(self, name: str) -> np.ndarray:
        return np.array([getattr(r, name) for r in self.runs if getattr(r, name) is not None])

    def mean_sd(self, name: str) -> tuple[float | None, float | None]:
        """Mean and standard deviation over runs (None without values; sd None for one)."""
        v = self._values(name)
        if len(v) == 0:
            return None, None
        return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else None)

    def as_dict(self) -> dict[str, Any]:
        drift, drift_sd = self.mean_sd("drift_mev_per_atom_ps")
        rms, rms_sd = self.mean_sd("rms_mev_per_atom")
        return {"dt_fs": self.dt_fs, "n_runs": len(self.runs),
                "n_failed": sum(r.failed for r in self.runs),
                "failed_fraction": self.failed.value, "failed_ci_low": self.failed.low,
                "failed_ci_high": self.failed.high, "drift_mev_per_atom_ps": drift,
                "drift_sd": drift_sd, "rms_fluctuation_mev_per_atom": rms, "rms_sd": rms_sd}


@dataclass
class ModelSweep:
    """One model's sweep on one challenge."""

    challenge: str
    model: str
    rows: list[StepRow]
    drift_bound: float = C.DRIFT_LIMIT_MEV_PER_ATOM_PS
    extra: dict[str, Any] = field(default_factory=dict)

    def sound(self, row: StepRow) -> bool:
        """No run broke, and the mean |drift| is within the bound."""
        drift, _ = row.mean_sd("drift_mev_per_atom_ps")
        return not any(r.failed for r in row.runs) and drift is not None \
            and abs(drift) <= self.drift_bound

    @property
    def largest_sound_dt_fs(self) -> float | None:
        """The largest dt that is sound with every smaller dt sound too (None: not even the
        smallest)."""
        best = None
        for row in sorted(self.rows, key=lambda r: r.dt_fs):
            if not self.sound(row):
                break
            best = row.dt_fs
        return best

    @property
    def rms_exponent(self) -> float | None:
        """Slope of log(mean RMS fluctuation) against log(dt): 2 for smooth forces."""
        points = [(r.dt_fs, r.mean_sd("rms_mev_per_atom")[0]) for r in self.rows]
        points = [(dt, v) for dt, v in points if v is not None and v > 0]
        if len(points) < 2:
            return None
        x, y = np.log([p[0] for p in points]), np.log([p[1] for p in points])
        return float(np.polyfit(x, y, 1)[0])

    def table(self) -> list[dict[str, Any]]:
        """Rows for ``report.json`` (``tables.dt_sweep``)."""
        return [{"challenge": self.challenge, "model": self.model, **row.as_dict(),
                 "sound": self.sound(row)} for row in self.rows]

    def summary(self) -> dict[str, Any]:
        """Rows for ``report.json`` (``tables.dt_sweep_summary``)."""
        return {"challenge": self.challenge, "model": self.model,
                "largest_sound_dt_fs": self.largest_sound_dt_fs,
                "drift_bound_mev_per_atom_ps": self.drift_bound,
                "rms_exponent": self.rms_exponent}


def analyse(paths: list[Path], drift_bound: float = C.DRIFT_LIMIT_MEV_PER_ATOM_PS
            ) -> list[ModelSweep]:
    """Every (challenge, model) swept among the files."""
    groups: dict[tuple[str, str], dict[float, list[SweepRun]]] = defaultdict(
        lambda: defaultdict(list))
    for path in paths:
        run = read_run(path)
        if run is not None:
            groups[(run.challenge, run.model)][run.dt_fs].append(run)
    out = []
    for (challenge, model), by_dt in sorted(groups.items()):
        rows = [StepRow(dt, runs, proportion_interval(sum(r.failed for r in runs), len(runs)))
                for dt, runs in sorted(by_dt.items())]
        out.append(ModelSweep(challenge, model, rows, drift_bound))
    return out


def plot(sweeps: list[ModelSweep], axes: Any = None) -> Any:
    """Two panels against dt (log-log): RMS fluctuation with a dt^2 guide, and |drift| with
    the bound; one line per model. Returns the axes."""
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 4))
    for sweep in sweeps:
        dts = np.array([r.dt_fs for r in sweep.rows])
        rms = np.array([r.mean_sd("rms_mev_per_atom")[0] or math.nan for r in sweep.rows])
        drift = np.array([abs(r.mean_sd("drift_mev_per_atom_ps")[0] or math.nan)
                          for r in sweep.rows])
        (line,) = axes[0].loglog(dts, rms, "o-", label=sweep.model)
        if np.isfinite(rms[0]):
            axes[0].loglog(dts, rms[0] * (dts / dts[0]) ** 2, ":", color=line.get_color())
        axes[1].loglog(dts, drift, "o-", color=line.get_color(), label=sweep.model)
        broke = [r.dt_fs for r in sweep.rows if any(x.failed for x in r.runs)]
        for dt in broke:
            axes[1].axvline(dt, color=line.get_color(), alpha=0.3, linestyle="--")
    if sweeps:
        axes[1].axhline(sweeps[0].drift_bound, color="grey", linestyle="--", label="bound")
    axes[0].set_xlabel("time step (fs)")
    axes[0].set_ylabel("RMS fluctuation of conserved energy (meV/atom)")
    axes[0].set_title("fluctuation (dotted: dt^2 from the smallest dt)", fontsize=9)
    axes[1].set_xlabel("time step (fs)")
    axes[1].set_ylabel("|drift| (meV/atom/ps)")
    axes[1].set_title("drift (dashed verticals: a run broke)", fontsize=9)
    steps = sorted({r.dt_fs for s in sweeps for r in s.rows})
    for ax in axes:
        ax.set_xticks(steps, [f"{dt:g}" for dt in steps])
        ax.minorticks_off()
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return axes
