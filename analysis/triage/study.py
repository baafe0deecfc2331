"""Shared plumbing of ``analysis triage`` and ``analysis errors``: runs -> frames -> reference.

Runs are grouped by challenge (each challenge has its own reference method); the frames of all
runs of a challenge go to the reference in one batch, so ``--jobs`` workers stay busy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis.trajectories import RunRecord
from analysis.triage import frames as F
from analysis.triage.reference import (
    Evaluation,
    ReferenceMethod,
    evaluate,
    reference_method,
    store_for,
)
from harness import h5md


@dataclass
class ReferenceSettings:
    """How the reference is chosen and run (the shared flags of the commands)."""

    reference_model: str | None = None
    model_file: str | None = None
    model_options: list[str] | None = None
    jobs: int = 1
    max_frames: int | None = None
    #: refuse (after one timed call) when the reference would take longer than this
    max_seconds: float | None = None
    cache_dir: Path | None = None
    announce: Callable[[str], None] | None = None
    on_fraction: Callable[[float], None] | None = None
    #: filled while running: the methods used per challenge and what each evaluation cost
    used: dict[str, ReferenceMethod] = field(default_factory=dict)
    cost: dict[str, Evaluation] = field(default_factory=dict)
    #: frames the reference could not evaluate (e.g. SCF not converged), per challenge
    reference_failed: dict[str, int] = field(default_factory=dict)


@dataclass
class LabelledRun:
    """One run's frames with the reference's energy (eV) and forces (eV/A) on each."""

    record: RunRecord
    frames: F.FrameSet
    base: Any  # ase.Atoms: the starting structure the frames are placed on
    cell: np.ndarray | None
    ref_energy: np.ndarray
    ref_forces: np.ndarray
    method: ReferenceMethod


def label_runs(selected: list[tuple[RunRecord, F.FrameSet]],
               settings: ReferenceSettings) -> list[LabelledRun]:
    """Evaluate the reference on the frames of every run (cached, in parallel).

    Frames the reference cannot evaluate (NaN) are left out and counted in
    ``settings.reference_failed``; a run left without frames is left out.
    """
    from harness import challenges

    by_challenge: dict[str, list[tuple[RunRecord, F.FrameSet]]] = defaultdict(list)
    for record, frames in selected:
        by_challenge[record.challenge].append((record, frames))
    out: list[LabelledRun] = []
    for name, items in sorted(by_challenge.items()):
        challenge = challenges.load(name)
        method = reference_method(challenge, settings.reference_model, settings.model_file,
                                  settings.model_options)
        settings.used[name] = method
        bases, atoms = [], []
        for record, frames in items:
            meta = h5md.read_meta(record.path)
            base = F.template(record.path, meta)
            bases.append(base)
            atoms += F.as_atoms(frames, base)
        store = store_for(method, settings.cache_dir)
        results, cost = evaluate(method, challenge.name, atoms, store, settings.jobs,
                                 settings.max_frames, settings.max_seconds, settings.announce,
                                 settings.on_fraction)
        settings.cost[name] = cost
        k = 0
        for (record, frames), base in zip(items, bases, strict=True):
            chunk = results[k:k + len(frames)]
            k += len(frames)
            energy = np.array([r[0] for r in chunk])
            forces = np.array([r[1] for r in chunk]).reshape(frames.model_forces.shape)
            ok = np.isfinite(energy) & np.isfinite(forces).all(axis=(1, 2))
            settings.reference_failed[name] = settings.reference_failed.get(name, 0) + \
                int((~ok).sum())
            if not ok.any():
                continue
            cell = np.array(base.cell[:]) if base.pbc.any() else None
            out.append(LabelledRun(record, frames.subset(ok), base, cell, energy[ok],
                                   forces[ok], method))
    return out


def triage_frames(record: RunRecord, earlier: int) -> F.FrameSet:
    """The frames triage looks at: ``earlier`` stored frames from the start, then the approach.

    The stored frames are spread evenly from the first frame to the last one before the
    watchdog's every-step record begins (the first is the run's start: the energy offset).
    """
    meta = h5md.read_meta(record.path)
    pre = F.pre_failure_frames(record.path)
    steps = meta["steps"]
    if pre is not None:
        before = int(np.searchsorted(steps, pre.step[0], side="left"))
        stored = F.stored_frames(record.path, F.even_indices(len(steps), earlier, before))
        return stored.concat(pre)
    # no every-step record (an older file): spread frames up to the last stored one
    return F.stored_frames(record.path, F.even_indices(len(steps), earlier + 3))


def failed_records(paths: list[Path]) -> tuple[list[RunRecord], int]:
    """The failed runs under ``paths`` and the number of runs found."""
    from analysis import trajectories

    records = [trajectories.read_record(p) for p in trajectories.find(paths)]
    return [r for r in records if r.status == "failed"], len(records)


def shared_cache_dir(files: list[Path], fallback: Path) -> Path:
    """``OUT/reports/reference-cache`` of the runs when a command made it, else ``fallback``.

    Run files sit at ``OUT/<challenge>/<model>/<T>K/replica-NN.h5``; a report finds there what
    ``analysis triage`` / ``analysis errors`` already computed, and adds to it. The report
    does not create that folder itself (``analysis report --no-cache`` keeps nothing).
    """
    import os

    roots = {f.parents[3] for f in files if len(f.parents) > 3}
    if len(roots) == 1:
        folder = roots.pop() / "reports" / "reference-cache"
        if folder.is_dir() and os.access(folder, os.W_OK):
            return folder
    return fallback


def failed_note(settings: ReferenceSettings, challenge: str | None = None) -> str:
    """A sentence on frames the reference could not evaluate ('' when there were none)."""
    counts = settings.reference_failed
    n = counts.get(challenge, 0) if challenge else sum(counts.values())
    if not n:
        return ""
    return (f"\nThe reference could not evaluate {n} frame(s) (e.g. its SCF did not converge); "
            "they are left out of these numbers.\n")


#: The report evaluates at most this many new reference frames per challenge ...
REPORT_MAX_CALLS = 500
#: ... and gives up (after one timed call) when they would take longer than this: a report
#: stays quick; ``analysis errors`` / ``analysis triage`` run longer jobs and the report reuses
#: their cache.
REPORT_MAX_SECONDS = 30.0


def report_settings(files: list[Path], workdir: Path) -> ReferenceSettings:
    """The reference budget and cache of the report's triage and errors sections."""
    return ReferenceSettings(max_frames=REPORT_MAX_CALLS, max_seconds=REPORT_MAX_SECONDS,
                             cache_dir=shared_cache_dir(files, workdir / "reference-cache"))
