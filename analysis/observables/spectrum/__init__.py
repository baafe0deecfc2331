"""``analysis spectrum``: VACF power spectra per model and temperature (TEA 2023, Fig. 4b).

The verdict compares the shape of each model's spectrum with the reference's: the distance is
1 - the cosine similarity of the normalised intensities over 0-3500 cm^-1.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from analysis.framesets import FrameSelection
from analysis.observables import base
from harness.errors import UserError

#: Plotted and compared range (cm^-1).
XLIM_CM = (0.0, 3500.0)
#: Trajectories with fewer frames give no spectrum.
MIN_FRAMES = 8


class Spectrum(base.TrajectoryObservable):
    """Power spectrum of the (mass-weighted) velocity autocorrelation function."""

    name = "spectrum"
    title = "Vibrational spectrum (VACF)"
    help = "vibrational spectra from the velocity autocorrelation function, models side by side"
    measure = "1 - cosine similarity of the spectra over 0-3500 cm^-1"
    unit = ""
    tolerance = 0.10
    control = "none"
    control_note = ("a spectrum needs correlation times up to --max-lag (1 ps), longer than a "
                    "run's 0.1 ps opening, and it compares vibrations, which a model that stays "
                    "near its start has honestly")

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--max-lag", type=base.duration, default=1.0, metavar="DURATION",
                            help="longest correlation time (default 1ps)")
        parser.add_argument("--window", default="hann",
                            help="hann (default), blackman, bartlett, none")
        parser.add_argument("--no-mass-weighting", action="store_true",
                            help="plain VACF instead of the mass-weighted one")
        parser.add_argument("--elements", help="only these elements, comma separated (e.g. C,N,H)")
        parser.add_argument("--phonons", action="append", metavar="FILE.json",
                            help="harmonic frequencies from 'analysis phonons' drawn as bars")
        parser.add_argument("--xlim", default="0,3500",
                            help="plotted range in cm^-1 (default 0,3500)")
        parser.add_argument("--export", metavar="FILE.csv", help="write the spectra as CSV")

    def settings(self, challenge, args: argparse.Namespace | None) -> dict[str, Any]:
        from analysis.observables.spectrum.compute import WINDOWS

        window = getattr(args, "window", "hann")
        if window not in WINDOWS:
            raise UserError(f"--window {window!r}: choose one of {', '.join(WINDOWS)}")
        text = getattr(args, "elements", None)
        return {"max_lag_ps": getattr(args, "max_lag", 1.0), "window": window,
                "mass_weighted": not getattr(args, "no_mass_weighting", False),
                "elements": [e.strip() for e in text.split(",")] if text else None,
                "xlim_cm": list(_xlim(getattr(args, "xlim", "0,3500"))),
                "phonons": load_phonons(getattr(args, "phonons", None))}

    def report_settings(self, challenge, files: list[Path]) -> dict[str, Any]:
        from analysis import framesets

        settings = self.settings(challenge, None)
        usable = [framesets.info(p) for p in files if self.accepts(p)]
        if usable:
            shortest = min(i.n_frames * i.frame_dt_ps for i in usable)
            settings["max_lag_ps"] = min(1.0, 0.5 * shortest)
        settings["phonons"] = phonons_near(files)
        return settings

    def accepts(self, path: Path) -> bool:
        from analysis import framesets

        return framesets.info(path).n_frames >= MIN_FRAMES

    def contributions(self, path: Path, sel: FrameSelection, settings: dict[str, Any],
                      n_blocks: int) -> np.ndarray:
        from analysis.observables.spectrum import compute

        return compute.contributions(path, settings["max_lag_ps"], settings["mass_weighted"],
                                     settings["elements"], sel, n_blocks)

    def spectrum(self, total: np.ndarray, settings: dict[str, Any]):
        """The spectrum of summed contributions."""
        from analysis.observables.spectrum import compute

        return compute.from_total(total, settings["window"])

    def summary(self, total: np.ndarray, settings: dict[str, Any]) -> dict[str, Any]:
        spec = self.spectrum(total, settings)
        return {"frame_dt_ps": spec.frame_dt_ps,
                "peaks_cm": [round(p, 1) for p in spec.peaks_cm]}

    def distance(self, total_a: np.ndarray, total_b: np.ndarray,
                 settings: dict[str, Any]) -> float:
        from analysis.observables.spectrum.compute import power_spectrum, vacf_of_total

        (wa, ia), (wb, ib) = (power_spectrum(*vacf_of_total(t), settings["window"])
                              for t in (total_a, total_b))
        return 1.0 - cosine(wa, ia, wb, ib)

    def table_columns(self, study: base.Study) -> list[str]:
        return ["peaks (cm^-1)"]

    def table_cells(self, summary: dict[str, Any], study: base.Study) -> list[str]:
        high = study.settings["xlim_cm"][1]
        return [", ".join(f"{p:.0f}" for p in summary["peaks_cm"] if p <= high)]

    def introduction(self, study: base.Study) -> str:
        s = study.settings
        return (f"Power spectrum of the {'mass-weighted ' if s['mass_weighted'] else ''}"
                f"velocity autocorrelation function ({s['window']} window, "
                f"{s['max_lag_ps']:g} ps maximum lag), averaged over the runs of each model.")

    def caption(self, study: base.Study) -> str:
        return ("VACF power spectra, models offset vertically; bars: harmonic frequencies where "
                "computed.")

    def figure(self, study: base.Study, path: Path) -> Path:
        from analysis.observables.spectrum.compute import plot

        shown = [*study.groups, *(r for r in study.references.values() if r.is_reference)]
        temps = sorted({g.temperature_K for g in shown})
        phonons = {k: np.asarray(v) for k, v in study.settings["phonons"].items()}
        fig, axes = base.new_figure(1, len(temps), figsize=(6.5 * len(temps), 4.5),
                                    squeeze=False)
        for ax, temp in zip(axes[0], temps, strict=True):
            mine = [g for g in shown if g.temperature_K == temp]
            spectra = {base.label(g.key): self.spectrum(g.total, study.settings) for g in mine}
            bars = {base.label(g.key): phonons[g.model] for g in mine if g.model in phonons}
            plot(spectra, ax, bars, tuple(study.settings["xlim_cm"]))
            ax.set_title(f"{temp:g} K", fontsize=10)
        return base.save_figure(fig, path)

    def extra_outputs(self, study: base.Study, args: argparse.Namespace) -> None:
        if args.export:
            path = Path(args.export)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["challenge", "model", "temperature_K", "wavenumber_cm",
                                 "intensity"])
                for g in study.groups:
                    spec = self.spectrum(g.total, study.settings)
                    for wn, inten in zip(spec.wavenumber_cm, spec.intensity, strict=True):
                        writer.writerow([g.challenge, g.model, f"{g.temperature_K:g}",
                                         f"{wn:.4f}", f"{inten:.8e}"])
            print(f"spectra: {args.export}")


def _xlim(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise UserError(f"--xlim {text!r}: write two numbers, e.g. 0,3500") from None
    if not 0 <= lo < hi:
        raise UserError(f"--xlim {text!r}: need 0 <= low < high")
    return lo, hi


def similarity(a, b, xlim: tuple[float, float] = XLIM_CM) -> float:
    """Cosine similarity of two spectra on a's grid over ``xlim``."""
    return cosine(a.wavenumber_cm, a.intensity, b.wavenumber_cm, b.intensity, xlim)


