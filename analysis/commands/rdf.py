"""``analysis rdf``: radial distribution functions per element pair, model and temperature."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from analysis.commands import _common
from analysis.sections import Figure, Section, Verdict
from harness.errors import UserError

DEFAULT_PAIRS = "Pb-I,C-N,N-I,C-I,H-I,Pb-Pb,I-I"
#: Two models agree when the first-peak positions of every pair are this close (A) ...
PEAK_TOLERANCE_ANGSTROM = 0.05
REFERENCE_MODEL = "xtb"


def register(subparsers) -> None:
    """Add the ``rdf`` subcommand."""
    p = subparsers.add_parser("rdf", help="radial distribution functions per element pair")
    p.add_argument("paths", nargs="+", metavar="OUT", help="output folders or .h5 files")
    p.add_argument("--challenge", help="only trajectories of this challenge")
    p.add_argument("--pairs", default=DEFAULT_PAIRS, help=f"element pairs (default "
                   f"{DEFAULT_PAIRS})")
    p.add_argument("--r-max", type=float, help="largest distance in A (default 8)")
    p.add_argument("--bins", type=int, default=200, help="histogram bins (default 200)")
    p.add_argument("--every", type=int, default=10, help="use every n-th frame (default 10)")
    p.add_argument("--skip", help="discard this much of the start of every run (e.g. 5ps)")
    p.add_argument("--export", metavar="FILE.csv", help="write g(r) as CSV")
    p.add_argument("--report-dir", help="where to write rdf.json/.png (default OUT/reports)")
    p.set_defaults(func=run)


def compute(paths: list[Path], challenge: str | None, pairs: list[tuple[str, str]],
            r_max: float | None = None, bins: int = 200, every: int = 10, skip: float = 0.0):
    """RDF results by (challenge, model, temperature)."""
    from analysis import framesets, rdf

    return {key: rdf.from_files(_common.paths_of(recs), pairs, r_max, bins, every, skip)
            for key, recs in framesets.groups(paths, challenge).items()}


def figure(results, path: Path) -> None:
    """One panel per pair, every (model, temperature) a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis import rdf

    pairs = list(next(iter(results.values())).g)
    ncol = min(4, len(pairs))
    nrow = (len(pairs) + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
    several = len({k[0] for k in results}) > 1
    labelled = {_common.label(k, several): r for k, r in results.items()}
    for ax, pair in zip(axes.ravel(), pairs, strict=False):
        rdf.plot(labelled, pair, ax)
    for ax in axes.ravel()[len(pairs):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summary(results) -> dict:
    """JSON-ready first-peak positions per group and pair."""
    from analysis.rdf import first_peak

    return {"groups": [
        {"challenge": k[0], "model": k[1], "temperature_K": k[2],
         "n_trajectories": r.n_trajectories, "n_frames": r.n_frames,
         "first_peak_angstrom": {p: _round(first_peak(r.r, g)) for p, g in r.g.items()}}
        for k, r in results.items()]}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def export_csv(results, path: Path) -> None:
    """Long-format CSV: challenge, model, temperature_K, pair, r_angstrom, g."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["challenge", "model", "temperature_K", "pair", "r_angstrom", "g"])
        for (challenge, model, temp), res in results.items():
            for pair, g in res.g.items():
                for r, value in zip(res.r, g, strict=True):
                    writer.writerow([challenge, model, f"{temp:g}", pair, f"{r:.5f}",
                                     f"{value:.8e}"])


def run(args: argparse.Namespace) -> int:
    """Entry point of ``analysis rdf``."""
    from analysis.rdf import parse_pair

    pairs = [parse_pair(p.strip()) for p in args.pairs.split(",") if p.strip()]
    if not pairs or args.bins < 2 or args.every < 1:
        raise UserError("give at least one --pairs entry, --bins >= 2 and --every >= 1")
    results = compute([Path(p) for p in args.paths], args.challenge, pairs, args.r_max,
                      args.bins, args.every, _common.skip_ps(args.skip))
    out = _common.report_dir(args.report_dir, args.paths)
    data = summary(results)
    (out / "rdf.json").write_text(json.dumps(data, indent=1))
    figure(results, out / "rdf.png")
    for row in data["groups"]:
        peaks = ", ".join(f"{p} {_fmt(r)}" for p, r in row["first_peak_angstrom"].items())
        print(f"{row['challenge']} {row['model']} {row['temperature_K']:g} K "
              f"({row['n_frames']} frames): highest peak (A) {peaks}")
    if args.export:
        export_csv(results, Path(args.export))
        print(f"g(r): {args.export}")
    print(f"report: {out / 'rdf.json'}, {out / 'rdf.png'}")
    return 0


def report_sections(files: list[Path], workdir: Path) -> list[Section]:
    """RDFs of the MAPbI3 runs among ``files`` (the challenge that declares ``rdf``)."""
    from analysis import trajectories
    from analysis.rdf import parse_pair

    mine = [f for f in files if trajectories.read_record(f).challenge == "mapbi3"]
    if not mine:
        return []
    key = _common.files_key(mine, {"observable": "rdf"})
    data = _common.cached(workdir, "rdf", key)
    png = workdir / "rdf_mapbi3.png"
    if data is None or not png.is_file():
        results = compute(mine, "mapbi3", [parse_pair(p) for p in DEFAULT_PAIRS.split(",")])
        figure(results, png)
        data = summary(results)
        _common.store(workdir, "rdf", key, data)
    pairs = list(data["groups"][0]["first_peak_angstrom"])
    rows = ["| model | T (K) | " + " | ".join(pairs) + " |",
            "|---|---|" + "---|" * len(pairs)]
    ref = {g["temperature_K"]: g for g in data["groups"] if g["model"] == REFERENCE_MODEL}
    verdicts = []
    for g in data["groups"]:
        rows.append(f"| {g['model']} | {g['temperature_K']:g} | "
                    + " | ".join(_fmt(g["first_peak_angstrom"][p]) for p in pairs) + " |")
        r = ref.get(g["temperature_K"])
        if g["model"] == REFERENCE_MODEL:
            continue
        if r is None:
            verdicts.append(Verdict("rdf", g["model"], g["temperature_K"], None,
                                    f"no {REFERENCE_MODEL} reference at this temperature"))
            continue
        diff = max((abs(g["first_peak_angstrom"][p] - r["first_peak_angstrom"][p])
                    for p in pairs if g["first_peak_angstrom"][p] is not None
                    and r["first_peak_angstrom"][p] is not None), default=0.0)
        verdicts.append(Verdict("rdf", g["model"], g["temperature_K"],
                                bool(diff <= PEAK_TOLERANCE_ANGSTROM),
                                f"largest peak shift {diff:.3f} A (<= "
                                f"{PEAK_TOLERANCE_ANGSTROM} agrees) vs {REFERENCE_MODEL}"))
    text = ("Radial distribution functions per element pair (position of the highest peak "
            "in A). TEA 2023 used the experimental Pb-I distance distribution for its 4.3 A "
            "stability threshold.\n\n" + "\n".join(rows))
    return [Section("mapbi3", "Radial distribution functions", text,
                    [Figure(png, "g(r) per element pair, models and temperatures as lines.")],
                    verdicts, {**data, "tolerance_angstrom": float(np.float64(
                        PEAK_TOLERANCE_ANGSTROM))})]
