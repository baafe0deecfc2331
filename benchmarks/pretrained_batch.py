"""Cost of a pretrained model's force call, one structure at a time and batched.

Times what the force client calls per MD step: the family's ASE calculator on one structure
(as ``--batch 1`` does, once per run), and its ``batch_evaluator`` on N structures at once (as
``--batch N`` does, once per group). Challenge I (gas phase) gets the vacuum box a launch
gives a periodic-only model; Challenge IV is periodic. The structures are the challenge's
starts, slightly moved before every call (as MD does). One torch thread unless told.

    nice -n 19 python benchmarks/pretrained_batch.py --model chgnet --batch 12
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def structures(challenge_name: str, family, n: int) -> list:
    """``n`` starts of the challenge, boxed as a launch boxes them for this family."""
    from harness import challenges, models
    from harness.structures import read_structure

    challenge = challenges.load(challenge_name)
    starts = [challenge.start_for_replica(r) for r in range(n)]
    out = [read_structure(p) for p in starts]
    if family.periodic_only and not challenge.periodic:
        edge = models.vacuum_box(family, [str(p) for p in set(starts)])["edge_angstrom"]
        for atoms in out:
            atoms.cell = np.eye(3) * edge
            atoms.pbc = True
    return out


def main() -> None:
    """Print ms per structure, single and batched, per challenge."""
    import torch

    from harness import models

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="chgnet")
    parser.add_argument("--batch", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--challenges", default="alanine-tetrapeptide,mapbi3")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    family = models.get_family(args.model)
    calc = family.ase_calculator(None, {})
    evaluate = family.batch_evaluator(None, {})
    rng = np.random.default_rng(0)
    print(f"{args.model}, {args.threads} torch thread(s); ms per structure (median of "
          f"{args.repeats})")
    for name in args.challenges.split(","):
        group = structures(name, family, args.batch)
        calc.calculate(group[0], ["energy", "forces"], ["positions", "numbers", "cell", "pbc"])
        evaluate(group[:2])  # warm-up of both paths
        single, batched = [], []
        for _ in range(args.repeats):
            for atoms in group:
                atoms.positions += rng.normal(scale=1e-3, size=atoms.positions.shape)
            start = time.perf_counter()
            calc.calculate(group[0], ["energy", "forces"], ["positions"])
            single.append(time.perf_counter() - start)
            start = time.perf_counter()
            evaluate(group)
            batched.append((time.perf_counter() - start) / len(group))
        one, many = statistics.median(single), statistics.median(batched)
        print(f"{name:24s} {len(group[0]):4d} atoms  single {1e3 * one:9.1f}  "
              f"batch {args.batch} {1e3 * many:9.1f}  speed-up {one / many:5.2f}", flush=True)


if __name__ == "__main__":
    main()
