"""``analysis surface OUT/``: molecule-on-surface geometry, desorption and F(D) (TEA Fig. 3).

Writes, per temperature, the distributions of D, incline, tilt, slant (all models), the 2D maps
incline-D, slant-D, tilt-slant per model, and F(D) by -kT ln P(D) and by integrating the mean
force; plus surface.md (tables, desorption events) and surface.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from harness.errors import UserError

#: Agreement of P(D) with the reference: Jensen-Shannon divergence (base 2) at most this.
JS_TOLERANCE = 0.10
REFERENCE_MODEL = "xtb"


def register(subparsers) -> None:
    """Add the ``surface`` subcommand."""
    p = subparsers.add_parser("surface", help="molecule on a surface: D, incline, tilt, slant, "
                              "desorption events, free energy F(D) (TEA Fig. 3)")
    p.add_argument("paths", nargs="+", metavar="OUT", help="output folders or .h5 files")
    p.add_argument("--report-dir", help="where to write the figures and tables "
                   "(default: OUT/reports/surface)")
    p.add_argument("--desorption", type=float, default=None, metavar="ANGSTROM",
                   help="D beyond which the molecule counts as desorbed (default: the "
                   "challenge's, 8 A)")
    p.add_argument("--skip", type=float, default=0.0, metavar="PS",
                   help="leave out the first PS picoseconds of every run (equilibration)")
    p.set_defaults(func=_run)


def _series(paths: list[Path], cache_dir: Path | None):
    from analysis import surface, trajectories

    files = trajectories.find(paths)
    found = [s for s in (surface.trajectory_series(f, cache_dir) for f in files) if s is not None]
    return found


def build(series, report_dir: Path, skip_ps: float = 0.0, cutoff: float | None = None):
    """Compute the summary and write every figure and table; returns (summary, markdown, figs).

    ``figs`` is a list of (path, caption).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis import surface

    report_dir.mkdir(parents=True, exist_ok=True)
    summary = surface.summarize(series, skip_ps, cutoff)
    groups = surface.group_series(series)
    figures = []
    for temp in sorted({key[2] for key in groups}):
        fig, axes = plt.subplots(1, 4, figsize=(13, 3.2))
        surface.plot_distributions(groups, temp, axes, skip_ps)
        fig.suptitle(f"{temp:g} K")
        fig.tight_layout()
        path = report_dir / f"distributions-{temp:g}K.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        figures.append((path, f"Distributions of D, incline, tilt and slant at {temp:g} K"))
        prof = {key[1]: surface.profiles(runs, temp, skip_ps)
                for key, runs in groups.items() if key[2] == temp}
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        surface.plot_free_energy(prof, ax)
        ax.set_title(f"F(D) at {temp:g} K")
        fig.tight_layout()
        path = report_dir / f"free-energy-{temp:g}K.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        figures.append((path, f"Free energy F(D) at {temp:g} K: -kT ln P(D) (solid) and "
                              "integrated mean force (dashed)"))
    for (_, model, temp), runs in groups.items():
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
        surface.plot_maps(runs, axes, skip_ps)
        fig.suptitle(f"{model}, {temp:g} K")
        fig.tight_layout()
        path = report_dir / f"maps-{model}-{temp:g}K.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        figures.append((path, f"{model} at {temp:g} K: incline-D, slant-D, tilt-slant densities"))
    markdown = surface.to_markdown(summary)
    (report_dir / "surface.md").write_text(markdown)
    (report_dir / "surface.json").write_text(json.dumps(summary, indent=1))
    return summary, markdown, figures


def _run(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths]
    first = paths[0]
    report_dir = Path(args.report_dir) if args.report_dir else \
        (first if first.is_dir() else first.parent) / "reports" / "surface"
    series = _series(paths, report_dir / "cache")
    if not series:
        raise UserError("no trajectories of a surface challenge (naphthyridine-graphene) under "
                        + ", ".join(args.paths))
    _, markdown, figures = build(series, report_dir, args.skip, args.desorption)
    print(markdown)
    print(f"report: {report_dir / 'surface.md'}, surface.json and {len(figures)} figures")
    return 0


def verdicts(series, summary) -> list:
    """P(D) of every model against the reference model at the same temperature."""
    from analysis import surface
    from analysis.sections import Verdict

    groups = surface.group_series(series)
    out = []
    for (challenge, model, temp), runs in groups.items():
        if model == REFERENCE_MODEL:
            continue
        ref = groups.get((challenge, REFERENCE_MODEL, temp))
        row = next(g for g in summary["groups"]
                   if g["model"] == model and g["temperature_K"] == temp)
        desorbed = f"{row['runs_desorbed']}/{row['runs']} runs desorbed"
        if ref is None:
            out.append(Verdict("D distribution", model, temp, None,
                               f"no {REFERENCE_MODEL} reference runs at {temp:g} K; {desorbed}"))
            continue
        edges = np.arange(0.0, 30.0 + 1e-9, 0.1)
        js = surface.js_divergence(surface.pooled(runs, "D"), surface.pooled(ref, "D"), edges)
        out.append(Verdict("D distribution", model, temp, bool(js <= JS_TOLERANCE),
                           f"Jensen-Shannon divergence of P(D) vs {REFERENCE_MODEL} {js:.3f} "
                           f"(tolerance {JS_TOLERANCE}, 0.1 A bins); {desorbed}"))
    return out


def report_sections(files: list[Path], workdir: Path) -> list:
    """Sections for ``analysis report`` (contract in analysis/sections.py)."""
    from analysis.sections import Figure, Section

    series = _series(list(files), workdir / "cache") if files else []
    if not series:
        return []
    sections = []
    for challenge in sorted({s.record.challenge for s in series}):
        mine = [s for s in series if s.record.challenge == challenge]
        summary, markdown, figures = build(mine, workdir / challenge)
        sections.append(Section(
            challenge=challenge, title="Molecule on the surface: geometry, desorption, F(D)",
            markdown=markdown, figures=[Figure(p, c) for p, c in figures],
            verdicts=verdicts(mine, summary), data=summary))
    return sections
