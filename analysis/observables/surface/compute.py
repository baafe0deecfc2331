"""Challenge III observables from trajectories: geometry series, desorption, F(D), plots.

Computing (:func:`trajectory_series`, :func:`summarize`) is separate from plotting
(:func:`plot_distributions`, :func:`plot_maps`, :func:`plot_free_energy`), which take an axes
or return a figure and never compute. Geometry definitions: :mod:`analysis.surface_geometry`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase.data import atomic_masses

from analysis import divergence
from analysis.observables.surface import free_energy
from analysis.observables.surface.geometry import SurfaceGroups, analyse
from analysis.trajectories import RunRecord, read_record
from harness import challenges, h5md
from harness.errors import UserError

ANGLES = ("incline", "tilt", "slant")
#: Default desorption cut-off (Angstrom) when the challenge does not set one.
DESORPTION_ANGSTROM = 8.0
#: Frames read at a time (bounds the memory of long runs: ~5 MB per 1000 frames of 76 atoms).
CHUNK_FRAMES = 20_000
#: Bin width of D for distributions and F(D) (Angstrom).
D_BIN_ANGSTROM = 0.1


@dataclass
class Series:
    """Per-frame geometry of one run."""

    record: RunRecord
    time_ps: np.ndarray
    D: np.ndarray
    incline: np.ndarray
    tilt: np.ndarray
    slant: np.ndarray
    force_D: np.ndarray  # force conjugate to D, eV/A

    def desorption(self, cutoff: float) -> dict[str, Any]:
        """First time D exceeds ``cutoff``, number of crossings, fraction of frames beyond."""
        beyond = self.D > cutoff
        ups = np.flatnonzero(beyond[1:] & ~beyond[:-1]) + 1
        if beyond.size and beyond[0]:
            ups = np.concatenate([[0], ups])
        return {"file": str(self.record.path), "model": self.record.model,
                "temperature_K": self.record.temperature_K, "replica": self.record.replica,
                "desorbed": bool(beyond.any()),
                "first_time_ps": float(self.time_ps[ups[0]]) if ups.size else None,
                "events_ps": [float(self.time_ps[i]) for i in ups],
                "fraction_beyond": float(beyond.mean()) if beyond.size else 0.0,
                "max_D_angstrom": float(self.D.max()) if self.D.size else None}


def surface_groups(challenge_name: str, numbers: np.ndarray) -> SurfaceGroups | None:
    """The atom groups of a challenge, or None when it has no surface groups."""
    try:
        challenge = challenges.load(challenge_name)
    except UserError:  # a file of an unknown challenge is simply not ours
        return None
    if not {"surface", "molecule", "n_side"} <= set(challenge.groups):
        return None
    return SurfaceGroups.from_table(challenge.groups, numbers)


def desorption_cutoff(challenge_name: str) -> float:
    """The challenge's desorption distance (``[observables] desorption_angstrom``)."""
    try:
        table = challenges.load(challenge_name).raw.get("observables", {})
    except UserError:
        return DESORPTION_ANGSTROM
    return float(table.get("desorption_angstrom", DESORPTION_ANGSTROM))


def trajectory_series(path: Path) -> Series | None:
    """Geometry and conjugate force of every frame of one run (None if not a surface run)."""
    record = read_record(path)
    meta = h5md.read_meta(path)
    numbers = np.asarray(meta["species"])
    groups = surface_groups(record.challenge, numbers)
    if groups is None:
        return None
    if meta["n_frames"] == 0:
        empty = np.empty(0)
        return Series(record, empty, empty, empty, empty, empty, empty)
    parts = []
    for start in range(0, meta["n_frames"], CHUNK_FRAMES):
        parts.append(_chunk(h5md.read_frames(path, start, start + CHUNK_FRAMES), numbers,
                            groups, None if not meta["run_spec"].get("periodic")
                            else h5md.read_start(path)[1]))
    return Series(record, *(np.concatenate([p[k] for p in parts]) for k in range(6)))


