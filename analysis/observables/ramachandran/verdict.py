"""The Ramachandran verdicts as values: the statistics decide, :func:`phrase` words them.

:func:`judge` applies one rule to the evidence of a model group (its largest-JS interval and
its per-pair intervals against the reference) and returns a decision, a reason code, the
numbers the rule used (``facts``), the scope and the smallest detectable difference. The same
rule is applied to the group's control (each run's own opening repeated over its length,
:func:`analysis.observables.ramachandran.study.control_trajectories`): a model can be
``agrees`` only where its control ``differs``, i.e. only where these runs can tell a model
that samples from one that stays where it started. :func:`phrase` turns a verdict into its
one sentence from :data:`TEMPLATES`; nothing here reads that text back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from analysis import stats
from analysis.observables.ramachandran import compute as rama
from analysis.sections import Verdict

#: ``method`` of an interval from runs paired by start.
PAIRED = "runs paired by start"

#: One sentence piece per reason code and per optional part; ``{name}`` fields come from the
#: verdict's facts and from :func:`_fields`. Rewording any of them changes no decision.
TEMPLATES: dict[str, str] = {
    # the reasons
    "no_reference_data": "no reference trajectory for this challenge",
    "no_frames": "no frames to compare (the runs failed at the start)",
    "other_temperature": "{largest}; the reference is at another temperature: compared "
                         "qualitatively only",
    "block_shortfall": "{largest}; inconclusive: {shortfall}",
    "within_tolerance": "{largest}",
    "beyond_tolerance": "{largest}",
    "straddles_tolerance": "{largest}",
    "pair_reaches": "{largest}",
    "pair_beyond_bar": "pair {pair} alone vs the {reference} reference: {pair_interval} bits, "
                       "wholly beyond {bar:.3f} ({why}): differs{others}. ({largest})",
    "beyond_split_half": "{largest}; differs: beyond the reference's own split-half "
                         "divergence{split} of {noise:.3f} bits (pair {noise_pair}), which "
                         "exceeds the tolerance",
    "reference_noisy": "{largest}; inconclusive: the reference's own halves{split} differ by "
                       "{noise:.3f} bits (pair {noise_pair}), more than the tolerance"
                       "{well_sampled}",
    "control_not_excluded": "{largest}",
    # the parts
    "largest_unpaired": "largest JS divergence (pair {worst_pair}) vs the {reference} "
                        "reference: {interval}{resampled}",
    "largest_paired": "largest JS divergence (pair {worst_pair}) vs the {reference} reference, "
                      "paired by start ({starts} starts, the reference's runs cut to the "
                      "model's {span}{left_out}): {interval}",
    "left_out": "; {n} run{s} that stopped before half the longest left out",
    "resampled": " ({method} resampled)",
    "reach": "pair {pair} alone reaches {high:.3f}",
    "reach_beyond": ", beyond the tolerance",
    "narrow": "; {ways} would narrow it",
    "other_starts": "runs from the other {n} starts",
    "longer_runs": "longer runs (the reference's go to {ps:g} ps)",
    "paired_noise": ". Paired, the reference's spread between starts (its split-half, "
                    "{noise}) cancels; the verdict is about these starts over this time, not "
                    "about longer runs",
    "own_split": "that pair's own reference split-half{split}, which exceeds the tolerance "
                 "{tolerance:g}",
    "tolerance_bar": "the tolerance",
    "tolerance_bar_noise": "the tolerance; that pair's reference split-half is {noise:.3f}",
    "cannot_decide": "pair {pair} cannot decide: the reference's own halves differ by "
                     "{noise:.3f} bits there",
    "well_agree": "; the pairs the reference samples well agree on their own, whole interval "
                  "within the tolerance ({pairs})",
    "well_reach": "; the pairs the reference samples well reach back to the tolerance "
                  "({pairs}): more model runs would narrow them",
    "control": ". Control (each run's first {opening_ps:g} ps repeated over its length, the "
               "same rule): {control_interval}: {control}",
    "control_agrees": "; these runs cannot tell a model that samples from one that stays where "
                      "it started, so they show no agreement: {remedy}",
    "remedy": "longer runs (until a run that stays put would differ), or an equilibrium "
              "reference compared unpaired",
    "detectable": ". Smallest true difference this design would call differs: {detectable:.3f} "
                  "bits",
    "runs_to_decide": "; about {runs} runs (if the value held) would decide",
}


@dataclass
class Evidence:
    """What the rule is applied to: a model group's intervals, or its control's.

    ``value`` is the largest JS over the pairs (point value), ``found`` the interval of the
    largest JS (an entry of ``ChallengeStudy.intervals``), ``pairs`` the per-pair intervals.
    """

    value: float | None
    worst: str
    found: dict[str, Any]
    pairs: dict[str, dict[str, Any]]


def decide(ci: stats.Interval, tolerance: float, bootstrap: bool) -> str:
    """:func:`analysis.observables.base.decide` with the bootstrap switch as an argument."""
    from analysis.observables.base import decide as base_decide

    return base_decide(ci, tolerance, bootstrap)


def reaching(pairs: dict[str, dict[str, Any]], tol: float) -> dict[str, float]:
    """The pairs whose own interval reaches beyond the tolerance (their upper bounds).

    ``agrees`` needs every pair within the tolerance (an intersection-union test): the basic
    interval of the largest JS can end below a single pair's upper bound. Pairs without bounds
    (the bootstrap switched off for timings) are not counted: the point values decide then."""
    return {name: pci["high"] for name, pci in pairs.items()
            if pci.get("high") is not None and pci["high"] > tol}


def pair_decision(pci: dict[str, Any], tol: float, noise: float | None) -> tuple[str, float]:
    """One dihedral pair alone against a partly noisy reference: (decision, bar).

    The bar is the larger of the tolerance and the reference's own split-half divergence on
    that pair (``noise``). ``differs`` when the pair's whole interval lies beyond the bar;
    ``agrees`` when the reference samples the pair well (noise within the tolerance) and the
    whole interval lies within the tolerance; ``inconclusive`` otherwise (also without bounds).
    """
    bar = max(tol, tol if noise is None else noise)
    low, high = pci.get("low"), pci.get("high")
    if low is None or high is None:
        return "inconclusive", bar
    if low > bar:
        return "differs", bar
    if bar == tol and high <= tol:
        return "agrees", bar
    return "inconclusive", bar


def decided_pair(pairs: dict[str, dict[str, Any]], noise: dict[str, float], tol: float
                  ) -> tuple[str, dict[str, Any], float] | None:
    """The pair that shows a model differs from a partly noisy reference, if one does
    (:func:`pair_decision`; the pair with the widest margin beyond its bar is named)."""
    best = None
    for name, pci in pairs.items():
        decision, bar = pair_decision(pci, tol, noise.get(name))
        margin = pci["low"] - bar if decision == "differs" else 0.0
        if decision == "differs" and (best is None or margin > best[0]):
            best = (margin, name, pci, bar)
    return None if best is None else best[1:]


def _well_sampled(pairs: dict[str, dict[str, Any]], noise: dict[str, float], tol: float
                  ) -> dict[str, list[list[Any]]]:
    """What the pairs the reference samples well say on their own (:func:`pair_decision`):
    those that agree, and those whose interval reaches the tolerance; [name, value, low, high]."""
    out: dict[str, list[list[Any]]] = {"agree": [], "reach": []}
    for name, pci in pairs.items():
        own = noise.get(name, tol)
        if own > tol or pci.get("low") is None or pci.get("high") is None:
            continue
        decision, _ = pair_decision(pci, tol, own)
        out["agree" if decision == "agrees" else "reach"].append(
            [name, pci["value"], pci["low"], pci["high"]])
    return out


def _interval_facts(ci: stats.Interval) -> dict[str, Any]:
    return {"value": ci.value, "low": ci.low, "high": ci.high, "method": ci.method}


def rule(study, group: rama.GroupResult, ev: Evidence, bootstrap: bool = True
         ) -> tuple[str, str, dict[str, Any], stats.Interval]:
    """The rule: (decision, reason, facts, interval the decision rests on) for one evidence.

    Paired by start (:func:`analysis.observables.ramachandran.study.pairing`) the tolerance
    alone decides, and ``agrees`` needs every pair within it. Unpaired: the reference at
    another temperature is compared qualitatively only (``no_reference``); time blocks that
    cannot stand for independent samples decide nothing; when the reference's own halves
    differ by more than the tolerance on some pair, agreement cannot be shown, but a pair
    whose whole interval lies beyond the larger of the tolerance and its split-half, or a
    largest-JS interval wholly beyond the largest split-half, shows ``differs``.
    """
    from analysis.observables.ramachandran.study import _shortfall

    ref, tol = study.reference, study.settings.js_tolerance
    found = ev.found
    facts: dict[str, Any] = {"worst_pair": found.get("worst_pair", ev.worst)}
    if found.get("paired"):
        ci = _spread(stats.Interval(found["value"], found.get("low"), found.get("high"),
                                    found["paired"]["starts"], PAIRED), found)
        facts.update(paired=found["paired"], largest=_interval_facts(ci))
        return _by_tolerance(decide(ci, tol, bootstrap), ev, tol, facts, ci)
    ci = _spread(stats.Interval(ev.value, found.get("low"), found.get("high"),
                                len(group.files), found.get("method", "")), found)
    facts["largest"] = _interval_facts(ci)
    if group.temperature_K != ref.temperature_K:
        return "no_reference", "other_temperature", facts, ci
    if shortfall := _shortfall(study, group.key):
        facts["shortfall"] = shortfall
        return "inconclusive", "block_shortfall", facts, ci
    noisy = {k: v for k, v in study.reference_noise.items() if v > tol}
    if not noisy:
        return _by_tolerance(decide(ci, tol, bootstrap), ev, tol, facts, ci)
    worst_noise = max(noisy, key=noisy.get)
    facts.update(noise_pair=worst_noise, noise=noisy[worst_noise], bar=noisy[worst_noise])
    decided = decided_pair(ev.pairs, study.reference_noise, tol)
    if decided is not None:
        name, pci, bar = decided
        facts.update(pair=name, bar=bar, pair_noise=study.reference_noise.get(name),
                     undecided={k: v for k, v in noisy.items() if k != name})
        pair_ci = stats.Interval(pci["value"], pci["low"], pci["high"], len(group.files),
                                 pci["method"])
        _spread(pair_ci, pci)
        return "differs", "pair_beyond_bar", facts, pair_ci
    if ci.low is not None and ci.low > noisy[worst_noise]:
        return "differs", "beyond_split_half", facts, ci
    facts["well_sampled"] = _well_sampled(ev.pairs, study.reference_noise, tol)
    return "inconclusive", "reference_noisy", facts, ci


def _spread(ci: stats.Interval, found: dict[str, Any]) -> stats.Interval:
    """``ci`` with the bounds before clipping of ``found`` (an interval the study stored),
    as the same offsets from ``ci.value`` (the resampling spread)."""
    unclipped, value = found.get("unclipped"), found.get("value")
    if unclipped and value is not None and ci.value is not None:
        ci.unclipped = tuple(None if b is None else ci.value + (b - value) for b in unclipped)
    return ci


def _by_tolerance(decision: str, ev: Evidence, tol: float, facts: dict[str, Any],
                  ci: stats.Interval) -> tuple[str, str, dict[str, Any], stats.Interval]:
    facts["reach"] = reaching(ev.pairs, tol)
    facts["bar"] = tol
    if decision == "agrees" and facts["reach"]:
        return "inconclusive", "pair_reaches", facts, ci
    from analysis.observables.base import REASONS

    reason = REASONS.get(decision, decision)
    return decision, reason, facts, ci


def runs_to_decide(ci: stats.Interval, bar: float, n_units: int) -> int | None:
    """Runs that would make an interval straddling ``bar`` decide, if the value held and the
    interval narrowed as one over the square root of the runs; None when it cannot."""
    unclipped = getattr(ci, "unclipped", None) or (ci.low, ci.high)
    low, high = unclipped
    if ci.value is None or low is None or high is None or n_units < 1:
        return None
    half, gap = ((high - ci.value, bar - ci.value) if ci.value <= bar
                 else (ci.value - low, ci.value - bar))
    if gap <= 1e-9 or half <= 0:
        return None
    return int(math.ceil(n_units * (half / gap) ** 2))


def judge(study, group: rama.GroupResult, model: Evidence, control: Evidence | None,
          bootstrap: bool = True) -> Verdict:
    """One model group against the reference, as a value (``detail`` left for :func:`phrase`).

    The rule (:func:`rule`) decides on the model's evidence and, the same way, on its
    control's; ``agrees`` stands only where the control ``differs``. Otherwise the verdict is
    ``inconclusive`` with reason ``control_not_excluded``: these runs cannot tell a model that
    samples from one that stays where it started.
    """
    ref, tol = study.reference, study.settings.js_tolerance
    decision, reason, facts, ci = rule(study, group, model, bootstrap)
    facts["reference"] = f"{ref.model} {ref.temperature_K:g} K"
    facts["split"] = f" ({study.reference_split})" if study.reference_split else ""
    facts["tolerance"] = tol
    control_decision = None
    if control is not None and reason != "other_temperature":
        control_decision, control_reason, control_facts, control_ci = rule(
            study, group, control, bootstrap)
        facts["control"] = {"decision": control_decision, "reason": control_reason,
                            **_interval_facts(control_ci),
                            "opening_ps": control.found.get("opening_ps")}
        if decision == "agrees" and control_decision != "differs":
            decision, reason = "inconclusive", "control_not_excluded"
    if found_paired := model.found.get("paired"):
        cut = found_paired["reference_cut_ps"]
        scope = {"kind": "paired by start", "length_ps": cut[1],
                 "label": f"paired by start, first {_span(cut)}"}
    elif reason == "other_temperature":
        scope = {"kind": "qualitative", "label": "qualitative, other temperature"}
    elif getattr(study, "reference_kind", "") == "equilibrium":
        scope = {"kind": "equilibrium",
                 "label": "equilibrium, unpaired against the replica-exchange ensemble"}
    else:
        scope = {"kind": "unpaired",
                 "label": "unpaired, the runs' distribution against the reference's"}
    from analysis.observables.base import detectable

    bar = facts.get("bar", tol)
    found = detectable(ci, bar)
    # more runs help where they could lead to 'differs', or to an 'agrees' the control allows
    towards_differs = ci.value is not None and ci.value > bar
    if decision == "inconclusive" and reason in ("straddles_tolerance", "reference_noisy") \
            and (towards_differs or control_decision in ("differs", None)):
        facts["runs_to_decide"] = runs_to_decide(ci, bar, ci.n_units)
    verdict = Verdict("ramachandran", group.model, group.temperature_K, None, "",
                      decision=decision, value=ci.value, ci_low=ci.low, ci_high=ci.high,
                      tolerance=tol, n_runs=len(group.files), unit="bits", method=ci.method,
                      reason=reason, scope=scope, control_decision=control_decision,
                      detectable=found, facts=facts)
    return verdict


def _span(cut: list[float]) -> str:
    low, high = cut
    return f"{high:g} ps" if abs(high - low) < 1e-6 else f"{low:g}-{high:g} ps"


def _number_text(value: float, low: float | None, high: float | None, tol: float | None,
                 method: str) -> str:
    """The interval text of a number without its decision (``0.05 [0.03, 0.12] bits,
    tolerance 0.1``)."""
    v = Verdict("ramachandran", "", None, None, "", decision="inconclusive", value=value,
                ci_low=low, ci_high=high, tolerance=tol, unit="bits", method=method)
    return v.interval_text(with_decision=False)


def _fields(v: Verdict) -> dict[str, Any]:
    """Everything a template may name, from the verdict and its facts."""
    t = TEMPLATES
    f = dict(v.facts)
    largest = f.get("largest") or {}
    decided = v.reason in ("within_tolerance", "beyond_tolerance", "straddles_tolerance",
                           "pair_reaches", "control_not_excluded")
    interval = _number_text(largest.get("value"), largest.get("low"), largest.get("high"),
                            v.tolerance, largest.get("method", "")) if largest else ""
    if interval and decided:
        interval += f": {v.decision}"
    if paired := f.get("paired"):
        n = paired.get("left_out", 0)
        f["largest"] = t["largest_paired"].format(
            worst_pair=f["worst_pair"], reference=f["reference"], starts=paired["starts"],
            span=_span(paired["reference_cut_ps"]), interval=interval,
            left_out=t["left_out"].format(n=n, s="s" if n > 1 else "") if n else "")
    elif largest:
        method = largest.get("method", "")
        f["largest"] = t["largest_unpaired"].format(
            worst_pair=f["worst_pair"], reference=f["reference"], interval=interval,
            resampled=t["resampled"].format(method=method) if method else "")
    if v.reason == "pair_beyond_bar":
        f["pair_interval"] = (f"{v.value:.3f} [{v.ci_low:.3f}, {v.ci_high:.3f}]")
        own = f.get("pair_noise")
        f["why"] = (t["own_split"].format(split=f["split"], tolerance=v.tolerance)
                    if own is not None and own > v.tolerance else
                    t["tolerance_bar_noise"].format(noise=own) if own is not None
                    else t["tolerance_bar"])
        others = "; ".join(t["cannot_decide"].format(pair=k, noise=n)
                           for k, n in f.get("undecided", {}).items())
        f["others"] = f". {others[0].upper()}{others[1:]}" if others else ""
    if v.reason == "reference_noisy":
        well = f.get("well_sampled", {})
        f["well_sampled"] = "".join(
            t[f"well_{kind}"].format(pairs=", ".join(
                f"pair {n} {val:.3f} [{lo:.3f}, {hi:.3f}]" for n, val, lo, hi in rows))
            for kind, rows in well.items() if rows)
    return f


def phrase(v: Verdict, study=None) -> str:
    """The verdict in words, from :data:`TEMPLATES` (the only place a verdict is worded).

    ``study`` adds what would narrow an inconclusive paired verdict (the reference's spare
    starts and longer runs)."""
    t = TEMPLATES
    f = _fields(v)
    text = t[v.reason].format(**f)
    reach = f.get("reach") or {}
    if reach and v.decision != "differs" and v.reason not in ("pair_beyond_bar",):
        text += "; " + ", ".join(t["reach"].format(pair=k, high=h) for k, h in reach.items())
        text += t["reach_beyond"]
    if v.decision == "inconclusive" and f.get("paired") and study is not None:
        text += _narrowing(study, f)
    if f.get("paired"):
        noisy = {k: n for k, n in (study.reference_noise.items() if study is not None else ())
                 if n > v.tolerance}
        if noisy:
            text += t["paired_noise"].format(noise=", ".join(
                f"{n:.3f} bits on pair {k}" for k, n in noisy.items()))
    if control := f.get("control"):
        if control.get("value") is not None:
            text += t["control"].format(
                opening_ps=control.get("opening_ps") or 0.0, control=control["decision"],
                control_interval=_number_text(control["value"], control["low"],
                                              control["high"], None, ""))
        if v.reason == "control_not_excluded":
            text += t["control_agrees"].format(remedy=t["remedy"])
    if v.detectable is not None and v.reason != "other_temperature":
        text += t["detectable"].format(detectable=v.detectable)
    if f.get("runs_to_decide"):
        text += t["runs_to_decide"].format(runs=f["runs_to_decide"])
    return text


def _narrowing(study, f: dict[str, Any]) -> str:
    """What would narrow an inconclusive paired verdict: the reference's other starts, its
    longer runs."""
    t = TEMPLATES
    ref = study.reference
    data = study.data.get(ref.key) if ref is not None else None
    if data is None:
        return ""
    paired = f["paired"]
    spare = len(data.files) - paired["starts"]
    longest = max((float(x[-1]) for x in data.split(data.times_ps) if len(x)), default=0.0)
    ways = ([t["other_starts"].format(n=spare)] if spare > 0 else []) + (
        [t["longer_runs"].format(ps=longest)] if longest > paired["reference_cut_ps"][1] + 1e-6
        else [])
    return t["narrow"].format(ways=" or ".join(ways)) if ways else ""
