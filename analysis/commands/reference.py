"""``analysis reference``: bring a reference of your own (``import``), describe one (``show``)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from harness import jsonutil
from harness.errors import UserError


def register(subparsers) -> None:
    """Add the ``reference`` subcommand with its actions ``import`` and ``show``."""
    p = subparsers.add_parser("reference", help="import a reference trajectory of your own, or "
                              "describe a challenge's reference")
    actions = p.add_subparsers(dest="action", required=True)
    imp = actions.add_parser(
        "import", help="turn extxyz/xyz/ASE .traj/MD22 .npz/H5MD trajectories into reference "
        "files every analysis reads (one file per replica)",
        description="Import reference trajectories (one input file = one replica). Units: "
        "Angstrom, eV; MD22/sGDML .npz in Angstrom and kcal/mol. See docs/reference.md.")
    imp.add_argument("files", nargs="+", metavar="FILE", help="trajectory files")
    imp.add_argument("--challenge", required=True, help="the challenge the trajectories belong "
                     "to (its starts fix the atom order)")
    imp.add_argument("--temperature", type=float, metavar="K",
                     help="temperature of the reference MD in K (needed unless the file states it)")
    imp.add_argument("--frame-interval", metavar="TIME", help="time between stored frames, "
                     "e.g. 10fs (needed unless the file has time stamps)")
    imp.add_argument("--method", required=True, help='the reference method, e.g. "PBE+MBD '
                     '(FHI-aims)"')
    imp.add_argument("--out", required=True, help="folder for the reference files (give it to "
                     "the analyses as --reference)")
    imp.add_argument("--force", action="store_true",
                     help="replace reference files already in --out")
    imp.set_defaults(func=run_import)
    show = actions.add_parser("show", help="method, temperature, runs, length and split-half "
                              "noise of a reference")
    show.add_argument("--challenge", required=True)
    show.add_argument("--reference", metavar="DIR",
                      help="a folder made by 'reference import' (default: the shipped one)")
    show.add_argument("--resamples", type=int, default=1000,
                      help="bootstrap resamples of the split-half intervals (default 1000)")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(func=run_show)


def run_import(args: argparse.Namespace) -> int:
    """``analysis reference import``."""
    from analysis import reference_import
    from harness import challenges
    from harness.units import parse_time_ps

    challenge = challenges.load(args.challenge)
    interval = (parse_time_ps(args.frame_interval, "--frame-interval")
                if args.frame_interval is not None else None)
    command = "analysis reference import " + shlex.join(_argv(args))
    done = reference_import.import_files([Path(f) for f in args.files], challenge, args.method,
                                         Path(args.out), args.temperature, interval, args.force,
                                         command)
    for item in done:
        notes = f"; {'; '.join(item.notes)}" if item.notes else ""
        print(f"{item.path}: {item.n_frames} frames, {item.length_ps:g} ps from "
              f"{item.source.name}; atom order: {item.atom_order}{notes}")
    print(f"reference ready: give --reference {args.out} to the analyses")
    return 0


def _argv(args: argparse.Namespace) -> list[str]:
    out = [*args.files, "--challenge", args.challenge, "--method", args.method,
           "--out", args.out]
    if args.temperature is not None:
        out += ["--temperature", f"{args.temperature:g}"]
    if args.frame_interval is not None:
        out += ["--frame-interval", args.frame_interval]
    return out + (["--force"] if args.force else [])


def run_show(args: argparse.Namespace) -> int:
    """``analysis reference show``."""
    from analysis import reference
    from harness import challenges

    challenge = challenges.load(args.challenge)
    ref = reference.load(challenge, args.reference)
    if ref is None:
        raise UserError(f"challenge {challenge.name!r} ships no reference; import one with "
                        "'analysis reference import FILE --challenge NAME ...'")
    if args.resamples < 100:
        raise UserError(f"--resamples {args.resamples}: give at least 100 (1000 for a 95% "
                        "interval worth quoting)")
    summary = reference.summarize(ref, challenge, n_resamples=args.resamples)
    if args.json:
        print(jsonutil.dumps(summary, indent=1))
    else:
        print(reference.format_summary(summary))
    return 0


def report_sections(files: list[Path], workdir: Path, settings=None) -> list:
    """A "Reference" section per challenge among ``files`` that has a reference.

    States which reference (``settings.reference``: a folder, as ``--reference``; default the
    shipped one), its method, temperature, runs, ps per run, frames and split-half noise, and
    which model temperatures are compared only qualitatively. ``analysis report`` passes its
    :class:`analysis.settings.AnalysisSettings` and caches the result with every other section
    (one cache: the report's; the settings are in its key).
    """
    from analysis import reference as reference_mod
    from analysis.sections import Section
    from analysis.settings import DEFAULT
    from analysis.trajectories import read_record
    from harness import challenges

    records = [read_record(Path(f)) for f in files]
    sections = []
    for name in sorted({r.challenge for r in records}):
        try:
            challenge = challenges.load(name)
            ref = reference_mod.load(challenge, (settings or DEFAULT).reference)
        except UserError:
            continue
        if ref is None:
            continue
        summary = reference_mod.summarize(ref, challenge)
        temps = sorted({r.temperature_K for r in records if r.challenge == name})
        notes = [n for n in (reference_mod.temperature_note(ref, t) for t in temps) if n]
        markdown = reference_mod.format_summary(summary)
        if notes:
            markdown += "\n\n" + "\n".join(f"- {n[0].upper()}{n[1:]}." for n in notes)
        sections.append(Section(challenge=name, title=f"Reference: {ref.method}",
                                markdown=markdown, data=summary))
    return sections
