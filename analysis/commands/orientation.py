"""``analysis orientation``: C->N orientation of the MA cations (TEA 2023, Fig. 4a)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from analysis.commands import _common
from analysis.sections import Figure, Section, Verdict
from harness.errors import UserError

#: Quadrant participation ratios agree with the reference when no ratio differs by more.
RATIO_TOLERANCE = 0.05
REFERENCE_MODEL = "xtb"


def register(subparsers) -> None:
    """Add the ``orientation`` subcommand."""
    p = subparsers.add_parser("orientation", help="C-N bond orientation of methylammonium "
                              "cations: (theta, phi) maps and phi-quadrant ratios")
    p.add_argument("paths", nargs="+", metavar="OUT", help="output folders or .h5 files")
    p.add_argument("--challenge", default="mapbi3", help="challenge (default mapbi3)")
    p.add_argument("--bins", type=int, default=72, help="phi bins (theta gets half)")
    p.add_argument("--every", type=int, default=1, help="use every n-th frame")
    p.add_argument("--skip", help="discard this much of the start of every run (e.g. 5ps)")
    p.add_argument("--report-dir", help="where to write orientation.json/.png "
                   "(default OUT/reports)")
    p.set_defaults(func=run)


def compute(paths: list[Path], challenge: str, bins: int = 72, every: int = 1,
            skip: float = 0.0):
    """Orientation results by (challenge, model, temperature)."""
    from analysis import framesets, orientation

    return {key: orientation.from_files(_common.paths_of(recs), bins, every, skip)
            for key, recs in framesets.groups(paths, challenge).items()}


def figure(results, path: Path) -> None:
    """One (phi, theta) map per group, in a grid (models as rows, temperatures as columns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis import orientation

    models = sorted({k[1] for k in results})
    temps = sorted({k[2] for k in results})
    fig, axes = plt.subplots(len(models), len(temps), figsize=(5.5 * len(temps),
                             3.4 * len(models)), squeeze=False)
    for i, model in enumerate(models):
        for j, temp in enumerate(temps):
            key = next((k for k in results if k[1] == model and k[2] == temp), None)
            ax = axes[i][j]
            if key is None:
                ax.axis("off")
                continue
            res = results[key]
            orientation.plot(res, ax, f"{model} {temp:g} K ({res.n_trajectories} runs, "
                             f"{res.n_samples} C-N samples)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summary(results) -> dict:
    """JSON-ready quadrant ratios per group."""
    from analysis.orientation import QUADRANTS

    return {"quadrants": list(QUADRANTS), "groups": [
        {"challenge": k[0], "model": k[1], "temperature_K": k[2],
         "n_trajectories": r.n_trajectories, "n_samples": r.n_samples,
         "quadrant_ratios": [round(float(x), 4) for x in r.quadrants],
         "mean_abs_cos_theta": round(float(np.mean(np.abs(np.cos(r.theta)))), 4)
         if r.n_samples else None} for k, r in results.items()]}


def run(args: argparse.Namespace) -> int:
    """Entry point of ``analysis orientation``."""
    if args.bins < 4 or args.every < 1:
        raise UserError(f"--bins {args.bins} / --every {args.every}: give --bins >= 4 and "
                        "--every >= 1")
    results = compute([Path(p) for p in args.paths], args.challenge, args.bins, args.every,
                      _common.skip_ps(args.skip))
    out = _common.report_dir(args.report_dir, args.paths)
    data = summary(results)
    (out / "orientation.json").write_text(json.dumps(data, indent=1))
    figure(results, out / "orientation.png")
    print("C->N phi-quadrant participation ratios (" + ", ".join(data["quadrants"]) + "):")
    for row in data["groups"]:
        print(f"  {row['model']} {row['temperature_K']:g} K ({row['n_trajectories']} runs, "
              f"{row['n_samples']} samples): "
              + "  ".join(f"{x:.3f}" for x in row["quadrant_ratios"]))
    print(f"report: {out / 'orientation.json'}, {out / 'orientation.png'}")
    return 0


def report_sections(files: list[Path], workdir: Path) -> list[Section]:
    """The orientation section for MAPbI3 runs among ``files``."""
    from analysis import trajectories

    mine = [f for f in files if trajectories.read_record(f).challenge == "mapbi3"]
    if not mine:
        return []
    key = _common.files_key(mine, {"observable": "orientation"})
    data = _common.cached(workdir, "orientation", key)
    png = workdir / "orientation_mapbi3.png"
    if data is None or not png.is_file():
        results = compute(mine, "mapbi3")
        figure(results, png)
        data = summary(results)
        _common.store(workdir, "orientation", key, data)
    rows = ["| model | T (K) | runs | " + " | ".join(data["quadrants"]) + " |",
            "|---|---|---|---|---|---|---|"]
    ref = {g["temperature_K"]: g for g in data["groups"] if g["model"] == REFERENCE_MODEL}
    verdicts = []
    for g in data["groups"]:
        rows.append(f"| {g['model']} | {g['temperature_K']:g} | {g['n_trajectories']} | "
                    + " | ".join(f"{x:.3f}" for x in g["quadrant_ratios"]) + " |")
        if g["model"] == REFERENCE_MODEL:
            continue
        r = ref.get(g["temperature_K"])
        if r is None:
            verdicts.append(Verdict("orientation", g["model"], g["temperature_K"], None,
                                    f"no {REFERENCE_MODEL} reference at this temperature"))
            continue
        diff = float(np.max(np.abs(np.subtract(g["quadrant_ratios"], r["quadrant_ratios"]))))
        verdicts.append(Verdict("orientation", g["model"], g["temperature_K"],
                                diff <= RATIO_TOLERANCE,
                                f"max quadrant-ratio difference {diff:.3f} (<= "
                                f"{RATIO_TOLERANCE} agrees) vs {REFERENCE_MODEL}"))
    text = ("Orientation of the C->N bonds of the methylammonium cations in the lattice frame "
            "(theta from z = the long Pnma axis, phi in the x-y plane), and the share of "
            "samples in each phi quadrant.\n\n" + "\n".join(rows))
    return [Section("mapbi3", "MA cation orientation", text,
                    [Figure(png, "Distribution of C->N orientations; numbers: quadrant "
                            "participation ratios.")], verdicts, data)]
