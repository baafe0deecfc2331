"""Failure frames labelled with the reference, as extxyz for a training set (TEA guideline 5).

Every frame of the watchdog's every-step record before a failure, with both methods' numbers
under explicit keys (no ``energy``/``forces`` key, so no tool mistakes one for the other):

* ``info["reference_energy"]`` (eV), ``arrays["reference_forces"]`` (eV/A): the reference;
* ``info["model_energy"]`` (eV), ``arrays["model_forces"]`` (eV/A): the model that ran;
* ``info``: ``reference_model``, ``challenge``, ``model``, ``temperature_K``, ``replica``,
  ``step``, ``time_ps``, ``event_kind``, ``event_step``, ``bond``, ``classification``.

For MACE, for example: ``--energy_key reference_energy --forces_key reference_forces``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ase import Atoms
from ase.io import write

from analysis.triage.study import LabelledRun

ENERGY_KEYS = {"model": "model_energy", "reference": "reference_energy"}
FORCE_KEYS = {"model": "model_forces", "reference": "reference_forces"}


def labelled_frames(run: LabelledRun, entry: dict[str, Any] | None = None) -> list[Atoms]:
    """The pre-failure frames of one run with model and reference energies and forces."""
    failure = run.record.failure or {}
    out = []
    for k, source in enumerate(run.frames.source):
        if source != "pre_failure":
            continue
        atoms = Atoms(numbers=run.base.numbers, positions=run.frames.positions[k],
                      cell=run.base.cell, pbc=run.base.pbc)
        if run.base.has("initial_charges"):
            atoms.set_initial_charges(run.base.get_initial_charges())
        atoms.info.update(
            model_energy=float(run.frames.model_energy[k]),
            reference_energy=float(run.ref_energy[k]), reference_model=run.method.label,
            challenge=run.record.challenge, model=run.record.model,
            temperature_K=run.record.temperature_K, replica=run.record.replica,
            step=int(run.frames.step[k]), time_ps=float(run.frames.time_ps[k]),
            event_kind=failure.get("kind", ""), event_step=int(failure.get("step", -1)),
            bond=(entry or {}).get("bond", ""),
            classification=(entry or {}).get("classification", ""))
        atoms.arrays["model_forces"] = run.frames.model_forces[k].copy()
        atoms.arrays["reference_forces"] = run.ref_forces[k].copy()
        out.append(atoms)
    return out


def write_labelled(target: Path, runs: list[LabelledRun],
                   entries: list[dict[str, Any]] | None = None) -> int:
    """Write the labelled failure frames of all runs to one extxyz; returns the frame count."""
    by_file = {e["file"]: e for e in entries or []}
    frames: list[Atoms] = []
    for run in runs:
        frames += labelled_frames(run, by_file.get(str(run.record.path)))
    target.parent.mkdir(parents=True, exist_ok=True)
    write(target, frames, format="extxyz")
    return len(frames)
