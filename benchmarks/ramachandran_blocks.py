"""Known truth for the Ramachandran verdict: the reference's own runs, cut short, against it.

Each design cuts the shipped Challenge I reference (GFN2-xTB, 500 K, 12 runs from the 12
starts) into groups of ``runs`` consecutive runs, each shortened to ``ps`` (``tests/
reference_data.py``), and judges every group against the full reference as if it were a model.
The truth is "the same method": a verdict of ``differs`` or a model pair flagged "these models
disagree" is a false alarm. Each design runs twice, with the basin-crossing rule for time
blocks (``block_shortfall``, groups of fewer than 4 runs) and without it, and prints one table
row per design. About 3 minutes on 2 cores.

Usage: ``python benchmarks/ramachandran_blocks.py [--designs 2x1,4x1,...] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from reference_data import short_groups  # noqa: E402

DESIGNS = "2x1,3x1,2x4,4x1,4x4,4x10,6x1,6x4,6x10,12x1,12x4"


def judge(folder: Path, gate: bool) -> tuple[list[str], int, int]:
    """Decisions of every group, model pairs flagged, and pairs compared."""
    from analysis.observables.ramachandran import study as rama_study

    real = rama_study.block_shortfall
    if not gate:
        rama_study.block_shortfall = lambda group: None
    try:
        [study] = rama_study.run_study([folder])
        decisions = [v.decision for v in rama_study.verdicts(study)]
    finally:
        rama_study.block_shortfall = real
    flagged = sum(bool(p["disagree"]) for p in study.model_pairs)
    return decisions, flagged, len(study.model_pairs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--designs", default=DESIGNS,
                        help=f"RUNSxPS,... groups of RUNS runs of PS ps (default {DESIGNS})")
    parser.add_argument("--keep", type=Path, help="keep the cut runs here")
    args = parser.parse_args()
    from analysis import reference
    from harness import challenges

    ref = reference.load(challenges.load("alanine-tetrapeptide"), None)
    print(f"reference: {ref.describe()}")
    print("| runs x ps | groups | differs, no rule | differs, with rule | turned inconclusive "
          "by the rule | model pairs 'disagree', no rule | with rule |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for design in args.designs.split(","):
        runs, ps = design.split("x")
        work = Path(tempfile.mkdtemp(prefix="rama-blocks-", dir=args.keep))
        try:
            # unpaired: groups of 4+ runs would otherwise pair with the runs they were cut
            # from (identical frames), which tests nothing
            short_groups(ref.files, work, float(ps), int(runs), unpaired=True)
            plain, flagged_plain, n_pairs = judge(work, gate=False)
            gated, flagged_gated, _ = judge(work, gate=True)
        finally:
            if args.keep is None:
                shutil.rmtree(work, ignore_errors=True)
        held = sum(a != b for a, b in zip(plain, gated, strict=True))
        print(f"| {runs} x {ps} | {len(plain)} | {plain.count('differs')} | "
              f"{gated.count('differs')} | {held} | {flagged_plain} of {n_pairs} | "
              f"{flagged_gated} of {n_pairs} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
