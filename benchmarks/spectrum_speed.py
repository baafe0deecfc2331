"""Speed of ``analysis spectrum``: 12 trajectories x 1 ns, 96 atoms, a frame every 5 fs.

Two measurements:

1. compute only: synthetic velocities (a damped-oscillator signal per degree of freedom, made
   once as a 20k-frame pool and streamed 10 times per trajectory with a different phase, so
   making the data costs nothing) through the same accumulator, transform and peak finder
   the command uses. The target is 12 x 1 ns in under 30 s.
2. end to end: ``--files`` H5MD trajectories of 1 ns written with harness.h5md (each 460 MB),
   read block by block from disk through :func:`analysis.spectrum.from_files`.

Wall time depends on the machine's load (printed); the CPU time of this process is printed
too.

Run::

    OMP_NUM_THREADS=1 python benchmarks/spectrum_speed.py [--files 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from analysis.observables.spectrum import compute as spectrum

FRAME_PS = 0.005
N_FRAMES = 200_000  # 1 ns
N_ATOMS = 96
N_TRAJ = 12
POOL = 20_000


def pool(seed: int = 0) -> np.ndarray:
    """20k frames of velocities: each component a sum of two noisy oscillations (A/ps)."""
    rng = np.random.default_rng(seed)
    t = np.arange(POOL)[:, None] * FRAME_PS
    freq_thz = rng.uniform(1, 90, size=(2, N_ATOMS * 3))  # 33-3000 cm^-1
    sig = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6.3, f.shape)) for f in freq_thz)
    sig += 0.3 * rng.normal(size=sig.shape)
    return sig.reshape(POOL, N_ATOMS, 3)


def stream(data: np.ndarray, shift: int, block: int = 4096):
    """N_FRAMES frames as blocks, cycling through the pool from a shifted start."""
    for start in range(0, N_FRAMES, block):
        idx = (np.arange(start, min(start + block, N_FRAMES)) + shift) % POOL
        yield data[idx]


def compute_only(max_lag_ps: float) -> dict:
    data = pool()
    masses = np.linspace(1, 207, N_ATOMS)
    t0, c0 = time.perf_counter(), time.process_time()
    acc = spectrum.VACFAccumulator(int(round(max_lag_ps / FRAME_PS)))
    for k in range(N_TRAJ):
        acc.add_blocks(stream(data, 1234 * k), masses, FRAME_PS)
    _, corr = acc.vacf()
    wn, inten = spectrum.power_spectrum(corr, FRAME_PS)
    found = spectrum.peaks(wn, inten)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"trajectories": N_TRAJ, "frames_each": N_FRAMES, "atoms": N_ATOMS,
            "max_lag_ps": max_lag_ps, "seconds": round(seconds, 2),
            "cpu_seconds": round(cpu, 2), "n_peaks": len(found)}


def end_to_end(n_files: int, max_lag_ps: float, folder: Path) -> dict:
    from harness import h5md
    from harness.plan import RunSpec

    data = pool(1)
    masses = np.linspace(1, 207, N_ATOMS)
    paths = []
    t_write = time.perf_counter()
    for k in range(n_files):
        path = folder / "spec" / "bench" / "300K" / f"replica-{k:02d}.h5"
        spec = RunSpec("bench", "bench", "bench", None, 300.0, k, "", 1, 0.5, 2 * N_FRAMES, 10,
                       "langevin", 1000.0, True, str(path))
        h5md.create(path, np.full(N_ATOMS, 1), masses, True, spec.to_json(), {},
                    np.zeros((N_ATOMS, 3)), np.eye(3) * 20)
        for start in range(0, N_FRAMES, 5000):
            vel = data[(np.arange(start, start + 5000) + 999 * k) % POOL]
            h5md.append(path, [{"step": 10 * (start + i), "time": (start + i) * FRAME_PS,
                                "positions": v, "velocities": v, "forces": v, "potential": 0.0,
                                "kinetic": 0.0, "conserved": 0.0, "temperature": 300.0,
                                "box": np.eye(3) * 20} for i, v in enumerate(vel)])
        paths.append(path)
    write_s = time.perf_counter() - t_write
    t0, c0 = time.perf_counter(), time.process_time()
    result = spectrum.from_files(paths, max_lag_ps)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"files": n_files, "bytes_each": paths[0].stat().st_size,
            "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2),
            "seconds_per_ns_trajectory": round(seconds / n_files, 2),
            "extrapolated_12_s": round(12 * seconds / n_files, 1),
            "write_seconds": round(write_s, 1), "n_peaks": len(result.peaks_cm)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-lag", type=float, default=1.0, help="ps (default 1)")
    parser.add_argument("--files", type=int, default=0, help="also time N real H5MD files")
    parser.add_argument("--keep", type=Path, help="folder for the H5MD files (kept)")
    args = parser.parse_args()
    out = {"load_average": os.getloadavg()[0], "compute_only": compute_only(args.max_lag)}
    print(json.dumps(out["compute_only"]))
    if args.files:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            out["end_to_end"] = end_to_end(args.files, args.max_lag, args.keep)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                out["end_to_end"] = end_to_end(args.files, args.max_lag, Path(tmp))
        print(json.dumps(out["end_to_end"]))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
