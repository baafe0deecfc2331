"""Time ``analysis stability`` on TEA-scale output: 3 models x 3 temperatures x 12 replicas.

Each synthesised trajectory is a real harness H5MD file of 1 ns at 0.5 fs with a frame every
20 steps (100,001 frames, step and time arrays written); the per-atom datasets are sized to
100,001 frames but left unwritten (HDF5 allocates chunks lazily), since the report reads
only what the files say about themselves. A third of the runs fail, with bond-break events.
Usage: ``python benchmarks/stability_report.py [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from ase.io import read

from harness import challenges, h5md
from harness.plan import RunSpec, derive_seed, output_path

N_STEPS, STRIDE, DT_FS = 2_000_000, 20, 0.5


def synthesise(out: Path) -> int:
    """Write the 108 trajectories; returns how many failed."""
    chal = challenges.load("alanine-tetrapeptide")
    atoms = read(chal.starts[0])
    rng = np.random.default_rng(0)
    failed = 0
    for model in ("model-a", "model-b", "model-c"):
        for temp in (300.0, 500.0, 700.0):
            for replica in range(12):
                path = output_path(out, chal.name, model, temp, replica)
                spec = RunSpec(chal.name, model, model, None, temp, replica,
                               str(chal.starts[replica]), derive_seed(1, chal.name, temp,
                                                                      replica),
                               DT_FS, N_STEPS, STRIDE, "langevin", 100.0, False, str(path))
                h5md.create(path, atoms.numbers, atoms.get_masses(), False, spec.to_json(),
                            {"seed": spec.seed}, atoms.positions, np.asarray(atoms.cell))
                fails = rng.random() < temp / 2100
                last = int(rng.integers(100, N_STEPS // STRIDE)) if fails else N_STEPS // STRIDE
                steps = np.arange(last + 1, dtype=np.int64) * STRIDE
                with h5py.File(path, "a") as f:
                    for group, _, _ in h5md._series(f):
                        for name in ("step", "time", "value"):
                            group[name].resize(len(steps), axis=0)
                        group["step"][:] = steps
                        group["time"][:] = steps * DT_FS * 1e-3
                failure = None
                if fails:
                    failed += 1
                    failure = {"kind": "bond_break", "step": int(steps[-1]),
                               "time_ps": float(steps[-1] * DT_FS * 1e-3),
                               "atoms": [3, 4], "elements": ["N", "C"],
                               "distance_angstrom": 2.1, "message": "synthetic"}
                h5md.set_status(path, "failed" if fails else "completed", failure)
    return failed


def main() -> None:
    """Synthesise, then time the report (median of 3)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", help="write the files here and keep them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep or tmp)
        start = time.perf_counter()
        failed = synthesise(out)
        size = sum(p.stat().st_size for p in out.rglob("*.h5"))
        print(f"synthesised 108 runs ({failed} failed) in {time.perf_counter() - start:.1f} s, "
              f"{size / 1e6:.0f} MB on disk")
        times = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "analysis.cli", "stability", str(out),
                            "--report-dir", str(out / "reports")], check=True,
                           capture_output=True)
            times.append(time.perf_counter() - start)
        summary = json.loads((out / "reports" / "stability.json").read_text())
        assert sum(g["failed"] for g in summary["groups"]) == failed
        print(f"analysis stability: {sorted(times)[1]:.2f} s (median of 3; "
              f"{', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
