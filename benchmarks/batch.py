"""``--batch 12`` against 12 separate force clients: replica-steps per second and client memory.

12 replicas of the tiny MACE (tests/tiny_models.py: 2 layers, 8 channels, float64) on the
42-atom peptide, real launches. Unbatched: ``--jobs 2 --threads 1`` (two runs at a time, one
thread each); batched: ``--batch 12 --threads 2`` (one client with two threads, 12 i-PI
servers). The same total threads.

The steady rate removes start-up costs (i-PI and torch imports, model loads): each mode is
launched twice, with a short and a long run, and

    rate = 12 * (long_steps - short_steps) / (wall_long - wall_short)   replica-steps/s

The total wall time of the long launch, start-up included, is reported too. The summed
resident memory of the force clients is the largest sum seen while polling /proc.

Run: ``PYTHONPATH=$PWD nice -n 10 python benchmarks/batch.py [--short 10 --long 40]``
(steps per run; time step 0.5 fs).
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
sys.path.insert(0, str(REPO / "tests"))

CLIENT_MARKERS = ("harness.driver", "harness.batch_driver")


def client_rss_mib(out: Path) -> tuple[float, float]:
    """Summed and largest resident memory (MiB) of the force clients working for ``out``."""
    total_kib = largest_kib = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if str(out) not in cmd or not any(m in cmd for m in CLIENT_MARKERS):
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
                    largest_kib = max(largest_kib, int(line.split()[1]))
        except OSError:
            continue
    return total_kib / 1024, largest_kib / 1024


def launch(model: Path, out: Path, steps: int, mode_args: list[str]) -> dict[str, float]:
    """One launch of 12 replicas; wall time and the peak summed client memory."""
    cmd = [sys.executable, "-m", "harness.launch", "--quiet", "--model", "mace",
           "--model-file", str(model), "--temperatures", "300", "--replicas", "12",
           "--time", f"{steps * 0.5}fs", "--stride", "5", "--criteria", "non_finite",
           "--out", str(out), *mode_args]
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    peak = largest = 0.0
    while proc.poll() is None:
        total, one = client_rss_mib(out)
        peak, largest = max(peak, total), max(largest, one)
        time.sleep(0.5)
    wall = time.monotonic() - started
    stdout, stderr = proc.communicate()
    completed = next((int(line.split()[0]) for line in stdout.splitlines()
                      if " completed, " in line), 0)
    if completed != 12:  # reported, not fatal: the speed of the others is still measured
        print(f"warning: {12 - completed} of 12 runs did not complete:\n{stdout}{stderr}",
              file=sys.stderr, flush=True)
    return {"wall_s": wall, "peak_client_rss_mib": peak, "one_client_rss_mib": largest,
            "completed": completed}


def main() -> None:
    """Measure both modes and print a JSON summary."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", type=int, default=10, help="steps per run, short launch")
    parser.add_argument("--long", type=int, default=40, help="steps per run, long launch")
    args = parser.parse_args()
    from tiny_models import make_mace

    modes = {"unbatched --jobs 2 --threads 1": ["--jobs", "2", "--threads", "1"],
             "--batch 12 --threads 2": ["--batch", "12", "--threads", "2"]}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        model = make_mace(Path(tmp) / "tiny.model")
        for name, mode_args in modes.items():
            short = launch(model, Path(tmp) / f"{len(results)}s", args.short, mode_args)
            long = launch(model, Path(tmp) / f"{len(results)}l", args.long, mode_args)
            rate = 12 * (args.long - args.short) / (long["wall_s"] - short["wall_s"])
            results[name] = {"replica_steps_per_s": rate,
                             "total_wall_s_long": long["wall_s"],
                             "completed_runs": [short["completed"], long["completed"]],
                             "total_replica_steps_per_s_long": 12 * args.long / long["wall_s"],
                             "peak_client_rss_mib": max(short["peak_client_rss_mib"],
                                                        long["peak_client_rss_mib"]),
                             "one_client_rss_mib": max(short["one_client_rss_mib"],
                                                       long["one_client_rss_mib"])}
            print(name, json.dumps(results[name]), flush=True)
    unb, bat = results.values()
    print(json.dumps({"speed_ratio": bat["replica_steps_per_s"] / unb["replica_steps_per_s"],
                      "speed_ratio_total": bat["total_replica_steps_per_s_long"]
                      / unb["total_replica_steps_per_s_long"],
                      # --jobs 2 holds two clients at once; 12 side by side (as on one GPU
                      # node) would hold 12 of them
                      "memory_ratio_jobs2": unb["peak_client_rss_mib"]
                      / bat["peak_client_rss_mib"],
                      "memory_ratio_12_clients": 12 * unb["one_client_rss_mib"]
                      / bat["peak_client_rss_mib"],
                      "load_average": os.getloadavg()}))


if __name__ == "__main__":
    main()
