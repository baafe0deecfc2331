"""``analysis dt-sweep OUT``: time-step sweeps (``--protocol dt-sweep``), per model and dt.

Failure fraction with its interval, conserved-energy drift and RMS fluctuation of the
conserved quantity (mean and spread over runs), the largest sound time step (intact, drift
within a stated bound) and the exponent of the fluctuation against dt (2 for smooth forces).
The report shows the same as its "Time-step sweeps" section with a figure against dt;
``report.json`` carries ``tables.dt_sweep`` and ``tables.dt_sweep_summary``. Computing lives
in :mod:`analysis.dt_sweep`; definitions in docs/ramps-and-dt-sweeps.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from analysis.sections import Figure, Section
from harness import jsonutil
from harness.errors import UserError

REPORT_VERSION = "1"
TITLE = "Time-step sweeps"


def register(subparsers: Any) -> None:
    """Add the ``dt-sweep`` subcommand."""
    parser = subparsers.add_parser(
        "dt-sweep", help="time-step sweeps: failures, drift and conserved-energy fluctuation "
        "per dt, the largest sound dt",
        description="Time-step sweeps (python -m harness.launch --protocol dt-sweep): per "
        "model and time step the failure fraction with its interval, the conserved-energy "
        "drift and the RMS fluctuation of the conserved quantity; the largest time step at "
        "which no run broke and the drift stays within --drift-bound.")
    parser.add_argument("paths", nargs="+", metavar="OUT", help="output folders or .h5 files")
    parser.add_argument("--drift-bound", type=float, default=None, metavar="MEV_PER_ATOM_PS",
                        help="largest mean |drift| of a sound time step (default 1, the "
                        "watchdog's limit)")
    parser.add_argument("--json", action="store_true", help="the tables as JSON")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="also write the figure here")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``analysis dt-sweep``."""
    from analysis import dt_sweep, trajectories
    from harness.stability import criteria as C

    bound = C.DRIFT_LIMIT_MEV_PER_ATOM_PS if args.drift_bound is None else args.drift_bound
    if not bound > 0:
        raise UserError(f"--drift-bound {args.drift_bound:g}: give a bound above 0 "
                        "meV/atom/ps")
    sweeps = dt_sweep.analyse(trajectories.find([Path(p) for p in args.paths]), bound)
    if not sweeps:
        raise UserError(f"no time-step sweep under {', '.join(args.paths)}; give the --out "
                        "folder of a launch with --protocol dt-sweep")
    print(jsonutil.dumps(tables(sweeps), indent=1) if args.json else markdown(sweeps))
    if args.plot:
        _save_figure(sweeps, args.plot)
        print(f"figure: {args.plot}")
    return 0


def tables(sweeps: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """The tables ``report.json`` carries."""
    return {"dt_sweep": [row for s in sweeps for row in s.table()],
            "dt_sweep_summary": [s.summary() for s in sweeps]}


def _num(x: float | None, fmt: str = "{:.3g}") -> str:
    return "-" if x is None else fmt.format(x)


def markdown(sweeps: list[Any]) -> str:
    """One table per model, then its largest sound time step."""
    lines = []
    for s in sweeps:
        lines += [f"**{s.challenge}, {s.model}**", "",
                  "| dt (fs) | runs | broke | failed fraction [95%] | drift (meV/atom/ps) "
                  "mean ± sd | RMS fluctuation (meV/atom) mean ± sd | sound |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for row in s.table():
            lines.append(
                f"| {row['dt_fs']:g} | {row['n_runs']} | {row['n_failed']} | "
                f"{row['failed_fraction']:.2f} [{row['failed_ci_low']:.2f}, "
                f"{row['failed_ci_high']:.2f}] | {_num(row['drift_mev_per_atom_ps'])} ± "
                f"{_num(row['drift_sd'])} | {_num(row['rms_fluctuation_mev_per_atom'])} ± "
                f"{_num(row['rms_sd'])} | {'yes' if row['sound'] else 'no'} |")
        best = s.largest_sound_dt_fs
        lines += ["", f"Largest sound time step: {_num(best, '{:g} fs')} (no run broke, mean "
                  f"|drift| <= {s.drift_bound:g} meV/atom/ps); RMS fluctuation grows as dt^"
                  f"{_num(s.rms_exponent, '{:.2f}')} (2 for smooth forces).", ""]
    return "\n".join(lines)


def _save_figure(sweeps: list[Any], target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis import dt_sweep

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    dt_sweep.plot(sweeps, axes)
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)


def report_sections(files: list[Path], workdir: Path) -> list[Section]:
    """"Time-step sweeps": one section per challenge with sweep runs among the files."""
    from analysis import dt_sweep

    by_challenge: dict[str, list[Any]] = {}
    for sweep in dt_sweep.analyse(files):
        by_challenge.setdefault(sweep.challenge, []).append(sweep)
    sections = []
    for challenge, sweeps in by_challenge.items():
        png = workdir / f"dt-sweep-{challenge}.png"
        _save_figure(sweeps, png)
        sections.append(Section(challenge, TITLE, markdown(sweeps), [Figure(
            png, "Against the time step, per model: the RMS fluctuation of the conserved "
            "quantity (dotted: dt^2 from the smallest step) and the |drift| with its bound.")],
            [], {"observable": "dt_sweep", "tables": tables(sweeps)}))
    return sections
