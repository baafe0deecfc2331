"""``python -m harness.challenges new NAME --from FILE``: a challenge from one structure file.

Thin layer: parse the flags into a :class:`harness.challenges.new.Request` and hand it to
:func:`harness.challenges.new.create`. See docs/own-system.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.errors import UserError
from harness.units import parse_time_ps


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m harness.challenges``."""
    parser = argparse.ArgumentParser(prog="python -m harness.challenges",
                                     description="Make crash-test challenges.")
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new", help="a challenge folder from one structure file",
                         description="Write PARENT/NAME/ with a commented challenge.toml and "
                         "diverse starting structures; launch it with python -m harness.launch "
                         "--challenge PARENT/NAME.")
    new.add_argument("name", metavar="NAME", help="challenge name (the folder's name)")
    new.add_argument("--from", dest="structure", required=True, metavar="FILE",
                     help="the structure, any format ASE reads")
    new.add_argument("--dir", default=".", metavar="PARENT",
                     help="where the folder goes (default: the current folder)")
    new.add_argument("--periodic", action="store_true",
                     help="periodic with the file's cell (automatic when the file says pbc)")
    new.add_argument("--charge", type=int, default=0, help="total charge (default 0)")
    new.add_argument("--multiplicity", type=int, default=1, help="spin multiplicity (default 1)")
    new.add_argument("--observables", metavar="LIST",
                     help="comma separated: stability,ramachandran,rdf,spectrum (default: "
                     "stability, plus ramachandran for a peptide chain, rdf when periodic)")
    new.add_argument("--title", help="title shown in reports")
    new.add_argument("--starts", metavar="FILE",
                     help="pick the starts from this multi-frame file instead of running MD")
    new.add_argument("--starts-model", metavar="MODEL",
                     help="model of the start sampling MD (default: xtb for molecules up to "
                     "150 atoms; required otherwise)")
    new.add_argument("--starts-model-file", metavar="FILE", help="its model file")
    new.add_argument("--starts-model-option", action="append", default=[],
                     metavar="KEY=VALUE", help="option of its calculator, repeatable")
    new.add_argument("--starts-temperature", type=float, metavar="K",
                     help="temperature of the sampling MD (default: the highest of the "
                     "protocol)")
    new.add_argument("--starts-time", default="2ps",
                     help="length of the sampling MD (default 2ps)")
    new.add_argument("--n-starts", type=int, default=12, help="number of starts (default 12)")
    new.add_argument("--seed", type=int, default=2023, help="seed of the sampling MD")
    new.add_argument("--force", action="store_true", help="replace an existing folder")
    return parser


def _request(args: argparse.Namespace, argv: list[str]):
    from harness.challenges.new import Request, command_line

    if args.n_starts < 1:
        raise UserError(f"--n-starts {args.n_starts}: give at least 1")
    if args.starts_temperature is not None and not args.starts_temperature > 0:
        raise UserError(f"--starts-temperature {args.starts_temperature:g}: give a "
                        "temperature > 0 K")
    if args.starts and (args.starts_model or args.starts_model_file):
        raise UserError("--starts and --starts-model exclude each other: give the starts, or "
                        "the model that makes them")
    observables = None
    if args.observables is not None:
        observables = tuple(s.strip() for s in args.observables.split(",") if s.strip())
    return Request(
        name=args.name, structure=Path(args.structure), parent=Path(args.dir),
        periodic=args.periodic, charge=args.charge, multiplicity=args.multiplicity,
        observables=observables, title=args.title,
        starts_file=Path(args.starts) if args.starts else None,
        starts_model=args.starts_model, starts_model_file=args.starts_model_file,
        starts_model_options=tuple(args.starts_model_option),
        starts_temperature_K=args.starts_temperature,
        starts_time_ps=parse_time_ps(args.starts_time, "--starts-time"),
        n_starts=args.n_starts, seed=args.seed, force=args.force,
        command=command_line(argv))


def main(argv: list[str] | None = None) -> int:
    """Entry point; 0 on success, 2 for a user error."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    from harness.challenges.new import create

    try:
        made = create(_request(args, argv))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    how = made.selection["how"]
    source = (f"picked from {how['frames']} frames of {how['file']}" if how["source"] == "file"
              else f"picked from {how['candidates']} structures of a {how['time_ps']:g} ps "
              f"{how['temperature_K']:g} K MD with {how['model']} ({how['wall_s']:.1f} s)")
    print(f"wrote {made.folder}: challenge.toml, {len(made.starts)} starts ({source}, "
          f"descriptor: {made.selection['descriptor']}) in {made.seconds:.1f} s")
    if how.get("stopped_early"):
        print(f"note: the sampling MD stopped early: {how['stopped_early']}")
    print(f"run it: python -m harness.launch --challenge {made.folder} --model MODEL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
