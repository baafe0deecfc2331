"""Reference trajectories: the challenge's shipped ones or a folder a user brings (``--reference``).

A reference folder holds H5MD files in the runs' own form (``harness.h5md``: ``/parameters/harness``
with ``run_spec``, ``provenance``, ``status``), so every analysis reads them like runs. Each file
may carry a ``reference`` attribute under ``/parameters/harness``: JSON with at least ``method``
(e.g. ``"GFN2-xTB (tblite)"`` or ``"PBE+MBD (FHI-aims)"``) and ``temperature_K``; files written by
``analysis reference import`` and by :mod:`harness.challenges.reference_md` have it. Files without
it take the method from the challenge's ``reference_method``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import challenges, h5md
from harness.errors import UserError

#: What ``--reference`` takes to mean "compare with nothing".
NONE = "none"
#: What ``--reference`` takes to mean "the shipped equilibrium ensemble" (replica exchange).
EQUILIBRIUM = "equilibrium"


@dataclass
class ReferenceSet:
    """The reference trajectories of one challenge at one temperature, and what they are."""

    directory: Path
    method: str
    temperature_K: float
    files: list[Path]
    shipped: bool
    info: dict[str, Any] = field(default_factory=dict)
    #: Why this reference was chosen, when the challenge ships more than one kind.
    why: str = ""

    @property
    def n_runs(self) -> int:
        """Number of reference trajectories."""
        return len(self.files)

    def describe(self) -> str:
        """One line for reports: method, temperature, runs, what kind, where it comes from."""
        where = "shipped with the challenge" if self.shipped else str(self.directory)
        if self.info.get("kind") == "equilibrium":
            state = {True: "; the ladders agree", False: "; NOT converged: the ladders "
                     "disagree"}.get(self.info.get("converged"), "")
            return (f"{self.method} at {self.temperature_K:g} K, equilibrium ensemble from "
                    f"replica exchange, {self.n_runs} independent ladder"
                    f"{'s' if self.n_runs != 1 else ''} ({where}{state})")
        return (f"{self.method} at {self.temperature_K:g} K, {self.n_runs} trajectories "
                f"({where}{'; ' + self.why if self.why else ''})")


def _attrs(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run_spec, reference attribute) of one file."""
    try:
        with h5md.open_file(path, "r") as f:
            params = f[h5md.PARAMS]
            spec = json.loads(params.attrs["run_spec"])
            ref = json.loads(params.attrs["reference"]) if "reference" in params.attrs else {}
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"{path}: not a reference trajectory in H5MD form ({exc}); "
                        "convert it with 'analysis reference import'") from None
    return spec, ref


def load(challenge: challenges.Challenge, directory: Path | str | None = None
         ) -> ReferenceSet | None:
    """The reference of ``challenge``: ``directory`` if given, else the shipped ``reference/``.

    Returns None when there is none (no folder, no ``*.h5`` in it, or ``directory == "none"``).
    A folder given explicitly that does not exist or holds no H5MD files is a user error.
    """
    shipped = directory is None
    if directory is not None and str(directory) == NONE:
        return None
    if directory is not None and str(directory) == EQUILIBRIUM:
        found = load_equilibrium(challenge)
        if found is None:
            raise UserError(f"--reference equilibrium: challenge {challenge.name} ships no "
                            "equilibrium ensemble (reference/equilibrium/); make one with "
                            "python -m harness.challenges.reference_remd")
        return found
    folder = challenge.path / "reference" if shipped else Path(directory)
    # the shipped straight runs lie in reference/ itself; reference/equilibrium/ holds the
    # replica-exchange ensemble (load_equilibrium), another kind of reference
    files = sorted(folder.glob("*.h5") if shipped else folder.rglob("*.h5")) \
        if folder.is_dir() else []
    if not files:
        if shipped:
            return None
        raise UserError(f"--reference {folder}: no H5MD files there; make them with "
                        "'analysis reference import FILE --challenge NAME ...'")
    specs = [_attrs(p) for p in files]
    spec, ref = specs[0]
    temps = {float(s.get("temperature_K", ref.get("temperature_K", 0.0))) for s, _ in specs}
    if len(temps) > 1:
        raise UserError(f"--reference {folder}: files at several temperatures "
                        f"({', '.join(f'{t:g} K' for t in sorted(temps))}); give one folder per "
                        "temperature")
    method = ref.get("method") or challenge.raw.get("reference_method", "reference")
    why = ""
    if shipped and (equilibrium := load_equilibrium(challenge)) is not None:
        why = ("the default: straight runs from the challenge's starts, which models' runs pair "
               "with start by start; the replica-exchange ensemble also ships ("
               + ("converged" if equilibrium.info.get("converged") else "NOT converged")
               + ", --reference equilibrium)")
    return ReferenceSet(directory=folder, method=str(method), temperature_K=temps.pop(),
                        files=files, shipped=shipped, info=ref, why=why)


