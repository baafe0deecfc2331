"""``analysis speed OUT``: time per MD step, throughput and conserved-energy drift per model.

The report shows the same as its "Speed and energy drift" section, and ``report.json`` carries
the tables (``tables.speed``, ``tables.drift``, ``tables.speed_runs``). Computing lives in
:mod:`analysis.speed`; the definitions are in docs/speed-and-drift.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from analysis.sections import Section
from harness import jsonutil
from harness.errors import UserError

REPORT_VERSION = "1"
TITLE = "Speed and energy drift"


def register(subparsers: Any) -> None:
    """Add the ``speed`` subcommand."""
    parser = subparsers.add_parser(
        "speed", help="ms per MD step (model and harness), ns/day, stable ns per CPU-hour, "
        "conserved-energy drift per model",
        description="Speed and energy health of the runs: ms per MD step split into the "
        "model's call and the harness, us/atom/step, ns/day per replica and per node, stable "
        "ns per CPU-hour (GPU-hour), and the conserved-energy drift (meV/atom/ps, fit after "
        "the first 20%%) with the runs above the limit.")
    parser.add_argument("paths", nargs="+", metavar="OUT", help="output folders or .h5 files")
    parser.add_argument("--json", action="store_true", help="the tables as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``analysis speed``."""
    from analysis import trajectories

    files = trajectories.find([Path(p) for p in args.paths])
    if not files:
        raise UserError(f"no trajectories under {', '.join(args.paths)}; give the --out "
                        "folder of a launch or .h5 files")
    tables = compute(files)
    print(jsonutil.dumps(tables, indent=1) if args.json else markdown(tables))
    return 0


def compute(files: list[Path]) -> dict[str, list[dict[str, Any]]]:
    """The speed table (per model), the drift table (per model and T) and the runs."""
    from analysis import speed

    runs = [speed.run_health(path) for path in files]
    return {"speed": speed.speed_rows(runs), "drift": speed.drift_rows(runs),
            "speed_runs": [r.to_json() for r in runs]}


def _num(value: float | None) -> str:
    """Three significant digits, '-' when unknown."""
    if value is None:
        return "-"
    return f"{value:.3g}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.2e}"


def markdown(tables: dict[str, list[dict[str, Any]]]) -> str:
    """Both tables and the flagged runs, with what the columns mean."""
    from analysis.render import cell
    from harness.stability.criteria import DRIFT_LIMIT_MEV_PER_ATOM_PS as LIMIT

    unit = "/".join(sorted({r["accelerator"] for r in tables["speed"]})) or "CPU"
    lines = [
        "Time per MD step, per model (median over its runs): **model** is the time in the "
        "model's calls (a `--batch` group's call shared by its runs), **harness** the rest of "
        "the step (i-PI's integrator, the socket, the watchdog, writing). **ns/day per node** "
        "is the simulated time of the model's runs on one host over the time at least one of "
        "them ran there (runs side by side add up). **Stable ns per "
        f"{unit}-hour**: simulated time before any failure over the {unit}-hours charged "
        "(wall time times the cores given with `--threads`, or the run's share of a GPU). "
        "'-': not recorded (older files, the native LAMMPS route).", "",
        "| model | ensemble | runs | atoms | model (ms/step) | harness (ms/step) | "
        "total (ms/step) | µs/atom/step | ns/day per replica | ns/day per node | "
        f"stable ns per {unit}-hour |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in tables["speed"]:
        lines.append(
            f"| {cell(r['model'])} | {r['ensemble']} | {r['runs']} | {r['atoms']} | "
            f"{_num(r['model_ms_per_step'])} | {_num(r['harness_ms_per_step'])} | "
            f"{_num(r['total_ms_per_step'])} | {_num(r['us_per_atom_step'])} | "
            f"{_num(r['ns_per_day_per_replica'])} | {_num(r['ns_per_day_per_node'])} | "
            f"{_num(r['stable_ns_per_device_hour'])} |")
    lines += ["", f"**Conserved-energy drift** (meV/atom/ps): slope of i-PI's conserved "
              "quantity (total energy plus the heat the thermostat exchanged) against time, "
              "fitted after the first 20% of each run (LAMBench's convention) and before any "
              f"failure event; a run is flagged above {LIMIT:g} meV/atom/ps.", "",
              "| model | T (K) | ensemble | runs | median drift | worst run (drift) | "
              f"flagged (> {LIMIT:g}) |",
              "|---|---:|---|---:|---:|---|---:|"]
    for r in tables["drift"]:
        worst = "-" if r["worst_replica"] is None else \
            f"replica {r['worst_replica']} ({_num(r['worst_mev_per_atom_ps'])})"
        lines.append(f"| {cell(r['model'])} | {r['temperature_K']:g} | {r['ensemble']} | "
                     f"{r['runs']} | {_num(r['median_mev_per_atom_ps'])} | {worst} | "
                     f"{r['flagged']} of {r['runs_with_drift']} |")
    flagged = [r for r in tables["speed_runs"] if r["drift_flagged"]]
    if flagged:
        lines += ["", "Flagged runs:", ""]
        lines += [f"- {cell(r['model'])}, {r['temperature_K']:g} K, replica {r['replica']}: "
                  f"{cell(r['drift_reason'])}" for r in flagged]
    return "\n".join(lines)


def report_sections(files: list[Path], workdir: Path) -> list[Section]:
    """One section per challenge: the speed table and the drift table."""
    from analysis import trajectories

    if not files:
        return []
    challenge = trajectories.read_record(files[0]).challenge
    tables = compute(files)
    return [Section(challenge, TITLE, markdown(tables), data={"tables": tables})]
