"""``analysis triage OUT``: why each failed run failed, judged against the reference method.

Writes ``triage.json`` (one entry per failed run: ``file``, ``bond``, ``classification``, the
forces along the bond, the error series), ``triage.md`` and ``triage-<challenge>.png`` into
``OUT/reports``; ``--export-failures F.extxyz`` writes the failure frames labelled with the
reference. The computation is in :mod:`analysis.triage`; the rule in ``docs/triage.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from analysis.sections import Figure, Section
from harness.errors import UserError

#: Stored frames taken before the every-step record (spread from the start of the run).
DEFAULT_EARLIER = 4


def add_reference_flags(p: argparse.ArgumentParser) -> None:
    """The flags that choose and run the reference (shared with ``analysis errors``)."""
    p.add_argument("paths", nargs="+", metavar="OUT", help="output folders or .h5 files")
    p.add_argument("--report-dir", help="where to write the results (default OUT/reports)")
    p.add_argument("--reference-model", metavar="MODEL",
                   help="registry model used as the reference (default: the challenge's "
                   "reference_model, xtb)")
    p.add_argument("--model-file", help="model file of the reference model")
    p.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                   help="option of the reference model's calculator, repeatable")
    p.add_argument("--jobs", type=int, default=1, help="reference calls in parallel "
                   "(processes, one thread each; default 1)")
    p.add_argument("--max-frames", type=int, default=None, help="refuse to start when more "
                   "than this many frames need a reference call (cached frames are free)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def register(subparsers) -> None:
    """Add the ``triage`` subcommand."""
    p = subparsers.add_parser("triage", help="why models failed: model artefact or physical, "
                              "from the reference's forces on the steps before each failure")
    add_reference_flags(p)
    p.add_argument("--earlier", type=int, default=DEFAULT_EARLIER,
                   help=f"stored frames before the approach, from the start (default "
                   f"{DEFAULT_EARLIER})")
    p.add_argument("--force-threshold", type=float, default=None, metavar="EV_PER_A",
                   help="forces along the bond below this are no evidence (default 0.5)")
    p.add_argument("--export-failures", metavar="FILE.extxyz",
                   help="write the steps before every failure with the model's and the "
                   "reference's energies and forces (keys in docs/triage.md)")
    p.set_defaults(func=run)


def settings_from(args: argparse.Namespace, cache_dir: Path):
    """The :class:`ReferenceSettings` of the shared flags (checked)."""
    from analysis.triage.study import ReferenceSettings

    if args.jobs < 1:
        raise UserError(f"--jobs {args.jobs}: give at least 1")
    if args.max_frames is not None and args.max_frames < 0:
        raise UserError(f"--max-frames {args.max_frames}: give 0 or more")
    return ReferenceSettings(reference_model=args.reference_model,
                             model_file=args.model_file, model_options=args.model_option,
                             jobs=args.jobs, max_frames=args.max_frames, cache_dir=cache_dir,
                             announce=lambda text: print(text, file=sys.stderr, flush=True))


def run(args: argparse.Namespace) -> int:
    """Entry point of ``analysis triage``."""
    from analysis.observables.base import report_dir
    from analysis.progress import Progress
    from analysis.triage.triage import FORCE_THRESHOLD_EV_PER_A

    threshold = FORCE_THRESHOLD_EV_PER_A if args.force_threshold is None \
        else args.force_threshold
    if threshold <= 0 or args.earlier < 0:
        raise UserError("--force-threshold must be > 0 and --earlier >= 0")
    out = report_dir(args.report_dir, args.paths)
    settings = settings_from(args, out / "reference-cache")
    with Progress(1, enabled=not args.quiet) as progress:
        progress.start("reference on the frames before each failure")
        settings.on_fraction = progress.partial
        result = compute([Path(p) for p in args.paths], settings, args.earlier, threshold)
        progress.finish()
    entries, runs = result["entries"], result.pop("labelled")
    if not entries:
        print(f"no failed runs among {result['n_runs']} runs: nothing to triage")
        return 0
    write_outputs(result, out)
    print(result["markdown"].split("\n\n| run |")[0])
    if args.export_failures:
        from analysis.triage.export import write_labelled

        n = write_labelled(Path(args.export_failures), runs, entries)
        print(f"\nwrote {n} labelled frames before {len(runs)} failures to "
              f"{args.export_failures}")
    print(f"\nreport: {out / 'triage.md'}, {out / 'triage.json'}")
    return 0


def compute(paths: list[Path], settings, earlier: int = DEFAULT_EARLIER,
            threshold: float | None = None) -> dict[str, Any]:
    """Triage every failed run under ``paths``: entries, summary, Markdown, labelled runs."""
    from analysis.triage import study
    from analysis.triage import triage as T

    threshold = T.FORCE_THRESHOLD_EV_PER_A if threshold is None else threshold
    failed, n_runs = study.failed_records(paths)
    selected = [(r, study.triage_frames(r, earlier)) for r in failed]
    selected = [(r, frames) for r, frames in selected if len(frames)]  # no frame: nothing to say
    labelled = study.label_runs(selected, settings)
    entries = [T.triage_run(run.record, run.frames, run.ref_energy, run.ref_forces,
                            run.base.numbers, run.cell, run.method.label, threshold)
               for run in labelled]
    summary = T.summarize(entries)
    references = ", ".join(sorted({m.label for m in settings.used.values()})) or "-"
    markdown = T.to_markdown(entries, summary, references, threshold) + study.failed_note(settings)
    cost = {name: {"reference_calls": c.calls, "cached_frames": c.cached,
                   "seconds_per_call": round(c.seconds_per_call, 4),
                   "reference_failed_frames": settings.reference_failed.get(name, 0)}
            for name, c in settings.cost.items()}
    return {"entries": entries, "summary": summary, "markdown": markdown, "n_runs": n_runs,
            "threshold_ev_per_angstrom": threshold, "reference": references, "cost": cost,
            "labelled": labelled}


def write_outputs(result: dict[str, Any], out: Path) -> list[Path]:
    """``triage.json``, ``triage.md`` and one figure per challenge; returns the figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.triage.plots import plot_error_growth, save

    data = {k: result[k] for k in ("reference", "threshold_ev_per_angstrom", "n_runs", "cost",
                                   "summary", "entries")}
    (out / "triage.json").write_text(json.dumps(data, indent=1))
    (out / "triage.md").write_text(result["markdown"])
    figures = []
    for challenge in sorted({e["challenge"] for e in result["entries"]}):
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        plot_error_growth([e for e in result["entries"] if e["challenge"] == challenge], axes)
        fig.suptitle(f"{challenge}: errors against the reference before each failure")
        figures.append(save(fig, out / f"triage-{challenge}.png"))
    return figures


