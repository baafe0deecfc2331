"""``analysis orientation``: C->N orientation of the methylammonium cations (TEA 2023, Fig. 4a).

The cations are the challenge's ``[groups] carbon`` and ``nitrogen`` (C k with N k), or, when
a challenge declares none, each C with its nearest N in the starting structure. The verdict
compares the phi-quadrant participation ratios with the reference's.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from analysis.framesets import FrameSelection
from analysis.observables import base
from harness.errors import UserError


class Orientation(base.TrajectoryObservable):
    """(theta, phi) maps of the C->N bonds; distance: the largest quadrant-ratio difference."""

    name = "orientation"
    title = "MA cation orientation"
    help = ("C-N bond orientation of methylammonium cations: (theta, phi) maps and phi-quadrant "
            "ratios")
    measure = "largest phi-quadrant ratio difference"
    unit = ""
    tolerance = 0.05

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--bins", type=int, default=72, help="phi bins (theta gets half)")

    def settings(self, challenge, args: argparse.Namespace | None) -> dict[str, Any]:
        bins = getattr(args, "bins", 72)
        if bins < 4:
            raise UserError(f"--bins {bins}: give --bins >= 4")
        return {"bins": bins, "carbon": list(base.group_of(challenge, "carbon", [])),
                "nitrogen": list(base.group_of(challenge, "nitrogen", []))}

    def contributions(self, path: Path, sel: FrameSelection, settings: dict[str, Any],
                      n_blocks: int) -> np.ndarray:
        from analysis.observables.orientation import compute

        return compute.contributions(path, settings["bins"], sel, n_blocks,
                                     settings["carbon"], settings["nitrogen"])

    def summary(self, total: np.ndarray, settings: dict[str, Any]) -> dict[str, Any]:
        from analysis.observables.orientation import compute

        res = compute.from_total(total, settings["bins"])
        return {"n_samples": res.n_samples,
                "quadrant_ratios": [round(float(x), 4) for x in res.quadrants],
                "mean_abs_cos_theta": None if res.mean_abs_cos_theta is None
                else round(res.mean_abs_cos_theta, 4)}

    def distance(self, total_a: np.ndarray, total_b: np.ndarray,
                 settings: dict[str, Any]) -> float:
        qa, qb = total_a[:4], total_b[:4]
        if not qa.sum() or not qb.sum():
            return float("nan")
        return float(np.max(np.abs(qa / qa.sum() - qb / qb.sum())))

    def table_columns(self, study: base.Study) -> list[str]:
        from analysis.observables.orientation.compute import QUADRANTS

        return list(QUADRANTS)

    def table_cells(self, summary: dict[str, Any], study: base.Study) -> list[str]:
        return [f"{x:.3f}" for x in summary["quadrant_ratios"]]

    def introduction(self, study: base.Study) -> str:
        return ("Orientation of the C->N bonds of the methylammonium cations in the lattice "
                "frame (theta from z = the long Pnma axis, phi in the x-y plane), and the share "
                "of samples in each phi quadrant.")

    def caption(self, study: base.Study) -> str:
        return "Distribution of C->N orientations; numbers: quadrant participation ratios."

    def figure(self, study: base.Study, path: Path) -> Path:
        from analysis.observables.orientation import compute

        shown = [*study.groups, *(r for r in study.references.values() if r.is_reference)]
        rows = sorted({g.model for g in shown})
        temps = sorted({g.temperature_K for g in shown})
        fig, axes = base.new_figure(len(rows), len(temps), squeeze=False,
                                    figsize=(5.5 * len(temps), 3.4 * len(rows)))
        for i, model in enumerate(rows):
            for j, temp in enumerate(temps):
                group = next((g for g in shown if g.model == model
                              and g.temperature_K == temp), None)
                ax = axes[i][j]
                if group is None:
                    ax.axis("off")
                    continue
                res = compute.from_total(group.total, study.settings["bins"])
                compute.plot(res, ax, f"{model} {temp:g} K ({group.n_runs} runs, "
                             f"{res.n_samples} C-N samples)")
        return base.save_figure(fig, path)


OBSERVABLE = Orientation()
register = OBSERVABLE.register
report_sections = OBSERVABLE.report_sections
