"""What the report says, in which order: a :class:`analysis.report.Report` as blocks.

Order: title and reading guide; verdicts at a glance; per challenge the models compared, then
every section (stability first) with its figures and verdicts; a provenance appendix (every
model, every run, the commands, the software, and how each section was produced).
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from analysis.render import FAIL, NONE, PASS, Alert, Block, Details, Heading, Image, Text, cell
from analysis.render import shift_headings as _shift
from analysis.render import slug as _slug
from analysis.report import ChallengeReport, Report
from analysis.runs import RunInfo
from analysis.sections import Section, Verdict

TITLE = "Force-field crash test: models side by side"


def mark(decision: str | bool | None) -> str:
    """The table symbol of a verdict's decision (or of an old-style ``agrees``)."""
    if not isinstance(decision, str):
        decision = {True: "agrees", False: "differs"}.get(decision, "no_reference")
    return {"agrees": f"{PASS} yes", "differs": f"{FAIL} no",
            "inconclusive": f"{NONE} inconclusive", "no_reference": f"{NONE} n/a"}[decision]


def blocks(report: Report) -> list[Block]:
    """The report as a list of blocks, ready for :mod:`analysis.render`."""
    taken: set[str] = set()
    out: list[Block] = [Heading(1, TITLE, _slug(TITLE, taken)), Text(_intro(report))]
    if report.unreadable:
        out.append(unreadable_alert(report.unreadable))
    out += [Heading(2, "Verdicts at a glance", _slug("Verdicts at a glance", taken))]
    out += _glance(report)
    figure = [0]
    for chal in report.challenges:
        out += _challenge(chal, taken, figure, report.only)
    out += _appendix(report, taken)
    return out


def unreadable_alert(files: list) -> Alert:
    """The warning that names the files left out as unreadable, each with its reason."""
    lines = [f"{len(files)} file(s) could not be read and are left out of this report "
             "(`analysis info FILE.h5` says more):", ""]
    lines += [f"- `{cell(str(item.path))}`: unreadable, {cell(item.reason)}" for item in files]
    return Alert("warning", "\n".join(lines))


def _challenge_title(chal: ChallengeReport) -> str:
    prefix = f"Challenge {chal.tea_label}: " if chal.tea_label else "Challenge: "
    return prefix + chal.title


def _root(report: Report) -> Path:
    paths = [p.resolve() for p in report.inputs]
    try:
        return Path(os.path.commonpath(paths)) if len(paths) > 1 else \
            (paths[0] if paths[0].is_dir() else paths[0].parent)
    except ValueError:
        return Path("/")


def _intro(report: Report) -> str:
    from harness import __version__

    runs = report.runs
    models = sorted({r.model_label for r in runs})
    chals = ", ".join(f"`{c.name}`" for c in report.challenges)
    return (f"Trajectories under `{_root(report)}`: **{len(runs)} runs** of "
            f"**{len(models)} models** ({', '.join(models)}) on {chals}. "
            f"Generated {report.created} by tea-harness {__version__}.\n\n"
            "All models of a challenge ran under identical conditions: the same starting "
            "structures, seeds, integrator, thermostat and time step. Each observable is shown "
            "for the models side by side and, where the challenge has one, against the "
            "reference. Every verdict states its number with a 95% interval from the replicas "
            "(bootstrap over the runs; over time blocks of the runs where a group has fewer "
            "than 4) and its tolerance: "
            f"{PASS} the whole interval within the tolerance, {FAIL} the whole interval "
            f"outside, {NONE} inconclusive (the interval straddles the tolerance) or nothing "
            "to compare yet. "
            "No single model should be trusted alone (TEA 2023, guideline 1): where models "
            "disagree, at least one of them is wrong.")