EQUILIBRIUM_FOLDER = "equilibrium"


def load_equilibrium(challenge: challenges.Challenge) -> ReferenceSet | None:
    """The challenge's shipped equilibrium ensemble (``reference/equilibrium/``: replica
    exchange, :mod:`harness.challenges.reference_remd`), None when it ships none."""
    folder = challenge.path / "reference" / EQUILIBRIUM_FOLDER
    if not folder.is_dir() or not any(folder.glob("*.h5")):
        return None
    found = load(challenge, folder)
    if found is not None:
        found.shipped = True
    return found


def kind_of(ref: ReferenceSet) -> str:
    """``equilibrium`` (replica-exchange ensemble) or ``straight`` (runs from the starts)."""
    return "equilibrium" if ref.info.get("kind") == "equilibrium" else "straight"


# --- describing a reference for reports -----------------------------------------------------

def lengths(ref: ReferenceSet) -> list[dict[str, Any]]:
    """Per file: name, frames, simulated ps (last minus first time stamp), size in MB."""
    out = []
    for path in ref.files:
        meta = h5md.read_meta(path)
        times = meta["times_ps"]
        out.append({"file": path.name, "frames": meta["n_frames"],
                    "length_ps": float(times[-1] - times[0]) if len(times) > 1 else 0.0,
                    "size_MB": path.stat().st_size / 1e6})
    return out


def temperature_note(ref: ReferenceSet, temperature_K: float) -> str | None:
    """None when a model at ``temperature_K`` compares directly with ``ref``, else why not."""
    if abs(float(temperature_K) - ref.temperature_K) <= 0.5:
        return None
    return (f"the reference is at {ref.temperature_K:g} K, the model at {temperature_K:g} K: "
            "compared qualitatively (as TEA 2023 compared its 300 K models with a 500 K "
            "reference), not as a verdict")


def split_half_parts(ref: ReferenceSet, challenge: challenges.Challenge, settings: Any = None
                     ) -> tuple[list[Any], list[Any], list[Any], str]:
    """The reference's angles in two halves, as lists of parts (what a bootstrap resamples).

    Two or more runs: the first half of the runs against the rest (6 against 6 for 12
    runs); one run: the first half of its frames against the second. Returns
    ``(pairs, first_parts, second_parts, how)``; each part is one run's (or half-run's)
    angle array, columns phi/psi per pair as in :func:`analysis.ramachandran.read_group`.
    """
    from analysis.observables.ramachandran import compute as rama

    pairs = rama.challenge_pairs(challenge)
    settings = settings or rama.settings_for(challenge, {})
    data = rama.read_group(ref.files, pairs, settings.stride)
    first, second, how = split_runs(data.split(data.angles))
    return pairs, first, second, how


