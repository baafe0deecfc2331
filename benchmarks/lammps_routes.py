"""Speed of the LAMMPS routes with the demo SNAP: i-PI + LAMMPS client vs native LAMMPS.

1. Challenge I (42 atoms) and a ~2,000-atom system: ms per MD step through i-PI with LAMMPS
   as its force client (``--engine ipi``: i-PI integrates, the relay checks every step) and
   through native LAMMPS (``--engine lammps``, 1 rank), and their ratio.
2. A ~10,000-atom system: native LAMMPS on 1 and 2 MPI ranks, and the speed-up.

The large systems are copies of the peptide's 12 starting structures on a cubic grid (one
every 20 A, so copies never come within the 3.4 A SNAP cutoff of each other) in a periodic
box: a system of the right size with the demo model's chemistry. Each run goes through the
harness's supervisor and writes its H5MD file (frame every 20 steps), as a user's run would.
Start-up costs are removed by timing two lengths and dividing the difference by the
difference in steps; each number is the minimum over ``--repeats``. Wall time and CPU time
(all processes of the run together) are both reported: on a shared, loaded machine the
wall times carry the load, the CPU times much less so (but MPI ranks busy-wait, so CPU time
says nothing about the MPI speed-up). Run it on an idle machine for clean wall times.

Usage: ``python benchmarks/lammps_routes.py [--repeats 3] [--parts routes,mpi] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.io import read, write

from harness import challenges, config, models
from harness.runner import run_spec

os.environ["OMP_NUM_THREADS"] = "1"
CHALLENGE = challenges.load("alanine-tetrapeptide")
SPACING_A = 20.0


def replicated_challenge(folder: Path, copies_per_side: tuple[int, int, int]) -> Path:
    """A periodic challenge folder with peptide copies on a grid; returns the folder."""
    starts = [read(p) for p in CHALLENGE.starts]
    nx, ny, nz = copies_per_side
    system = Atoms(cell=np.diag([nx, ny, nz]) * SPACING_A, pbc=True)
    k = 0
    for i in range(nx):
        for j in range(ny):
            for m in range(nz):
                mol = starts[k % len(starts)].copy()
                mol.positions += SPACING_A * (np.array([i, j, m]) + 0.5) - \
                    mol.positions.mean(axis=0)
                system += mol
                k += 1
    (folder / "starts").mkdir(parents=True)
    write(folder / "starts" / "start-00.xyz", system, format="extxyz")
    (folder / "challenge.toml").write_text(
        f'title = "{k} peptides"\nelements = ["C", "H", "N", "O"]\nperiodic = true\n'
        '[protocol]\ntemperatures_K = [300]\nreplicas = 1\nlength_ps = 1.0\ndt_fs = 0.5\n'
        'stride = 20\nthermostat = "langevin"\nthermostat_tau_fs = 100.0\n'
        '[stability]\nbond_break_angstrom = 2.0\n')
    return folder


def _cpu_s() -> float:
    """CPU seconds of this process and of every child process reaped so far."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run_seconds(challenge: str, steps: int, out: Path, *flags: str) -> tuple[float, float]:
    """Wall and CPU seconds (all processes: supervisor, i-PI, relay, LAMMPS, MPI) of one run."""
    model_file = models.get_family("snap").default_model_file("alanine-tetrapeptide")
    args = config.build_parser().parse_args([
        "--model", "snap", "--model-file", str(model_file), "--challenge", challenge,
        "--temperatures", "300", "--replicas", "1", "--time", f"{steps * 0.5}fs",
        "--stride", "20", "--out", str(out), "--criteria", "non_finite,bond_break",
        "--stall-timeout", "600", *flags])
    spec = config.build_plan(config.resolve_settings(args))[0]
    cpu0, start = _cpu_s(), time.perf_counter()
    outcome = run_spec(spec)
    wall, cpu = time.perf_counter() - start, _cpu_s() - cpu0
    if outcome.status != "completed":
        raise SystemExit(f"benchmark run failed: {outcome.failure}")
    return wall, cpu


def ms_per_step(challenge: str, short: int, long: int, repeats: int,
                *flags: str) -> tuple[float, float]:
    """Minima over repeats of (t(long) - t(short)) / (long - short), wall and CPU, in ms."""
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            wall_s, cpu_s = run_seconds(challenge, short, Path(tmp) / "a", *flags)
            wall_l, cpu_l = run_seconds(challenge, long, Path(tmp) / "b", *flags)
        best_wall = min(best_wall, (wall_l - wall_s) / (long - short) * 1e3)
        best_cpu = min(best_cpu, (cpu_l - cpu_s) / (long - short) * 1e3)
    return best_wall, best_cpu


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and print a table (and JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--parts", default="routes,mpi",
                        help="routes (i-PI + LAMMPS vs native), mpi (1 -> 2 ranks), or both")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    results: dict[str, dict] = {"load_average_at_start": list(os.getloadavg())}
    with tempfile.TemporaryDirectory() as tmp:
        systems = {
            "challenge I (42 atoms)": ("alanine-tetrapeptide", 200, 3000),
            "48 peptides (2016 atoms)": (str(replicated_challenge(Path(tmp) / "c2k",
                                                                  (4, 4, 3))), 20, 200),
        }
        for name, (challenge, short, long) in systems.items():
            if "routes" not in parts:
                break
            ipi, ipi_cpu = ms_per_step(challenge, short, long, args.repeats)
            native, native_cpu = ms_per_step(challenge, short, long, args.repeats,
                                             "--engine", "lammps")
            results[name] = {"ipi_lammps_ms_per_step": round(ipi, 3),
                             "native_ms_per_step": round(native, 3),
                             "ratio_ipi_over_native": round(ipi / native, 2),
                             "ipi_lammps_cpu_ms_per_step": round(ipi_cpu, 3),
                             "native_cpu_ms_per_step": round(native_cpu, 3),
                             "cpu_ratio_ipi_over_native": round(ipi_cpu / native_cpu, 2)}
            print(name, results[name], flush=True)
        if "mpi" not in parts:
            return _finish(results, args.json)
        big = str(replicated_challenge(Path(tmp) / "c10k", (6, 6, 7)))
        one, one_cpu = ms_per_step(big, 20, 60, args.repeats, "--engine", "lammps")
        two, two_cpu = ms_per_step(big, 20, 60, args.repeats, "--engine", "lammps",
                                   "--mpi-ranks", "2")
        results["252 peptides (10584 atoms), native"] = {
            "1_rank_ms_per_step": round(one, 2), "2_ranks_ms_per_step": round(two, 2),
            "speedup": round(one / two, 2), "1_rank_cpu_ms_per_step": round(one_cpu, 2),
            "2_ranks_cpu_ms_per_step_both_ranks": round(two_cpu, 2)}
        print("10584 atoms", results["252 peptides (10584 atoms), native"], flush=True)
    return _finish(results, args.json)


def _finish(results: dict, path: Path | None) -> int:
    results["load_average_at_end"] = list(os.getloadavg())
    if path:
        path.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