def _glance(report: Report) -> list[Block]:
    """Per challenge, one row per (model, temperature), one column per observable."""
    out: list[Block] = []
    for chal in report.challenges:
        observables: list[str] = []
        cells: dict[tuple[str, float | None, str], Verdict] = {}
        for section in chal.sections:
            for v in section.verdicts:
                if v.observable not in observables:
                    observables.append(v.observable)
                cells[(v.model, v.temperature_K, v.observable)] = v
        rows = sorted({(m, t) for m, t, _ in cells},
                      key=lambda mt: (mt[0], mt[1] is None, mt[1] or 0.0))
        lines = [f"**{_challenge_title(chal)}**", ""]
        if observables:
            lines += ["| model | T (K) | " + " | ".join(map(cell, observables)) + " |",
                      "|---|---:" + "|---" * len(observables) + "|"]
            for model, temp in rows:
                marks = [_glance_cell(cells[(model, temp, o)]) if (model, temp, o) in cells
                         else NONE for o in observables]
                label = "all" if temp is None else f"{temp:g}"
                lines.append(f"| {cell(model)} | {label} | " + " | ".join(marks) + " |")
        else:
            lines.append("No section gave a verdict.")
        out.append(Text("\n".join(lines)))
    return out


def scope_label(v: Verdict) -> str:
    """What a verdict rests on, in a few words (``paired by start, first 0.5 ps``; '' if unsaid)."""
    return str((v.scope or {}).get("label") or "")


def _glance_cell(v: Verdict) -> str:
    """A summary cell: the decision's mark and, beside it, the verdict's scope."""
    if v.decision == "no_reference" and not scope_label(v):
        return mark(v.decision)
    return cell(f"{mark(v.decision)} ({scope_label(v) or 'scope not stated'})")


def _challenge(chal: ChallengeReport, taken: set[str], figure: list[int],
               only: list[str] | None = None) -> list[Block]:
    title = _challenge_title(chal)
    out: list[Block] = [Heading(2, title, _slug(title, taken)), Text(_setup(chal))]
    if only is not None:
        out.append(Alert("warning", f"Only the sections {', '.join(only)} were built "
                         "(`--sections`); run the report without it for every observable."))
    elif chal.missing:
        out.append(Alert("warning", "This challenge declares observables that no analysis "
                         f"module reported: {', '.join(chal.missing)}. Install or update the "
                         "module that provides them (see docs/report.md, 'Adding a section')."))
    for outcome in chal.outcomes:
        if outcome.error:
            out.append(Alert("error", f"The section provider `{outcome.provider}` failed on "
                             f"this challenge: `{outcome.error}`. The rest of the report is "
                             "complete; run the single command for details."))
        for section in outcome.sections:
            out += _section(section, taken, figure)
    return out


def _setup(chal: ChallengeReport) -> str:
    thermostatted = [r.spec for r in chal.runs if r.spec.get("ensemble", "nvt") == "nvt"]
    spec = thermostatted[0] if thermostatted else chal.runs[0].spec
    by_model: dict[str, list[RunInfo]] = defaultdict(list)
    for run in chal.runs:
        by_model[run.model_label].append(run)
    lines = [f"Challenge `{chal.name}`. Protocol of these runs: time step {spec['dt_fs']:g} fs, "
             + (f"{spec['thermostat']} thermostat (tau {spec['thermostat_tau_fs']:g} fs), "
                if thermostatted else "no thermostat (NVE), ")
             + f"a frame every {spec['stride']} steps."]
    nve = sorted({r.model_label for r in chal.runs if r.spec.get("ensemble") == "nve"})
    if nve:
        lines[0] += (f" Runs without a thermostat (`--ensemble nve`, constant energy): "
                     f"{', '.join(nve)}.")
    if chal.reference_method:
        lines[0] += f" Reference method: {chal.reference_method}."
    if chal.declared:
        lines[0] += f" Declared observables: {', '.join(chal.declared)}."
    lines += ["", "| model | family | runs | temperatures (K) | simulated (ps) | planned (ps) |",
              "|---|---|---:|---|---:|---:|"]
    for model, runs in sorted(by_model.items()):
        temps = ", ".join(f"{t:g}" for t in sorted({r.temperature_K for r in runs}))
        lines.append(f"| {cell(model)} | {cell(_family(runs[0].model))} | {len(runs)} | "
                     f"{temps} | {sum(r.reached_ps for r in runs):.4g} | "
                     f"{sum(r.target_ps for r in runs):.4g} |")
    return "\n".join(lines)


def _family(name: str) -> str:
    from harness import models
    from harness.errors import UserError

    try:
        return f"{name}: {models.get_family(name).description}"
    except UserError:
        return name


