"""``analysis spectrum``: VACF power spectra per model and temperature (TEA 2023, Fig. 4b)."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from analysis.commands import _common
from analysis.sections import Figure, Section, Verdict
from harness.errors import UserError
from harness.units import parse_time_ps

#: Two spectra agree when the cosine similarity of their normalised intensities over
#: 0..XLIM_CM is at least this (1 = identical shapes).
SIMILARITY_TOLERANCE = 0.90
XLIM_CM = (0.0, 3500.0)
REFERENCE_MODEL = "xtb"


def register(subparsers) -> None:
    """Add the ``spectrum`` subcommand."""
    p = subparsers.add_parser("spectrum", help="vibrational spectra from the velocity "
                              "autocorrelation function, models side by side")
    p.add_argument("paths", nargs="+", metavar="OUT", help="output folders or .h5 files")
    p.add_argument("--challenge", help="only trajectories of this challenge")
    p.add_argument("--max-lag", default="1ps", help="longest correlation time (default 1ps)")
    p.add_argument("--window", default="hann", help="hann (default), blackman, bartlett, none")
    p.add_argument("--no-mass-weighting", action="store_true",
                   help="plain VACF instead of the mass-weighted one")
    p.add_argument("--elements", help="only these elements, comma separated (e.g. C,N,H)")
    p.add_argument("--skip", help="discard this much of the start of every run (e.g. 5ps)")
    p.add_argument("--phonons", action="append", metavar="FILE.json",
                   help="harmonic frequencies from 'analysis phonons' drawn as bars")
    p.add_argument("--xlim", default="0,3500", help="plotted range in cm^-1 (default 0,3500)")
    p.add_argument("--export", metavar="FILE.csv", help="write the spectra as CSV")
    p.add_argument("--report-dir", help="where to write spectrum.json/.png (default OUT/reports)")
    p.set_defaults(func=run)


def _xlim(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise UserError(f"--xlim {text!r}: write two numbers, e.g. 0,3500") from None
    if not 0 <= lo < hi:
        raise UserError(f"--xlim {text!r}: need 0 <= low < high")
    return lo, hi


def compute(paths: list[Path], challenge: str | None, max_lag_ps: float, window: str,
            mass_weighted: bool, elements: list[str] | None, skip: float):
    """Spectra of every (challenge, model, temperature) group, by group key."""
    from analysis import framesets, spectrum

    out = {}
    for key, records in framesets.groups(paths, challenge).items():
        out[key] = spectrum.from_files(_common.paths_of(records), max_lag_ps, mass_weighted,
                                       elements, window, skip)
    return out


def load_phonons(files: list[str] | None) -> dict[str, np.ndarray]:
    """Model label -> frequencies (cm^-1) from phonon JSON files."""
    out = {}
    for name in files or []:
        path = Path(name)
        if not path.is_file():
            raise UserError(f"--phonons {name}: no such file; write one with analysis phonons")
        data = json.loads(path.read_text())
        out[data["model_label"]] = np.asarray(data["frequencies_cm"])
    return out


def figure(results, path: Path, xlim, phonons: dict[str, np.ndarray] | None = None) -> None:
    """One panel per temperature, models offset vertically (bars: harmonic frequencies)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis import spectrum

    temps = sorted({key[2] for key in results})
    several = len({key[0] for key in results}) > 1
    fig, axes = plt.subplots(1, len(temps), figsize=(6.5 * len(temps), 4.5), squeeze=False)
    for ax, temp in zip(axes[0], temps, strict=True):
        spectra = {_common.label(k, several): s for k, s in results.items() if k[2] == temp}
        bars = {_common.label(k, several): phonons[k[1]] for k in results
                if k[2] == temp and phonons and k[1] in phonons}
        spectrum.plot(spectra, ax, bars, xlim)
        ax.set_title(f"{temp:g} K", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def summary(results, settings: dict) -> dict:
    """JSON-ready peaks and settings per group."""
    return {"settings": settings, "groups": [
        {"challenge": k[0], "model": k[1], "temperature_K": k[2],
         "n_trajectories": s.n_trajectories, "frame_dt_ps": s.frame_dt_ps,
         "peaks_cm": [round(p, 1) for p in s.peaks_cm]} for k, s in results.items()]}


def export_csv(results, path: Path) -> None:
    """Long-format CSV: challenge, model, temperature_K, wavenumber_cm, intensity."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["challenge", "model", "temperature_K", "wavenumber_cm", "intensity"])
        for (challenge, model, temp), spec in results.items():
            for wn, inten in zip(spec.wavenumber_cm, spec.intensity, strict=True):
                writer.writerow([challenge, model, f"{temp:g}", f"{wn:.4f}", f"{inten:.8e}"])


def run(args: argparse.Namespace) -> int:
    """Entry point of ``analysis spectrum``."""
    from analysis.spectrum import WINDOWS

    xlim = _xlim(args.xlim)
    if args.window not in WINDOWS:
        raise UserError(f"--window {args.window!r}: choose one of {', '.join(WINDOWS)}")
    elements = [e.strip() for e in args.elements.split(",")] if args.elements else None
    settings = {"max_lag_ps": parse_time_ps(args.max_lag, "--max-lag"), "window": args.window,
                "mass_weighted": not args.no_mass_weighting, "elements": elements,
                "skip_ps": _common.skip_ps(args.skip)}
    phonons = load_phonons(args.phonons)
    results = compute([Path(p) for p in args.paths], args.challenge, settings["max_lag_ps"],
                      settings["window"], settings["mass_weighted"], elements,
                      settings["skip_ps"])
    out = _common.report_dir(args.report_dir, args.paths)
    data = summary(results, settings)
    (out / "spectrum.json").write_text(json.dumps(data, indent=1))
    figure(results, out / "spectrum.png", xlim, phonons)
    for row in data["groups"]:
        shown = [p for p in row["peaks_cm"] if xlim[0] <= p <= xlim[1]]
        print(f"{row['challenge']} {row['model']} {row['temperature_K']:g} K "
              f"({row['n_trajectories']} runs): peaks at "
              + ", ".join(f"{p:.0f}" for p in shown) + " cm^-1")
    if args.export:
        export_csv(results, Path(args.export))
        print(f"spectra: {args.export}")
    print(f"report: {out / 'spectrum.json'}, {out / 'spectrum.png'}")
    return 0


def similarity(a, b, xlim=XLIM_CM) -> float:
    """Cosine similarity of two spectra on a's grid over ``xlim``."""
    sel = (a.wavenumber_cm >= xlim[0]) & (a.wavenumber_cm <= xlim[1])
    ya = a.intensity[sel]
    yb = np.interp(a.wavenumber_cm[sel], b.wavenumber_cm, b.intensity)
    return float(ya @ yb / (np.linalg.norm(ya) * np.linalg.norm(yb)))


def report_sections(files: list[Path], workdir: Path) -> list[Section]:
    """Spectra of the challenges that declare the ``spectrum`` observable."""
    from analysis import framesets
    from harness import challenges

    by_challenge: dict[str, list[Path]] = {}
    for key, records in (framesets.groups(files).items() if files else []):
        try:
            declared = "spectrum" in challenges.load(key[0]).observables
        except Exception:  # noqa: BLE001 - an unknown or broken challenge has no sections
            declared = False
        long_enough = [r.path for r in records if framesets.info(r.path).n_frames >= 8]
        if declared and long_enough:
            by_challenge.setdefault(key[0], []).extend(long_enough)
    sections = []
    for challenge, paths in sorted(by_challenge.items()):
        png = workdir / f"spectrum_{challenge}.png"
        phonons = _phonons_near(paths)
        key = _common.files_key(paths, {"observable": "spectrum",
                                        "phonons": sorted(phonons)})
        data = _common.cached(workdir, f"spectrum_{challenge}", key)
        if data is None or not png.is_file():
            data = _section_data(challenge, paths, png, phonons)
            _common.store(workdir, f"spectrum_{challenge}", key, data)
        verdicts = [Verdict(**v) for v in data["verdicts"]]
        sections.append(Section(challenge, "Vibrational spectrum (VACF)", data["markdown"],
                                [Figure(png, "VACF power spectra, models offset vertically; "
                                        "bars: harmonic frequencies where computed.")],
                                verdicts, data["summary"]))
    return sections


def _section_data(challenge: str, paths: list[Path], png: Path,
                  phonons: dict[str, np.ndarray]) -> dict:
    """Compute spectra, figure, table and verdicts of one challenge (JSON-ready)."""
    from dataclasses import asdict

    from analysis import framesets

    shortest = min(framesets.info(p).n_frames * framesets.info(p).frame_dt_ps for p in paths)
    max_lag = min(1.0, 0.5 * shortest)
    results = compute(paths, challenge, max_lag, "hann", True, None, 0.0)
    figure(results, png, XLIM_CM, phonons)
    lines = ["| model | T (K) | runs | peaks (cm^-1) |", "|---|---|---|---|"]
    verdicts = []
    for key, spec in results.items():
        shown = [f"{p:.0f}" for p in spec.peaks_cm if p <= XLIM_CM[1]]
        lines.append(f"| {key[1]} | {key[2]:g} | {spec.n_trajectories} | "
                     f"{', '.join(shown)} |")
        if key[1] == REFERENCE_MODEL:
            continue
        ref = results.get((challenge, REFERENCE_MODEL, key[2]))
        if ref is None:
            verdicts.append(Verdict("spectrum", key[1], key[2], None,
                                    f"no {REFERENCE_MODEL} reference at {key[2]:g} K"))
            continue
        sim = similarity(ref, spec)
        verdicts.append(Verdict("spectrum", key[1], key[2], sim >= SIMILARITY_TOLERANCE,
                                f"cosine similarity {sim:.3f} (>= {SIMILARITY_TOLERANCE} "
                                f"agrees) vs {REFERENCE_MODEL} over {XLIM_CM[0]:g}-"
                                f"{XLIM_CM[1]:g} cm^-1"))
    markdown = (f"Power spectrum of the mass-weighted velocity autocorrelation function (Hann "
                f"window, {max_lag:g} ps maximum lag), averaged over the runs of each model."
                "\n\n" + "\n".join(lines))
    return {"markdown": markdown, "verdicts": [asdict(v) for v in verdicts],
            "summary": summary(results, {"max_lag_ps": max_lag})}


def _phonons_near(paths: list[Path]) -> dict[str, np.ndarray]:
    """Phonon results written by ``analysis phonons`` into OUT/reports of these runs."""
    found = {}
    for path in paths:
        out_root = path.parents[3] if len(path.parents) > 3 else path.parent
        for json_file in sorted((out_root / "reports").glob("phonons-*.json")):
            data = json.loads(json_file.read_text())
            found[data["model_label"]] = np.asarray(data["frequencies_cm"])
    return found
