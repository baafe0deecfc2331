"""Stability report: which runs survived, how far the others got, which bonds broke.

Like TEA 2023's SI tables 1-4 (broken bonds per model and temperature), with survival
curves (Kaplan-Meier: runs still unfinished count as censored at the time they reached).
Computing is separate from plotting and writing (:func:`plot_survival`, :func:`to_markdown`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np

from analysis.trajectories import RunRecord


def bond_label(failure: dict[str, Any] | None) -> str:
    """``C-N (12-15)`` for a bond event, the kind for others, '' for none."""
    if not failure:
        return ""
    atoms, elements = failure.get("atoms") or [], failure.get("elements") or []
    if failure.get("kind") in ("bond_break", "bond_deviation", "atom_collapse", "h_detached") \
            and len(atoms) == 2 and len(elements) == 2:
        return f"{elements[0]}-{elements[1]} ({atoms[0]}-{atoms[1]})"
    return failure.get("kind", "")


def element_pair(failure: dict[str, Any] | None) -> str | None:
    """Sorted element pair of a broken bond (``C-N``), or None."""
    if not failure or failure.get("kind") != "bond_break":
        return None
    return "-".join(sorted(failure.get("elements") or []))


def survival_curve(records: list[RunRecord]) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier survival S(t) of a group: failures are events, other runs are censored."""
    times = [0.0]
    surv = [1.0]
    at_risk = len(records)
    s = 1.0
    for rec in sorted(records, key=lambda r: (r.reached_ps, r.status != "failed")):
        if rec.status == "failed":
            s *= (at_risk - 1) / at_risk if at_risk else 0.0
            times.append(rec.reached_ps)
            surv.append(s)
        at_risk -= 1
    end = max((r.target_ps for r in records), default=0.0)
    times.append(max(end, times[-1]))
    surv.append(s)
    return np.array(times), np.array(surv)


def summarize(records: list[RunRecord]) -> dict[str, Any]:
    """Per-run rows, per-(model, T) groups and the broken-bond table."""
    rows = [{
        "challenge": r.challenge, "model": r.model, "temperature_K": r.temperature_K,
        "replica": r.replica, "status": r.status, "survived": r.status == "completed",
        "reached_ps": r.reached_ps, "target_ps": r.target_ps,
        "failure_kind": (r.failure or {}).get("kind", ""), "broken": bond_label(r.failure),
        "file": str(r.path),
    } for r in sorted(records, key=lambda r: (r.challenge, r.model, r.temperature_K, r.replica))]
    grouped: dict[tuple, list[RunRecord]] = defaultdict(list)
    for rec in records:
        grouped[rec.group].append(rec)
    groups = []
    bonds: dict[str, Counter] = defaultdict(Counter)
    for (challenge, model, temp), recs in sorted(grouped.items()):
        failed = [r for r in recs if r.status == "failed"]
        kinds = Counter((r.failure or {}).get("kind", "?") for r in failed)
        times, surv = survival_curve(recs)
        groups.append({
            "challenge": challenge, "model": model, "temperature_K": temp, "runs": len(recs),
            "stable": sum(r.status == "completed" for r in recs), "failed": len(failed),
            "unfinished": sum(r.status in ("running", "interrupted") for r in recs),
            "median_time_to_failure_ps": float(np.median([r.reached_ps for r in failed]))
            if failed else None,
            "failure_kinds": dict(kinds),
            "survival": {"time_ps": times.tolist(), "fraction": surv.tolist()},
        })
        for rec in failed:
            pair = element_pair(rec.failure)
            if pair:
                bonds[pair][f"{model} {temp:g} K"] += 1
    return {"runs": rows, "groups": groups,
            "broken_bonds": {pair: dict(counts) for pair, counts in sorted(bonds.items())}}


def to_markdown(summary: dict[str, Any]) -> str:
    """The report as Markdown tables."""
    out = ["# Stability report", "", "## Per model and temperature", "",
           "| challenge | model | T (K) | stable / runs | failed | median time to failure (ps) "
           "| failure kinds |", "|---|---|---|---|---|---|---|"]
    for g in summary["groups"]:
        mttf = "-" if g["median_time_to_failure_ps"] is None \
            else f"{g['median_time_to_failure_ps']:.3g}"
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(g["failure_kinds"].items())) or "-"
        out.append(f"| {g['challenge']} | {g['model']} | {g['temperature_K']:g} | "
                   f"{g['stable']} / {g['runs']} | {g['failed']} | {mttf} | {kinds} |")
    columns = sorted({c for counts in summary["broken_bonds"].values() for c in counts})
    out += ["", "## Broken bonds (first broken bond of each failed run)", ""]
    if columns:
        out += ["| bond | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for pair, counts in summary["broken_bonds"].items():
            out.append(f"| {pair} | " + " | ".join(str(counts.get(c, 0)) for c in columns)
                       + " |")
    else:
        out.append("No bond broke.")
    out += ["", "## Runs", "", "| model | T (K) | replica | status | reached / target (ps) | "
            "failure | broken |", "|---|---|---|---|---|---|---|"]
    for r in summary["runs"]:
        out.append(f"| {r['model']} | {r['temperature_K']:g} | {r['replica']} | {r['status']} | "
                   f"{r['reached_ps']:.4g} / {r['target_ps']:.4g} | {r['failure_kind'] or '-'} | "
                   f"{r['broken'] or '-'} |")
    return "\n".join(out) + "\n"


def plot_survival(summary: dict[str, Any], ax=None):
    """Survival curves of every (model, T) group on one axes; returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    for g in summary["groups"]:
        s = g["survival"]
        ax.step(s["time_ps"], s["fraction"], where="post",
                label=f"{g['model']} {g['temperature_K']:g} K ({g['stable']}/{g['runs']})")
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("fraction of runs intact")
    ax.set_ylim(-0.02, 1.05)
    ax.set_title("Survival of MD runs (Kaplan-Meier)")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    return ax
