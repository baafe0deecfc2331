"""MAPbI3 trajectories of the isotropic harmonic well, written exactly, without MD.

In the well E = k/2 sum_i |r_i - r0_i|^2 (``tests/perovskite_models.py``) every atom moves on its
own: r_i(t) = r0_i + A_i cos(w_i t + p_i), w_i = sqrt(k / m_i). This module writes such runs as
real harness H5MD files (same layout and metadata as a launch), with random phases and thermal
amplitudes per replica, so that the MAPbI3 observables can be tested on known dynamics: two
wells of different k give spectra whose peaks sit sqrt(2) apart.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from ase import units
from ase.io import read

from harness import challenges, h5md
from harness.plan import RunSpec, derive_seed, output_path

DT_FS, STRIDE = 0.5, 10
#: ps per internal time unit of (eV, A, amu).
PS_PER_TIME_UNIT = np.sqrt(units._amu * 1e-20 / units._e) * 1e12


def synthesise(out: Path, wells: dict[str, float], challenge: str = "mapbi3",
               temperatures: tuple[float, ...] = (300.0,), replicas: int = 2,
               n_frames: int = 400, seed: int = 1) -> list[Path]:
    """One run per (model, T, replica); ``wells`` maps a model label to k in eV/A^2."""
    chal = challenges.load(challenge)
    paths = []
    for model, k in wells.items():
        for temp in temperatures:
            for replica in range(replicas):
                path = output_path(out, chal.name, model, temp, replica)
                run_seed = derive_seed(seed, chal.name, temp, replica) + sum(map(ord, model))
                write_run(path, chal, model, k, temp, replica, n_frames, run_seed)
                paths.append(path)
    return paths


def write_run(path: Path, chal: challenges.Challenge, model: str, k: float, temp: float,
              replica: int, n_frames: int, seed: int) -> None:
    """Write one completed run of the well with spring constant ``k`` (eV/A^2)."""
    start = read(chal.start_for_replica(replica))
    n_steps = (n_frames - 1) * STRIDE
    spec = RunSpec(chal.name, "harmonic", model, None, temp, replica,
                   str(chal.start_for_replica(replica)), seed, DT_FS, n_steps, STRIDE,
                   "langevin", 1000.0, True, str(path),
                   watchdog={"criteria": ["bond_break", "non_finite"]})
    provenance = {"seed": seed, "model": "harmonic", "host": "synthetic",
                  "command_line": "tests/perovskite_data.py",
                  "versions": {"tea-harness": "test"}, "start_time": "2026-01-01T00:00:00+0000"}
    h5md.create(path, start.numbers, start.get_masses(), True, spec.to_json(), provenance,
                start.positions, np.asarray(start.cell))
    rng = np.random.default_rng(seed)
    masses = start.get_masses()[:, None]
    omega = np.sqrt(k / masses) / PS_PER_TIME_UNIT  # rad/ps
    shape = start.positions.shape
    amplitude = np.sqrt(2 * units.kB * temp / k) * np.abs(rng.standard_normal(shape))
    phase = rng.uniform(0, 2 * np.pi, start.positions.shape)
    times = np.arange(n_frames) * STRIDE * DT_FS * 1e-3
    steps = np.arange(n_frames, dtype=np.int64) * STRIDE
    with h5py.File(path, "a") as f:
        series = h5md._series(f)
        for group, _, _ in series:
            for name in ("step", "time", "value"):
                group[name].resize(n_frames, axis=0)
            group["step"][:] = steps
            group["time"][:] = times
        for first in range(0, n_frames, 2000):
            t = times[first:first + 2000, None, None]
            angle = omega * t + phase
            block = {"positions": start.positions + amplitude * np.cos(angle),
                     "velocities": -amplitude * omega * np.sin(angle)}
            block["forces"] = -k * (block["positions"] - start.positions)
            n = len(t)
            block.update(wall_clock=np.full(n, np.nan), model_time=np.full(n, np.nan))
            block.update(potential=np.zeros(n), kinetic=np.zeros(n), conserved=np.zeros(n),
                         temperature=np.full(n, temp), box=np.repeat(
                             np.asarray(start.cell)[None], n, axis=0))
            for group, key, factor in series:
                group["value"][first:first + n] = block[key] * factor
    h5md.set_status(path, "completed", None, {"end_time": "2026-01-01T00:01:00+0000"})
