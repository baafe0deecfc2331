"""Must-show of issue 28: a model that never leaves its starts is never `agrees`.

A "frozen" model: every frame is its start structure plus Gaussian noise of 0.13 or 0.14 A
(``tests/report_data.synthesise``, the 12 Challenge I starts at 500 K), with a new noise
seed per experiment (the seed follows the model's name). Each experiment runs the
Ramachandran study against the shipped 12 x 20 ps xTB reference and prints the verdict's
decision, its numbers and the control's decision. Prints a table: decisions per
(amplitude, length).

Usage: ``python benchmarks/frozen_model.py [--seeds 20] [--lengths 0.5,1,2,5,10,20]
[--amplitudes 0.13,0.14]``. About 4 s per experiment on 2 cores at 0.5 ps.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout, not an installed copy

from report_data import DT_FS, STRIDE, synthesise  # noqa: E402

from analysis.observables.ramachandran import study as study_mod  # noqa: E402


def experiment(folder: Path, amplitude: float, length_ps: float, seed: int):
    """The verdict of one frozen model (12 runs of ``length_ps``)."""
    n_frames = int(round(length_ps * 1000 / (DT_FS * STRIDE))) + 1
    synthesise(folder, {f"frozen-{seed}": amplitude}, temperatures=(500.0,), replicas=12,
               n_frames=n_frames)
    [study] = study_mod.run_study([folder])
    [verdict] = study_mod.verdicts(study)
    return verdict


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--lengths", default="0.5,1,2,5,10,20")
    parser.add_argument("--amplitudes", default="0.13,0.14")
    args = parser.parse_args()
    rows = []
    for amplitude in map(float, args.amplitudes.split(",")):
        for length in map(float, args.lengths.split(",")):
            counts: Counter = Counter()
            start = time.perf_counter()
            for seed in range(args.seeds):
                with tempfile.TemporaryDirectory() as tmp:
                    v = experiment(Path(tmp), amplitude, length, seed)
                counts[v.decision] += 1
                print(f"{amplitude} A {length:g} ps seed {seed}: {v.decision} ({v.reason}) "
                      f"{v.value:.3f} [{v.ci_low:.3f}, {v.ci_high:.3f}] control "
                      f"{v.control_decision} {v.facts.get('control', {}).get('value', 0):.3f} "
                      f"[{v.facts.get('control', {}).get('low') or 0:.3f}, "
                      f"{v.facts.get('control', {}).get('high') or 0:.3f}] detectable "
                      f"{v.detectable or 0:.3f}", flush=True)
            rows.append((amplitude, length, counts, time.perf_counter() - start))
    print("\n| noise (A) | 12 runs of (ps) | agrees | inconclusive | differs | s/experiment |")
    print("|---:|---:|---:|---:|---:|---:|")
    for amplitude, length, counts, seconds in rows:
        n = sum(counts.values())
        print(f"| {amplitude:g} | {length:g} | {counts['agrees']}/{n} | "
              f"{counts['inconclusive']}/{n} | {counts['differs']}/{n} | {seconds / n:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