def report_sections(files: list[Path], workdir: Path) -> list[Section]:
    """"Why models failed", per challenge with failed runs (reference results are cached)."""
    from analysis.triage import triage as T
    from analysis.triage.study import failed_note, report_settings

    settings = report_settings(files, workdir)
    try:
        result = compute(files, settings)
    except UserError as exc:
        return [Section(_challenge_of(files), "Why models failed", f"Not evaluated: {exc}.")]
    if not result["entries"]:
        return []
    figures = write_outputs(result, workdir)
    sections = []
    for challenge in sorted({e["challenge"] for e in result["entries"]}):
        entries = [e for e in result["entries"] if e["challenge"] == challenge]
        summary = T.summarize(entries)
        text = T.to_markdown(entries, summary, settings.used[challenge].label,
                             result["threshold_ev_per_angstrom"], heading="####")
        text = text.split("\n", 2)[2] + failed_note(settings, challenge)  # report: the title
        figure = next(f for f in figures if f.name == f"triage-{challenge}.png")
        sections.append(Section(challenge, "Why models failed", text, [Figure(
            figure, "Errors against the reference on the steps before each failure (red: "
            "model artefact, blue: physical, grey: unclear); right: force along the broken "
            "bond, model solid, reference dashed.")], [],
            {"observable": "triage", "summary": summary}))
    return sections


def _challenge_of(files: list[Path]) -> str:
    from analysis.trajectories import read_record

    return read_record(files[0]).challenge if files else "all"
