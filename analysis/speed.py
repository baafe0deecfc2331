"""Speed and energy health of runs: time per MD step (model and harness), throughput, drift.

Per run (:func:`run_health`), from what the trajectory records about itself:

* **ms per MD step**: the wall-clock stamps of the frames (``/observables/wall_clock``) give
  the total; the cumulative time in the model's calls (``/observables/model_time``, written
  by the force client) gives the model's part; the harness's part is the rest (i-PI's
  integrator, the socket, the watchdog, writing). Both are differences between the first
  and the last frame of each segment (a resumed run has several), so start-up and the time
  between a kill and a resume do not count. The stamps are taken when the supervisor reads
  the frames (every 0.1 s): for each stamp the newest step read with it is used.
* **us/atom/step** and **ns/day per replica** follow from the total.
* **wall time charged**: the segments' start to end (provenance; start-up included), times
  the cores the run was given (``--threads``; a ``--batch`` group's cores shared by its
  runs) for CPU-hours, or the share of its GPU (1 / batch size) when the model ran on a GPU.
* **stable time**: the simulated time before the failure event (all of it for an intact run).
* **drift**: :func:`harness.stability.criteria.drift_mev_per_atom_ps` of i-PI's conserved
  quantity (first 20% of the run left out, frames after a failure event too), flagged above
  :data:`harness.stability.criteria.DRIFT_LIMIT_MEV_PER_ATOM_PS`.

Per model (:func:`speed_rows`): medians over the runs, **ns/day per node** = the simulated
time of the model's runs on one host over the time that host had at least one of them
running (the union of their frame spans), so runs side by side add up; averaged over hosts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from harness import h5md
from harness.stability import criteria as C

#: Failure kinds that end a run for good (storage faults resume: not a model failure).
_RESUMABLE = ("disk_full", "write_error")


@dataclass(frozen=True)
class RunHealth:
    """Speed and drift of one run (None where the file does not record what is needed)."""

    path: str
    model: str
    temperature_K: float
    replica: int
    ensemble: str
    host: str
    status: str
    n_atoms: int
    dt_fs: float
    steps_timed: int
    step_ms: float | None
    model_ms: float | None
    harness_ms: float | None
    us_per_atom_step: float | None
    ns_per_day: float | None
    simulated_ns: float
    stable_ns: float
    wall_s: float | None
    accelerator: str  # CPU | GPU
    devices: float  # cores (CPU) or GPUs (GPU) charged to the run
    spans: tuple[tuple[float, float], ...]  # wall-clock intervals of its segments (s)
    drift_mev_per_atom_ps: float | None
    drift_flagged: bool
    drift_reason: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (without the spans)."""
        out = asdict(self)
        out.pop("spans")
        return out


def _segment_ids(steps: np.ndarray, provenance: dict[str, Any]) -> np.ndarray:
    """Which segment wrote each frame: a resumed segment starts after its resume step.

    The resume steps are those of the recorded segments (``from_step``) and those the
    supervisor notes when it resumes (``resumed_at_steps``: also for segments killed later).
    """
    steps_resumed = [int(s.get("from_step", 0)) for s in provenance.get("segments") or []]
    steps_resumed += [int(s) for s in provenance.get("resumed_at_steps") or []]
    starts = sorted({s for s in steps_resumed if s > 0})
    return np.searchsorted(np.asarray(starts, dtype=np.int64), steps, side="left")


