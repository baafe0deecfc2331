"""Stability report: which runs survived, how far the others got, which bonds broke.

Like TEA 2023's SI tables 1-4 (broken bonds per model and temperature), with survival
curves (Kaplan-Meier: runs still unfinished count as censored at the time they reached).
Computing is separate from plotting and writing (:func:`plot_survival`, :func:`to_markdown`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np

from analysis import survival
from analysis.observables.stability import rule
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
        km = survival.kaplan_meier(*survival.from_records(recs))
        groups.append({
            "challenge": challenge, "model": model, "temperature_K": temp, "runs": len(recs),
            "stable": sum(r.status == "completed" for r in recs), "failed": len(failed),
            "unfinished": sum(r.status in ("running", "interrupted") for r in recs),
            "median_time_to_failure_ps": float(np.median([r.reached_ps for r in failed]))
            if failed else None,
            "failure_kinds": dict(kinds),
            "survival": {"time_ps": times.tolist(), "fraction": surv.tolist()},
            "kaplan_meier": km.as_dict(),
            "median_time_to_failure": km.median().as_dict(),
            "failures_per_ns": survival.failure_rate(*survival.from_records(recs)).as_dict(),
            "judgement": judge_records(recs).as_dict(),
        })
        for rec in failed:
            pair = element_pair(rec.failure)
            if pair:
                bonds[pair][f"{model} {temp:g} K"] += 1
    return {"runs": rows, "groups": groups, "log_rank": log_ranks(grouped),
            "broken_bonds": {pair: dict(counts) for pair, counts in sorted(bonds.items())}}


def judge_records(records: list[RunRecord]) -> rule.Judgement:
    """The stability rule (:func:`rule.judge`) on one group's run records."""
    times, failed = survival.from_records(records)
    return rule.judge(times, failed, [r.target_ps for r in records])


def log_ranks(grouped: dict[tuple, list[RunRecord]]) -> list[dict[str, Any]]:
    """Log-rank test between every two models of a challenge at the same temperature."""
    out = []
    keys = sorted(grouped)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            if a[0] != b[0] or a[2] != b[2]:
                continue
            test = survival.log_rank(*survival.from_records(grouped[a]),
                                     *survival.from_records(grouped[b]))
            out.append({"challenge": a[0], "temperature_K": a[2], "model_a": a[1],
                        "model_b": b[1], "p_value": test.p_value, "statistic": test.statistic,
                        "text": test.text(a[1], b[1])})
    return sorted(out, key=lambda t: (t["challenge"], t["temperature_K"], t["model_a"],
                                      t["model_b"]))


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
    out += _verdict_lines(summary.get("verdicts") or [])
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


def _verdict_lines(verdicts: list[dict[str, Any]]) -> list[str]:
    """The verdicts (as dicts) as a Markdown table: decision, rate, scope, the words."""
    if not verdicts:
        return []
    out = ["", "## Verdicts (failures per ns of simulated time)", "",
           "| model | T (K) | decision | scope | numbers |", "|---|---|---|---|---|"]
    for v in verdicts:
        out.append(f"| {v['model']} | {v['temperature_K']:g} | {v['decision']} | "
                   f"{(v.get('scope') or {}).get('label', '-')} | {v['detail']} |")
    return out


def plot_survival(summary: dict[str, Any], ax=None):
    """Kaplan-Meier curves with 95% bands of every (model, T) group on one axes."""
    from analysis.observables.stability import km_from_json

    curves = {f"{g['model']} {g['temperature_K']:g} K ({g['stable']} intact)":
              km_from_json(g["kaplan_meier"]) for g in summary["groups"]}
    return survival.plot_survival(ax, curves)
