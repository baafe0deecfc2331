"""Presentation of what the observables share: model-against-model rows and their table.
The verdict statistics are :mod:`analysis.observables.decisions`; the contract
:mod:`analysis.observables.base` re-exports these names.
"""

from __future__ import annotations

from typing import Any

from analysis.observables.decisions import clipped, finite


def pair_json(pair, temperature_K: float, upper: float | None = None) -> dict[str, Any]:
    """One :class:`analysis.stats.PairDistance` as the row the sections show and store, its
    interval clipped to the distance's range ``[0, upper]`` (:func:`clipped`)."""
    clipped(pair.distance, upper)
    noise = [n.high for n in (pair.noise_a, pair.noise_b) if n is not None]
    return {"model_a": pair.model_a, "model_b": pair.model_b, "temperature_K": temperature_K,
            "value": finite(pair.distance.value), "ci_low": finite(pair.distance.low),
            "ci_high": finite(pair.distance.high),
            "noise": finite(max(noise)) if noise else None, "method": pair.distance.method,
            "disagree": pair.disagree}


def pairs_table(pairs: list[dict[str, Any]], measure: str, unit: str) -> str:
    """Model-against-model distances with intervals and the 'these models disagree' flags."""
    rows = [f"**Model against model** ({measure}{', ' + unit if unit else ''}; flagged when "
            "the whole interval lies above the between-replica noise):", "",
            "| models | T (K) | distance [95% interval] | replica noise (95% high) | |",
            "|---|---:|---|---:|---|"]
    for p in pairs:
        ci = "" if p["ci_low"] is None else f" [{p['ci_low']:.3g}, {p['ci_high']:.3g}]"
        noise = "-" if p["noise"] is None else f"{p['noise']:.3g}"
        value = "-" if p["value"] is None else f"{p['value']:.3g}"
        rows.append(f"| {p['model_a']} vs {p['model_b']} | {p['temperature_K']:g} | "
                    f"{value}{ci} | {noise} | "
                    + ("**these models disagree**" if p["disagree"] else p.get("note", ""))
                    + " |")
    return "\n".join(rows)