def _read_points(steps: np.ndarray, stamps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(step, stamp) of each supervisor read: the newest step that carries each stamp."""
    ok = np.isfinite(stamps)
    steps, stamps = steps[ok], stamps[ok]
    if len(steps) == 0:
        return steps, stamps
    last = np.r_[stamps[1:] != stamps[:-1], True]  # the last frame of each equal-stamp run
    return steps[last], stamps[last]


def step_times(steps: np.ndarray, wall: np.ndarray, model: np.ndarray,
               segments: np.ndarray) -> dict[str, Any]:
    """Seconds per step (total and in the model), steps covered and wall spans per segment.

    Only reads with a finite wall stamp count; the model's part only where its series is
    finite at both ends of a segment.
    """
    total_s = model_s = 0.0
    total_steps = model_steps = 0
    spans = []
    for seg in np.unique(segments):
        mask = segments == seg
        idx = np.nonzero(mask)[0]
        read_steps, read_stamps = _read_points(steps[idx], wall[idx])
        if len(read_steps) < 2:
            continue
        total_s += float(read_stamps[-1] - read_stamps[0])
        total_steps += int(read_steps[-1] - read_steps[0])
        spans.append((float(read_stamps[0]), float(read_stamps[-1])))
        at = {int(s): i for i, s in zip(idx, steps[idx], strict=True)}
        first, last = model[at[int(read_steps[0])]], model[at[int(read_steps[-1])]]
        if np.isfinite(first) and np.isfinite(last):
            model_s += float(last - first)
            model_steps += int(read_steps[-1] - read_steps[0])
    return {"step_s": total_s / total_steps if total_steps else None,
            "model_step_s": model_s / model_steps if model_steps else None,
            "steps": total_steps, "spans": tuple(spans)}


def _charged_wall_s(provenance: dict[str, Any], spans: tuple[tuple[float, float], ...]
                    ) -> float | None:
    """Start to end of every segment (provenance, 1 s resolution); else the frames' spans."""
    total = 0.0
    for seg in provenance.get("segments") or []:
        try:
            total += (datetime.strptime(seg["end"], "%Y-%m-%dT%H:%M:%S%z")
                      - datetime.strptime(seg["start"], "%Y-%m-%dT%H:%M:%S%z")).total_seconds()
        except (KeyError, TypeError, ValueError):
            total = -1.0
            break
    if total > 0:
        return total
    spanned = sum(b - a for a, b in spans)
    return spanned if spanned > 0 else None


def _devices(spec: dict[str, Any], provenance: dict[str, Any]) -> tuple[str, float]:
    """('CPU', cores) or ('GPU', GPUs) charged to one run; a batch group's share per run."""
    batch = max([int((s.get("batch") or {}).get("batch_size") or 1)
                 for s in provenance.get("segments") or []] or [1])
    device = str((spec.get("model_options") or {}).get("device", "")).lower()
    if device.startswith(("cuda", "gpu")):
        return "GPU", 1.0 / batch
    return "CPU", max(1, int(spec.get("omp_threads") or 1)) / batch


def run_health(path: Path, drift_limit: float = C.DRIFT_LIMIT_MEV_PER_ATOM_PS) -> RunHealth:
    """Speed and conserved-energy drift of one trajectory (see the module docstring)."""
    meta = h5md.read_meta(path)
    spec, prov = meta["run_spec"], meta["provenance"]
    n_atoms = int(meta["n_atoms"])
    dt_fs = float(spec["dt_fs"])
    timing = h5md.read_timing(path)
    steps = timing["step"]
    times = h5md.read_observables(path, ("conserved_energy",))
    timed = step_times(steps, timing["wall_clock"], timing["model_time"],
                       _segment_ids(steps, prov))
    step_s, model_step_s = timed["step_s"], timed["model_step_s"]
    failure = meta["failure"] if meta["status"] == "failed" else None
    if failure and failure.get("kind") in _RESUMABLE:
        failure = None
    reached_ps = float(meta["times_ps"][-1]) if meta["n_frames"] else 0.0
    stable_ps = min(reached_ps, float(failure.get("time_ps", reached_ps))) if failure \
        else reached_ps
    drift, flagged, reason = _drift(times, failure, n_atoms, drift_limit)
    accelerator, devices = _devices(spec, prov)
    return RunHealth(
        path=str(path), model=str(spec["model_label"]), temperature_K=float(spec["temperature_K"]),
        replica=int(spec["replica"]), ensemble=str(spec.get("ensemble", "nvt")),
        host=str(prov.get("host", "-")), status=meta["status"], n_atoms=n_atoms, dt_fs=dt_fs,
        steps_timed=timed["steps"],
        step_ms=None if step_s is None else step_s * 1e3,
        model_ms=None if model_step_s is None else model_step_s * 1e3,
        harness_ms=None if step_s is None or model_step_s is None
        else (step_s - model_step_s) * 1e3,
        us_per_atom_step=None if step_s is None else step_s * 1e6 / n_atoms,
        ns_per_day=None if not step_s else dt_fs * 1e-6 / step_s * 86400.0,
        simulated_ns=reached_ps * 1e-3, stable_ns=stable_ps * 1e-3,
        wall_s=_charged_wall_s(prov, timed["spans"]), accelerator=accelerator,
        devices=devices, spans=timed["spans"], drift_mev_per_atom_ps=drift,
        drift_flagged=flagged, drift_reason=reason)


def _drift(series: dict[str, np.ndarray], failure: dict[str, Any] | None, n_atoms: int,
           limit: float) -> tuple[float | None, bool, str]:
    """Drift of the conserved energy up to the failure event; flagged above ``limit``."""
    times, conserved = series["time"], series["conserved_energy"]
    if failure and failure.get("time_ps") is not None:
        keep = times <= float(failure["time_ps"])
        times, conserved = times[keep], conserved[keep]
    drift = C.drift_mev_per_atom_ps(times, conserved, n_atoms)
    if drift is None:
        return None, False, "too few frames for a fit"
    if abs(drift) > limit:
        return drift, True, C.drift_reason(drift, limit)
    return drift, False, ""


# --- per model ------------------------------------------------------------------------------

def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.median(known)) if known else None


