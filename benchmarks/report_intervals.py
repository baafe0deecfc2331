"""What the bootstrap intervals cost in ``analysis report``: with intervals against without.

Synthesises harness trajectories of Challenge I (``tests/report_data.py``: real H5MD files,
positions, velocities and forces every frame): 3 models x 12 replicas at 500 K = 36 runs,
``--frames`` frames each (a 1 ns run at the challenge's 10 fs stride is 100 001 frames; the
default here is that frame count). Then ``analysis report`` runs twice in fresh processes
with the cache off, once with intervals (1000 bootstrap resamples per verdict and model pair)
and once with ``--no-bootstrap`` (values only), alternating, best of ``--repeats``.
Usage: ``python benchmarks/report_intervals.py [--frames 100001] [--repeats 2] [--keep DIR]``.
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

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from report_data import synthesise  # noqa: E402

MODELS = {"reference": 0.05, "close": 0.06, "wobbly": 0.3}


def timed_report(out: Path, report_dir: Path, bootstrap: bool) -> float:
    """Wall seconds of one ``analysis report OUT --no-cache`` process."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "analysis.cli", "report", str(out), "--quiet",
                    "--no-cache", "--report-dir", str(report_dir)]
                   + ([] if bootstrap else ["--no-bootstrap"]), check=True,
                   capture_output=True, env=env)
    return time.perf_counter() - start


def main() -> None:
    """Synthesise 36 runs, then time the report with and without intervals."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=100_001)
    parser.add_argument("--replicas", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--keep", help="write the files here and keep them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep or tmp) / "runs"
        if not any(out.rglob("replica-*.h5")):
            start = time.perf_counter()
            paths = synthesise(out, MODELS, temperatures=(500.0,), replicas=args.replicas,
                               n_frames=args.frames)
            size = sum(p.stat().st_size for p in paths)
            print(f"synthesised {len(paths)} runs x {args.frames} frames, {size / 1e9:.2f} GB, "
                  f"in {time.perf_counter() - start:.0f} s", flush=True)
        times: dict[bool, list[float]] = {True: [], False: []}
        for _ in range(args.repeats):
            for bootstrap in (False, True):
                report_dir = Path(tmp) / f"report-{bootstrap}"
                times[bootstrap].append(timed_report(out, report_dir, bootstrap))
                print(f"{'with' if bootstrap else 'without'} intervals: "
                      f"{times[bootstrap][-1]:.1f} s", flush=True)
        summary = json.loads((Path(tmp) / "report-True" / "report.json").read_text())
        verdicts = [v for c in summary["challenges"] for v in c["verdicts"]]
        with_ci = sum(v["ci_low"] is not None for v in verdicts)
        best = {k: min(v) for k, v in times.items()}
        print(f"without intervals: {best[False]:.1f} s, with intervals: {best[True]:.1f} s "
              f"(best of {args.repeats}): {100 * (best[True] / best[False] - 1):+.1f}%; "
              f"{with_ci} of {len(verdicts)} verdicts with an interval")


if __name__ == "__main__":
    main()
