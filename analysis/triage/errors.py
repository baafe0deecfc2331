"""Per-element and per-atom errors of a model against the reference (TEA guidelines 2 and 3).

On frames sampled evenly from every run (and, for failed runs, separately on the watchdog's
every-step record before the event), per (challenge, model, temperature):

* energy error per atom, ``(E_model - E_ref) / N``: its mean (the offset between the two
  methods' energy zeros, meaningless on its own) and its MAE after removing that mean;
* force MAE and RMSE over Cartesian components, all atoms and per element;
* per-atom force MAE (mean over frames and components), its coefficient of variation across
  atoms (standard deviation / mean: how unevenly the error is spread) and the worst atoms.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from ase.data import chemical_symbols

from analysis.triage.study import LabelledRun

#: How many of the worst atoms (by per-atom force MAE) each row names.
WORST_ATOMS = 3


def group_errors(runs: list[LabelledRun], symbols: list[str]) -> dict[str, Any]:
    """The error statistics of a group of runs (one model, one temperature, one challenge)."""
    model_e = np.concatenate([r.frames.model_energy for r in runs])
    ref_e = np.concatenate([r.ref_energy for r in runs])
    diff = np.concatenate([r.frames.model_forces - r.ref_forces for r in runs])
    natoms = diff.shape[1]
    per_atom_e = (model_e - ref_e) / natoms
    offset = float(np.mean(per_atom_e))
    sym = np.array(symbols)
    by_element = {}
    for el in sorted(set(symbols), key=chemical_symbols.index):
        d = diff[:, sym == el]
        by_element[el] = {"mae": float(np.mean(np.abs(d))),
                          "rmse": float(np.sqrt(np.mean(d ** 2)))}
    atom_mae = np.mean(np.abs(diff), axis=(0, 2))
    mean_atom = float(np.mean(atom_mae))
    worst = np.argsort(atom_mae)[::-1][:WORST_ATOMS]
    return {
        "n_runs": len(runs), "n_frames": int(diff.shape[0]),
        "energy_offset_per_atom_eV": offset,
        "energy_mae_per_atom_eV": float(np.mean(np.abs(per_atom_e - offset))),
        "force_mae": float(np.mean(np.abs(diff))),
        "force_rmse": float(np.sqrt(np.mean(diff ** 2))),
        "force_mae_by_element": {el: v["mae"] for el, v in by_element.items()},
        "force_rmse_by_element": {el: v["rmse"] for el, v in by_element.items()},
        "per_atom_force_mae": atom_mae.tolist(),
        "per_atom_cv": float(np.std(atom_mae) / mean_atom) if mean_atom > 0 else 0.0,
        "worst_atoms": [{"index": int(i), "element": symbols[i],
                         "force_mae": float(atom_mae[i])} for i in worst],
    }


def _split(run: LabelledRun, source: str) -> LabelledRun | None:
    mask = np.array([s == source for s in run.frames.source])
    if not mask.any():
        return None
    return LabelledRun(run.record, run.frames.subset(mask), run.base, run.cell,
                       run.ref_energy[mask], run.ref_forces[mask], run.method)


def error_table(runs: list[LabelledRun]) -> list[dict[str, Any]]:
    """One row per (challenge, model, temperature, frames): ``sampled`` and ``before failure``."""
    groups: dict[tuple, dict[str, list[LabelledRun]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        key = (run.record.challenge, run.record.model, run.record.temperature_K)
        for source, name in (("stored", "sampled"), ("pre_failure", "before failure")):
            part = _split(run, source)
            if part is not None:
                groups[key][name].append(part)
    rows = []
    for (challenge, model, temp), parts in sorted(groups.items()):
        for name in ("sampled", "before failure"):
            if name not in parts:
                continue
            members = parts[name]
            symbols = members[0].base.get_chemical_symbols()
            rows.append({"challenge": challenge, "model": model, "temperature_K": temp,
                         "frames": name, "reference": members[0].method.label,
                         **group_errors(members, symbols)})
    return rows


def to_markdown(rows: list[dict[str, Any]], heading: str = "#") -> str:
    """Tables: energy and force errors per group, force MAE per element, worst atoms."""
    if not rows:
        return f"{heading} Errors against the reference\n\nNo frames.\n"
    references = ", ".join(sorted({r["reference"] for r in rows}))
    elements = sorted({el for r in rows for el in r["force_mae_by_element"]},
                      key=chemical_symbols.index)
    out = [f"{heading} Errors against the reference ({references})", "",
           "Energy MAE per atom after removing the mean offset; force errors over Cartesian "
           "components (eV/A); CV: coefficient of variation of the per-atom force MAE across "
           "atoms. 'before failure': the watchdog's steps before the event of failed runs.", "",
           "| challenge | model | T (K) | frames | runs / frames | energy MAE (meV/atom) | "
           "force MAE | force RMSE | " + " | ".join(f"MAE {el}" for el in elements)
           + " | per-atom CV | worst atoms |",
           "|---|---|---:|---|---:|---:|---:|---:|" + "---:|" * len(elements) + "---:|---|"]
    for r in rows:
        worst = ", ".join(f"{w['element']}{w['index']} {w['force_mae']:.3f}"
                          for w in r["worst_atoms"])
        per_el = " | ".join(f"{r['force_mae_by_element'][el]:.4f}"
                            if el in r["force_mae_by_element"] else "-" for el in elements)
        out.append(f"| {r['challenge']} | {r['model']} | {r['temperature_K']:g} | {r['frames']} "
                   f"| {r['n_runs']} / {r['n_frames']} | {1000 * r['energy_mae_per_atom_eV']:.3f}"
                   f" | {r['force_mae']:.4f} | {r['force_rmse']:.4f} | {per_el} | "
                   f"{r['per_atom_cv']:.2f} | {worst} |")
    return "\n".join(out) + "\n"
