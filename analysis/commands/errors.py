"""``analysis errors OUT``: per-element and per-atom errors of every model against the reference.

Frames are sampled evenly from every run (``--frames-per-run``), the reference is evaluated on
them (cached by frame content, ``--jobs`` in parallel); failed runs add their steps before the
event as separate rows. Writes ``errors.json``, ``errors.md`` and ``errors-<model>.png`` (one
figure per model) into ``OUT/reports``. Computation: :mod:`analysis.triage.errors`.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from analysis.sections import Figure, Section
from harness.errors import UserError

DEFAULT_FRAMES_PER_RUN = 10


def register(subparsers) -> None:
    """Add the ``errors`` subcommand."""
    from analysis.commands.triage import add_reference_flags

    p = subparsers.add_parser("errors", help="force and energy errors per element and per atom "
                              "against the reference, on frames sampled from every run")
    add_reference_flags(p)
    p.add_argument("--frames-per-run", type=int, default=DEFAULT_FRAMES_PER_RUN,
                   help=f"frames sampled evenly from each run (default {DEFAULT_FRAMES_PER_RUN})")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``analysis errors``."""
    from analysis.commands.triage import settings_from
    from analysis.observables.base import report_dir
    from analysis.progress import Progress

    if args.frames_per_run < 1:
        raise UserError(f"--frames-per-run {args.frames_per_run}: give at least 1")
    out = report_dir(args.report_dir, args.paths)
    settings = settings_from(args, out / "reference-cache")
    with Progress(1, enabled=not args.quiet) as progress:
        progress.start("reference on sampled frames")
        settings.on_fraction = progress.partial
        result = compute([Path(p) for p in args.paths], settings, args.frames_per_run)
        progress.finish()
    write_outputs(result, out)
    print(result["markdown"])
    print(f"report: {out / 'errors.md'}, {out / 'errors.json'}")
    return 0


def compute(paths: list[Path], settings, frames_per_run: int = DEFAULT_FRAMES_PER_RUN,
            ) -> dict[str, Any]:
    """Sample, label and tabulate; returns rows, Markdown and the sampled steps per run."""
    from analysis import trajectories
    from analysis.triage import errors as E
    from analysis.triage import frames as F
    from analysis.triage import study
    from harness import h5md

    selected = []
    without_forces = []
    for path in trajectories.find(paths):
        record = trajectories.read_record(path)
        if not F.has_forces(path):
            # e.g. a compact reference file used as runs: nothing to compare, and nothing to
            # claim about it
            without_forces.append(path)
            continue
        n_frames = h5md.read_meta(path)["n_frames"]
        frames = F.stored_frames(path, F.even_indices(n_frames, frames_per_run))
        if record.status == "failed":
            pre = F.pre_failure_frames(path)
            if pre is not None:
                frames = frames.concat(pre)
        if len(frames):
            selected.append((record, frames))
    labelled = study.label_runs(selected, settings)
    rows = E.error_table(labelled)
    sampled = {str(r.record.path): [int(s) for s, src in zip(r.frames.step, r.frames.source,
                                                               strict=True) if src == "stored"]
               for r in labelled}
    cost = {name: {"reference_calls": c.calls, "cached_frames": c.cached,
                   "seconds_per_call": round(c.seconds_per_call, 4),
                   "reference_failed_frames": settings.reference_failed.get(name, 0)}
            for name, c in settings.cost.items()}
    skipped = without_forces_note(without_forces)
    markdown = E.to_markdown(rows) + study.failed_note(settings) + skipped
    return {"rows": rows, "markdown": markdown, "sampled_steps": sampled,
            "frames_per_run": frames_per_run, "cost": cost, "without_forces_note": skipped,
            "without_forces": [str(p) for p in without_forces]}


def without_forces_note(paths: list[Path]) -> str:
    """One line naming the trajectories left out because they store no forces."""
    if not paths:
        return ""
    names = ", ".join(str(p) for p in paths[:3]) + (f" and {len(paths) - 3} more"
                                                    if len(paths) > 3 else "")
    return (f"\n{len(paths)} trajector{'y stores' if len(paths) == 1 else 'ies store'} no "
            f"forces and {'is' if len(paths) == 1 else 'are'} left out: {names}.\n")


def write_outputs(result: dict[str, Any], out: Path) -> list[Path]:
    """``errors.json``, ``errors.md`` and one figure per (challenge, model)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.triage.plots import plot_element_errors, save

    (out / "errors.json").write_text(json.dumps(
        {k: result[k] for k in ("frames_per_run", "cost", "rows", "sampled_steps")}, indent=1))
    (out / "errors.md").write_text(result["markdown"])
    by_model: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in result["rows"]:
        if row["frames"] == "sampled":
            by_model[(row["challenge"], row["model"])].append(row)
    figures = []
    for (challenge, model), rows in sorted(by_model.items()):
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
        per_atom = {f"{r['temperature_K']:g} K": {"mae": r["per_atom_force_mae"]} for r in rows}
        plot_element_errors(rows, per_atom, axes)
        fig.suptitle(f"{challenge}: {model} against {rows[0]['reference']}")
        name = f"errors-{challenge}-{model}.png".replace("/", "-").replace(" ", "-")
        figures.append(save(fig, out / name))
    return figures


def report_sections(files: list[Path], workdir: Path) -> list[Section]:
    """Errors against the reference, per challenge (reference results are cached)."""
    from analysis.triage import errors as E
    from analysis.triage.study import failed_note, report_settings

    settings = report_settings(files, workdir)
    try:
        result = compute(files, settings)
    except UserError as exc:
        return [Section(_challenge_of(files), "Errors against the reference",
                        f"Not evaluated: {exc}.")]
    if not result["rows"] and result["without_forces"]:
        return [Section(_challenge_of(files), "Errors against the reference",
                        "Not evaluated: " + result["without_forces_note"].strip())]
    figures = write_outputs(result, workdir)
    sections = []
    for challenge in sorted({r["challenge"] for r in result["rows"]}):
        rows = [r for r in result["rows"] if r["challenge"] == challenge]
        text = E.to_markdown(rows, heading="####").split("\n", 2)[2] + \
            failed_note(settings, challenge) + result["without_forces_note"]
        mine = [Figure(f, "Force MAE per element and temperature (left) and per atom (right) "
                       "against the reference, on frames sampled evenly from every run.")
                for f in figures if f.name.startswith(f"errors-{challenge}-")]
        sections.append(Section(challenge, "Errors against the reference", text, mine, [],
                                {"observable": "errors", "rows": rows}))
    return sections


def _challenge_of(files: list[Path]) -> str:
    from analysis.trajectories import read_record

    return read_record(files[0]).challenge if files else "all"