def cosine(wn_a: np.ndarray, int_a: np.ndarray, wn_b: np.ndarray, int_b: np.ndarray,
           xlim: tuple[float, float] = XLIM_CM) -> float:
    """Cosine similarity of two intensities on a's wavenumber grid over ``xlim``."""
    sel = (wn_a >= xlim[0]) & (wn_a <= xlim[1])
    ya = int_a[sel]
    yb = int_b[sel] if np.array_equal(wn_a, wn_b) else np.interp(wn_a[sel], wn_b, int_b)
    return float(ya @ yb / (np.linalg.norm(ya) * np.linalg.norm(yb)))


def load_phonons(files: list[str] | None) -> dict[str, list[float]]:
    """Model label -> frequencies (cm^-1) from phonon JSON files."""
    out = {}
    for name in files or []:
        path = Path(name)
        if not path.is_file():
            raise UserError(f"--phonons {name}: no such file; write one with analysis phonons")
        data = json.loads(path.read_text())
        out[data["model_label"]] = list(data["frequencies_cm"])
    return out


def phonons_near(paths: list[Path]) -> dict[str, list[float]]:
    """Phonon results written by ``analysis phonons`` into OUT/reports of these runs."""
    found = {}
    for path in paths:
        out_root = path.parents[3] if len(path.parents) > 3 else path.parent
        for json_file in sorted((out_root / "reports").glob("phonons-*.json")):
            data = json.loads(json_file.read_text())
            found[data["model_label"]] = list(data["frequencies_cm"])
    return found


OBSERVABLE = Spectrum()
register = OBSERVABLE.register
report_sections = OBSERVABLE.report_sections
