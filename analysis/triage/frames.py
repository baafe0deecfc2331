"""The frames of a run that the reference is evaluated on, with the model's own numbers.

Two sources: the stored frames (``/particles/all``, every stride) and, for a failed run, the
watchdog's record of every MD step up to the event (``/particles/pre_failure``). The model's
energy and forces come from the file (the run computed them), so only the reference is called.
Frames are built on the run's starting structure, so per-atom data of the start file (initial
charges of a charged peptide, read by tblite) reach the reference too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.io import read

from harness import h5md
from harness.units import EV_TO_KJ_PER_MOL


@dataclass
class FrameSet:
    """Frames of one run: positions (A), the model's energy (eV) and forces (eV/A)."""

    path: Path
    step: np.ndarray
    time_ps: np.ndarray
    positions: np.ndarray
    model_energy: np.ndarray
    model_forces: np.ndarray
    #: "stored" or "pre_failure" per frame
    source: list[str]

    def __len__(self) -> int:
        return len(self.step)

    def subset(self, mask: np.ndarray) -> FrameSet:
        """The frames where ``mask`` is true."""
        return FrameSet(self.path, self.step[mask], self.time_ps[mask], self.positions[mask],
                        self.model_energy[mask], self.model_forces[mask],
                        [s for s, keep in zip(self.source, mask, strict=True) if keep])

    def concat(self, other: FrameSet) -> FrameSet:
        """This set followed by ``other`` (same run)."""
        return FrameSet(self.path, np.concatenate([self.step, other.step]),
                        np.concatenate([self.time_ps, other.time_ps]),
                        np.concatenate([self.positions, other.positions]),
                        np.concatenate([self.model_energy, other.model_energy]),
                        np.concatenate([self.model_forces, other.model_forces]),
                        self.source + other.source)


def has_forces(path: Path) -> bool:
    """Whether the trajectory stores the model's forces (compact reference files do not)."""
    with h5md.open_file(path, "r") as f:
        return f"{h5md.PARTICLES}/force/value" in f


def stored_frames(path: Path, indices: list[int]) -> FrameSet:
    """Stored frames at the given indices (sorted, unique), read without the others."""
    idx = sorted(set(int(i) for i in indices))
    part = h5md.PARTICLES
    with h5md.open_file(path, "r") as f:
        if not idx:
            natoms = f[f"{part}/species"].shape[0]
            empty = np.zeros((0, natoms, 3))
            return FrameSet(path, np.zeros(0, int), np.zeros(0), empty, np.zeros(0), empty, [])
        pos = f[f"{part}/position/value"][idx]
        forces = f[f"{part}/force/value"][idx] / EV_TO_KJ_PER_MOL
        energy = f["observables/potential_energy/value"][idx]
        step = f[f"{part}/position/step"][idx]
        time_ps = f[f"{part}/position/time"][idx]
    return FrameSet(path, step, time_ps, pos, energy, forces, ["stored"] * len(idx))


def pre_failure_frames(path: Path) -> FrameSet | None:
    """The watchdog's every-step record before the failure, or None when the file has none."""
    ring = h5md.read_pre_failure(path)
    if ring is None or not len(ring["step"]):
        return None
    return FrameSet(path, ring["step"], ring["time"], ring["positions"], ring["energy"],
                    ring["forces"], ["pre_failure"] * len(ring["step"]))


def even_indices(n_frames: int, count: int, stop: int | None = None) -> list[int]:
    """``count`` frame indices spread evenly over ``[0, stop)`` (first and last included)."""
    stop = n_frames if stop is None else min(stop, n_frames)
    if stop <= 0 or count <= 0:
        return []
    return sorted(set(np.linspace(0, stop - 1, min(count, stop)).round().astype(int).tolist()))


def template(path: Path, meta: dict[str, Any] | None = None) -> Atoms:
    """The run's starting structure (with its per-atom data) to place frames on."""
    meta = meta or h5md.read_meta(path)
    spec = meta["run_spec"]
    start_positions, start_cell = h5md.read_start(path)
    start_file = Path(spec.get("start_file") or "")
    atoms = None
    if start_file.is_file():
        candidate = read(start_file)
        if len(candidate) == meta["n_atoms"] and \
                np.array_equal(candidate.numbers, meta["species"]):
            atoms = candidate
    if atoms is None:
        atoms = Atoms(numbers=meta["species"])
    atoms.calc = None
    periodic = bool(spec.get("periodic", False))
    atoms.positions = start_positions
    atoms.pbc = periodic
    atoms.cell = start_cell if periodic else np.zeros((3, 3))
    for key in list(atoms.info):
        del atoms.info[key]
    return atoms


def as_atoms(frames: FrameSet, base: Atoms) -> list[Atoms]:
    """One Atoms per frame, on the starting structure ``base``."""
    out = []
    for positions in frames.positions:
        atoms = base.copy()
        atoms.positions = positions
        out.append(atoms)
    return out
