"""``analysis surface OUT/``: molecule-on-surface geometry, desorption and F(D) (TEA Fig. 3).

Writes, per temperature, the distributions of D, incline, tilt, slant (all models), the 2D maps
incline-D, slant-D, tilt-slant per model, and F(D) by -kT ln P(D) and by integrating the mean
force; plus surface.md (tables, desorption events) and surface.json. The atom groups are the
challenge's ``[groups] surface, molecule, n_side``; the verdict is the Jensen-Shannon
divergence of P(D) against the reference.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from analysis.framesets import FrameSelection
from analysis.observables import base
from analysis.sections import Figure
from analysis.settings import DEFAULT, AnalysisSettings

#: P(D) histogram for the verdict: 0.1 A bins up to 30 A.
D_EDGES = np.arange(0.0, 30.0 + 1e-9, 0.1)


class Surface(base.TrajectoryObservable):
    """Geometry of the adsorbed molecule; distance: JS divergence of P(D)."""

    name = "surface"
    title = "Molecule on the surface: geometry, desorption, F(D)"
    help = ("molecule on a surface: D, incline, tilt, slant, desorption events, free energy "
            "F(D) (TEA Fig. 3)")
    measure = "Jensen-Shannon divergence of P(D) (0.1 A bins)"
    unit = "bits"
    tolerance = 0.10
    distance_max = 1.0

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--desorption", type=float, default=None, metavar="ANGSTROM",
                            help="D beyond which the molecule counts as desorbed (default: "
                            "the challenge's, 8 A)")

    def settings(self, challenge, args: argparse.Namespace | None) -> dict[str, Any]:
        return {"desorption_angstrom": getattr(args, "desorption", None)}

    def accepts(self, path: Path) -> bool:
        return True  # the study keeps surface runs only

    def _series(self, path: Path):
        from analysis.observables.surface import compute

        return compute.trajectory_series(path)

    def study(self, challenge, files: list[Path], sel: FrameSelection,
              settings: dict[str, Any], options: AnalysisSettings = DEFAULT) -> base.Study:
        series = {f: s for f in files if (s := self._series(f)) is not None}
        settings = {**settings, "skip_ps": sel.skip_ps, "_series": series}
        return super().study(challenge, list(series), sel, settings, options)

    def contributions(self, path: Path, sel: FrameSelection, settings: dict[str, Any],
                      n_blocks: int) -> np.ndarray:
        series = settings["_series"].get(path) or self._series(path)
        used = series.time_ps >= sel.skip_ps
        if sel.stop_ps is not None:
            used &= series.time_ps <= sel.stop_ps + 1e-9
        keep = np.flatnonzero(used)[::sel.every]
        out = np.zeros((n_blocks, len(D_EDGES) - 1))
        for k, part in enumerate(np.array_split(keep, n_blocks)):
            out[k] = np.histogram(series.D[part], bins=D_EDGES)[0]
        return out

    def summary(self, total: np.ndarray, settings: dict[str, Any]) -> dict[str, Any]:
        return {"frames_in_histogram": int(total.sum())}

    def distance(self, total_a: np.ndarray, total_b: np.ndarray,
                 settings: dict[str, Any]) -> float:
        from analysis import divergence

        if total_a.sum() == 0 or total_b.sum() == 0:
            return float("nan")
        return divergence.jensen_shannon(total_a, total_b)

    def _summary(self, study: base.Study) -> dict[str, Any]:
        from analysis.observables.surface import compute

        series = [s for s in study.settings["_series"].values()]
        return compute.summarize(series, study.settings["skip_ps"],
                                 study.settings["desorption_angstrom"])

    def to_json(self, study: base.Study) -> dict[str, Any]:
        return {**self._summary(study), **{k: v for k, v in super().to_json(study).items()
                                           if k != "groups"}}

    def markdown(self, study: base.Study) -> str:
        from analysis.observables.surface import compute

        text = [compute.to_markdown(self._summary(study)), study.reference_text]
        if study.pairs:
            text += ["", base.pairs_table(study.pairs, self.measure, self.unit)]
        return "\n".join(text).strip() + "\n"

    def figures(self, study: base.Study, folder: Path, stem: str) -> list[Figure]:
        from analysis.observables.surface import compute

        skip = study.settings["skip_ps"]
        groups = compute.group_series(list(study.settings["_series"].values()))
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for temp in sorted({key[2] for key in groups}):
            fig, axes = base.new_figure(1, 4, figsize=(13, 3.2))
            compute.plot_distributions(groups, temp, axes, skip)
            fig.suptitle(f"{temp:g} K")
            out.append(Figure(base.save_figure(fig, folder / f"distributions-{temp:g}K.png", 110),
                              f"Distributions of D, incline, tilt and slant at {temp:g} K"))
            prof = {key[1]: compute.profiles(runs, temp, skip)
                    for key, runs in groups.items() if key[2] == temp}
            fig, ax = base.new_figure(figsize=(5.5, 3.8))
            compute.plot_free_energy(prof, ax)
            ax.set_title(f"F(D) at {temp:g} K")
            out.append(Figure(base.save_figure(fig, folder / f"free-energy-{temp:g}K.png", 110),
                              f"Free energy F(D) at {temp:g} K: -kT ln P(D) (solid) and "
                              "integrated mean force (dashed)"))
        for (_, model, temp), runs in groups.items():
            fig, axes = base.new_figure(1, 3, figsize=(12, 3.4))
            compute.plot_maps(runs, axes, skip)
            fig.suptitle(f"{model}, {temp:g} K")
            out.append(Figure(base.save_figure(fig, folder / f"maps-{model}-{temp:g}K.png", 110),
                              f"{model} at {temp:g} K: incline-D, slant-D, tilt-slant densities"))
        return out

    def extra_outputs(self, study: base.Study, args: argparse.Namespace) -> None:
        out = base.report_dir(args.report_dir, args.paths)
        (out / "surface.md").write_text(self.markdown(study))


OBSERVABLE = Surface()
register = OBSERVABLE.register
report_sections = OBSERVABLE.report_sections
