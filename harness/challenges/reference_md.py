"""Reference MD trajectories at the reference level (GFN2-xTB), shipped with a challenge.

TEA 2023 compared the Challenge I models with a 500 K ab initio trajectory (MD22). This makes
the equivalent at the harness's reference level: the harness itself runs ``--model xtb``
(same integrator, thermostat, starts and seeds as any model), then each trajectory is
compacted for the repository: positions as float32 rounded to 1e-4 A by HDF5's scale-offset
filter, then shuffle+gzip (far below thermal motion), every N-th frame, observables kept,
velocities and forces dropped (the Ramachandran analysis needs positions only). The result is
still H5MD that the harness's reader and MDAnalysis open. Files land in
``harness/challenges/<name>/reference/`` as ``xtb-<T>K-replica-NN.h5``.

Run (Challenge I as shipped: 12 x 20 ps at 500 K, 480k xTB calls; about 50 ms each on the
2-core development machine, so 6-7 CPU-hours; better run it as a resumable launch and compact
the result, as below)::

    OMP_NUM_THREADS=1 python -m harness.launch --model xtb --challenge alanine-tetrapeptide \\
        --temperatures 500 --replicas 12 --time 20ps --stride 20 --seed 2023 --jobs 12 \\
        --stall-timeout 3600 --out refrun   # rerun the same command to resume
    python -m harness.challenges.reference_md --from refrun --every 2

``--from OUT`` compacts an existing output folder of such a launch instead of running one;
``--until 30ps`` cuts its runs at one length when they stopped at different points (an
extension to a longer time, interrupted).
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

from harness import challenges, h5md, units

DROPPED = ("velocity", "force", "pre_failure")
#: Decimal digits (A) kept in compacted positions (HDF5 scale-offset filter).
POSITION_DECIMALS = 4


def _copy_attrs(src, dst) -> None:
    for key, value in src.attrs.items():
        dst.attrs[key] = value


def _copy_series(src, dst_parent, name: str, every: int, frames: int, position: bool) -> None:
    """Copy one H5MD time series ``{step, time, value}`` keeping every ``every``-th of ``frames``.

    Positions are stored with HDF5's scale-offset filter at 1e-4 A (lossy, far below thermal
    motion: a dihedral moves by < 0.01 degree) then shuffle+gzip; other values keep their dtype.
    """
    group = dst_parent.create_group(name)
    _copy_attrs(src, group)
    for series in ("step", "time"):
        group.create_dataset(series, data=src[series][:frames][::every])
        _copy_attrs(src[series], group[series])
    value = src["value"][:frames][::every]
    if position:
        value = value.astype(np.float32)
        ds = group.create_dataset("value", data=value, dtype=np.float32,
                                  chunks=(min(len(value), 512), *value.shape[1:]),
                                  scaleoffset=POSITION_DECIMALS, shuffle=True,
                                  compression="gzip", compression_opts=9)
    else:
        ds = group.create_dataset("value", data=value, compression="gzip",
                                  compression_opts=9, shuffle=True)
    _copy_attrs(src["value"], ds)


def compact(src: Path, dst: Path, note: dict, every: int = 1,
            reference: dict | None = None, until_ps: float | None = None) -> dict:
    """Write a compact copy of an H5MD trajectory for the repository; return what was kept.

    Positions (float32, 1e-4 A, shuffle+gzip) and observables every ``every``-th frame; velocities
    and forces dropped (the declared observables of a peptide challenge need positions only).
    A run still going or interrupted is cut to the frames all its series hold. ``reference``
    (method, temperature_K, ...) is stored as the ``reference`` attribute that
    :mod:`analysis.reference` reads, with the frame interval of the compacted file.
    ``until_ps`` cuts the run after its frame at that time (all runs of a reference cut at one
    length weigh the same; :func:`frames_until`).
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".h5.tmp")
    with h5md.open_file(src, "r") as fin, h5py.File(tmp, "w") as fout:
        part_in = fin[h5md.PARTICLES]
        frames = int(part_in["position/step"].shape[0])
        for obs in fin["observables"].values():
            frames = min(frames, int(obs["step"].shape[0]))
        if until_ps is not None:
            frames = min(frames, frames_until(part_in["position/time"][:frames], until_ps))
        for name in ("h5md", "parameters"):
            fin.copy(fin[name], fout, name=name)
        params = fout[h5md.PARAMS]
        if h5md.FINAL_CHECKPOINT in params:  # the state to extend the run, not the compact copy
            del params[h5md.FINAL_CHECKPOINT]
        obs_out = fout.create_group("observables")
        _copy_attrs(fin["observables"], obs_out)
        for name, item in fin["observables"].items():
            _copy_series(item, obs_out, name, every, frames, position=False)
        part_out = fout.create_group(h5md.PARTICLES)
        _copy_attrs(part_in, part_out)
        for name, item in part_in.items():
            if name in DROPPED:
                continue
            if isinstance(item, h5py.Group) and "step" in item and "value" in item:
                _copy_series(item, part_out, name, every, frames, position=name == "position")
            else:
                part_in.copy(item, part_out, name=name)
        times = fout[f"{h5md.PARTICLES}/position/time"][:]
        kept = {"frames": int(times.shape[0]),
                "simulated_ps": float(times[-1]) if times.shape[0] else 0.0,
                "frame_interval_fs": float(np.median(np.diff(times)) * 1e3)
                if times.shape[0] > 1 else None}
        params = fout[h5md.PARAMS]
        params.attrs["compaction"] = json.dumps({**note, **kept, "every": every},
                                                sort_keys=True)
        if reference is not None:
            params.attrs["reference"] = json.dumps(
                {**reference, "frame_interval_fs": kept["frame_interval_fs"],
                 "length_ps": kept["simulated_ps"]}, sort_keys=True)
    tmp.replace(dst)
    return kept


