"""The ``analysis`` command: a thin layer over the analysis modules."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from analysis import commands
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
            print(json.dumps(info, indent=1, default=str))
        else:
            print(format_summary(info))
    return 0


def _stability(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis import stability, trajectories

    paths = trajectories.find([Path(p) for p in args.paths])
    records = [trajectories.read_record(p) for p in paths]
    summary = stability.summarize(records)
    if args.recheck:
        from harness.stability.reevaluate import reevaluate

        criteria = [c for item in args.recheck for c in item.split(",") if c]
        for row in summary["runs"]:
            event = reevaluate(Path(row["file"]), criteria)
            row["recheck"] = "ok" if event is None else f"{event.kind} at {event.time_ps:.4g} ps"
        summary["recheck_criteria"] = criteria
    report_dir = Path(args.report_dir) if args.report_dir else _default_report_dir(args.paths)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "stability.json").write_text(json.dumps(summary, indent=1))
    markdown = stability.to_markdown(summary)
    (report_dir / "stability.md").write_text(markdown)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    stability.plot_survival(summary, ax)
    fig.tight_layout()
    fig.savefig(report_dir / "survival.png", dpi=120)
    plt.close(fig)
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


def _default_report_dir(paths: list[str]) -> Path:
    first = Path(paths[0])
    return (first if first.is_dir() else first.parent) / "reports"


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``analysis`` command and its subcommands."""
    parser = argparse.ArgumentParser(prog="analysis",
                                     description="Analyse tea-harness trajectories.")
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="atoms, frames, status, failure, provenance of a run")
    info.add_argument("files", nargs="+", metavar="FILE.h5")
    info.add_argument("--json", action="store_true", help="machine-readable output")
    info.set_defaults(func=_info)
    stab = sub.add_parser("stability", help="which runs survived, time to failure, broken bonds")
    stab.add_argument("paths", nargs="+", metavar="OUT", help="output folders or .h5 files")
    stab.add_argument("--report-dir", help="where to write stability.{md,json} and "
                      "survival.png (default: OUT/reports)")
    stab.add_argument("--recheck", action="append", metavar="CRITERIA",
                      help="re-evaluate every trajectory with these criteria (e.g. mdsim,mlipx)")
    stab.add_argument("--export-failures", metavar="FILE.extxyz",
                      help="collect the frames before every failure (for retraining)")
    stab.set_defaults(func=_stability)
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
