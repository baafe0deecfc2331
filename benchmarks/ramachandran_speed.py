"""Speed and memory of ``analysis ramachandran`` on TEA-sized data (issue 4).

Synthesises 12 trajectories x 1 ns with a frame every 5 fs (12 x 200 001 frames of the
42-atom Challenge I peptide, 2.4 million frames, ~2.4 GB of float64 positions in the
harness's own H5MD layout) and times the analysis (dihedrals read in chunks, periodic
DBSCAN, transitions, merging) in a fresh process, reporting wall time and peak resident
memory. The frames are the shipped 500 K xTB reference frames, cycled with 0.03 A Gaussian
noise, so the angle distribution is a real one.

Then, on one pair of the same data, it measures how much clustering a random subsample
(``--max-points``, default 10 000) and assigning the other frames to the nearest core point
changes the cluster populations, against DBSCAN on a 4x larger subsample.

Run::

    OMP_NUM_THREADS=1 python benchmarks/ramachandran_speed.py [--frames 200001] [--files 12]

The synthetic files are kept in ``--cache`` (default /tmp/tea-rama-bench) for reruns.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from analysis import ramachandran as rama
from harness import challenges, h5md

BLOCK = 20_000


def synthesise(folder: Path, n_files: int, n_frames: int, dt_ps: float = 0.005) -> list[Path]:
    """Write n_files H5MD trajectories of n_frames frames each (skipped if present)."""
    ala = challenges.load("alanine-tetrapeptide")
    ref = rama.reference_files(ala)
    source = np.concatenate([h5md.read_frames(p)["positions"] for p in ref])
    meta = h5md.read_meta(ref[0])
    numbers = meta["species"]
    start_pos, start_cell = h5md.read_start(ref[0])
    paths = []
    rng = np.random.default_rng(0)
    for i in range(n_files):
        path = folder / "alanine-tetrapeptide" / "synthetic" / "300K" / f"replica-{i:02d}.h5"
        paths.append(path)
        if path.is_file() and h5md.read_meta(path)["n_frames"] == n_frames:
            continue
        spec = dict(meta["run_spec"], model="synthetic", model_label="synthetic",
                    temperature_K=300.0, replica=i, n_steps=(n_frames - 1) * 10, stride=10,
                    out_file=str(path))
        h5md.create(path, numbers, np.ones(len(numbers)), False, json.dumps(spec),
                    {"note": "synthetic benchmark data"}, start_pos, start_cell)
        with h5md.open_file(path, "a") as f:
            group = f[f"{h5md.PARTICLES}/position"]
            for name in ("step", "time", "value"):
                group[name].resize(n_frames, axis=0)
            for start in range(0, n_frames, BLOCK):
                stop = min(n_frames, start + BLOCK)
                idx = (np.arange(start, stop) + 997 * i) % len(source)
                group["value"][start:stop] = source[idx] + rng.normal(0, 0.03,
                                                                      (stop - start, 42, 3))
                group["step"][start:stop] = np.arange(start, stop) * 10
                group["time"][start:stop] = np.arange(start, stop) * dt_ps
        h5md.set_status(path, "completed")
    return paths


_CHILD = """
import json, resource, sys, time
from pathlib import Path
from analysis.ramachandran_study import run_study
t0 = time.perf_counter()
studies = run_study([Path(sys.argv[1])], {"max_points": int(sys.argv[2])}, reference=[])
wall = time.perf_counter() - t0
group = studies[0].groups[0]
print(json.dumps({"wall_s": wall, "peak_rss_MB": resource.getrusage(resource.RUSAGE_SELF)
                  .ru_maxrss / 1024, "frames": int(group.pairs["A"].n_frames),
                  "pairs": {k: [round(c["population_percent"], 2) for c in p.clusters]
                            for k, p in group.pairs.items()},
                  "assigned": {k: round(p.assigned_percent, 2) for k, p in group.pairs.items()}}))
"""


def run_child(folder: Path, max_points: int) -> dict:
    """The analysis of ``folder`` in a fresh python process (clean peak-memory number)."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(folder), str(max_points)],
                          capture_output=True, text=True, check=True, timeout=3600)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Synthesise, time the analysis, measure the subsampling effect."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--files", type=int, default=12)
    p.add_argument("--frames", type=int, default=200_001)
    p.add_argument("--cache", type=Path, default=Path("/tmp/tea-rama-bench"))
    p.add_argument("--max-points", type=int, default=10_000)
    args = p.parse_args()
    t0 = time.perf_counter()
    paths = synthesise(args.cache, args.files, args.frames)
    size = sum(q.stat().st_size for q in paths) / 1e9
    print(f"data: {len(paths)} files x {args.frames} frames, {size:.2f} GB "
          f"(synthesised/checked in {time.perf_counter() - t0:.0f} s)")
    for max_points in (args.max_points, 4 * args.max_points):
        res = run_child(args.cache, max_points)
        print(f"max_points {max_points}: {res['frames']} frames per pair analysed in "
              f"{res['wall_s']:.1f} s, peak RSS {res['peak_rss_MB']:.0f} MB; populations "
              f"{res['pairs']}; assigned {res['assigned']}")


if __name__ == "__main__":
    main()
