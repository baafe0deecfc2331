"""Time ``analysis triage`` on 36 failed Challenge I runs (3 temperatures x 12 replicas).

The runs are real: ``tests/breaking_models.py`` (springs plus a constant force pulling N3-C4
apart) under the harness, 300/500/700 K, 12 replicas each; every run breaks within a few
hundred steps and leaves the watchdog's every-step record before the event. The triage then
evaluates GFN2-xTB (the challenge's reference) on those steps and on a few earlier frames.
Reported: wall time of a cold triage (empty reference cache), of a warm one (all cached),
reference calls, seconds per call, and the classification counts.

Usage: ``python benchmarks/triage_cost.py [--keep DIR] [--jobs 2]``.
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

REPO = Path(__file__).resolve().parent.parent


def make_runs(out: Path, jobs: int) -> float:
    """Launch the 36 breaking runs; returns the seconds it took."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((str(REPO / "tests"), str(REPO))),
               OMP_NUM_THREADS="1")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "harness.launch", "--quiet", "--model",
                    "ase:breaking_models:make", "--model-option", "pull=3-4", "--temperatures",
                    "300,500,700", "--replicas", "12", "--time", "0.1ps", "--jobs", str(jobs),
                    "--out", str(out)], env=env, check=True, capture_output=True, timeout=1800)
    return time.perf_counter() - start


def triage(out: Path, jobs: int) -> tuple[float, dict]:
    """Run ``analysis triage`` once; returns (seconds, triage.json)."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "analysis.cli", "triage", str(out), "--jobs",
                           str(jobs), "--quiet"], env=env, capture_output=True, text=True,
                          timeout=1800)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return seconds, json.loads((out / "reports" / "triage.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="folder for the runs (kept; reused when present)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="triage-bench-"))
    out = root / "runs"
    if not out.is_dir():
        print(f"launching 36 breaking runs: {make_runs(out, args.jobs):.0f} s")
    cache = out / "reports" / "reference-cache"
    for old in cache.glob("*.pkl") if cache.is_dir() else []:
        old.unlink()
    usage = os.times()
    cold, data = triage(out, args.jobs)
    after = os.times()
    warm, _ = triage(out, args.jobs)
    cost = data["cost"]["alanine-tetrapeptide"]
    counts = {g["temperature_K"]: (g["failed"], g["model artefact"], g["physical"],
                                   g["unclear"]) for g in data["summary"]["groups"]}
    print(f"failed runs triaged: {len(data['entries'])} of {data['n_runs']}")
    print(f"cold triage (--jobs {args.jobs}): {cold:.1f} s wall, "
          f"{after.children_user - usage.children_user:.1f} s CPU (user); "
          f"{cost['reference_calls']} xTB calls, {cost['seconds_per_call']:.3f} s per call")
    print(f"warm triage (all cached): {warm:.1f} s wall")
    print("per T: (failed, model artefact, physical, unclear):", counts)


if __name__ == "__main__":
    main()
