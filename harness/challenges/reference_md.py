"""Reference MD trajectories at the reference level (GFN2-xTB), shipped with a challenge.

TEA 2023 compared the Challenge I models with a 500 K ab initio trajectory (MD22). This makes
the equivalent at the harness's reference level: the harness itself runs ``--model xtb``
(same integrator, thermostat, starts and seeds as any model), then each trajectory is
compacted for the repository: positions as float32 with shuffle+gzip (0.00001 A resolution
is far below thermal motion), observables kept, velocities and forces dropped (the
Ramachandran analysis needs positions only). The result is still H5MD that the harness's
reader and MDAnalysis open. Files land in ``harness/challenges/<name>/reference/`` as
``xtb-<T>K-replica-NN.h5``.

Run (Challenge I, as shipped; about 20 min of CPU: 2 x 20000 steps at ~25 ms)::

    OMP_NUM_THREADS=1 python -m harness.challenges.reference_md --challenge alanine-tetrapeptide \\
        --temperature 500 --replicas 2 --time 10ps --stride 10

``--from OUT`` compacts an existing output folder of such a launch instead of running one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from harness import challenges, h5md

DROPPED = ("velocity", "force")


def _copy_attrs(src, dst) -> None:
    for key, value in src.attrs.items():
        dst.attrs[key] = value


def compact(src: Path, dst: Path, note: dict) -> None:
    """Copy an H5MD trajectory keeping float32 gzip positions, dropping velocities/forces."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".h5.tmp")
    with h5md.open_file(src, "r") as fin, h5py.File(tmp, "w") as fout:
        for name in ("h5md", "observables", "parameters"):
            fin.copy(fin[name], fout, name=name)
        part_in = fin[h5md.PARTICLES]
        part_out = fout.create_group(h5md.PARTICLES)
        _copy_attrs(part_in, part_out)
        for name, item in part_in.items():
            if name in DROPPED:
                continue
            if name != "position":
                part_in.copy(item, part_out, name=name)
                continue
            group = part_out.create_group("position")
            _copy_attrs(item, group)
            for series in ("step", "time"):
                part_in.copy(item[series], group, name=series)
            value = item["value"][:].astype(np.float32)
            ds = group.create_dataset("value", data=value, dtype=np.float32,
                                      chunks=(min(len(value), 512), *value.shape[1:]),
                                      compression="gzip", compression_opts=9, shuffle=True)
            _copy_attrs(item["value"], ds)
        params = fout[h5md.PARAMS]
        params.attrs["compaction"] = json.dumps(note, sort_keys=True)
    tmp.replace(dst)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--challenge", default="alanine-tetrapeptide")
    p.add_argument("--temperature", type=float, default=500.0, help="K")
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--time", default="10ps")
    p.add_argument("--stride", type=int, default=10)
    p.add_argument("--seed", type=int, default=2023)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--from", dest="source", type=Path,
                   help="compact the runs in this launch output folder instead of running")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run (or take) the xTB runs and write the compacted reference files."""
    args = parse_args(argv)
    challenge = challenges.load(args.challenge)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="tea-reference-") as scratch:
        out = args.source or Path(scratch)
        if args.source is None:
            cmd = [sys.executable, "-m", "harness.launch", "--model", "xtb", "--challenge",
                   str(challenge.path), "--temperatures", f"{args.temperature:g}", "--replicas",
                   str(args.replicas), "--time", args.time, "--stride", str(args.stride),
                   "--seed", str(args.seed), "--jobs", str(args.jobs), "--quiet",
                   "--out", str(out)]
            env = dict(os.environ, OMP_NUM_THREADS="1")
            subprocess.run(cmd, check=True, env=env, timeout=6 * 3600)
        runs = sorted((out / challenge.name / "xtb" / f"{args.temperature:g}K").glob(
            "replica-*.h5"))
        if not runs:
            print(f"no xtb runs at {args.temperature:g} K under {out}", file=sys.stderr)
            return 2
        for run in runs:
            meta = h5md.read_meta(run)
            prov = meta["provenance"]
            note = {"made_by": "python -m harness.challenges.reference_md", "source": run.name,
                    "kept": "positions float32 (shuffle+gzip 9), observables, parameters",
                    "dropped": list(DROPPED), "status": meta["status"],
                    "frames": meta["n_frames"], "simulated_ps": float(meta["times_ps"][-1]),
                    "start_time": prov.get("start_time"), "end_time": prov.get("end_time")}
            dst = challenge.path / "reference" / f"xtb-{args.temperature:g}K-{run.name}"
            compact(run, dst, note)
            print(f"{dst}: {meta['n_frames']} frames, {meta['times_ps'][-1]:.3f} ps, "
                  f"status {meta['status']}, {dst.stat().st_size / 1e6:.2f} MB")
    print(f"done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