def _chunk(frames: dict[str, np.ndarray], numbers: np.ndarray, groups: SurfaceGroups,
           start_cell: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """(time, D, incline, tilt, slant, force_D) of a block of frames."""
    cells = frames.get("box", start_cell)
    geo = analyse(frames["positions"], numbers, groups, cells)
    force = free_energy.conjugate_force(frames["forces"], atomic_masses[numbers],
                                        groups.molecule, groups.surface, geo["normal"])
    return (np.asarray(frames["time"]), geo["D"], geo["incline"], geo["tilt"], geo["slant"],
            force)


def group_series(series: list[Series]) -> dict[tuple[str, str, float], list[Series]]:
    """Runs grouped by (challenge, model, temperature)."""
    out: dict[tuple[str, str, float], list[Series]] = defaultdict(list)
    for s in series:
        out[s.record.group].append(s)
    return dict(sorted(out.items()))


def pooled(runs: list[Series], key: str, skip_ps: float = 0.0) -> np.ndarray:
    """One array of a quantity over the runs of a group, frames before ``skip_ps`` dropped."""
    parts = [getattr(s, key)[s.time_ps >= skip_ps] for s in runs]
    return np.concatenate(parts) if parts else np.empty(0)


def profiles(runs: list[Series], temperature_K: float, skip_ps: float = 0.0,
             d_range: tuple[float, float] | None = None) -> dict[str, free_energy.Profile]:
    """F(D) of a group by histogram and by mean-force integration."""
    distance = pooled(runs, "D", skip_ps)
    if distance.size == 0:
        lo, hi = 2.0, 10.0
    else:
        lo, hi = d_range or (np.floor(distance.min() * 10) / 10, distance.max() + 1e-6)
    edges = free_energy.bin_edges(lo, hi, D_BIN_ANGSTROM)
    return {"histogram": free_energy.histogram_profile(distance, temperature_K, edges),
            "mean force": free_energy.mean_force_profile(
                distance, pooled(runs, "force_D", skip_ps), temperature_K, edges)}


def js_divergence(p: np.ndarray, q: np.ndarray, edges: np.ndarray) -> float:
    """Jensen-Shannon divergence (log base 2, in [0, 1]) between the histograms of two samples."""
    hp, _ = np.histogram(p, bins=edges)
    hq, _ = np.histogram(q, bins=edges)
    if hp.sum() == 0 or hq.sum() == 0:
        return float("nan")
    return divergence.jensen_shannon(hp, hq)


def summarize(series: list[Series], skip_ps: float = 0.0,
              cutoff: float | None = None) -> dict[str, Any]:
    """Per-group statistics, desorption events and F(D) profiles (JSON-ready)."""
    groups = []
    runs_out = []
    for (challenge, model, temp), runs in group_series(series).items():
        cut = desorption_cutoff(challenge) if cutoff is None else cutoff
        events = [s.desorption(cut) for s in runs]
        runs_out += events
        distance = pooled(runs, "D", skip_ps)
        prof = profiles(runs, temp, skip_ps)
        row: dict[str, Any] = {
            "challenge": challenge, "model": model, "temperature_K": temp, "runs": len(runs),
            "frames": int(distance.size), "desorption_cutoff_angstrom": cut,
            "runs_desorbed": sum(e["desorbed"] for e in events),
            "fraction_beyond_cutoff": float(np.mean(distance > cut)) if distance.size else None,
            "first_desorption_ps": min((e["first_time_ps"] for e in events
                                        if e["first_time_ps"] is not None), default=None),
            "profiles": {k: p.to_dict() for k, p in prof.items()},
        }
        for key in ("D", *ANGLES):
            values = pooled(runs, key, skip_ps)
            row[f"{key}_mean"] = float(values.mean()) if values.size else None
            row[f"{key}_std"] = float(values.std()) if values.size else None
        for name, p in prof.items():
            depth = p.depth()
            row[f"dF_ads_{name.replace(' ', '_')}_eV"] = None if depth is None else depth[0]
            row[f"dF_ads_{name.replace(' ', '_')}_at_angstrom"] = None if depth is None \
                else depth[1]
        groups.append(row)
    return {"groups": groups, "runs": runs_out, "skip_ps": skip_ps}


def _angle_text(g: dict[str, Any], key: str) -> str:
    if g[f"{key}_mean"] is None:
        return "n/a"
    return f"{np.degrees(g[f'{key}_mean']):.1f} +- {np.degrees(g[f'{key}_std']):.1f}"


def _number(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def to_markdown(summary: dict[str, Any]) -> str:
    """Tables of the group statistics and of the desorption events."""
    lines = ["Angles in degrees (mean +- sd over all frames). dF_ads: F at the farthest sampled D "
             "minus the minimum of F(D), from -kT ln P(D) and from the integrated mean force.",
             "",
             "| model | T (K) | runs | frames | D mean +- sd (A) | incline (deg) | tilt (deg) | "
             "slant (deg) | runs desorbed | first desorption (ps) | dF_ads hist / TI (eV) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for g in summary["groups"]:
        d = "n/a" if g["D_mean"] is None else f"{g['D_mean']:.2f} +- {g['D_std']:.2f}"
        lines.append(f"| {g['model']} | {g['temperature_K']:g} | {g['runs']} | {g['frames']} | "
                     f"{d} | {_angle_text(g, 'incline')} | {_angle_text(g, 'tilt')} | "
                     f"{_angle_text(g, 'slant')} | "
                     f"{g['runs_desorbed']}/{g['runs']} | "
                     f"{_number(g['first_desorption_ps'], '.3g')} | "
                     f"{_number(g['dF_ads_histogram_eV'])} / "
                     f"{_number(g['dF_ads_mean_force_eV'])} |")
    desorbed = [r for r in summary["runs"] if r["desorbed"]]
    lines += ["", f"Desorption events (D beyond the cut-off): {len(desorbed)} runs"]
    if desorbed:
        lines += ["", "| model | T (K) | replica | first (ps) | crossings | fraction beyond |",
                  "|---|---|---|---|---|---|"]
        for r in desorbed:
            lines.append(f"| {r['model']} | {r['temperature_K']:g} | {r['replica']} | "
                         f"{r['first_time_ps']:.3g} | {len(r['events_ps'])} | "
                         f"{r['fraction_beyond']:.2f} |")
    return "\n".join(lines) + "\n"


def plot_distributions(groups: dict[tuple[str, str, float], list[Series]], temperature_K: float,
                       axes, skip_ps: float = 0.0):
    """Histograms of D and the three angles (4 axes) for every model at one temperature."""
    ranges = {"D": None, "incline": (0, 90), "tilt": (0, 90), "slant": (-90, 90)}
    for k, ((_, model, temp), runs) in enumerate(groups.items()):
        if temp != temperature_K:
            continue
        for ax, key in zip(axes, ("D", *ANGLES), strict=True):
            values = pooled(runs, key, skip_ps)
            if key != "D":
                values = np.degrees(values)
            if values.size:
                ax.hist(values, bins=60, range=ranges[key], density=True, histtype="step",
                        color=f"C{k}", label=model)
    for ax, key in zip(axes, ("D", *ANGLES), strict=True):
        ax.set_xlabel("D (Å)" if key == "D" else f"{key} (deg)")
        ax.set_yticks([])
    axes[0].legend(fontsize=7)
    return axes


def plot_maps(runs: list[Series], axes, skip_ps: float = 0.0):
    """2D densities incline-D, slant-D, tilt-slant of one group (3 axes), like Fig. 3e."""
    distance = pooled(runs, "D", skip_ps)
    deg = {key: np.degrees(pooled(runs, key, skip_ps)) for key in ANGLES}
    pairs = ((distance, deg["incline"], "D (Å)", "incline (deg)", (0, 90)),
             (distance, deg["slant"], "D (Å)", "slant (deg)", (-90, 90)),
             (deg["slant"], deg["tilt"], "slant (deg)", "tilt (deg)", (0, 90)))
    for ax, (x, y, xlabel, ylabel, yrange) in zip(axes, pairs, strict=True):
        if x.size:
            # one D range for every model, wide enough to show desorption (like Fig. 3e)
            xrange = (-90, 90) if xlabel.startswith("slant") else \
                (min(2.5, x.min() - 0.1), max(DESORPTION_ANGSTROM + 1.0, x.max() + 0.1))
            bins = [45, 45] if xlabel.startswith("slant") else [80, 45]
            ax.hist2d(x, y, bins=bins, range=[xrange, yrange], cmap="viridis", cmin=1)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    return axes


def plot_free_energy(prof_by_model: dict[str, dict[str, free_energy.Profile]], ax):
    """F(D) per model: histogram (solid) and mean-force integration (dashed)."""
    for k, (model, prof) in enumerate(prof_by_model.items()):
        hist, ti = prof["histogram"], prof["mean force"]
        ax.plot(hist.centres, hist.free_energy, color=f"C{k}", marker=".", label=f"{model}")
        ax.plot(ti.centres, ti.free_energy, color=f"C{k}", ls="--", marker=".")
    ax.set_xlabel("D (Å)")
    ax.set_ylabel("F (eV)")
    ax.legend(title="solid: -kT ln P; dashed: mean force", fontsize=7)
    return ax
