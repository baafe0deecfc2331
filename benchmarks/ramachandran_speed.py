"""Speed and memory of ``analysis ramachandran`` on TEA-sized data (issue 4).

Synthesises 12 trajectories x 1 ns with a frame every 5 fs (12 x 200 001 frames of the
42-atom Challenge I peptide, 2.4 million frames, ~2.4 GB of float64 positions in the
harness's own H5MD layout) and times the analysis (dihedrals read in chunks, periodic
DBSCAN, transitions, merging) in a fresh process, reporting wall time and peak resident
memory. The frames are the shipped 500 K xTB reference frames, cycled with 0.03 A Gaussian
noise, so the angle distribution is a real one.

Then, on one pair of the same data, it measures how much clustering a random subsample
(``--max-points``, default 10 000) and assigning the other frames to the nearest core point
changes the cluster populations, against DBSCAN on a 2x larger subsample (with eps 10 degrees,
where the reference frames form three clusters in pair A, rather than the default 15, where
the smeared synthetic data chain into one).

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

from analysis import reference
from analysis.observables.ramachandran import compute as rama
from harness import challenges, h5md

BLOCK = 20_000


def synthesise(folder: Path, n_files: int, n_frames: int, dt_ps: float = 0.005) -> list[Path]:
    """Write n_files H5MD trajectories of n_frames frames each (skipped if present)."""
    ala = challenges.load("alanine-tetrapeptide")
    ref = reference.load(ala).files
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
from analysis.observables.ramachandran.study import run_study
t0 = time.perf_counter()
studies = run_study([Path(sys.argv[1])], {"max_points": int(sys.argv[2]),
                   "eps_deg": float(sys.argv[3])}, reference=[])
wall = time.perf_counter() - t0
usage = resource.getrusage(resource.RUSAGE_SELF)
group = studies[0].groups[0]
print(json.dumps({"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
                  "peak_rss_MB": usage.ru_maxrss / 1024, "frames": int(group.pairs["A"].n_frames),
                  "pairs": {k: [round(c["population_percent"], 2) for c in p.clusters]
                            for k, p in group.pairs.items()},
                  "assigned": {k: round(p.assigned_percent, 2) for k, p in group.pairs.items()}}))
"""


def run_child(folder: Path, max_points: int, eps_deg: float) -> dict:
    """The analysis of ``folder`` in a fresh python process (clean peak-memory number)."""
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(folder), str(max_points),
                           str(eps_deg)],
                          capture_output=True, text=True, check=True, timeout=3600)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def subsample_effect_on_reference(eps_deg: float, fraction: float = 0.25) -> None:
    """Populations on the shipped reference: DBSCAN on all frames vs on a subsample + assignment.

    The synthetic data (smeared by the noise) form one cluster per pair, which says nothing
    about subsampling; the reference frames form several.
    """
    from analysis.observables.ramachandran import torus

    ala = challenges.load("alanine-tetrapeptide")
    files = rama.reference_files(ala)
    pairs = rama.challenge_pairs(ala)
    data = rama.read_group(files, pairs, 1)
    for k, pair in enumerate(pairs):
        pts = data.angles[:, 2 * k:2 * k + 2].astype(float)
        full = torus.cluster(pts, eps_deg, None, 0.005, max_points=len(pts))
        sub = torus.cluster(pts, eps_deg, None, 0.005, max_points=int(fraction * len(pts)))

        def pops(labels):
            counts = np.bincount(labels[labels >= 0])
            return sorted((100 * counts / counts.sum()).round(2).tolist(), reverse=True)

        print(f"reference pair {pair.name}, {len(pts)} frames, eps {eps_deg:g}: all frames "
              f"{pops(full.labels)} (assigned {100 * (full.labels >= 0).mean():.2f} %); "
              f"{int(fraction * len(pts))}-frame subsample + assignment {pops(sub.labels)} "
              f"(assigned {100 * (sub.labels >= 0).mean():.2f} %)")


def main() -> None:
    """Synthesise, time the analysis, measure the subsampling effect."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--files", type=int, default=12)
    p.add_argument("--frames", type=int, default=200_001)
    p.add_argument("--cache", type=Path, default=Path("/tmp/tea-rama-bench"))
    p.add_argument("--max-points", type=int, default=10_000)
    p.add_argument("--eps", type=float, default=10.0,
                   help="DBSCAN radius (10: the reference frames give three clusters in A)")
    args = p.parse_args()
    t0 = time.perf_counter()
    paths = synthesise(args.cache, args.files, args.frames)
    size = sum(q.stat().st_size for q in paths) / 1e9
    print(f"data: {len(paths)} files x {args.frames} frames, {size:.2f} GB "
          f"(synthesised/checked in {time.perf_counter() - t0:.0f} s)")
    for max_points in (args.max_points, 2 * args.max_points):
        res = run_child(args.cache, max_points, args.eps)
        print(f"max_points {max_points}: {res['frames']} frames per pair analysed in "
              f"{res['wall_s']:.1f} s wall ({res['cpu_s']:.1f} s CPU, imports included), "
              f"peak RSS {res['peak_rss_MB']:.0f} MB; populations "
              f"{res['pairs']}; assigned {res['assigned']}")
    subsample_effect_on_reference(args.eps)


if __name__ == "__main__":
    main()
