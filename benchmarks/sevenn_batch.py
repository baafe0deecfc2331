"""SevenNet-0 model cost per structure: one at a time against 12 graphs in one call.

Runs under the python of an environment holding sevenn (``.venv-models/sevenn``, built by
tests/install-model-envs.sh) with the harness source on the path; it times the model calls a
force client makes, on the challenges' own starting structures with small random displacements
(as MD frames differ), after one warm-up call each way:

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 nice -n 10 .venv-models/sevenn/bin/python \\
        benchmarks/sevenn_batch.py [--batch 12] [--repeat 2] [--threads 1]

Single: ``SevenNetCalculator.calculate`` per structure, as ``harness.driver`` calls it. Batched:
:func:`harness.models._sevenn_batch.batched` on ``--batch`` structures at once, as the group
client calls a family's ``batch_evaluator``. Prints ms per structure (the model's share of one
MD step of one run; the harness adds ~0.5 ms per step, docs/speed-and-drift.md) and the largest
force and energy differences between the two ways.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CHALLENGES = {"I": "alanine-tetrapeptide", "IV": "mapbi3"}


def frames(challenge: str, count: int, seed: int = 0) -> list:
    """``count`` copies of the challenge's first start, displaced by 0.05 A at random."""
    from ase.io import read

    start = read(REPO / "harness" / "challenges" / challenge / "starts" / "start-00.xyz")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        atoms = start.copy()
        atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
        out.append(atoms)
    return out


def measure(challenge: str, batch: int, repeat: int) -> dict:
    """ms per structure one at a time and batched, and their largest differences."""
    from sevenn.calculator import SevenNetCalculator

    from harness.models._sevenn_batch import batched

    structures = frames(challenge, batch)
    single = SevenNetCalculator(model="7net-0", device="cpu")
    single.calculate(structures[0], ["energy", "forces"])  # warm-up
    evaluate = batched(SevenNetCalculator(model="7net-0", device="cpu"))
    evaluate(structures[:2])  # warm-up
    alone_s, together_s = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        alone = []
        for atoms in structures:
            single.calculate(atoms, ["energy", "forces"])
            alone.append((single.results["energy"], np.array(single.results["forces"])))
        alone_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        together = evaluate(structures)
        together_s.append(time.perf_counter() - started)
    return {
        "challenge": challenge, "atoms": len(structures[0]), "batch": batch,
        "single_ms_per_structure": round(1000 * min(alone_s) / batch, 1),
        "batched_ms_per_structure": round(1000 * min(together_s) / batch, 1),
        "max_force_difference_eV_per_A": max(float(np.abs(a[1] - b[1]).max())
                                             for a, b in zip(alone, together, strict=True)),
        "max_energy_difference_eV": max(abs(a[0] - b[0])
                                        for a, b in zip(alone, together, strict=True)),
    }


def main() -> None:
    """Measure Challenges I and IV and print one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--challenges", default="I,IV")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    for key in args.challenges.split(","):
        print(json.dumps({**measure(CHALLENGES[key], args.batch, args.repeat),
                          "threads": args.threads}), flush=True)


if __name__ == "__main__":
    main()
