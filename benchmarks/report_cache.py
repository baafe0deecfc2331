"""Time ``analysis report`` twice on the same data: the second run should reuse everything.

Synthesises harness trajectories (real H5MD files, see ``tests/report_data.py``: positions,
velocities and forces written for every frame), then runs ``analysis report`` as a user
would (a new process each time): once with an empty cache, then three times on unchanged
files. The report gets every installed section provider plus the test plug-in
``tests/report_plugin.py`` (reads every frame, computes radius-of-gyration distributions),
so the first run does the kind of work an observable does.
Usage: ``python benchmarks/report_cache.py [--models 3] [--replicas 4] [--frames 20000]``
(TEA 2023 scale: ``--replicas 12 --frames 100001``, about 32 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from report_data import synthesise  # noqa: E402
from test_report import plugin_site  # noqa: E402


def timed_report(out: Path, site: Path) -> tuple[float, float]:
    """(wall s, CPU s) of one ``analysis report OUT`` process."""
    path = os.pathsep.join([str(site), str(TESTS), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path, OMP_NUM_THREADS="1")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "analysis.cli", "report", str(out), "--quiet"],
                   check=True, capture_output=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    """Synthesise, report with a cold cache, report again three times."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--frames", type=int, default=20_000)
    parser.add_argument("--keep", help="write the files here and keep them")
    args = parser.parse_args()
    noise = {f"model-{i}": 0.05 + 0.1 * i for i in range(args.models)}
    noise["reference"] = 0.05
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.keep or tmp) / "runs"
        start = time.perf_counter()
        paths = synthesise(out, noise, temperatures=(300.0, 500.0, 700.0),
                           replicas=args.replicas, n_frames=args.frames)
        size = sum(p.stat().st_size for p in paths)
        print(f"synthesised {len(paths)} runs x {args.frames} frames, {size / 1e9:.2f} GB, "
              f"in {time.perf_counter() - start:.0f} s")
        site = plugin_site(Path(tmp))
        first = timed_report(out, site)
        summary = json.loads((out / "reports" / "report.json").read_text())
        sections = [(s["provider"], round(s["seconds"], 2))
                    for c in summary["challenges"] for s in c["sections"]]
        again = [timed_report(out, site) for _ in range(3)]
        best = min(again)
        print(f"first report:  {first[0]:.2f} s wall, {first[1]:.2f} s CPU; sections {sections}")
        print(f"second report: {best[0]:.2f} s wall (best of 3: "
              f"{', '.join(f'{w:.2f}' for w, _ in again)}), {min(c for _, c in again):.2f} s CPU")
        print(f"speed-up: {first[0] / best[0]:.1f}x wall, "
              f"{first[1] / min(c for _, c in again):.1f}x CPU")


if __name__ == "__main__":
    main()
