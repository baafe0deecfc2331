"""Diverse starting structures for a new challenge: sample, describe, pick the farthest.

What
----
The crash test runs every model from the same starting structures, spread over the system's
configuration space so that models are probed in more than one basin. For a user's own system
(:mod:`harness.challenges.new`) the candidates come either from a multi-frame file the user
gives or from a short high-temperature MD with a chosen model, run here with ASE's Langevin
integrator and stopped at the first frame that the watchdog's bond-break, atom-collapse or
non-finite criteria reject (a broken structure must never become a start).

How the starts are picked
-------------------------
Farthest-point sampling: the first start is the user's own structure (or the first frame of
the file), each next one the candidate farthest (Euclidean, in descriptor space) from all
starts picked so far. Descriptors:

* ``dihedrals``: every backbone phi/psi of :mod:`harness.challenges.backbone`, as (cos, sin)
  pairs, so distances respect the periodicity of angles; used when a peptide chain is found;
* ``distances``: all interatomic distances (minimum image when periodic); used otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.challenges import backbone
from harness.errors import UserError


@dataclass(frozen=True)
class Sampling:
    """What a sampling MD did.

    Attributes
    ----------
    frames
        Candidate structures (copies, no calculator), the equilibration part left out.
    time_ps
        Simulated time actually run.
    steps
        MD steps taken.
    wall_s
        Wall-clock seconds of the MD.
    stopped
        Why the MD stopped early (a watchdog event message), or None.
    """

    frames: list
    time_ps: float
    steps: int
    wall_s: float
    stopped: str | None


def sample_md(atoms, calculator, temperature_K: float, dt_fs: float, time_ps: float,
              every_steps: int, seed: int, watchdog) -> Sampling:
    """Run a Langevin MD and keep a frame every ``every_steps`` after the first 20 %.

    Parameters
    ----------
    atoms
        The starting structure (not modified).
    calculator
        The ASE calculator of the sampling model.
    temperature_K, dt_fs, time_ps
        Thermostat temperature, time step and length.
    every_steps
        Candidate stride in steps.
    seed
        Seed of the velocities and of the Langevin noise.
    watchdog
        :class:`harness.stability.watchdog.WatchdogSettings`: the MD stops at the first frame
        its frame criteria reject; frames from then on are not kept.
    """
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation

    from harness.stability import criteria
    from harness.stability import watchdog as wd

    system = atoms.copy()
    system.calc = calculator
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(system, temperature_K=temperature_K, rng=rng)
    Stationary(system)
    if not system.pbc.any():
        ZeroRotation(system)
    cell = system.cell.array if system.pbc.any() else None
    checks = wd.build_frame_criteria(watchdog, system.numbers, system.positions, cell)
    dyn = Langevin(system, timestep=dt_fs * units.fs, temperature_K=temperature_K,
                   friction=0.01 / units.fs, fixcm=False, rng=rng)
    n_steps = max(every_steps, int(round(time_ps * 1000.0 / dt_fs)))
    first_kept = int(0.2 * n_steps)
    frames, stopped, step = [], None, 0
    start = time.perf_counter()
    while step < n_steps:
        dyn.run(every_steps)
        step += every_steps
        frame = criteria.Frame(step, step * dt_fs * 1e-3, system.positions.copy(),
                               forces=system.get_forces())
        event = wd.first_event(checks, frame)
        if event is not None:
            stopped = event.message
            break
        if step >= first_kept:
            kept = system.copy()
            kept.calc = None
            kept.info = {"sampled_time_ps": round(step * dt_fs * 1e-3, 6)}
            frames.append(kept)
    return Sampling(frames, step * dt_fs * 1e-3, step, time.perf_counter() - start, stopped)


def read_frames(path: Path, reference) -> list:
    """Every frame of a multi-frame file, checked against the reference structure.

    Raises
    ------
    UserError
        When the file cannot be read or a frame has other atoms (or another order).
    """
    from ase.io import read

    try:
        frames = read(str(path), index=":")
    except Exception as exc:  # noqa: BLE001 - ASE raises many kinds for unreadable files
        raise UserError(f"--starts {path}: ASE cannot read it ({type(exc).__name__}: {exc}); "
                        "give a multi-frame file ASE reads, e.g. extended XYZ") from None
    for k, frame in enumerate(frames):
        if list(frame.numbers) != list(reference.numbers):
            raise UserError(f"--starts {path}: frame {k} has other atoms or another order "
                            f"({frame.get_chemical_formula()}) than the --from structure "
                            f"({reference.get_chemical_formula()}); give frames of the same "
                            "system in the same atom order")
        frame.calc = None
        if reference.pbc.any():
            frame.cell, frame.pbc = (frame.cell if frame.cell.rank == 3 else reference.cell,
                                     True)
    return frames


def descriptors(frames: list, kind: str, quads: dict[str, list[int]]) -> np.ndarray:
    """One descriptor row per frame (see the module docstring)."""
    if kind == "dihedrals":
        q = np.array(list(quads.values()), dtype=np.intp)
        angles = backbone.dihedral_angles(np.array([f.positions for f in frames]), q)
        return np.concatenate([np.cos(angles), np.sin(angles)], axis=1)
    from ase.geometry import get_distances

    rows = []
    for frame in frames:
        pbc = frame.pbc if frame.pbc.any() else None
        _, dist = get_distances(frame.positions, cell=frame.cell if pbc is not None else None,
                                pbc=pbc)
        rows.append(dist[np.triu_indices(len(frame), k=1)])
    return np.array(rows)


def farthest_points(features: np.ndarray, n: int, first: int = 0) -> list[int]:
    """Indices of ``n`` rows by farthest-point sampling, starting from row ``first``."""
    n = min(n, len(features))
    picked = [first]
    nearest = np.linalg.norm(features - features[first], axis=1)
    while len(picked) < n:
        k = int(np.argmax(nearest))
        picked.append(k)
        nearest = np.minimum(nearest, np.linalg.norm(features - features[k], axis=1))
    return picked


def write_starts(frames: list, folder: Path, charge: int, multiplicity: int) -> list[Path]:
    """``start-NN.xyz`` (extended XYZ) with the total charge and spin on the first atom.

    Calculators that read ``Atoms.get_initial_charges()`` and
    ``get_initial_magnetic_moments()`` (tblite's GFN2-xTB) take their sums as the total charge
    and the number of unpaired electrons, as for the shipped charged peptide.
    """
    from ase.io import write

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, frame in enumerate(frames):
        atoms = frame.copy()
        atoms.calc = None
        atoms.arrays.pop("momenta", None)  # the launcher draws velocities from the seed
        set_charge_and_spin(atoms, charge, multiplicity)
        path = folder / f"start-{k:02d}.xyz"
        write(str(path), atoms, format="extxyz")
        paths.append(path)
    return paths


def set_charge_and_spin(atoms, charge: int, multiplicity: int) -> None:
    """Store the total charge and multiplicity on an Atoms (on its first atom), in place."""
    charges = np.zeros(len(atoms))
    charges[0] = charge
    moments = np.zeros(len(atoms))
    moments[0] = multiplicity - 1
    for name, values, setter in (("initial_charges", charges, atoms.set_initial_charges),
                                 ("initial_magmoms", moments, atoms.set_initial_magnetic_moments)):
        if values.any():
            setter(values)
        elif name in atoms.arrays:
            del atoms.arrays[name]