def split_runs(runs: list[Any]) -> tuple[list[Any], list[Any], str]:
    """The reference's halves: the first half of the runs against the rest, or for one run the
    first half of its frames against the second. Returns ``(first, second, how)``; the one
    definition of "split-half" that ``reference show``, the report's Reference section and
    the Ramachandran verdicts share."""
    if len(runs) >= 2:
        half = len(runs) // 2
        how = (f"runs 1-{half} against runs {half + 1}-{len(runs)}" if half > 1 else
               f"run 1 against run{'s' if len(runs) > 2 else ''} 2"
               f"{f'-{len(runs)}' if len(runs) > 2 else ''}")
        return runs[:half], runs[half:], how
    only = runs[0]
    return [only[:len(only) // 2]], [only[len(only) // 2:]], \
        "first half of the run's frames against the second half"


def split_half_statistic(first: list[Any], second: list[Any], column: int, settings: Any
                         ) -> tuple[float, float]:
    """(JS divergence in bits, Hellinger distance) between the densities of two sets of parts
    for one dihedral pair (``column``: the pair's position in the challenge's pairs)."""
    import numpy as np

    from analysis import divergence
    from analysis.observables.ramachandran import torus

    smooth = settings.smooth_deg / (360.0 / settings.bins)
    dens = [torus.density(np.concatenate([p[:, 2 * column:2 * column + 2] for p in parts])
                          .astype(float), settings.bins, smooth) for parts in (first, second)]
    return divergence.jensen_shannon(*dens), divergence.hellinger(*dens)


def split_half_noise(ref: ReferenceSet, challenge: challenges.Challenge, settings: Any = None,
                     n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Split-half JS divergence and Hellinger distance per Ramachandran pair, with intervals.

    The value compares the fixed halves of :func:`split_half_parts`; its 95% interval comes
    from :func:`split_half_interval` (bootstrap over the runs of each half, time blocks when a
    half has fewer than 4 runs). ``random_halves`` adds :func:`analysis.stats.split_noise`:
    the JS between random halves of all units (median and central 95%), which does not depend
    on which runs happen to sit in which half.

    Returns ``{"how", "tolerance_bits", "pairs": {name: {label, js_bits, hellinger, js_ci,
    hellinger_ci, units, random_halves_js}}}``; an empty ``pairs`` for challenges without
    ``[ramachandran.pairs]``.
    """
    from analysis import stats
    from analysis.observables.ramachandran import compute as rama

    settings = settings or rama.settings_for(challenge, {})
    if not challenge.raw.get("ramachandran", {}).get("pairs"):
        return {"how": None, "tolerance_bits": settings.js_tolerance, "pairs": {}}
    pairs, first, second, how = split_half_parts(ref, challenge, settings)
    out: dict[str, Any] = {"how": how, "tolerance_bits": settings.js_tolerance, "pairs": {}}
    for k, pair in enumerate(pairs):
        js, hel = split_half_statistic(first, second, k, settings)
        js_ci, hel_ci, method = split_half_interval(first, second, k, settings, n_resamples,
                                                    seed)
        all_units, all_method = stats.units(first + second)
        random = stats.split_noise(_unit_histograms(all_units, k, settings), _js_sums,
                                   n_resamples=n_resamples, seed=seed, method=all_method,
                                   histograms=True)
        odd = atypical_run(first, second, k, settings)
        if odd is not None and len(ref.files) == len(first) + len(second):
            odd["file"] = Path(ref.files[odd["index"]]).name
        out["pairs"][pair.name] = {
            "label": pair.label, "js_bits": js, "hellinger": hel, "js_ci": js_ci,
            "hellinger_ci": hel_ci, "units": method,
            "random_halves_js": random.as_dict() if random else None,
            "most_atypical_run": odd}
    return out


def _js_sums(a: Any, b: Any) -> float:
    from analysis import divergence

    return divergence.jensen_shannon(a, b)


def _unit_histograms(units: list[Any], column: int, settings: Any) -> Any:
    """Smoothed counts per unit (density x frames: they add up to the smoothed total)."""
    import numpy as np

    from analysis.observables.ramachandran import torus

    smooth = settings.smooth_deg / (360.0 / settings.bins)
    return np.array([torus.density(u[:, 2 * column:2 * column + 2].astype(float), settings.bins,
                                   smooth) * len(u) for u in units])


def atypical_run(first: list[Any], second: list[Any], column: int, settings: Any
                 ) -> dict[str, Any] | None:
    """The run without which the two halves agree best on one pair (a diagnosis, not a verdict).

    Each run in turn is left out of its half and the split-half JS divergence (bits) of the
    rest recomputed; returns ``{"index", "js_without_bits", "js_bits"}`` for the run whose
    absence lowers it most (``index`` counts the runs of ``first`` then ``second``;
    ``js_bits``: with every run), or None when a half has fewer than 2 runs. When leaving out
    one run brings a split-half far above the tolerance down to a fraction of it, that run
    holds a basin the others rarely visit: a rare event, which longer runs (more transitions)
    would settle, not more runs of the same length.
    """
    if len(first) < 2 or len(second) < 2:
        return None
    full, _ = split_half_statistic(first, second, column, settings)
    runs = [(0, k) for k in range(len(first))] + [(1, k) for k in range(len(second))]
    best: dict[str, Any] | None = None
    for index, (half, k) in enumerate(runs):
        a = [r for j, r in enumerate(first) if (half, j) != (0, k)]
        b = [r for j, r in enumerate(second) if (half, j) != (1, k)]
        js, _ = split_half_statistic(a, b, column, settings)
        if best is None or js < best["js_without_bits"]:
            best = {"index": index, "js_without_bits": float(js), "js_bits": float(full)}
    return best


def split_half_interval(first: list[Any], second: list[Any], column: int, settings: Any,
                        n_resamples: int = 1000, seed: int = 0
                        ) -> tuple[list[float], list[float], str]:
    """95% intervals of the split-half (JS bits, Hellinger) and what was resampled.

    Each half's units (its runs, or time blocks of them when the half has fewer than 4 runs,
    :func:`analysis.stats.units`) are resampled with replacement, independently per half, and
    the divergence of the summed smoothed histograms recomputed (``basic`` intervals, as
    :mod:`analysis.stats` recommends for divergences; clipped to [0, 1]).
    """
    from analysis import divergence, stats

    units_a, method_a = stats.units(first)
    units_b, method_b = stats.units(second)
    method = method_a if method_a == method_b else f"{method_a} / {method_b}"
    hists = [_unit_histograms(units_a, column, settings),
             _unit_histograms(units_b, column, settings)]
    common = {"n_resamples": n_resamples, "seed": seed, "method": method, "interval": "basic"}
    js = stats.bootstrap_histograms(hists, stats.jensen_shannon_rows, vectorized=True, **common)
    hel = stats.bootstrap_histograms(hists, divergence.hellinger, **common)
    # both divergences lie in [0, 1]; a basic interval can reach past either end
    def clip(x: float) -> float:
        return min(1.0, max(0.0, x))

    return ([clip(js.low), clip(js.high)], [clip(hel.low), clip(hel.high)],
            f"{method} ({len(units_a)} + {len(units_b)})")


def summarize(ref: ReferenceSet, challenge: challenges.Challenge, settings: Any = None,
              n_resamples: int = 1000) -> dict[str, Any]:
    """Everything a report states about a reference: method, temperature, runs, ps per run,
    frames, size, split-half noise (``n_resamples`` bootstrap resamples) next to the
    tolerance."""
    files = lengths(ref)
    return {"method": ref.method, "temperature_K": ref.temperature_K,
            "directory": str(ref.directory), "shipped": ref.shipped, "n_runs": ref.n_runs,
            "ps_per_run": [round(f["length_ps"], 6) for f in files],
            "total_ps": sum(f["length_ps"] for f in files),
            "frames": sum(f["frames"] for f in files),
            "size_MB": sum(f["size_MB"] for f in files), "files": files,
            "imported_from": [ref_attr.get("source", {}).get("file")
                              for ref_attr in _reference_attrs(ref)],
            "split_half": split_half_noise(ref, challenge, settings, n_resamples)}


def _reference_attrs(ref: ReferenceSet) -> list[dict[str, Any]]:
    return [_attrs(p)[1] for p in ref.files]


def format_summary(summary: dict[str, Any]) -> str:
    """Markdown lines for a report (also what ``analysis reference show`` prints)."""
    ps = summary["ps_per_run"]
    per_run = (f"{ps[0]:g} ps per run" if max(ps) - min(ps) < 1e-6
               else f"{min(ps):g}-{max(ps):g} ps per run")
    lines = [f"Reference: {summary['method']} at {summary['temperature_K']:g} K, "
             f"{summary['n_runs']} run(s), {per_run} ({summary['total_ps']:g} ps in all), "
             f"{summary['frames']} frames, {summary['size_MB']:.2f} MB "
             f"({'shipped with the challenge' if summary['shipped'] else summary['directory']})."]
    noise = summary["split_half"]
    if noise["pairs"]:
        tol = noise["tolerance_bits"]
        lines.append(f"Split-half noise ({noise['how']}), Ramachandran tolerance {tol:g} bits:")
        for name, item in noise["pairs"].items():
            ci = item["js_ci"]
            interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
            verdict = _noise_verdict(item["js_bits"], ci, tol)
            hel = item["hellinger_ci"]
            hel_text = f" [{hel[0]:.3f}, {hel[1]:.3f}]" if hel else ""
            rnd = item.get("random_halves_js")
            rnd_text = (f"; random halves of all {rnd['n_units']} units: median "
                        f"{rnd['value']:.3f} [{rnd['ci_low']:.3f}, {rnd['ci_high']:.3f}]"
                        if rnd else "")
            lines.append(f"- pair {name} ({item['label']}): JS {item['js_bits']:.3f}{interval} "
                         f"bits, Hellinger {item['hellinger']:.3f}{hel_text} (95% intervals "
                         f"over {item['units']}){rnd_text}; {verdict}"
                         + _atypical_text(item, tol))
    return "\n".join(lines)


def _atypical_text(item: dict[str, Any], tolerance: float) -> str:
    """Why a pair cannot decide, where one run explains it: the halves differ by more than
    the tolerance, and by less than half of it without that run."""
    odd = item.get("most_atypical_run")
    if not odd or "file" not in odd or item["js_bits"] < tolerance:
        return ""
    if odd["js_without_bits"] >= tolerance / 2:
        return ""
    return (f". One run explains it: without {odd['file']} the halves differ by "
            f"{odd['js_without_bits']:.3f} bits. That run holds a basin the others rarely "
            "visit (a rare event): longer runs, with more transitions, would settle this pair; "
            "more runs of this length would not")


def _noise_verdict(js: float, ci: list[float] | None, tolerance: float) -> str:
    """Can this reference decide? Judged on the interval's upper end where there is one."""
    high = ci[1] if ci else js
    if high < tolerance / 2:
        return "below half the tolerance: the reference can decide"
    if js < tolerance / 2:
        return "below half the tolerance, but its interval reaches above"
    if js < tolerance:
        return "below the tolerance, above half of it"
    return ("above the tolerance: compared unpaired, this pair cannot decide (no model can "
            "be shown to agree with this reference; on this pair a model differs only beyond "
            "this split-half divergence); pairs below the tolerance still decide alone. Model "
            "runs from the reference's own starts, no longer than its runs, are compared "
            "paired by start and are not held to it")
