"""``analysis info FILE.h5``: what a trajectory holds, in one screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ase.data import chemical_symbols

from harness import h5md
from harness.stability.criteria import drift_mev_per_atom_ps


def summarize(path: Path) -> dict[str, Any]:
    """Atoms, frames, time span, status, failure event, temperature and provenance of a run."""
    meta = h5md.read_meta(path)
    frames = h5md.read_frames(path) if meta["n_frames"] else {}
    species = [chemical_symbols[z] for z in meta["species"]]
    formula = {s: species.count(s) for s in sorted(set(species))}
    spec = meta["run_spec"]
    out: dict[str, Any] = {
        "file": str(path),
        "run": f"{spec['challenge']} / {spec['model_label']} / {spec['temperature_K']:g} K / "
               f"replica {spec['replica']}",
        "atoms": meta["n_atoms"],
        "formula": "".join(f"{s}{n}" for s, n in formula.items()),
        "frames": meta["n_frames"],
        "time_ps": (float(meta["times_ps"][0]), float(meta["times_ps"][-1]))
        if meta["n_frames"] else None,
        "planned_ps": spec["n_steps"] * spec["dt_fs"] * 1e-3,
        "status": meta["status"],
        "failure": meta["failure"],
        "provenance": meta["provenance"],
        "spec": spec,
    }
    if frames and "temperature" in frames and "conserved" in frames:  # imported: maybe not
        temp = frames["temperature"]
        out["temperature_K"] = {"mean": float(np.mean(temp)), "std": float(np.std(temp))}
        out["conserved_drift_eV"] = float(frames["conserved"][-1] - frames["conserved"][0])
        out["drift_mev_per_atom_ps"] = drift_mev_per_atom_ps(frames["time"], frames["conserved"],
                                                             meta["n_atoms"])
    return out


def format_summary(info: dict[str, Any]) -> str:
    """The summary as text for a terminal."""
    prov = info["provenance"]
    spec = info["spec"]
    lines = [
        f"{info['file']}",
        f"  run         {info['run']}",
        f"  status      {info['status'].upper()}",
        f"  atoms       {info['atoms']} ({info['formula']})",
    ]
    if info["time_ps"]:
        lines.append(f"  frames      {info['frames']}, t = {info['time_ps'][0]:g} .. "
                     f"{info['time_ps'][1]:.4g} ps of {info['planned_ps']:g} ps planned "
                     f"(dt {spec['dt_fs']:g} fs, every {spec['stride']} steps)")
    else:
        lines.append("  frames      0")
    if "temperature_K" in info:
        t = info["temperature_K"]
        how = "NVE, no thermostat" if spec.get("ensemble") == "nve" else \
            f"{spec['thermostat']} tau {spec['thermostat_tau_fs']:g} fs"
        lines.append(f"  temperature {t['mean']:.1f} +- {t['std']:.1f} K (target "
                     f"{spec['temperature_K']:g} K, {how}); conserved-energy drift "
                     f"{info['conserved_drift_eV']:.3g} eV")
        if info.get("drift_mev_per_atom_ps") is not None:
            lines[-1] += (f", {info['drift_mev_per_atom_ps']:.3g} meV/atom/ps "
                          "(fit after the first 20%)")
    failure = info["failure"]
    if failure:
        where = f" at step {failure['step']} ({failure['time_ps']:g} ps)" if "step" in failure \
            else ""
        lines.append(f"  failure     {failure['kind']}{where}: {failure['message']}")
    versions = ", ".join(f"{k} {v}" for k, v in prov.get("versions", {}).items())
    sha = prov.get("model_sha256")
    lines += [
        f"  model       {prov.get('model')} {prov.get('model_file') or '(no file)'}"
        + (f" sha256 {sha[:16]}..." if sha else ""),
        f"  seed        {prov.get('seed')}   host {prov.get('host')}   "
        f"started {prov.get('start_time')}   ended {prov.get('end_time')}",
        f"  command     {prov.get('command_line')}",
        f"  versions    {versions}",
    ]
    meta = prov.get("model_metadata") or {}
    for key in ("test_force_rmse_eV_per_A", "test_force_mae_eV_per_A", "reference_method"):
        if key in meta:
            lines.append(f"  model meta  {key} = {meta[key]}")
    return "\n".join(lines)
