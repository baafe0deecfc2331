"""Per-step overhead of the harness, measured against the tools it wraps.

1. i-PI + harmonic driver: the harness (`python -m harness.launch --model harmonic`, which
   also streams every frame into H5MD) against a bare `i-pi` + `i-pi-py_driver -m harmonic`
   on the same input (same system, thermostat, seed, properties output), same force constant.
2. GFN2-xTB: the harness (`--model xtb`) against a plain ASE Langevin loop with the same
   tblite calculator, in ns/day.

Start-up costs are removed by timing two lengths and dividing the difference by the
difference in steps. Usage: ``python benchmarks/overhead.py [--repeats 3] [--json out.json]``.
Each run uses OMP_NUM_THREADS=1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from harness import challenges, config, sockets
from harness.engines import ipi_input

ENV = dict(os.environ, OMP_NUM_THREADS="1")
K_AU = 0.01  # Hartree/Bohr^2, i-PI's harmonic driver unit
HARTREE_EV, BOHR_A = 27.211386245988, 0.529177210903
K_EV_A2 = K_AU * HARTREE_EV / BOHR_A**2


def _timed(cmd: list[str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=ENV, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=3600)
    return time.perf_counter() - start


def harness_run(model: str, time_ps: float, extra: list[str]) -> float:
    """Wall time of one harness launch of one run."""
    with tempfile.TemporaryDirectory() as out:
        return _timed([sys.executable, "-m", "harness.launch", "--model", model, "--quiet",
                       "--temperatures", "300", "--replicas", "1", "--time", f"{time_ps}ps",
                       "--out", out, *extra])


def bare_ipi_run(n_steps: int, same_outputs: bool = False) -> float:
    """Wall time of i-pi + i-pi-py_driver -m harmonic on the harness's own input.

    ``same_outputs``: keep the harness's trajectory outputs (positions, velocities, forces in
    i-PI's bin format, every stride) going to regular files; otherwise properties only.
    """
    args = config.build_parser().parse_args(["--model", "harmonic", "--temperatures", "300",
                                             "--replicas", "1"])
    settings = config.resolve_settings(args)
    spec = config.build_plan(settings)[0]
    with tempfile.TemporaryDirectory() as work:
        token = f"bench{os.getpid()}"
        sock_dir = sockets.folder_of(token)
        sock_dir.mkdir(mode=0o700, exist_ok=True)
        root = ET.fromstring(ipi_input.make_input(spec, f"{token}/sock", Path(spec.start_file)))
        root.find("total_steps").text = str(n_steps)
        output = root.find("output")
        for node in list(output):
            if node.tag == "checkpoint" or (node.tag != "properties" and not same_outputs):
                output.remove(node)
        Path(work, "input.xml").write_text(ET.tostring(root, encoding="unicode"))
        ipi = str(Path(sys.executable).with_name("i-pi"))
        driver = str(Path(sys.executable).with_name("i-pi-py_driver"))
        start = time.perf_counter()
        server = subprocess.Popen([sys.executable, ipi, "input.xml"], cwd=work, env=ENV,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not (sock_dir / "sock").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
            subprocess.run([sys.executable, driver, "-u", "-a", f"{token}/sock", "-m",
                            "harmonic", "-o", str(K_AU)], env=ENV, check=True, timeout=3600,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            server.wait(timeout=120)
        finally:
            server.kill()
            server.wait()
            for p in sock_dir.iterdir():
                p.unlink()
            sock_dir.rmdir()
        return time.perf_counter() - start


def ase_langevin_run(n_steps: int) -> float:
    """Wall time of a plain ASE Langevin loop with tblite on the same start structure."""
    code = f"""
import time
from ase.io import read
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase import units
from tblite.ase import TBLite
import numpy as np
atoms = read({str(challenges.load('alanine-tetrapeptide').starts[0])!r})
atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(1))
dyn = Langevin(atoms, 0.5 * units.fs, temperature_K=300, friction=0.01 / units.fs)
dyn.run({n_steps})
"""
    return _timed([sys.executable, "-c", code])


def per_step(fn, short: int, long: int, repeats: int) -> float:
    """(min t(long) - min t(short)) / (long - short) over repeats, in seconds per step.

    Minima, because the noise here (other processes on a 2-core machine) only adds time.
    """
    t_long = min(fn(long) for _ in range(repeats))
    t_short = min(fn(short) for _ in range(repeats))
    return (t_long - t_short) / (long - short)


def main() -> None:
    """Run both comparisons and print (and optionally save) the numbers."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json")
    parser.add_argument("--xtb-steps", type=int, default=400)
    parser.add_argument("--skip-xtb", action="store_true")
    args = parser.parse_args()
    dt_ps = 0.5e-3
    results = {}
    short, long = 2000, 12000
    harm = ["--model-option", f"k={K_EV_A2}", "--criteria", "non_finite"]
    t_h = per_step(lambda n: harness_run("harmonic", n * dt_ps, harm), short, long, args.repeats)
    t_b = per_step(bare_ipi_run, short, long, args.repeats)
    t_s = per_step(lambda n: bare_ipi_run(n, True), short, long, args.repeats)
    results["harmonic_ms_per_step"] = {
        "harness": t_h * 1e3, "bare_ipi_properties_only": t_b * 1e3,
        "bare_ipi_same_trajectory_outputs": t_s * 1e3,
        "overhead_percent_vs_properties_only": 100 * (t_h / t_b - 1),
        "overhead_percent_vs_same_outputs": 100 * (t_h / t_s - 1)}
    if args.skip_xtb:
        print(json.dumps(results, indent=1))
        return
    short, long = args.xtb_steps // 4, args.xtb_steps
    t_x = per_step(lambda n: harness_run("xtb", n * dt_ps, []), short, long, args.repeats)
    t_a = per_step(ase_langevin_run, short, long, args.repeats)
    ns_day = lambda t: dt_ps * 1e-3 / t * 86400  # noqa: E731
    results["xtb_ns_per_day"] = {"harness": ns_day(t_x), "ase_langevin": ns_day(t_a),
                                 "ratio": t_a / t_x}
    print(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
