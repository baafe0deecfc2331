"""Failure frames as extxyz, ready to be labelled and added to a training set.

TEA 2023's guideline 5 (active learning): the configurations where a model fails are the
ones its training set lacks. Each failed run leaves ``replica-NN.failure.extxyz`` with the
last MD steps before the event, with the model's own energies and forces (relabel them with
the reference method before training).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from harness import h5md


def failure_frames(h5_path: Path, ring: dict[str, np.ndarray],
                   failure: dict[str, Any] | None) -> list[Atoms]:
    """ASE Atoms of the last steps before a failure, with provenance in ``info``."""
    meta = h5md.read_meta(h5_path)
    spec = meta["run_spec"]
    _, start_cell = h5md.read_start(h5_path)
    frames = []
    for k, step in enumerate(ring["step"]):
        atoms = Atoms(numbers=meta["species"], positions=ring["positions"][k],
                      cell=start_cell if spec["periodic"] else None, pbc=spec["periodic"])
        atoms.calc = SinglePointCalculator(atoms, energy=float(ring["energy"][k]),
                                           forces=ring["forces"][k])
        atoms.info.update(step=int(step), time_ps=float(ring["time"][k]),
                          challenge=spec["challenge"], model=spec["model_label"],
                          temperature_K=spec["temperature_K"], replica=spec["replica"],
                          event_kind=(failure or {}).get("kind", ""),
                          event_step=(failure or {}).get("step", -1),
                          labels="model (relabel with the reference before training)")
        frames.append(atoms)
    return frames


def write_extxyz(target: Path, h5_path: Path, ring: dict[str, np.ndarray],
                 failure: dict[str, Any] | None) -> Path:
    """Write the failure frames of one run; returns the file written."""
    write(target, failure_frames(h5_path, ring, failure), format="extxyz")
    return target


def collect(paths: list[Path], target: Path) -> int:
    """Concatenate the failure frames of many runs into one extxyz; returns the frame count."""
    frames: list[Atoms] = []
    for path in paths:
        ring = h5md.read_pre_failure(path)
        if ring is not None:
            frames += failure_frames(path, ring, h5md.read_meta(path)["failure"])
    if frames:
        write(target, frames, format="extxyz")
    return len(frames)
