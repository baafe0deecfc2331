"""``--batch 12`` against 12 separate force clients: replica-steps per second and client memory.

12 replicas of the tiny MACE (tests/tiny_models.py: 2 layers, 8 channels, float64) on the
42-atom peptide, real launches. Unbatched: ``--jobs 2 --threads 1`` (two runs at a time, one
thread each); batched: ``--batch 12 --threads 2`` (one client with two threads, 12 i-PI
servers). The same total threads.

The steady rate removes start-up costs (i-PI and torch imports, model loads): each mode is
launched twice, with a short and a long run, and

    rate = 12 * (long_steps - short_steps) / (wall_long - wall_short)   replica-steps/s

The steady rate from the trajectories' wall-clock stamps (``stamped_replica_steps_per_s``:
each run's second to last frame, times the runs side by side) is printed too; under a
heavily loaded machine it is the one to trust (the launch difference is dominated by noise in
the start-up). The total wall time of the long launch, start-up included, is reported too.
The summed resident memory of the force clients is the largest sum seen while polling /proc.
``--modes batched1`` is ``--batch 12 --threads 1``.

Run: ``PYTHONPATH=$PWD nice -n 10 python benchmarks/batch.py [--short 10 --long 40]``
(steps per run; time step 0.5 fs). ``--modes batched`` measures one mode only, ``--repeat 2``
launches each mode's pair twice, ``--keep DIR`` keeps the trajectories and the logs of runs that
did not complete (a failed run keeps them as ``replica-NN.log`` beside its file).
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
    side_by_side = 12 if "--batch" in mode_args else int(mode_args[mode_args.index("--jobs") + 1])
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
        for log in sorted(out.rglob("replica-*.log")):
            print(f"== {log}\n{log.read_text(errors='replace')[-4000:]}", file=sys.stderr,
                  flush=True)
    return {"wall_s": wall, "peak_client_rss_mib": peak, "one_client_rss_mib": largest,
            "completed": completed, "stamped_replica_steps_per_s": stamped_rate(out, side_by_side)}


def stamped_rate(out: Path, side_by_side: int) -> float:
    """Steady replica-steps per second from the trajectories' wall-clock stamps.

    Each run's rate is taken between its second and last frames (start-up and the first model
    call left out); ``side_by_side`` runs step at once (12 in a group, ``--jobs`` without), so
    the launch's steady rate is that many times the mean rate of a run.
    """
    from harness import h5md

    rates = []
    for path in sorted(out.rglob("replica-*.h5")):
        stamped = h5md.read_wall_clock(path)
        if stamped is None or len(stamped[0]) < 3:
            continue
        steps, stamps = stamped
        if stamps[-1] > stamps[1]:
            rates.append((steps[-1] - steps[1]) / (stamps[-1] - stamps[1]))
    return side_by_side * sum(rates) / len(rates) if rates else float("nan")


def main() -> None:
    """Measure both modes and print a JSON summary."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--short", type=int, default=10, help="steps per run, short launch")
    parser.add_argument("--long", type=int, default=40, help="steps per run, long launch")
    parser.add_argument("--modes", default="unbatched,batched",
                        help="comma-separated: unbatched, batched")
    parser.add_argument("--repeat", type=int, default=1, help="launch pairs per mode")
    parser.add_argument("--keep", type=Path, help="keep outputs and logs in this folder")
    args = parser.parse_args()
    from tiny_models import make_mace

    known = {"unbatched": ("unbatched --jobs 2 --threads 1", ["--jobs", "2", "--threads", "1"]),
             "batched": ("--batch 12 --threads 2", ["--batch", "12", "--threads", "2"]),
             "batched1": ("--batch 12 --threads 1", ["--batch", "12", "--threads", "1"])}
    modes = [known[m] for m in args.modes.split(",")]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep.resolve() if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        model = make_mace(root / "tiny.model")
        for (mode, mode_args), k in ((m, k) for m in modes for k in range(args.repeat)):
            name = f"{mode} #{k + 1}" if args.repeat > 1 else mode
            tag = f"{mode_args[0].strip('-')}{k}"
            short = launch(model, root / f"{tag}-short", args.short, mode_args)
            long = launch(model, root / f"{tag}-long", args.long, mode_args)
            rate = 12 * (args.long - args.short) / (long["wall_s"] - short["wall_s"])
            results[name] = {"replica_steps_per_s": rate,
                             "stamped_replica_steps_per_s": [short["stamped_replica_steps_per_s"],
                                                             long["stamped_replica_steps_per_s"]],
                             "total_wall_s_long": long["wall_s"],
                             "completed_runs": [short["completed"], long["completed"]],
                             "total_replica_steps_per_s_long": 12 * args.long / long["wall_s"],
                             "peak_client_rss_mib": max(short["peak_client_rss_mib"],
                                                        long["peak_client_rss_mib"]),
                             "one_client_rss_mib": max(short["one_client_rss_mib"],
                                                       long["one_client_rss_mib"])}
            print(name, json.dumps(results[name]), flush=True)
    if len(modes) < 2:
        return
    suffix = " #1" if args.repeat > 1 else ""  # the first pair of each mode
    unb, bat = (results[mode + suffix] for mode, _ in modes)
    print(json.dumps({"speed_ratio": bat["replica_steps_per_s"] / unb["replica_steps_per_s"],
                      "stamped_speed_ratio_long": bat["stamped_replica_steps_per_s"][1]
                      / unb["stamped_replica_steps_per_s"][1],
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
