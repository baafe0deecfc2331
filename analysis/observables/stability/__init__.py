"""Stability: which runs survived, how far the others got, which bonds broke.

``analysis stability OUT`` writes stability.{md,json} and survival.png; the report section
shows the same per challenge. Computing lives in :mod:`.compute`. Stability applies to every
challenge (no ``[observables]`` entry needed) and compares no reference: its verdict is the
number of failures per ns of simulated time with its exact 95% interval against
:data:`rule.MAX_FAILURES_PER_NS`, and runs shorter than :data:`rule.MIN_RUN_PS` are never
evidence of stability (:mod:`.rule`; docs/statistics.md, "Stability").
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.observables import base
from analysis.observables.stability import rule
from analysis.sections import Figure, Section, Verdict
from analysis.settings import DEFAULT, AnalysisSettings
from harness.errors import UserError

if TYPE_CHECKING:  # imported when used: `analysis --help` imports every command module
    from analysis.trajectories import RunRecord

class Stability(base.Observable):
    """Survival of the runs of every (model, temperature)."""

    name = "stability"
    title = "Stability"
    help = "which runs survived, time to failure, broken bonds"
    shared = ("challenge", "report_dir")

    def applies_to(self, challenge) -> bool:
        return True

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--recheck", action="append", metavar="CRITERIA",
                            help="re-evaluate every trajectory with these criteria "
                            "(e.g. mdsim,mlipx)")
        parser.add_argument("--export-failures", metavar="FILE.extxyz",
                            help="collect the frames before every failure (for retraining)")

    def command(self, args: argparse.Namespace) -> int:
        return command(args)

    def sections(self, challenge, files: list[Path], workdir: Path,
                 settings: AnalysisSettings = DEFAULT) -> list[Section]:
        from analysis.trajectories import read_record

        records = [r for r in map(read_record, files) if r.fixed_temperature]
        return [_section(records[0].challenge, records, workdir)] if records else []

    def report_sections(self, files: list[Path], workdir: Path,
                        settings: AnalysisSettings = DEFAULT) -> list[Section]:
        """One stability section per challenge found in ``files`` (known here or not; no
        setting changes it)."""
        from analysis.trajectories import read_record

        by_challenge: dict[str, list[RunRecord]] = defaultdict(list)
        for path in files:
            record = read_record(path)
            if record.fixed_temperature:  # ramps and sweeps: their own sections
                by_challenge[record.challenge].append(record)
        return [_section(challenge, records, workdir)
                for challenge, records in sorted(by_challenge.items())]


def command(args: argparse.Namespace) -> int:
    """``analysis stability OUT``."""
    from analysis import trajectories
    from analysis.observables.stability import compute

    paths = trajectories.find([Path(p) for p in args.paths])
    records = [trajectories.read_record(p) for p in paths]
    records = own_runs(records, args.paths)
    if args.challenge:
        records = [r for r in records if r.challenge == Path(args.challenge).name]
        if not records:
            raise UserError(f"--challenge {args.challenge}: no such runs under "
                                 f"{', '.join(args.paths)}")
    summary = compute.summarize(records)
    summary["verdicts"] = [vars(verdict(g)) for g in summary["groups"]]
    if args.recheck:
        from harness.stability.reevaluate import reevaluate

        criteria = [c for item in args.recheck for c in item.split(",") if c]
        for row in summary["runs"]:
            event = reevaluate(Path(row["file"]), criteria)
            row["recheck"] = "ok" if event is None else f"{event.kind} at {event.time_ps:.4g} ps"
        summary["recheck_criteria"] = criteria
    report_dir = base.report_dir(args.report_dir, args.paths)
    (report_dir / "stability.json").write_text(json.dumps(summary, indent=1))
    markdown = compute.to_markdown(summary)
    (report_dir / "stability.md").write_text(markdown)
    fig, ax = base.new_figure(figsize=(7, 4.5))
    compute.plot_survival(summary, ax)
    base.save_figure(fig, report_dir / "survival.png")
    print(markdown.split("## Runs")[0].rstrip())
    if args.recheck:
        changed = [r for r in summary["runs"] if (r["recheck"] == "ok") != r["survived"]]
        print(f"\nre-evaluated with {','.join(summary['recheck_criteria'])}: "
              f"{sum(r['recheck'] == 'ok' for r in summary['runs'])} of {len(summary['runs'])} "
              f"runs pass; {len(changed)} differ from the run's own verdict")
    if args.export_failures:
        from harness.stability.export import collect

        failed = [r.path for r in records if r.status == "failed"]
        n = collect(failed, Path(args.export_failures))
        print(f"\nwrote {n} frames before {len(failed)} failures to {args.export_failures}")
    print(f"\nreport: {report_dir / 'stability.md'}, {report_dir / 'stability.json'}, "
          f"{report_dir / 'survival.png'}")
    return 0


def own_runs(records: list[RunRecord], paths: list[str]) -> list[RunRecord]:
    """The fixed-temperature runs among ``records``; says on stderr how many ramp and sweep
    runs were left to their own commands, and raises when nothing is left.

    A heating ramp's failure is its breaking temperature (``analysis ramp``), and a run of a
    time-step sweep is one point of the sweep (``analysis dt-sweep``): neither is evidence of
    stability at the temperature and time step it is filed under.
    """
    kept = [r for r in records if r.fixed_temperature]
    left = defaultdict(int)
    for record in records:
        if not record.fixed_temperature:
            left[record.protocol] += 1
    if left:
        where = {"ramp": "analysis ramp", "dt-sweep": "analysis dt-sweep"}
        print("left out (analysed by their own commands): " + "; ".join(
            f"{n} {name} runs ({where.get(name, 'its own command')})"
            for name, n in sorted(left.items())), file=sys.stderr, flush=True)
    if not kept:
        raise UserError(f"no fixed-temperature runs under {', '.join(paths)}: heating ramps "
                        "are analysed by 'analysis ramp', time-step sweeps by "
                        "'analysis dt-sweep'")
    return kept


def _section(challenge: str, records: list[RunRecord], workdir: Path) -> Section:
    from analysis.observables.stability import compute

    summary = compute.summarize(records)
    figure = workdir / f"survival-{challenge}.png"
    plot_survival_by_temperature(summary, figure)
    verdicts = [verdict(g) for g in summary["groups"]]
    criteria = _criteria(records)
    text = [
        "Runs that reached their planned length without a failure event of the watchdog "
        f"(criteria: {criteria}), per model and temperature. A failed run keeps its frames "
        "up to the event; the survival curves count runs still intact over time "
        "(Kaplan-Meier; unfinished runs are censored at the time they reached).",
        "",
        _groups_table(summary),
        "",
        f"**Tolerance**: a model is judged stable at a temperature when, with 95% confidence, "
        f"its runs fail at most {rule.MAX_FAILURES_PER_NS:g} times per ns of simulated time "
        "(exact Poisson interval of the failures over the summed simulated time of its runs, "
        "each up to its failure or end); unstable when the whole interval lies above; "
        "inconclusive otherwise. A run that did not fail counts as evidence of stability only "
        f"when it reached {rule.MIN_RUN_PS:g} ps: short runs can show a model unstable, never "
        "stable. The scope column says what each verdict rests on.",
    ]
    failed = [r for r in summary["runs"] if r["status"] == "failed"]
    if summary["broken_bonds"]:
        text += ["", "**First broken bond of each failed run** (by element pair):", "",
                 _bonds_table(summary)]
    if summary["log_rank"]:
        text += ["", "**Which model fails sooner** (log-rank test between every two models at "
                 "a temperature):", ""]
        text += [f"- {t['temperature_K']:g} K: {t['text']}" for t in summary["log_rank"]]
    if failed:
        text += ["", "**Failed runs**:", ""]
        text += [_failure_line(r) for r in failed]
    caption = ("Fraction of runs still intact versus simulated time (Kaplan-Meier), one panel "
               "per temperature, shaded: 95% band; the legend gives intact/total runs per "
               "model.")
    return Section(challenge=challenge, title="Stability", markdown="\n".join(text),
                   figures=[Figure(figure, caption)], verdicts=verdicts,
                   data={"observable": "stability", "summary": summary})


def _failure_line(run: dict[str, Any]) -> str:
    what = run["failure_kind"]
    if run["broken"] and run["broken"] != what:
        what += f" {run['broken']}"
    return (f"- {run['model']}, {run['temperature_K']:g} K, replica {run['replica']}: {what} "
            f"at {run['reached_ps']:.4g} ps")


def _criteria(records: list[RunRecord]) -> str:
    from harness import h5md

    names: set[str] = set()
    for record in records[:50]:
        watchdog = h5md.read_meta(record.path)["run_spec"].get("watchdog") or {}
        names.update(watchdog.get("criteria") or [])
    return ", ".join(sorted(names)) or "not recorded"


def verdict(group: dict[str, Any]) -> Verdict:
    """The stability verdict of one (model, temperature) group of :func:`compute.summarize`.

    Failures per simulated ns with their exact 95% interval against
    :data:`rule.MAX_FAILURES_PER_NS`; runs shorter than :data:`rule.MIN_RUN_PS` are never
    evidence of stability (:mod:`.rule`). The decision, its reason and its scope are data from
    the rule; the words below only phrase them.
    """
    judgement = group["judgement"]
    rate = judgement["failures_per_ns"]
    return Verdict("stability", group["model"], group["temperature_K"], None,
                   _verdict_detail(group, judgement), decision=judgement["decision"],
                   value=rate["value"], ci_low=rate["ci_low"], ci_high=rate["ci_high"],
                   tolerance=judgement["tolerance_per_ns"], n_runs=group["runs"],
                   unit="failures/ns", method="exact Poisson on simulated time",
                   scope=judgement["scope"], reason=judgement["reason"])


#: How each reason of :data:`rule.REASONS` reads; ``{needed}``: ns still needed.
REASON_TEXT = {
    "rate_within_tolerance": "the whole interval lies within the tolerance",
    "rate_above_tolerance": "the whole interval lies above the tolerance",
    "runs_too_short": "runs that did not fail count as evidence of stability only from "
                      "{min_run} ps on; {needed} ns more in such runs without a failure would "
                      "decide",
    "too_little_time": "the interval straddles the tolerance; {needed} ns more simulated "
                       "without a failure would decide",
    "no_time": "no simulated time yet",
}


def _verdict_detail(group: dict[str, Any], judgement: dict[str, Any]) -> str:
    """The stability verdict in words: scope, runs, rate, reason, descriptions."""
    scope = judgement["scope"]
    runs, failed = group["runs"], group["failed"]
    if failed:
        kinds = ", ".join(f"{k} x{n}" for k, n in sorted(group["failure_kinds"].items()))
        counts = (f"{failed} of {runs} runs failed ({kinds}; median time to failure "
                  f"{group['median_time_to_failure_ps']:.3g} ps)")
    else:
        counts = f"{group['stable']} of {runs} runs intact"
    if group["unfinished"]:
        counts += f", {group['unfinished']} unfinished"
    needed = judgement["needed_ns"]
    reason = REASON_TEXT[judgement["reason"]].format(
        min_run=f"{scope['min_run_ps']:g}", needed="-" if needed is None else f"{needed:.3g}")
    share, intact = judgement["failed_share"], judgement["survival_at_planned"]
    simulated = (f"{scope['exposure_ns']:.4g} ns" if scope["exposure_ns"] >= 1
                 else f"{scope['exposure_ns'] * 1000:.4g} ps")
    return (f"scope: {scope['label']} ({simulated} simulated); "
            f"{counts}; failures per ns {_ci(judgement['failures_per_ns'])} (tolerance: at "
            f"most {judgement['tolerance_per_ns']:g} per ns with 95% confidence): {reason}; "
            f"described: failed share {_ci(share)} (Wilson), fraction intact at "
            f"{judgement['survival_at_ps']:.4g} ps {_ci(intact)} (Kaplan-Meier)")


def _groups_table(summary: dict[str, Any]) -> str:
    rows = ["| model | T (K) | intact / runs | failed | unfinished | failures per ns "
            "[95%] | median time to failure (ps) [95%] | failure kinds | scope |",
            "|---|---:|---:|---:|---:|---|---|---|---|"]
    for g in summary["groups"]:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(g["failure_kinds"].items())) or "-"
        rows.append(f"| {g['model']} | {g['temperature_K']:g} | {g['stable']} / {g['runs']} | "
                    f"{g['failed']} | {g['unfinished']} | {_ci(g['failures_per_ns'])} | "
                    f"{_ci(g['median_time_to_failure'], 'not reached')} | {kinds} | "
                    f"{g['judgement']['scope']['label']} |")
    return "\n".join(rows)


def _ci(interval: dict[str, Any], missing: str = "-") -> str:
    """``1.2 [0.4, 3.1]`` of an interval dict (None bounds: not reached / open)."""
    def num(x: float | None, none: str) -> str:
        return none if x is None else f"{x:.3g}"

    if interval.get("value") is None:
        return missing
    return (f"{num(interval['value'], missing)} [{num(interval.get('ci_low'), '0')}, "
            f"{num(interval.get('ci_high'), 'open')}]")


def _bonds_table(summary: dict[str, Any]) -> str:
    columns = sorted({c for counts in summary["broken_bonds"].values() for c in counts})
    rows = ["| bond | " + " | ".join(columns) + " |", "|---" + "|---:" * len(columns) + "|"]
    for pair, counts in summary["broken_bonds"].items():
        rows.append(f"| {pair} | " + " | ".join(str(counts.get(c, 0)) for c in columns) + " |")
    return "\n".join(rows)


def plot_survival_by_temperature(summary: dict[str, Any], path: Path) -> Path:
    """Kaplan-Meier curves with 95% bands, one panel per temperature; saved as PNG."""
    from analysis import survival

    temps = sorted({g["temperature_K"] for g in summary["groups"]})
    fig, axes = base.new_figure(1, len(temps), figsize=(3.6 * len(temps) + 1.0, 3.6),
                                sharey=True, squeeze=False)
    for ax, temp in zip(axes[0], temps, strict=True):
        curves = {g["model"]: km_from_json(g["kaplan_meier"]) for g in summary["groups"]
                  if g["temperature_K"] == temp}
        survival.plot_survival(ax, curves, title=f"{temp:g} K")
    axes[0][0].set_ylabel("fraction of runs intact")
    return base.save_figure(fig, path, dpi=110)


def km_from_json(data: dict[str, Any]):
    """A :class:`analysis.survival.KaplanMeier` back from its JSON form."""
    import numpy as np

    from analysis import survival

    def arr(key: str) -> np.ndarray:
        return np.array([np.nan if x is None else x for x in data[key]], dtype=float)

    return survival.KaplanMeier(arr("time_ps"), arr("fraction"), arr("ci_low"), arr("ci_high"),
                                np.asarray(data["at_risk"]), np.asarray(data["failures"]),
                                float(data["end_ps"]), int(data["n_runs"]))

OBSERVABLE = Stability()
register = OBSERVABLE.register
report_sections = OBSERVABLE.report_sections
