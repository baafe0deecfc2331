"""The ``analysis`` command: a thin layer over the analysis modules."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from analysis import commands
from harness import jsonutil
from harness.errors import UserError


def _info(args: argparse.Namespace) -> int:
    from analysis.info import format_summary, summarize

    for name in args.files:
        path = Path(name)
        if not path.is_file():
            raise UserError(f"{name}: no such file; give a replica-NN.h5 written by the harness")
        try:
            info = summarize(path)
        except (OSError, KeyError) as exc:
            raise UserError(f"{name} is not a tea-harness H5MD trajectory ({exc})") from None
        if args.json:
            print(jsonutil.dumps(info, indent=1, default=str))
        else:
            print(format_summary(info))
    return 0


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit code 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``analysis`` command and its subcommands."""
    parser = _Parser(prog="analysis",
                                     description="Analyse tea-harness trajectories.")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="atoms, frames, status, failure, provenance of a run")
    info.add_argument("files", nargs="+", metavar="FILE.h5")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=_info)
    for module in commands.modules():
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``analysis`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # e.g. piped into head
        return 0


if __name__ == "__main__":
    sys.exit(main())
