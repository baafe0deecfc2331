"""Failure triage: did the model pull the bond apart where the reference would hold it?

For every failed run the reference is evaluated on the watchdog's every-step record before the
event (the *approach*) and on a few stored frames before it. Per frame: the model-minus-reference
energy relative to its value on the first frame (the run's start), the force MAE over all atoms,
per element and on the two atoms of the broken bond, and the force along that bond in the model
and in the reference. :func:`classify` turns the mean bond forces over the approach into a
verdict; the rule is stated there and in ``docs/triage.md``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from ase.geometry import find_mic

from analysis.triage.frames import FrameSet

#: Forces along the bond (eV/A) smaller than this are not taken as evidence either way.
FORCE_THRESHOLD_EV_PER_A = 0.5
CLASSES = ("model artefact", "physical", "unclear")
BOND_KINDS = ("bond_break", "bond_deviation", "atom_collapse", "h_detached")


def bond_force(positions: np.ndarray, forces: np.ndarray, i: int, j: int,
               cell: np.ndarray | None = None) -> np.ndarray:
    """Force along the bond i-j per frame (eV/A): positive pulls the atoms apart.

    Half the difference of the two atoms' forces projected on the unit vector from i to j,
    ``(F_j - F_i) . u / 2``: the force that stretches the bond, free of any force that moves
    both atoms together. ``cell`` (periodic runs) takes the minimum image.
    """
    vec = positions[:, j] - positions[:, i]
    if cell is not None:
        vec, _ = find_mic(vec, cell, pbc=True)
    unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    return 0.5 * np.einsum("fk,fk->f", forces[:, j] - forces[:, i], unit)


def bond_length(positions: np.ndarray, i: int, j: int,
                cell: np.ndarray | None = None) -> np.ndarray:
    """Distance i-j per frame (A), minimum image when ``cell`` is given."""
    vec = positions[:, j] - positions[:, i]
    if cell is not None:
        vec, _ = find_mic(vec, cell, pbc=True)
    return np.linalg.norm(vec, axis=1)


def classify(model_pull: float | None, reference_pull: float | None,
             threshold: float = FORCE_THRESHOLD_EV_PER_A) -> tuple[str, str]:
    """Classification of a failure from the mean forces along the broken bond (eV/A).

    Forces are positive when they pull the two atoms apart, averaged over the approach.
    With ``excess = model_pull - reference_pull`` and ``t = threshold``:

    1. ``unclear`` when there is no bond (another kind of failure) or both forces are
       smaller than ``t``: nothing to tell them apart;
    2. ``model artefact`` when the reference restores the bond (``reference_pull < 0``) and the
       model pulls it apart more than the reference by at least ``t`` (``excess >= t``);
    3. ``physical`` when the reference pulls the bond apart too (``reference_pull >= t``) or
       the model's force along the bond agrees with the reference's (``|excess| < t``): given
       the same positions the reference does the same, so the bond broke through the motion
       (the temperature), not through an error of the model along the bond;
    4. ``unclear`` otherwise (e.g. the model holds the bond more tightly than the reference and
       it broke anyway: look at the other atoms' errors).

    Returns the class and a one-line reason with the numbers.
    """
    if model_pull is None or reference_pull is None:
        return "unclear", "not a bond event: no bond to project forces on"
    excess = model_pull - reference_pull
    numbers = (f"model {model_pull:+.2f}, reference {reference_pull:+.2f} eV/A along the bond "
               f"(+ pulls apart), threshold {threshold:g}")
    if abs(model_pull) < threshold and abs(reference_pull) < threshold:
        return "unclear", f"both forces below the threshold: {numbers}"
    if reference_pull < 0 and excess >= threshold:
        return "model artefact", f"reference restores the bond, the model pulls it apart: {numbers}"
    if reference_pull >= threshold:
        return "physical", f"the reference pulls the bond apart too: {numbers}"
    if abs(excess) < threshold:
        return "physical", f"model and reference agree along the bond: {numbers}"
    return "unclear", f"the model restores the bond more than the reference: {numbers}"


def errors_per_frame(frames: FrameSet, ref_energy: np.ndarray, ref_forces: np.ndarray,
                     numbers: np.ndarray) -> dict[str, Any]:
    """Model-minus-reference errors of each frame: energy, force MAE overall and per element.

    ``energy_error_eV`` is relative to the first frame's (the constant offset between two
    methods' energy zeros is removed); force MAEs are over Cartesian components.
    """
    from ase.data import chemical_symbols

    diff = frames.model_forces - ref_forces
    energy = frames.model_energy - ref_energy
    symbols = np.array([chemical_symbols[z] for z in numbers])
    out: dict[str, Any] = {
        "energy_error_eV": (energy - energy[0]).tolist(),
        "force_mae": np.mean(np.abs(diff), axis=(1, 2)).tolist(),
        "force_mae_by_element": {
            el: np.mean(np.abs(diff[:, symbols == el]), axis=(1, 2)).tolist()
            for el in sorted(set(symbols), key=lambda s: chemical_symbols.index(s))},
    }
    return out


def triage_run(record: Any, frames: FrameSet, ref_energy: np.ndarray, ref_forces: np.ndarray,
               numbers: np.ndarray, cell: np.ndarray | None, reference_label: str,
               threshold: float = FORCE_THRESHOLD_EV_PER_A) -> dict[str, Any]:
    """The triage entry of one failed run (see the module docstring)."""
    from analysis.observables.stability.compute import bond_label

    failure = record.failure or {}
    entry: dict[str, Any] = {
        "file": str(record.path), "challenge": record.challenge, "model": record.model,
        "temperature_K": record.temperature_K, "replica": record.replica,
        "failure_kind": failure.get("kind", ""), "bond": bond_label(failure),
        "element_pair": None, "atoms": failure.get("atoms") or [],
        "event_step": failure.get("step"), "event_time_ps": failure.get("time_ps"),
        "reference": reference_label,
    }
    series = errors_per_frame(frames, ref_energy, ref_forces, numbers)
    series.update(step=frames.step.tolist(), time_ps=frames.time_ps.tolist(),
                  source=list(frames.source))
    approach = np.array([s == "pre_failure" for s in frames.source])
    if not approach.any():  # no every-step record: the last stored frames stand in for it
        approach[-min(len(frames), 3):] = True
    pulls: tuple[float | None, float | None] = (None, None)
    atoms = entry["atoms"]
    if failure.get("kind") in BOND_KINDS and len(atoms) == 2:
        i, j = (int(a) for a in atoms)
        entry["element_pair"] = "-".join(sorted(failure.get("elements") or []))
        f_model = bond_force(frames.positions, frames.model_forces, i, j, cell)
        f_ref = bond_force(frames.positions, ref_forces, i, j, cell)
        series.update(bond_length_A=bond_length(frames.positions, i, j, cell).tolist(),
                      bond_force_model=f_model.tolist(), bond_force_reference=f_ref.tolist(),
                      force_mae_bond_atoms=np.mean(np.abs(
                          frames.model_forces[:, [i, j]] - ref_forces[:, [i, j]]),
                          axis=(1, 2)).tolist())
        pulls = (float(np.mean(f_model[approach])), float(np.mean(f_ref[approach])))
    diff = frames.model_forces[approach] - ref_forces[approach]
    entry["approach"] = {
        "n_frames": int(approach.sum()),
        "bond_force_model": pulls[0], "bond_force_reference": pulls[1],
        "excess_pull": None if pulls[0] is None else pulls[0] - pulls[1],
        "force_mae": float(np.mean(np.abs(diff))),
        "force_mae_by_element": {el: float(np.mean(np.array(v)[approach]))
                                 for el, v in series["force_mae_by_element"].items()},
        "force_mae_bond_atoms": None if "force_mae_bond_atoms" not in series else float(
            np.mean(np.array(series["force_mae_bond_atoms"])[approach])),
        "energy_error_at_event_eV": series["energy_error_eV"][-1],
    }
    entry["classification"], entry["reason"] = classify(*pulls, threshold)
    entry["series"] = series
    return entry


def summarize(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts of each class per (challenge, model, temperature) and per element pair."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for e in entries:
        groups[(e["challenge"], e["model"], e["temperature_K"])].append(e)
    rows = []
    for (challenge, model, temp), items in sorted(groups.items()):
        counts = Counter(e["classification"] for e in items)
        excess = [e["approach"]["excess_pull"] for e in items
                  if e["approach"]["excess_pull"] is not None]
        rows.append({"challenge": challenge, "model": model, "temperature_K": temp,
                     "failed": len(items), **{c: counts.get(c, 0) for c in CLASSES},
                     "median_excess_pull": float(np.median(excess)) if excess else None,
                     "median_force_mae": float(np.median(
                         [e["approach"]["force_mae"] for e in items]))})
    pairs: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for e in entries:
        pair = e["element_pair"] or e["failure_kind"]
        pairs[pair][f"{e['model']} {e['temperature_K']:g} K"][e["classification"]] += 1
    return {"groups": rows,
            "element_pairs": {p: {col: dict(c) for col, c in cols.items()}
                              for p, cols in sorted(pairs.items())}}


def _cell(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    if not total:
        return "0"
    return f"{total} ({counts.get('model artefact', 0)} A / {counts.get('physical', 0)} P / " \
           f"{counts.get('unclear', 0)} U)"


def to_markdown(entries: list[dict[str, Any]], summary: dict[str, Any], reference: str,
                threshold: float, heading: str = "#") -> str:
    """Tables per model and temperature, per element pair, and one line per failed run."""
    out = [f"{heading} Why models failed (reference: {reference})", "",
           f"Classes: A = model artefact, P = physical, U = unclear (rule in docs/triage.md; "
           f"force threshold {threshold:g} eV/A). Forces along the broken bond are means over "
           "the watchdog's every-step record before the event, positive when they pull the "
           "atoms apart.", "",
           "| challenge | model | T (K) | failed | model artefact | physical | unclear | "
           "median excess pull (eV/A) | median force MAE (eV/A) |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for g in summary["groups"]:
        excess = "-" if g["median_excess_pull"] is None else f"{g['median_excess_pull']:+.2f}"
        out.append(f"| {g['challenge']} | {g['model']} | {g['temperature_K']:g} | {g['failed']} "
                   f"| {g['model artefact']} | {g['physical']} | {g['unclear']} | {excess} | "
                   f"{g['median_force_mae']:.3f} |")
    columns = sorted({c for cols in summary["element_pairs"].values() for c in cols})
    if columns:
        out += ["", "| bond | " + " | ".join(columns) + " |",
                "|---" + "|---:" * len(columns) + "|"]
        for pair, cols in summary["element_pairs"].items():
            out.append(f"| {pair} | " + " | ".join(_cell(cols.get(c, {})) for c in columns)
                       + " |")
    out += ["", "| run | bond | class | model pull | reference pull | force MAE, bond atoms "
            "| energy error at event (eV) |", "|---|---|---|---:|---:|---:|---:|"]
    for e in entries:
        a = e["approach"]
        bond_text = "-" if a["force_mae_bond_atoms"] is None \
            else f"{a['force_mae_bond_atoms']:.3f}"
        pull = "-" if a["bond_force_model"] is None else f"{a['bond_force_model']:+.2f}"
        rpull = "-" if a["bond_force_reference"] is None else f"{a['bond_force_reference']:+.2f}"
        out.append(f"| {Path(e['file']).name} {e['model']} {e['temperature_K']:g} K | "
                   f"{e['bond'] or '-'} | {e['classification']} | {pull} | {rpull} | "
                   f"{bond_text} | {a['energy_error_at_event_eV']:+.3f} |")
    return "\n".join(out) + "\n"
