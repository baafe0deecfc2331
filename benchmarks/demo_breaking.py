"""Demo models on Challenge I: heating ramps and time-step sweeps at 12 replicas (issue 30).

Runs, one after the other, resumable (run it again after a kill: finished runs are skipped):

1. heating ramps of the demo GAP, the demo SNAP and GFN2-xTB (``--protocol ramp``):
   ``--replicas`` GAP runs, 12 SNAP runs, ``--xtb-replicas`` xTB runs (12 unless given),
   ``--ramp`` (default 300 K to 4000 K at 20000 K/ps, a frame and watchdog check every 5
   steps: what fitted a shared, loaded 2-core machine);
2. time-step sweeps of the demo GAP and GFN2-xTB (``--protocol dt-sweep``) at 500 K,
   ``--sweep-replicas`` (default 12) runs of ``--sweep-time`` (default 0.1 ps) at time steps
   0.25, 0.5, 1 and 2 fs;
3. ``analysis ramp`` and ``analysis dt-sweep`` on the output, their tables as JSON and figures
   in ``OUT/analysis/``.

Every launch runs one run at a time with one OpenMP thread (``--jobs 1 --threads 1``); run the
script under ``nice -n 19`` on a shared machine. Usage::

    nice -n 19 python benchmarks/demo_breaking.py --out /work/bg/stress [--replicas 12]

``--only ramps|sweeps|analysis`` runs one part.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

RAMP = "300K:4000K:20000K/ps"
#: a frame (and a watchdog check) every 2.5 fs: 50 K of the ramp between checks
RAMP_STRIDE = "5"
DTS = "0.25fs,0.5fs,1fs,2fs"


def launch(out: Path, log: Path, *args: str) -> None:
    """One ``harness.launch`` call, its output appended to ``log``."""
    cmd = [sys.executable, "-m", "harness.launch", "--challenge", "alanine-tetrapeptide",
           "--jobs", "1", "--threads", "1", "--quiet", "--out", str(out), *args]
    with log.open("a") as fh:
        fh.write(f"\n$ {' '.join(cmd)}  # {time.strftime('%H:%M:%S')}\n")
        fh.flush()
        t0 = time.time()
        rc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
        fh.write(f"# rc {rc}, {time.time() - t0:.0f} s wall\n")


def analyse(out: Path, log: Path) -> None:
    """The ramp and sweep tables (JSON) and figures under ``out/analysis``."""
    folder = out / "analysis"
    folder.mkdir(parents=True, exist_ok=True)
    for name, extra in (("ramp", ["--intact-to", "700"]), ("dt-sweep", [])):
        for fmt, args in (("json", ["--json"]), ("txt", ["--plot", str(folder / f"{name}.png")])):
            cmd = [sys.executable, "-c", "from analysis.cli import main; raise SystemExit(main())",
                   name, *extra, *args, str(out / "runs")]
            with (folder / f"{name}.{fmt}").open("w") as fh:
                subprocess.run(cmd, stdout=fh, stderr=log.open("a"), check=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--replicas", type=int, default=12,
                        help="replicas of the GAP and SNAP ramps (xTB: --xtb-replicas)")
    parser.add_argument("--xtb-replicas", type=int, default=12)
    parser.add_argument("--ramp", default=RAMP)
    parser.add_argument("--sweep-time", default="0.1ps")
    parser.add_argument("--sweep-replicas", type=int, default=12)
    parser.add_argument("--only", choices=("ramps", "sweeps", "analysis"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs, log = args.out / "runs", args.out / "log.txt"
    if args.only in (None, "ramps"):
        for model, replicas in (("gap", args.replicas), ("snap", 12), ("xtb", args.xtb_replicas)):
            launch(runs, log, "--model", model, "--protocol", "ramp", "--ramp", args.ramp,
                   "--stride", RAMP_STRIDE, "--replicas", str(replicas))
    if args.only in (None, "sweeps"):
        for model in ("gap", "xtb"):
            launch(runs, log, "--model", model, "--protocol", "dt-sweep", "--dts", DTS,
                   "--temperatures", "500", "--time", args.sweep_time,
                   "--replicas", str(args.sweep_replicas))
    if args.only in (None, "analysis"):
        analyse(args.out, log)


if __name__ == "__main__":
    main()