def _last_time(path: Path) -> float | None:
    """The time (ps) of a run's last frame, None without frames."""
    with h5md.open_file(path, "r") as f:
        times = f[f"{h5md.PARTICLES}/position/time"]
        return float(times[-1]) if times.shape[0] else None


def frames_until(times: np.ndarray, until_ps: float) -> int:
    """How many frames of a run lie at or before ``until_ps`` (a frame within 1e-6 ps of it
    counts: the stored times of a resumed run may carry a rounding of that size)."""
    return int(np.searchsorted(np.asarray(times, dtype=float), until_ps + 1e-6, side="right"))


#: Run-spec fields that decide the trajectory (others are bookkeeping: file, timeouts, flushes).
TRAJECTORY_FIELDS = ("challenge", "start_file", "model", "model_file", "model_options",
                     "seed", "dt_fs", "stride", "temperature_K", "thermostat",
                     "thermostat_tau_fs", "engine", "periodic")


def _same_run(a: dict, b: dict) -> bool:
    """Whether two run specs describe the same trajectory (model, start, seed, integrator)."""
    return (all(a.get(k) == b.get(k) for k in TRAJECTORY_FIELDS)
            and a.get("ensemble", "nvt") == b.get("ensemble", "nvt"))


def pick_runs(folder: Path) -> list[Path]:
    """One trajectory per replica: ``replica-NN.h5``, or a longer copy of the same run.

    A run that could not be resumed (no checkpoint) is set aside as
    ``replica-NN.<why>.<time>.h5`` and started over with the same start and seed; with a
    deterministic model (xTB) the new run repeats the old one frame for frame (measured:
    1e-15 A at the first step, 3e-12 A after 3000 steps), so until it has caught up the set-
    aside copy holds more of the same trajectory. The longest file whose run spec equals the
    replica's is taken; set-aside copies of another run (other seed, start or model) never are.
    """
    picked = []
    for main_file in sorted(folder.glob("replica-[0-9][0-9].h5")):
        spec = h5md.read_meta(main_file)["run_spec"]
        best, best_n = main_file, h5md.read_meta(main_file)["n_frames"]
        for copy in sorted(folder.glob(f"{main_file.stem}.*.h5")):
            meta = h5md.read_meta(copy)
            if _same_run(meta["run_spec"], spec) and meta["n_frames"] > best_n:
                best, best_n = copy, meta["n_frames"]
        if best != main_file:
            print(f"{main_file.name}: taking the longer copy of the same run {best.name} "
                  f"({best_n} frames)")
        picked.append(best)
    return picked


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--challenge", default="alanine-tetrapeptide")
    p.add_argument("--temperature", type=float, default=500.0, help="K")
    p.add_argument("--replicas", type=int, default=12)
    p.add_argument("--time", default="20ps")
    p.add_argument("--stride", type=int, default=20, help="MD steps per frame of the run")
    p.add_argument("--every", type=int, default=2,
                   help="keep every N-th frame in the shipped files (default 2: 20 fs)")
    p.add_argument("--seed", type=int, default=2023)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--method", default="GFN2-xTB (tblite)",
                   help="reference method recorded in the files")
    p.add_argument("--dest", type=Path,
                   help="write the compacted files here (default: the challenge's reference/ "
                   "folder, which is what ships)")
    p.add_argument("--from", dest="source", type=Path,
                   help="compact the runs in this launch output folder instead of running "
                   "(runs still going or interrupted are shipped up to their last frame)")
    p.add_argument("--until", metavar="TIME",
                   help="cut every run after this time (e.g. 30ps), so that runs still going "
                   "or interrupted at slightly different points weigh the same; a run "
                   "shorter than that is an error")
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
            subprocess.run(cmd, check=True, env=env, timeout=24 * 3600)
        runs = pick_runs(out / challenge.name / "xtb" / f"{args.temperature:g}K")
        if not runs:
            print(f"no xtb runs at {args.temperature:g} K under {out}", file=sys.stderr)
            return 2
        until_ps = None
        if args.until is not None:
            until_ps = units.parse_time_ps(args.until, "--until")
            short = [(run.name, t) for run in runs
                     if (t := _last_time(run)) is None or t < until_ps - 1e-6]
            if short:
                print("error: --until " + args.until + ": " + ", ".join(
                      f"{name} holds only {0.0 if t is None else t:.3f} ps" for name, t in short)
                      + "; give a shorter --until or let those runs go on", file=sys.stderr)
                return 2
        folder = args.dest or challenge.path / "reference"
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for run in runs:
            meta = h5md.read_meta(run)
            prov = meta["provenance"]
            note = {"made_by": "python -m harness.challenges.reference_md", "source": run.name,
                    "kept": f"positions float32 at 1e-{POSITION_DECIMALS} A (scale-offset, "
                    "shuffle+gzip 9), observables, parameters",
                    "dropped": list(DROPPED), "status": meta["status"],
                    "start_time": prov.get("start_time"), "end_time": prov.get("end_time")}
            ref = {"method": args.method, "temperature_K": args.temperature,
                   "made_by": "python -m harness.challenges.reference_md",
                   "source_status": meta["status"]}
            dst = folder / f"xtb-{args.temperature:g}K-{run.name.split('.')[0]}.h5"
            if until_ps is not None:
                note["cut_at_ps"] = ref["cut_at_ps"] = until_ps
            kept = compact(run, dst, note, every=args.every, reference=ref, until_ps=until_ps)
            written.append(dst)
            print(f"{dst}: {kept['frames']} frames every {kept['frame_interval_fs']:g} fs, "
                  f"{kept['simulated_ps']:.3f} ps, run {meta['status']}, "
                  f"{dst.stat().st_size / 1e6:.2f} MB")
        for stale in folder.glob(f"xtb-{args.temperature:g}K-replica-*.h5"):
            if stale not in written:
                stale.unlink()
                print(f"{stale}: removed (not in this reference)")
    total = sum(p.stat().st_size for p in written) / 1e6
    print(f"{len(written)} files, {total:.2f} MB, done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
