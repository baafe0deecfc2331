"""``analysis report OUT/``: one HTML page (and its Markdown twin) comparing the models.

The work is done by :mod:`analysis.report` (sections, cache), :mod:`analysis.report_layout`
(what is said) and :mod:`analysis.render` (HTML, Markdown). See docs/report.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from harness import jsonutil


def register(subparsers: Any) -> None:
    """Add the ``report`` subcommand."""
    parser = subparsers.add_parser(
        "report", help="HTML + Markdown report: stability and every observable, models side "
        "by side, verdicts, provenance",
        description="Build a self-contained HTML report (and a Markdown twin) for every "
        "challenge found: stability, every observable with models side by side and against "
        "the reference, verdicts with stated tolerances, and the provenance of every run. "
        "Results are cached by file content: a second report on unchanged data is fast.")
    parser.add_argument("paths", nargs="+", metavar="OUT", help="output folders or .h5 files")
    parser.add_argument("--report-dir", help="where to write report.html, report.md, "
                        "report_files/ and report.json (default: OUT/reports)")
    parser.add_argument("--cache-dir", help="where cached sections are kept (default: "
                        "REPORT_DIR/.cache)")
    parser.add_argument("--no-cache", action="store_true",
                        help="compute every section afresh and keep nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--reference", metavar="DIR",
                        help="reference trajectories (H5MD, e.g. from 'analysis reference "
                        "import') for every observable instead of the challenges' shipped "
                        "ones; 'none' for no reference trajectories")
    parser.add_argument("--no-bootstrap", action="store_true",
                        help="values without intervals, decided on their point values: only "
                        "to time the rest of the report (kept apart in the cache)")
    parser.add_argument("--sections", metavar="NAME[,NAME...]",
                        help="build only these sections, e.g. 'stability,ramachandran' (a "
                        "quick look while iterating; the names are the section providers': "
                        "stability, the observables, errors, triage, speed and plug-ins)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build and write the report; exit code 1 when a section provider failed."""
    from analysis.progress import Progress
    from analysis.report import build, default_report_dir
    from analysis.settings import WORDS, AnalysisSettings
    from harness.errors import UserError

    paths = [Path(p) for p in args.paths]
    if args.reference and args.reference not in WORDS and not Path(args.reference).is_dir():
        raise UserError(f"--reference {args.reference}: no such folder; give a folder of "
                        "reference trajectories (analysis reference import ... --out DIR)")
    settings = AnalysisSettings.make(bootstrap=not args.no_bootstrap, reference=args.reference)
    report_dir = Path(args.report_dir) if args.report_dir else default_report_dir(paths)
    cache_root = None if args.no_cache else \
        Path(args.cache_dir) if args.cache_dir else report_dir / ".cache"
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the report folder {report_dir} ({exc}); "
                        "give a writable --report-dir") from None
    with Progress(total=2, enabled=not args.quiet) as progress:
        only = None if args.sections is None else \
            [name.strip() for name in args.sections.split(",") if name.strip()]
        report = build(paths, cache_root, progress, only=only, settings=settings)
        progress.start("writing report.html and report.md")
        try:
            written = write(report, report_dir)
        finally:
            if report.scratch is not None:
                shutil.rmtree(report.scratch, ignore_errors=True)
        progress.finish()
    _summary(report, written)
    return 1 if report.errors else 0


def write(report: Any, report_dir: Path) -> dict[str, Path]:
    """Write report.html, report.md (+ report_files/) and report.json; returns the paths."""
    from analysis import render, report_layout

    blocks = report_layout.blocks(report)
    out = {"html": report_dir / "report.html", "markdown": report_dir / "report.md",
           "json": report_dir / "report.json"}
    out["markdown"].write_text(render.to_markdown(blocks, report_dir / "report_files"))
    out["html"].write_text(render.to_html(blocks, report_layout.TITLE))
    out["json"].write_text(jsonutil.dumps(_machine_readable(report), indent=1, default=str))
    return out


def _machine_readable(report: Any) -> dict[str, Any]:
    """Verdicts and how each section was made, for scripts and CI."""
    return {
        "created": report.created,
        "inputs": [str(p) for p in report.inputs],
        "sections_only": report.only,
        "challenges": [{
            "name": c.name,
            "runs": len(c.runs),
            "missing_observables": c.missing,
            "sections": [{"provider": o.provider, "cached": o.cached, "seconds": o.seconds,
                          "error": o.error, "titles": [s.title for s in o.sections]}
                         for o in c.outcomes],
            "verdicts": [verdict_json(v) for s in c.sections for v in s.verdicts],
            "tables": tables_json(c.sections),
        } for c in report.challenges],
    }


def tables_json(sections: list[Any]) -> dict[str, Any]:
    """Tables that sections hand to scripts (``Section.data["tables"]``: name -> rows), e.g.
    the speed and drift tables of :mod:`analysis.commands.speed`."""
    out: dict[str, Any] = {}
    for section in sections:
        out.update(section.data.get("tables") or {})
    return out


def verdict_json(v: Any) -> dict[str, Any]:
    """One verdict in report.json: the item-4 fields, ``agrees`` kept for older readers."""
    return {"observable": v.observable, "model": v.model, "temperature_K": v.temperature_K,
            "decision": v.decision, "value": v.value, "ci_low": v.ci_low, "ci_high": v.ci_high,
            "tolerance": v.tolerance, "n_runs": v.n_runs, "unit": v.unit,
            "interval_method": v.method, "agrees": v.agrees, "detail": v.detail,
            "scope": getattr(v, "scope", None) or None, "reason": getattr(v, "reason", ""),
            "control_decision": getattr(v, "control_decision", None),
            "detectable_difference": getattr(v, "detectable", None)}


def _summary(report: Any, written: dict[str, Path]) -> None:
    verdicts = [v for c in report.challenges for s in c.sections for v in s.verdicts]
    counts = {label: sum(v.decision == value for v in verdicts)
              for label, value in (("within tolerance", "agrees"), ("outside", "differs"),
                                   ("inconclusive", "inconclusive"),
                                   ("no comparison", "no_reference"))}
    cached = sum(o.cached for c in report.challenges for o in c.outcomes)
    total = sum(len(c.outcomes) for c in report.challenges)
    print(f"{len(report.runs)} runs, {len(report.challenges)} challenge(s), "
          f"{sum(len(c.sections) for c in report.challenges)} sections ({cached} of {total} "
          f"from cache) in {report.seconds:.1f} s")
    print("verdicts: " + ", ".join(f"{n} {label}" for label, n in counts.items()))
    for outcome in report.errors:
        print(f"error: section provider {outcome.provider} failed on {outcome.challenge}: "
              f"{outcome.error}", file=sys.stderr)
    for chal in report.challenges:
        if chal.missing:
            print(f"note: {chal.name} declares {', '.join(chal.missing)} but no module "
                  "reported it", file=sys.stderr)
    print(f"report: {written['html']} (open in a browser; self-contained), {written['markdown']}")
