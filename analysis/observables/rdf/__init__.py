"""``analysis rdf``: radial distribution functions per element pair, model and temperature.

Pairs come from the challenge's ``[groups] rdf_pairs`` (or ``--pairs``); the verdict compares
the position of the highest peak of every pair with the reference's.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

import numpy as np

from analysis.framesets import FrameSelection
from analysis.observables import base
from harness.errors import UserError

#: Pairs when the challenge declares none in ``[groups] rdf_pairs``.
DEFAULT_PAIRS = ("Pb-I", "C-N", "N-I", "C-I", "H-I", "Pb-Pb", "I-I")


class RDF(base.TrajectoryObservable):
    """g(r) per element pair; distance: the largest shift of a pair's highest peak."""

    name = "rdf"
    title = "Radial distribution functions"
    help = "radial distribution functions per element pair"
    every_default = 10
    measure = "largest shift of the highest g(r) peak"
    unit = "A"
    tolerance = 0.05
    control = "stated"
    control_note = ("peak positions are set by bond lengths and the lattice, which a structure "
                    "that stays near its start can honestly have right")

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--pairs", help="element pairs, e.g. Pb-I,C-N (default: the "
                            "challenge's [groups] rdf_pairs)")
        parser.add_argument("--r-max", type=float, help="largest distance in A (default 8)")
        parser.add_argument("--bins", type=int, default=200, help="histogram bins (default 200)")
        parser.add_argument("--export", metavar="FILE.csv", help="write g(r) as CSV")

    def settings(self, challenge, args: argparse.Namespace | None) -> dict[str, Any]:
        from analysis.observables.rdf.compute import (
            DEFAULT_R_MAX_ANGSTROM,
            MAX_R_MAX_ANGSTROM,
            parse_pair,
        )

        text = getattr(args, "pairs", None)
        names = [p.strip() for p in text.split(",") if p.strip()] if text else \
            list(base.group_of(challenge, "rdf_pairs", DEFAULT_PAIRS))
        pairs = [parse_pair(p) for p in names]
        bins = getattr(args, "bins", 200)
        r_max = getattr(args, "r_max", None) or DEFAULT_R_MAX_ANGSTROM
        if not pairs or bins < 2:
            raise UserError("give at least one --pairs entry and --bins >= 2")
        if not 0 < r_max <= MAX_R_MAX_ANGSTROM:
            raise UserError(f"--r-max {r_max:g}: give a distance in A between 0 and "
                            f"{MAX_R_MAX_ANGSTROM:g}")
        return {"pairs": ["-".join(p) for p in pairs], "bins": bins, "r_max_angstrom": r_max}

    def contributions(self, path: Path, sel: FrameSelection, settings: dict[str, Any],
                      n_blocks: int) -> np.ndarray:
        from analysis.observables.rdf import compute

        pairs = [tuple(p.split("-")) for p in settings["pairs"]]
        return compute.contributions(path, pairs, settings["r_max_angstrom"], settings["bins"],
                                     sel, n_blocks)

    def curves(self, total: np.ndarray, settings: dict[str, Any]):
        from analysis.observables.rdf import compute

        return compute.curves(total, len(settings["pairs"]), settings["bins"],
                              settings["r_max_angstrom"])

    def summary(self, total: np.ndarray, settings: dict[str, Any]) -> dict[str, Any]:
        from analysis.observables.rdf.compute import first_peak

        r, g, n_frames = self.curves(total, settings)
        return {"n_frames": n_frames, "first_peak_angstrom": {
            p: _round(first_peak(r, g[k])) for k, p in enumerate(settings["pairs"])}}

    def distance(self, total_a: np.ndarray, total_b: np.ndarray,
                 settings: dict[str, Any]) -> float:
        from analysis.observables.rdf.compute import first_peak

        r, ga, _ = self.curves(total_a, settings)
        _, gb, _ = self.curves(total_b, settings)
        shifts = [abs(pa - pb) for a, b in zip(ga, gb, strict=True)
                  if (pa := first_peak(r, a)) is not None and (pb := first_peak(r, b)) is not None]
        return float(max(shifts, default=0.0))

    def table_columns(self, study: base.Study) -> list[str]:
        return list(study.settings["pairs"])

    def table_cells(self, summary: dict[str, Any], study: base.Study) -> list[str]:
        return [_fmt(summary["first_peak_angstrom"][p]) for p in study.settings["pairs"]]

    def introduction(self, study: base.Study) -> str:
        return ("Radial distribution functions per element pair (position of the highest "
                "peak in A). TEA 2023 used the experimental Pb-I distance distribution for its "
                "4.3 A stability threshold.")

    def caption(self, study: base.Study) -> str:
        return "g(r) per element pair, models and temperatures as lines."

    def figure(self, study: base.Study, path: Path) -> Path:
        from analysis.observables.rdf.compute import plot

        pairs = study.settings["pairs"]
        ncol = min(4, len(pairs))
        nrow = (len(pairs) + ncol - 1) // ncol
        fig, axes = base.new_figure(nrow, ncol, figsize=(4.2 * ncol, 3.2 * nrow), squeeze=False)
        curves = {}
        for g in [*study.groups, *(r for r in study.references.values() if r.is_reference)]:
            r, gr, _ = self.curves(g.total, study.settings)
            curves["reference" if g.is_reference else base.label(g.key)] = (r, gr)
        for ax, (k, pair) in zip(axes.ravel(), enumerate(pairs), strict=False):
            plot({name: (r, gr[k]) for name, (r, gr) in curves.items()}, pair, ax)
        for ax in axes.ravel()[len(pairs):]:
            ax.axis("off")
        return base.save_figure(fig, path)

    def extra_outputs(self, study: base.Study, args: argparse.Namespace) -> None:
        if args.export:
            export_csv(self, study, Path(args.export))
            print(f"g(r): {args.export}")


def export_csv(observable: RDF, study: base.Study, path: Path) -> None:
    """Long-format CSV: challenge, model, temperature_K, pair, r_angstrom, g."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["challenge", "model", "temperature_K", "pair", "r_angstrom", "g"])
        for group in study.groups:
            r, g, _ = observable.curves(group.total, study.settings)
            for k, pair in enumerate(study.settings["pairs"]):
                for x, value in zip(r, g[k], strict=True):
                    writer.writerow([group.challenge, group.model, f"{group.temperature_K:g}",
                                     pair, f"{x:.5f}", f"{value:.8e}"])


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


OBSERVABLE = RDF()
register = OBSERVABLE.register
report_sections = OBSERVABLE.report_sections