def _section(section: Section, taken: set[str], figure: list[int]) -> list[Block]:
    out: list[Block] = [Heading(3, section.title, _slug(section.title, taken)),
                        Text(_shift(section.markdown, 3))]
    for fig in section.figures:
        figure[0] += 1
        out.append(Image(Path(fig.path), figure[0], fig.caption))
    if section.verdicts:
        out.append(Text(_verdict_table(section)))
    return out


def _verdict_table(section: Section) -> str:
    """The verdicts of a section; an observable column only when there are several."""
    several = len({v.observable for v in section.verdicts}) > 1
    rows = ["| " + ("observable | " if several else "") + "model | T (K) | within tolerance | "
            "scope | value [95% interval], tolerance | runs | numbers and tolerance |",
            "|---" * several + "|---|---:|---|---|---|---:|---|"]
    for v in sorted(section.verdicts, key=lambda v: (v.observable, v.model,
                                                     v.temperature_K or 0)):
        temp = "-" if v.temperature_K is None else f"{v.temperature_K:g}"
        rows.append("| " + (f"{cell(v.observable)} | " if several else "")
                    + f"{cell(v.model)} | {temp} | {mark(v.decision)} | "
                    f"{cell(scope_label(v)) or '-'} | {cell(v.interval_text()) or '-'} | "
                    f"{v.n_runs or '-'} | {cell(v.detail)} |")
    name = section.title if several else section.verdicts[0].observable
    return f"**Verdicts: {name}**\n\n" + "\n".join(rows)


# --- provenance appendix ---------------------------------------------------------------------

def _appendix(report: Report, taken: set[str]) -> list[Block]:
    title = "Appendix: provenance"
    out: list[Block] = [Heading(2, title, _slug(title, taken)),
                        Text("How every model and every run was made, as recorded in the "
                             "trajectory files (`analysis info FILE.h5` shows one run).")]
    out += [Heading(3, "Models", _slug("Models", taken)), *_models(report.runs)]
    out += [Heading(3, "Runs", _slug("Runs", taken)), Text(_runs_table(report))]
    out += [Heading(3, "Commands and software", _slug("Commands and software", taken)),
            Text(_software(report.runs))]
    out += [Heading(3, "How this report was made", _slug("How this report was made", taken)),
            Text(_production(report))]
    return out


def _models(runs: list[RunInfo]) -> list[Block]:
    by_model: dict[str, list[RunInfo]] = defaultdict(list)
    for run in runs:
        by_model[run.model_label].append(run)
    rows = ["| model | family | model file | sha256 of the model files | runs |",
            "|---|---|---|---|---:|"]
    out: list[Block] = []
    for label, group in sorted(by_model.items()):
        prov = group[0].provenance
        shas = sorted({str(r.provenance.get("model_sha256")) for r in group})
        sha = ", ".join(f"`{s[:16]}...`" if s != "None" else "-" for s in shas)
        model_file = prov.get("model_file") or "(none: analytic or built in)"
        nfiles = len(prov.get("model_files") or [])
        if nfiles > 1:
            model_file += f" (+{nfiles - 1} files)"
        rows.append(f"| {cell(label)} | {cell(prov.get('model', group[0].model))} | "
                    f"{cell(model_file)} | {sha} | {len(group)} |")
        if len(shas) > 1:
            out.append(Alert("warning", f"Runs labelled `{label}` used {len(shas)} different "
                             "model files: their results are mixed in this report."))
        meta = prov.get("model_metadata") or {}
        if meta:
            out.append(Details(f"{label}: model metadata", _metadata(meta)))
    return [Text("\n".join(rows)), *out]


def _metadata(meta: dict[str, Any]) -> str:
    scalars = [(k, v) for k, v in sorted(meta.items()) if not isinstance(v, dict | list)]
    lines = ["| key | value |", "|---|---|"]
    lines += [f"| {cell(k)} | {cell(v)} |" for k, v in scalars]
    text = json.dumps(meta, indent=1, sort_keys=True, default=str)
    return "\n".join(lines) + f"\n\nFull metadata:\n\n```json\n{text}\n```"


