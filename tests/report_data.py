"""Harness trajectories without MD, for report tests and benchmarks.

Real H5MD files written through :mod:`harness.h5md` (same layout, metadata and status as a
launch), whose frames are the peptide's start structure shaken by Gaussian noise of a chosen
amplitude per model: a model with more noise has a broader radius-of-gyration distribution,
so an observable can tell the models apart. Failed runs stop early with a bond-break event.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from ase.io import read

from harness import challenges, h5md
from harness.plan import RunSpec, derive_seed, output_path

DT_FS, STRIDE = 0.5, 20


def synthesise(out: Path, noise: dict[str, float], temperatures: tuple[float, ...] = (300.0,),
               replicas: int = 2, n_frames: int = 200,
               failing: frozenset[tuple[str, float, int]] = frozenset(),
               protocol: str = "md", protocol_options: dict | None = None) -> list[Path]:
    """Write one trajectory per (model, T, replica); ``failing`` runs stop at half length.
    ``protocol`` and ``protocol_options`` are written into each run spec as a launch would."""
    chal = challenges.load("alanine-tetrapeptide")
    paths = []
    for model, amplitude in noise.items():
        for temp in temperatures:
            for replica in range(replicas):
                start = read(chal.start_for_replica(replica))
                path = output_path(out, chal.name, model, temp, replica)
                n_steps = (n_frames - 1) * STRIDE
                spec = RunSpec(chal.name, "harmonic", model, None, temp, replica,
                               str(chal.start_for_replica(replica)),
                               derive_seed(1, chal.name, temp, replica), DT_FS, n_steps,
                               STRIDE, "langevin", 100.0, False, str(path),
                               watchdog={"criteria": ["bond_break", "non_finite"]},
                               protocol=protocol, protocol_options=dict(protocol_options or {}))
                provenance = {"seed": spec.seed, "model": "harmonic", "host": "synthetic",
                              "command_line": "tests/report_data.py",
                              "versions": {"tea-harness": "test"},
                              "start_time": "2026-01-01T00:00:00+0000"}
                h5md.create(path, start.numbers, start.get_masses(), False, spec.to_json(),
                            provenance, start.positions, np.asarray(start.cell))
                fails = (model, temp, replica) in failing
                kept = n_frames // 2 if fails else n_frames
                _write_frames(path, start.positions, amplitude, kept,
                              seed=spec.seed + sum(map(ord, model)))
                failure = None
                if fails:
                    step = (kept - 1) * STRIDE
                    failure = {"kind": "bond_break", "step": step, "time_ps": step * DT_FS * 1e-3,
                               "atoms": [3, 4], "elements": ["N", "C"],
                               "distance_angstrom": 2.1, "message": "synthetic"}
                h5md.set_status(path, "failed" if fails else "completed", failure,
                                {"end_time": "2026-01-01T00:01:30+0000"})
                paths.append(path)
    return paths


def _write_frames(path: Path, positions: np.ndarray, amplitude: float, n: int,
                  seed: int) -> None:
    rng = np.random.default_rng(seed)
    steps = np.arange(n, dtype=np.int64) * STRIDE
    values = {
        "positions": positions + amplitude * rng.standard_normal((n, *positions.shape)),
        "velocities": 0.01 * rng.standard_normal((n, *positions.shape)),
        "forces": 0.1 * rng.standard_normal((n, *positions.shape)),
        "potential": rng.standard_normal(n), "kinetic": np.full(n, 1.6),
        "conserved": np.linspace(0, 1e-3, n), "temperature": 300 + rng.standard_normal(n),
        "wall_clock": 1.767e9 + 0.01 * np.arange(n),  # 10 ms per frame
        "model_time": 0.004 * np.arange(n),  # 4 of them in the model
    }
    with h5py.File(path, "a") as f:
        for group, key, factor in h5md._series(f):
            for name in ("step", "time", "value"):
                group[name].resize(n, axis=0)
            group["step"][:] = steps
            group["time"][:] = steps * DT_FS * 1e-3
            group["value"][:] = values[key] * factor
