"""The Challenge I equilibrium reference from two replica-exchange ladders, checked as a user would.

1. ``converge``: the two ladders' 500 K densities, JS and Hellinger per pair with intervals
   (:func:`harness.challenges.reference_remd.converge`).
2. One ladder's 500 K frames treated as a model's runs, compared through ``analysis report
   RUNS --reference DIR`` with a reference made of the other ladder alone (unpaired): the
   Ramachandran verdict, its numbers and its reason.
3. Optionally (``--models OUT``) the verdicts of the runs in a launch output folder (e.g. the
   demo GAP's) against ``--reference equilibrium``.

Usage::

    python benchmarks/remd_reference.py LADDER1 LADDER2 [--models runs] [--json out.json]

where LADDER1/2 are ``OUT/alanine-tetrapeptide/xtb-remd-ladder1`` and ``...ladder2``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.challenges import reference_remd
from harness.protocols import remd


def _verdicts(report_dir: Path, observable: str = "ramachandran") -> list[dict]:
    data = json.loads((report_dir / "report.json").read_text())
    return [v for c in data["challenges"] for v in c["verdicts"]
            if v.get("observable") == observable]


def report(runs: Path, reference: str, report_dir: Path) -> list[dict]:
    """``analysis report RUNS --reference REF``; the Ramachandran verdicts."""
    cmd = [sys.executable, "-m", "analysis.cli", "report", str(runs), "--reference", reference,
           "--report-dir", str(report_dir), "--sections", "ramachandran", "--quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600,
                          env=dict(os.environ))
    if proc.returncode != 0:
        raise SystemExit(f"analysis report failed:\n{proc.stdout}\n{proc.stderr}")
    return _verdicts(report_dir)


def one_ladder_against_the_other(ladder1: Path, ladder2: Path, temperature_K: float,
                                 scratch: Path) -> list[dict]:
    """Ladder 1's frames at T as a model's run, ladder 2's compacted file as the reference."""
    runs = scratch / "runs"
    target = remd.temperature_file(runs / ladder1.parent.name / ladder1.name, temperature_K)
    target.parent.mkdir(parents=True)
    shutil.copy(remd.temperature_file(ladder1, temperature_K), target)
    ref = scratch / "reference"
    reference_remd.ship([ladder2], temperature_K, dest=ref)
    return report(runs, str(ref), scratch / "report")


def main() -> None:
    """Run the checks and print (or write) their numbers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("ladders", type=Path, nargs=2)
    parser.add_argument("--temperature", type=float, default=500.0)
    parser.add_argument("--models", type=Path, help="a launch output folder to compare with "
                        "--reference equilibrium")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out: dict = {"converge": reference_remd.converge(*args.ladders, args.temperature)}
    with tempfile.TemporaryDirectory(prefix="remd-ref-") as tmp:
        out["ladder1_vs_ladder2"] = one_ladder_against_the_other(*args.ladders,
                                                                 args.temperature, Path(tmp))
        if args.models:
            out["models_vs_equilibrium"] = report(args.models, "equilibrium",
                                                  Path(tmp) / "models")
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