def _runs_table(report: Report) -> str:
    """One row per run; what all runs share (host, start date) is said once above the table."""
    root = _root(report)
    hosts = {str(r.provenance.get("host", "-")) for r in report.runs}
    days = {str(r.provenance.get("start_time") or "-")[:10] for r in report.runs}
    per_host, per_day = len(hosts) > 1, len(days) > 1
    shared = []
    if not per_host:
        shared.append(f"All runs ran on host `{hosts.pop()}`")
    if not per_day:
        shared.append(f"started on {days.pop()}")
    rows = [", ".join(shared) + "." if shared else "",
            "", "| model | T (K) | replica | status | reached / planned (ps) | frames | seed | "
            + ("host | " if per_host else "") + "started | wall time | "
            "file (under OUT/challenge) | content sha256 |",
            "|---|---:|---:|---|---|---:|---:|" + ("---|" if per_host else "")
            + "---|---:|---|---|"]
    for r in report.runs:
        prov = r.provenance
        status = r.status + (f" ({r.failure.get('kind')})" if r.failure else "")
        start = str(prov.get("start_time") or "-")
        rows.append(f"| {cell(r.model_label)} | {r.temperature_K:g} | {r.replica} | "
                    f"{cell(status)} | {r.reached_ps:.4g} / {r.target_ps:.4g} | {r.n_frames} | "
                    f"{prov.get('seed', r.spec.get('seed'))} | "
                    + (f"{cell(prov.get('host', '-'))} | " if per_host else "")
                    + f"{_clock(start) if per_day else start[11:19] or '-'} | "
                    f"{_wall(prov.get('start_time'), prov.get('end_time'))} | "
                    f"`{cell(_short_name(r.path, root / r.challenge, root))}` | "
                    f"`{r.digest[:12]}` |")
    return "\n".join(rows)


def _short_name(path: Path, *roots: Path) -> Path:
    """The path relative to the first root it lies under (the challenge folder, OUT)."""
    for root in roots:
        try:
            return path.resolve().relative_to(root)
        except ValueError:
            continue
    return path


def _clock(stamp: str | None) -> str:
    """``2026-11-21T10:15:55+0000`` as ``2026-11-21 10:15:55``."""
    return "-" if not stamp else stamp[:19].replace("T", "\u00a0")


def _wall(start: str | None, end: str | None) -> str:
    """Wall time between two provenance stamps, '-' when the run has not ended."""
    from datetime import datetime

    if not start or not end:
        return "-"
    try:
        seconds = (datetime.strptime(end, "%Y-%m-%dT%H:%M:%S%z")
                   - datetime.strptime(start, "%Y-%m-%dT%H:%M:%S%z")).total_seconds()
    except ValueError:
        return "-"
    return f"{seconds:.0f}\u00a0s" if seconds < 120 else f"{seconds / 60:.1f}\u00a0min"


def _software(runs: list[RunInfo]) -> str:
    commands: dict[str, int] = defaultdict(int)
    versions: dict[str, set[str]] = defaultdict(set)
    for run in runs:
        commands[str(run.provenance.get("command_line", "-"))] += 1
        for package, version in (run.provenance.get("versions") or {}).items():
            versions[package].add(str(version))
    lines = ["Commands that made the runs:", ""]
    lines += [f"- `{cmd}` ({n} run{'s' if n > 1 else ''})" for cmd, n in sorted(commands.items())]
    lines += ["", "| package | version(s) in the runs |", "|---|---|"]
    for package, seen in sorted(versions.items()):
        flag = " (differs between runs)" if len(seen) > 1 else ""
        lines.append(f"| {cell(package)} | {cell(', '.join(sorted(seen)))}{flag} |")
    return "\n".join(lines)


def _production(report: Report) -> str:
    lines = [f"Report built in {report.seconds:.1f} s. Each section is cached under a key made "
             "of the code of the analysis and the content (SHA-256) of its input files; "
             "'cached' means the result of an earlier report on identical files was reused.",
             "", "| section provider | version | challenge | sections | result | "
             "seconds to compute |",
             "|---|---|---|---:|---|---:|"]
    for chal in report.challenges:
        for o in chal.outcomes:
            how = "error" if o.error else "cached" if o.cached else "computed"
            lines.append(f"| {cell(o.provider)} | {cell(o.version or '-')} | {cell(chal.name)} |"
                         f" {len(o.sections)} | {how} | {o.seconds:.2f} |")
    return "\n".join(lines)
