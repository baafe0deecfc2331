"""``analysis ramp OUT``: breaking temperatures of heating-ramp runs (``--protocol ramp``).

Per model and ramp: runs, runs broken, the median breaking temperature with its 95% interval
(Kaplan-Meier over temperature), and whether the model stays intact to at least a stated
temperature with 95% confidence; per pair of models the log-rank p. The report shows the same
as its "Heating ramps" section with a figure of runs intact against temperature, and
``report.json`` carries ``tables.breaking_temperature`` (per model and ramp a
``breaking_temperature_K`` object: ``value``, ``ci_low``, ``ci_high``, null where the median
is not reached) and ``tables.breaking_temperature_log_rank`` (``p_value`` per pair). Computing
lives in :mod:`analysis.ramp`; definitions in docs/ramps-and-dt-sweeps.md.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from analysis.sections import Figure, Section, Verdict
from harness import jsonutil
from harness.errors import UserError

REPORT_VERSION = "1"
TITLE = "Heating ramps"
OBSERVABLE = "breaking_temperature"


def register(subparsers: Any) -> None:
    """Add the ``ramp`` subcommand."""
    parser = subparsers.add_parser(
        "ramp", help="breaking temperatures of heating-ramp runs, with intervals and the "
        "log-rank test between models",
        description="Heating-ramp runs (python -m harness.launch --protocol ramp): per model "
        "and ramp the median breaking temperature (thermostat temperature at the first "
        "failure; Kaplan-Meier over temperature) with its 95%% interval, and the log-rank p "
        "of every pair of models.")
    parser.add_argument("paths", nargs="+", metavar="OUT", help="output folders or .h5 files")
    parser.add_argument("--intact-to", type=float, metavar="K", default=None,
                        help="the temperature a model must stay intact to (median breaking "
                        "temperature's interval above it; default: the challenge's highest "
                        "TEA temperature)")
    parser.add_argument("--json", action="store_true", help="the tables as JSON")
    parser.add_argument("--plot", type=Path, metavar="PNG",
                        help="also write the runs-intact figure here (one per ramp)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``analysis ramp``."""
    from analysis import ramp, trajectories

    files = trajectories.find([Path(p) for p in args.paths])
    results = ramp.analyse(files)
    if not results:
        raise UserError(f"no heating-ramp runs under {', '.join(args.paths)}; give the --out "
                        "folder of a launch with --protocol ramp")
    if args.intact_to is not None and not args.intact_to > 0:
        raise UserError(f"--intact-to {args.intact_to:g}: give a temperature above 0 K")
    verdicts = [v for r in results for v in verdicts_of(r, args.intact_to)]
    if args.json:
        print(jsonutil.dumps(tables(results, verdicts), indent=1))
    else:
        print(markdown(results, verdicts))
    if args.plot:
        for k, result in enumerate(results):
            target = args.plot if len(results) == 1 else args.plot.with_name(
                f"{args.plot.stem}-{k + 1}{args.plot.suffix}")
            _save_figure(result, target)
            print(f"figure: {target}")
    return 0


def tables(results: list[Any], verdicts: list[Verdict]) -> dict[str, list[dict[str, Any]]]:
    """The tables ``report.json`` carries."""
    from analysis.commands.report import verdict_json

    return {"breaking_temperature": [row for r in results for row in r.table()],
            "breaking_temperature_log_rank": [row for r in results for row in r.pair_table()],
            "breaking_temperature_verdicts": [verdict_json(v) for v in verdicts]}


def required_temperature(challenge: str) -> float | None:
    """The challenge's highest TEA temperature (K), None for a challenge not found."""
    from harness import challenges

    try:
        return max(challenges.load(challenge).protocol.temperatures_K)
    except UserError:
        return None


def intact_at(runs: list[Any], temperature_K: float) -> tuple[int, int]:
    """(runs known intact at ``temperature_K``, runs whose state there is known): a run
    censored below it (still running, stopped by the machinery) says nothing about it."""
    known = [r for r in runs if r.failed or r.temperature_K >= temperature_K]
    return sum(r.temperature_K > temperature_K for r in known), len(known)


def decide(median: Any, runs: list[Any], need: float | None, start_K: float) -> str:
    """Intact to at least ``need`` with 95% confidence (see :func:`verdicts_of`)."""
    if need is None:
        return "no_reference"
    from analysis.stats import proportion_interval

    intact, known = intact_at(runs, need)
    share = proportion_interval(intact, known) if known else None
    if share is not None and median.low >= need and share.low > 0.5:
        decision = "agrees"  # median.low inf: the band never fell to 0.5 within the ramp
    elif share is not None and median.high < need and share.high < 0.5:
        decision = "differs"
    else:
        decision = "inconclusive"
    if decision == "agrees" and start_K >= need:
        decision = "inconclusive"  # the control (every run broken at the start) would agree
    return decision