def _union_s(spans: list[tuple[float, float]]) -> float:
    """Length of the union of wall-clock intervals."""
    total, end = 0.0, -np.inf
    for a, b in sorted(spans):
        if b > end:
            total += b - max(a, end)
            end = b
    return total


def node_ns_per_day(runs: list[RunHealth]) -> float | None:
    """Simulated ns per day of one host running these runs, averaged over the hosts.

    Per host: the simulated time the runs covered while timed, over the time at least one of
    them was running (the union of their spans): runs side by side add up.
    """
    by_host: dict[str, list[RunHealth]] = defaultdict(list)
    for run in runs:
        if run.spans and run.step_ms:
            by_host[run.host].append(run)
    rates = []
    for group in by_host.values():
        busy = _union_s([s for r in group for s in r.spans])
        ns = sum(r.steps_timed * r.dt_fs * 1e-6 for r in group)
        if busy > 0:
            rates.append(ns / busy * 86400.0)
    return float(np.mean(rates)) if rates else None


def speed_rows(runs: list[RunHealth]) -> list[dict[str, Any]]:
    """One row per model: medians over its runs, per-node throughput, stable ns per hour."""
    by_model: dict[str, list[RunHealth]] = defaultdict(list)
    for run in runs:
        by_model[run.model].append(run)
    rows = []
    for model, group in sorted(by_model.items()):
        hours = [r.wall_s * r.devices / 3600.0 for r in group if r.wall_s]
        accelerators = sorted({r.accelerator for r in group})
        rows.append({
            "model": model, "ensemble": ", ".join(sorted({r.ensemble for r in group})),
            "runs": len(group), "atoms": group[0].n_atoms,
            "model_ms_per_step": _median([r.model_ms for r in group]),
            "harness_ms_per_step": _median([r.harness_ms for r in group]),
            "total_ms_per_step": _median([r.step_ms for r in group]),
            "us_per_atom_step": _median([r.us_per_atom_step for r in group]),
            "ns_per_day_per_replica": _median([r.ns_per_day for r in group]),
            "ns_per_day_per_node": node_ns_per_day(group),
            "stable_ns": sum(r.stable_ns for r in group),
            "device_hours": sum(hours) if hours else None,
            "accelerator": "/".join(accelerators),
            "stable_ns_per_device_hour": sum(r.stable_ns for r in group) / sum(hours)
            if hours and sum(hours) > 0 else None,
        })
    return rows


def drift_rows(runs: list[RunHealth]) -> list[dict[str, Any]]:
    """One row per (model, temperature): median and worst drift, number flagged."""
    groups: dict[tuple[str, float], list[RunHealth]] = defaultdict(list)
    for run in runs:
        groups[(run.model, run.temperature_K)].append(run)
    rows = []
    for (model, temp), group in sorted(groups.items()):
        known = [r for r in group if r.drift_mev_per_atom_ps is not None]
        worst = max(known, key=lambda r: abs(r.drift_mev_per_atom_ps), default=None)
        rows.append({
            "model": model, "temperature_K": temp,
            "ensemble": ", ".join(sorted({r.ensemble for r in group})),
            "runs": len(group), "runs_with_drift": len(known),
            "median_mev_per_atom_ps": _median([r.drift_mev_per_atom_ps for r in known]),
            "worst_mev_per_atom_ps": None if worst is None else worst.drift_mev_per_atom_ps,
            "worst_replica": None if worst is None else worst.replica,
            "flagged": sum(r.drift_flagged for r in group),
            "limit_mev_per_atom_ps": C.DRIFT_LIMIT_MEV_PER_ATOM_PS,
        })
    return rows