def verdicts_of(result: Any, intact_to_K: float | None = None) -> list[Verdict]:
    """Per model: intact to at least ``intact_to_K`` with 95% confidence?

    ``agrees``: the median breaking temperature's interval lies wholly above the required
    temperature and so does the Wilson interval of the fraction of runs intact there (above
    one half); ``differs``: both wholly below; ``inconclusive`` otherwise. The second
    condition is needed because the Kaplan-Meier band has no width where no run has broken:
    2 runs intact to the end alone would otherwise "agree" (Wilson: 2 of 2 intact is
    [0.34, 1]). A control whose runs all break at the ramp's start has its whole interval at
    the start temperature, so it cannot agree when the required temperature lies above the
    start; where it lies at or below the start nothing can agree.
    """
    need = intact_to_K if intact_to_K is not None else required_temperature(result.challenge)
    out = []
    for m in result.models:
        value, low, high = m.median.value, m.median.low, m.median.high
        decision = decide(m.median, m.runs, need, result.ramp.start_K)
        detail = (f"{m.model}, heating {result.ramp.text}: median breaking temperature "
                  f"{_range_text(value, low, high, result.ramp.end_K)}, {m.n_failed} of "
                  f"{len(m.runs)} runs broke")
        if need is not None:
            intact, known = intact_at(m.runs, need)
            detail += f"; {intact} of {known} intact at {need:g} K, required to stay intact"
        out.append(Verdict(
            observable=OBSERVABLE, model=f"{m.model}-{result.ramp.label}",
            temperature_K=None, agrees=None, detail=detail, decision=decision,
            value=value if math.isfinite(value) else None,
            ci_low=low if math.isfinite(low) else None,
            ci_high=high if math.isfinite(high) else None, tolerance=need,
            n_runs=len(m.runs), unit="K",
            scope={"kind": "ramp", "label": f"{len(m.runs)} runs heated {result.ramp.text}"},
            method="Kaplan-Meier over temperature, log-log band, and the Wilson interval of "
            "the fraction intact at the tolerance; scope: this ramp's rate (a slower ramp "
            "breaks lower); control: runs that all break at the start"))
    return out


def _range_text(value: float, low: float, high: float, end_K: float) -> str:
    def one(x: float) -> str:
        return f"{x:.0f} K" if math.isfinite(x) else f"> {end_K:g} K (not reached)"
    if not math.isfinite(value):
        return f"not reached by {end_K:g} K (lower bound {one(low)})"
    return f"{one(value)} [{one(low)}, {one(high)}]"


def markdown(results: list[Any], verdicts: list[Verdict]) -> str:
    """One table per ramp, then the log-rank p of every pair."""
    lines = []
    by_model = {v.model: v for v in verdicts}
    for r in results:
        lines += [f"**{r.challenge}, heating {r.ramp.text}** ({r.ramp.length_ps:g} ps)", "",
                  "| model | runs | broke | median breaking T (K) | 95% interval (K) | "
                  "intact to | decision |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for m in r.models:
            bt = m.breaking_temperature_K()
            v = by_model.get(f"{m.model}-{r.ramp.label}")
            lines.append(
                f"| {m.model} | {len(m.runs)} | {m.n_failed} | "
                f"{_k(bt['value'], r.ramp.end_K)} | [{_k(bt['ci_low'], r.ramp.end_K)}, "
                f"{_k(bt['ci_high'], r.ramp.end_K)}] | "
                f"{'-' if v is None or v.tolerance is None else f'{v.tolerance:g} K'} | "
                f"{'-' if v is None else v.decision} |")
        if r.p_values:
            lines += ["", "| model A | model B | log-rank p |", "| --- | --- | --- |"]
            lines += [f"| {a} | {b} | {p:.3g} |" for (a, b), p in r.p_values.items()]
        lines.append("")
    lines.append("Breaking temperature: the thermostat's at the run's first failure event; runs "
                 "that reach the end are censored there. '> END' where the median (or a bound) "
                 "is not reached within the ramp.")
    return "\n".join(lines)


def _k(x: float | None, end_K: float) -> str:
    return f"{x:.0f}" if x is not None else f"> {end_K:g}"


def _save_figure(result: Any, target: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis import ramp

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ramp.plot(result, ax)
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)


def report_sections(files: list[Path], workdir: Path) -> list[Section]:
    """"Heating ramps": one section per challenge with ramp runs among the files (all its
    ramps in it, so that its tables are whole in ``report.json``)."""
    from analysis import ramp

    by_challenge: dict[str, list[Any]] = {}
    for result in ramp.analyse(files):
        by_challenge.setdefault(result.challenge, []).append(result)
    sections = []
    for challenge, results in by_challenge.items():
        verdicts = [v for r in results for v in verdicts_of(r)]
        figures = []
        for result in results:
            png = workdir / f"ramp-{challenge}-{result.ramp.label}.png"
            _save_figure(result, png)
            figures.append(Figure(png, f"Heating {result.ramp.text}: fraction of runs intact "
                                  "against the thermostat temperature (Kaplan-Meier with its "
                                  "95% band), one curve per model."))
        sections.append(Section(challenge, TITLE, markdown(results, verdicts), figures,
                                verdicts, {"observable": OBSERVABLE,
                                           "tables": tables(results, verdicts)}))
    return sections
