"""The Ramachandran study of an output folder: groups, reference, comparisons, outputs.

:func:`run_study` finds the trajectories, groups them by (challenge, model, temperature), adds
the challenge's shipped reference, runs :mod:`analysis.ramachandran` on every group and
compares each model with the reference. The writers turn the result into JSON, Markdown,
PNG figures, report verdicts and a per-frame CSV of angles.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis import trajectories
from analysis.observables.ramachandran import compute as rama
from analysis.observables.ramachandran.verdict import PAIRED, pair_decision
from analysis.sections import Verdict
from harness import challenges, h5md
from harness.errors import UserError


@dataclass
class ChallengeStudy:
    """Everything computed for one challenge (groups: reference first, then by model and T)."""

    challenge: str
    title: str
    settings: rama.Settings
    pairs: list[rama.DihedralPair]
    groups: list[rama.GroupResult]
    comparisons: dict[str, dict[str, Any]] = field(default_factory=dict)
    between_models: dict[str, dict[str, Any]] = field(default_factory=dict)
    reference_noise: dict[str, float] = field(default_factory=dict)
    reference_split: str = ""
    #: Largest JS divergence vs the reference with its bootstrap interval, by group key.
    intervals: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: JS of each pair alone vs the reference with its interval, by group key then pair name
    #: (computed when the reference is noisier than the tolerance on some pair).
    pair_intervals: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: Model against model: worst-pair JS with interval and the 'disagree' flag.
    model_pairs: list[dict[str, Any]] = field(default_factory=list)
    reference_text: str = ""
    #: ``straight`` (runs from the starts), ``equilibrium`` (replica exchange) or ``""``.
    reference_kind: str = ""
    data: dict[str, rama.Trajectories] = field(default_factory=dict, repr=False)
    #: The same intervals for each group's control (:func:`control_trajectories`).
    control_intervals: dict[str, dict[str, Any]] = field(default_factory=dict)
    control_pair_intervals: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: Whether intervals are computed (off only to time the rest; an analysis setting).
    bootstrap: bool = True

    @property
    def reference(self) -> rama.GroupResult | None:
        """The reference group, if any."""
        return next((g for g in self.groups if g.is_reference), None)


def _records(paths: list[Path]) -> list[trajectories.RunRecord]:
    return [trajectories.read_record(p) for p in trajectories.find(paths)]


def _check_molecule(challenge: challenges.Challenge, pairs: list[rama.DihedralPair],
                    record: trajectories.RunRecord) -> None:
    from ase.data import chemical_symbols

    meta = h5md.read_meta(record.path)
    symbols = [chemical_symbols[int(z)] for z in meta["species"]]
    positions, _ = h5md.read_start(record.path)
    rama.check_pairs(pairs, symbols, positions, str(record.path))


def _study_challenge(name: str, records: list[trajectories.RunRecord],
                     overrides: dict[str, Any], reference: str | None,
                     bootstrap: bool = True) -> ChallengeStudy:
    from analysis import reference as reference_mod

    challenge = challenges.load(name)
    pairs = rama.challenge_pairs(challenge)
    settings = rama.settings_for(challenge, overrides)
    refset = reference_mod.load(challenge, reference)
    ref_records = _records(refset.files) if refset else []
    _check_molecule(challenge, pairs, (records + ref_records)[0])
    study = ChallengeStudy(name, challenge.title, settings, pairs, [], bootstrap=bootstrap)
    study.reference_text = f"Reference: {refset.describe()}." if refset else \
        "No reference trajectories for this challenge."
    study.reference_kind = reference_mod.kind_of(refset) if refset else ""
    grouped: dict[tuple[str, float], list[trajectories.RunRecord]] = defaultdict(list)
    for rec in records:
        grouped[(rec.model, rec.temperature_K)].append(rec)
    todo = [(_reference_name(refset, ref_records), ref_records, True)] if ref_records else []
    todo += [(model, recs, False) for (model, _), recs in sorted(grouped.items())]
    for model, recs, is_ref in todo:
        group, data = rama.analyse_group(sorted(recs, key=lambda r: r.replica), pairs, settings,
                                         model, is_reference=is_ref)
        study.groups.append(group)
        study.data[group.key] = data
    models = [g for g in study.groups if not g.is_reference]
    for i, first in enumerate(models):
        for second in models[i + 1:]:
            if first.temperature_K == second.temperature_K:
                study.between_models[f"{first.key} vs {second.key}"] = rama.compare(
                    first, second, settings)
    ref = study.reference
    if ref is not None:
        data = study.data[ref.key]
        first, second, study.reference_split = reference_mod.split_runs(data.split(data.angles))
        if sum(map(len, first)) and sum(map(len, second)):
            for k, pair in enumerate(pairs):
                study.reference_noise[pair.name] = reference_mod.split_half_statistic(
                    first, second, k, settings)[0]
        for group in study.groups:
            if not group.is_reference:
                study.comparisons[group.key] = rama.compare(group, ref, settings)
    _intervals(study)
    return study


def crossings(group: rama.GroupResult) -> dict[str, int]:
    """Transitions between (merged) basins along the group's runs, per dihedral pair."""
    return {name: int(np.sum(res.transitions)) if res.transitions else 0
            for name, res in group.pairs.items()}


def block_shortfall(group: rama.GroupResult) -> str | None:
    """Why the time blocks of this group cannot stand in for independent samples, or ``None``.

    A group of fewer than ``MIN_RUNS`` runs is resampled by ``N_BLOCKS`` time blocks per run.
    Blocks are independent samples of the dihedral density only when a block outlasts a stay
    in a basin; a run that stays where it started gives blocks that all repeat its start basin
    and an interval far too narrow (known-truth check: 2 x 1 ps of GFN2-xTB itself was called
    ``differs`` from the 500 K xTB reference in 4 of 6 start pairs, docs/statistics.md). So
    each pair needs at least ``N_BLOCKS - 1`` basin crossings per run (a crossing per block
    boundary, on average); groups resampled by whole runs are not held to this.
    """
    from analysis.observables.base import MIN_RUNS, N_BLOCKS

    n_runs = len(group.files)
    if n_runs >= MIN_RUNS:
        return None
    need = (N_BLOCKS - 1) * n_runs
    short = {name: n for name, n in crossings(group).items() if n < need}
    if not short:
        return None
    name = min(short, key=short.get)
    who = "the reference" if group.is_reference else f"{group.model} {group.temperature_K:g} K"
    return (f"{who} has {n_runs} run{'s' if n_runs > 1 else ''}, resampled by time blocks, "
            f"and crosses between basins {short[name]} times on pair {name} (time blocks "
            f"stand for independent samples from {need} crossings, {N_BLOCKS - 1} per run): "
            f"its runs stay near where they started; run {MIN_RUNS} or more replicas "
            "(resampled whole) or longer runs")


def _units(study: ChallengeStudy, group: rama.GroupResult,
           data: rama.Trajectories | None = None) -> tuple[np.ndarray, str]:
    from analysis.observables.base import MIN_RUNS, N_BLOCKS

    data = study.data[group.key] if data is None else data
    n_blocks = 1 if len(data.files) >= MIN_RUNS else N_BLOCKS
    units = rama.unit_histograms(data, len(study.pairs), study.settings, n_blocks)
    units = units[units.sum(axis=1) > 0]
    return units, "runs" if n_blocks == 1 else "time blocks"


@dataclass
class Pairing:
    """A model group's runs matched with the reference's runs from the same starts."""

    model_runs: list[int]  # indices into the model group's files
    reference_runs: list[int]  # the reference run from the same start, for each
    cut_ps: list[float]  # each reference run cut at its model run's last frame
    left_out: list[int] = field(default_factory=list)  # model runs too short to pair


#: A model run pairs only if it covers this much time and half its group's longest run: a run
#: that failed or stopped at its start would be "compared" over a window in which both sides
#: sit at the same start and agree trivially (measured: 12 runs failing at step 0 gave
#: JS 0 [0, 0]).
MIN_PAIRED_PS = 0.1


def pairing(study: ChallengeStudy, group: rama.GroupResult) -> Pairing | None:
    """The model's runs paired with the reference's runs from the same starts, if they can be.

    TEA runs every model from the same starts, and so does the harness's reference. Paired by
    start, with each reference run cut to its model run's length, the comparison asks whether
    the model does from these starts, over this time, what the reference method does; what
    the starts make the two share (a start in a basin that no run leaves in that time) then
    cancels, where resampling the groups apart counts it as noise. Pairs need: at least
    :data:`MIN_RUNS` model runs with frames, each started from the stored start positions of
    exactly one reference run (1e-6 A), no reference run used twice, and every reference run at
    least as long as its model run (within one reference frame). Model runs that stopped
    (failed, or cut) before half the group's longest run or before :data:`MIN_PAIRED_PS` are
    left out of the pairs (``left_out``; the stability verdict counts their failures). Anything
    else (fewer than 4 pairs, other starts such as an imported MD22 trajectory, model runs
    longer than the reference's) returns None: the groups are compared unpaired, as they are
    with ``--unpaired`` (``Settings.pair_by_start``).
    """
    from analysis.observables.base import MIN_RUNS

    ref = study.reference
    if ref is None or group.temperature_K != ref.temperature_K or not \
            study.settings.pair_by_start:
        return None
    dm, dr = study.data[group.key], study.data[ref.key]
    if len(dm.files) < MIN_RUNS:
        return None
    ref_starts = [h5md.read_start(p)[0] for p in dr.files]
    ref_times = dr.split(dr.times_ps)
    out = Pairing([], [], [])
    lengths = [float(t[-1]) if len(t) else 0.0 for t in dm.split(dm.times_ps)]
    shortest = max(MIN_PAIRED_PS, 0.5 * max(lengths, default=0.0))
    for i, (path, times) in enumerate(zip(dm.files, dm.split(dm.times_ps), strict=True)):
        if lengths[i] < shortest - 1e-9:
            out.left_out.append(i)
            continue
        start = h5md.read_start(path)[0]
        same = [j for j, r in enumerate(ref_starts)
                if r.shape == start.shape and np.allclose(r, start, rtol=0, atol=1e-6)]
        if len(same) != 1 or same[0] in out.reference_runs:
            return None
        j = same[0]
        rt = ref_times[j]
        frame = float(np.median(np.diff(rt))) if len(rt) > 1 else 0.0
        if not len(rt) or rt[-1] < times[-1] - frame - 1e-6:
            return None
        out.model_runs.append(i)
        out.reference_runs.append(j)
        out.cut_ps.append(float(times[-1]))
    return out if len(out.model_runs) >= MIN_RUNS else None


def _run_histograms(study: ChallengeStudy, data: rama.Trajectories, runs: list[int],
                    cut_ps: list[float] | None = None) -> np.ndarray:
    """One unit histogram per chosen run (:func:`rama.unit_histograms`), each run cut after
    ``cut_ps`` when given."""
    times, angles = data.split(data.times_ps), data.split(data.angles)
    chosen = []
    for k, i in enumerate(runs):
        a = angles[i]
        chosen.append(a if cut_ps is None else a[times[i] <= cut_ps[k] + 1e-6])
    offsets = np.cumsum([0] + [len(a) for a in chosen])
    width = data.angles.shape[1]
    sub = rama.Trajectories([data.files[i] for i in runs], offsets, np.zeros(offsets[-1]),
                            np.concatenate(chosen) if chosen else np.zeros((0, width)))
    return rama.unit_histograms(sub, len(study.pairs), study.settings, 1)


#: The opening of a run that its control repeats (:func:`control_trajectories`): long enough
#: to hold the run's thermal spread (a bare first frame is too easy a control: a model that
#: stays put still vibrates), short against any change of basin.
OPENING_PS = 0.1


def control_trajectories(data: rama.Trajectories, opening_ps: float = OPENING_PS
                         ) -> rama.Trajectories:
    """The control of a group: each run replaced by its own opening (its frames within
    ``opening_ps`` of its first, at least two) repeated over the run's length, frame for frame
    as many as the run has. A model that never gets further than its start looks like this."""
    times, angles = data.split(data.times_ps), data.split(data.angles)
    out = []
    for t, a in zip(times, angles, strict=True):
        k = min(len(a), max(2, int(np.sum(t - t[0] <= opening_ps + 1e-9)))) if len(t) else 0
        out.append(np.resize(a[:k], a.shape) if k else a)
    return rama.Trajectories(list(data.files), data.offsets, data.times_ps,
                             np.concatenate(out) if out else data.angles)


def _paired_interval(study: ChallengeStudy, group: rama.GroupResult, pairs: Pairing) -> None:
    """Largest-JS and per-pair intervals of a model against the reference, paired by start."""
    from analysis.observables import base

    n_pairs = len(study.pairs)
    ug = _run_histograms(study, study.data[group.key], pairs.model_runs)
    ur = _run_histograms(study, study.data[study.reference.key], pairs.reference_runs,
                         pairs.cut_ps)
    ci, *per_pair = base.interval_columns(
        [ug, ur], lambda a, b: rama.pair_js_columns(a, b, n_pairs), PAIRED, paired=True,
        upper=rama.JS_MAX_BITS, bootstrap=study.bootstrap)
    values = {pair.name: pci.value for pair, pci in zip(study.pairs, per_pair, strict=True)}
    study.intervals[group.key] = {
        **interval_row(ci),
        "n_units": [len(ug), len(ur)], "worst_pair": max(values, key=values.get),
        "paired": {"starts": len(ug), "reference_cut_ps": [min(pairs.cut_ps),
                                                            max(pairs.cut_ps)],
                   "left_out": len(pairs.left_out)}}
    study.pair_intervals[group.key] = _pair_rows(study, per_pair, PAIRED, paired=True)
    uc = _run_histograms(study, control_trajectories(study.data[group.key]), pairs.model_runs)
    cci, *control_pairs = base.interval_columns(
        [uc, ur], lambda a, b: rama.pair_js_columns(a, b, n_pairs), PAIRED, paired=True,
        upper=rama.JS_MAX_BITS, bootstrap=study.bootstrap)
    study.control_intervals[group.key] = {
        **study.intervals[group.key], **interval_row(cci), "opening_ps": OPENING_PS}
    study.control_pair_intervals[group.key] = _pair_rows(study, control_pairs, PAIRED,
                                                         paired=True)


def interval_row(ci) -> dict[str, Any]:
    """An interval as the dict the study stores (value, bounds, bounds before clipping)."""
    return {"value": ci.value, "low": ci.low, "high": ci.high, "method": ci.method,
            "unclipped": getattr(ci, "unclipped", None)}


def _pair_rows(study: ChallengeStudy, per_pair: list, method: str, paired: bool = False
               ) -> dict[str, dict[str, Any]]:
    rows = {pair.name: {**interval_row(pci), "method": method}
            for pair, pci in zip(study.pairs, per_pair, strict=True)}
    if paired:
        for row in rows.values():
            row["paired"] = True
    return rows


def _intervals(study: ChallengeStudy) -> None:
    """Bootstrap intervals of the worst-pair JS divergence: vs the reference, model vs model."""
    from analysis import stats
    from analysis.observables import base

    n_pairs = len(study.pairs)
    units = {g.key: _units(study, g) for g in study.groups}

    def distance(sums_a: np.ndarray, sums_b: np.ndarray) -> np.ndarray:
        return rama.worst_js_rows(sums_a, sums_b, n_pairs)

    ref = study.reference
    models = [g for g in study.groups if not g.is_reference]
    if ref is not None and len(units[ref.key][0]):
        for g in models:
            (ug, mg), (ur, mr) = units[g.key], units[ref.key]
            if not len(ug):
                continue
            if (pairs := pairing(study, g)) is not None:
                _paired_interval(study, g, pairs)
                continue
            method = "runs" if mg == mr == "runs" else "time blocks"
            # each pair's own interval too, from the same resamples as the largest JS (one
            # pass): a noisy pair cannot decide while the others may, and 'agrees' needs
            # every pair within the tolerance
            ci, *per_pair = base.interval_columns(
                [ug, ur], lambda a, b: rama.pair_js_columns(a, b, n_pairs), method,
                upper=rama.JS_MAX_BITS, bootstrap=study.bootstrap)
            study.pair_intervals[g.key] = _pair_rows(study, per_pair, method)
            study.intervals[g.key] = {**interval_row(ci), "n_units": [len(ug), len(ur)]}
            uc, _ = _units(study, g, control_trajectories(study.data[g.key]))
            cci, *control_pairs = base.interval_columns(
                [uc, ur], lambda a, b: rama.pair_js_columns(a, b, n_pairs), method,
                upper=rama.JS_MAX_BITS, bootstrap=study.bootstrap)
            study.control_intervals[g.key] = {**interval_row(cci), "n_units": [len(uc), len(ur)],
                                              "opening_ps": OPENING_PS}
            study.control_pair_intervals[g.key] = _pair_rows(study, control_pairs, method)
    if not study.bootstrap:
        return
    for temp in sorted({g.temperature_K for g in models}):
        mine = {g.model: units[g.key] for g in models
                if g.temperature_K == temp and len(units[g.key][0]) >= 2}
        if len(mine) < 2:
            continue
        found = stats.pairwise({m: u for m, (u, _) in mine.items()}, distance,
                               n_resamples=base.N_RESAMPLES, seed=base.SEED, histograms=True,
                               vectorized=True,
                               methods={m: method for m, (_, method) in mine.items()})
        by_model = {g.model: g for g in models if g.temperature_K == temp}
        for p in found:
            row = base.pair_json(p, temp, rama.JS_MAX_BITS)
            why = [block_shortfall(by_model[m]) for m in (p.model_a, p.model_b)]
            if any(why) and row["disagree"]:
                row["disagree"] = False
                row["note"] = ("not judged: too few basin crossings for time blocks ("
                               + ", ".join(w.split(",")[0] for w in why if w) + ")")
            study.model_pairs.append(row)


def _reference_name(refset, records: list[trajectories.RunRecord]) -> str:
    """How verdicts name the reference group: its runs' label, or for several labels (the two
    ladders of an equilibrium ensemble) what they share and how many there are."""
    labels = sorted({r.model for r in records})
    if len(labels) == 1:
        return labels[0]
    common = labels[0]
    while common and not all(label.startswith(common) for label in labels):
        common = common[:-1]
    kind = "ladders" if refset is not None and refset.info.get("kind") == "equilibrium" \
        else "labels"
    common = common.rstrip("-_0123456789")
    common = common.removesuffix("ladder").rstrip("-_") if kind == "ladders" else common
    return f"{common or 'reference'} ({len(labels)} {kind})"


def run_study(paths: list[Path], overrides: dict[str, Any] | None = None,
              reference: str | None = None, bootstrap: bool = True) -> list[ChallengeStudy]:
    """Analyse every peptide challenge found under ``paths``.

    ``reference=None`` uses each challenge's shipped reference, ``"none"`` none, a folder
    the reference trajectories there (:func:`analysis.reference.load`). ``bootstrap`` False:
    values without intervals (to time the rest; :class:`analysis.settings.AnalysisSettings`).
    """
    records = _records(paths)
    by_challenge: dict[str, list[trajectories.RunRecord]] = defaultdict(list)
    for rec in records:
        by_challenge[rec.challenge].append(rec)
    studies, skipped = [], []
    for name, recs in sorted(by_challenge.items()):
        try:
            challenge = challenges.load(name)
        except UserError:
            skipped.append(name)
            continue
        if not challenge.raw.get("ramachandran", {}).get("pairs"):
            skipped.append(name)
            continue
        studies.append(_study_challenge(name, recs, overrides or {}, reference, bootstrap))
    if not studies:
        raise UserError(f"no peptide runs under {', '.join(map(str, paths))} (found challenges: "
                        f"{', '.join(sorted(by_challenge)) or 'none'}); the Ramachandran "
                        "analysis applies to challenges with [ramachandran.pairs]")
    return studies


def compared_reference(study: ChallengeStudy) -> tuple[str, dict[str, np.ndarray]] | None:
    """The reference's frames as a paired verdict compared them: each paired reference run cut
    at its model run's length (the first paired model group's pairing), as (panel title,
    points per pair). None when no verdict was paired."""
    ref = study.reference
    for group in study.groups:
        found = study.intervals.get(group.key, {}).get("paired")
        if group.is_reference or not found or ref is None:
            continue
        pairs = pairing(study, group)
        if pairs is None:
            continue
        data = study.data[ref.key]
        times, angles = data.split(data.times_ps), data.split(data.angles)
        cut = np.concatenate([angles[j][times[j] <= c + 1e-6]
                              for j, c in zip(pairs.reference_runs, pairs.cut_ps, strict=True)])
        low, high = found["reference_cut_ps"]
        span = f"{high:g} ps" if abs(high - low) < 1e-6 else f"{low:g}-{high:g} ps"
        title = f"reference as compared\n({len(pairs.reference_runs)} runs, first {span})"
        return title, {pair.name: cut[:, 2 * k:2 * k + 2]
                       for k, pair in enumerate(study.pairs)}
    return None


def plot_points(study: ChallengeStudy) -> dict[str, np.ndarray]:
    """Every frame's point per group and pair (views, frame by frame like the cluster labels,
    which the scatter plot subsamples together with them)."""
    return {f"{group.key}:{pair.name}": study.data[group.key].angles[:, 2 * k:2 * k + 2]
            for group in study.groups for k, pair in enumerate(study.pairs)}


def to_json(studies: list[ChallengeStudy]) -> dict[str, Any]:
    """Everything in JSON form, settings included."""
    return {"observable": "ramachandran", "units": {"angles": "deg", "population": "percent",
                                                    "js_divergence": "bits"},
            "challenges": [{
                "challenge": s.challenge, "title": s.title, "settings": asdict(s.settings),
                "pairs": [asdict(p) for p in s.pairs],
                "groups": [g.to_json() for g in s.groups],
                "comparisons_vs_reference": s.comparisons,
                "comparisons_between_models": s.between_models,
                "reference_half_vs_half_js_bits": s.reference_noise,
                "reference": s.reference_text,
                "intervals_vs_reference": s.intervals,
                "pair_intervals_vs_reference": {
                    key: {name: {**pci, "decision": "inconclusive" if _shortfall(s, key) else
                                 pair_decision(pci, s.settings.js_tolerance,
                                               None if pci.get("paired") else
                                               s.reference_noise.get(name))[0]}
                          for name, pci in pairs.items()}
                    for key, pairs in s.pair_intervals.items()},
                "control_opening_ps": OPENING_PS,
                "control_intervals_vs_reference": s.control_intervals,
                "control_pair_intervals_vs_reference": s.control_pair_intervals,
                "time_blocks_held_back": {g.key: _shortfall(s, g.key) for g in s.groups
                                          if not g.is_reference and _shortfall(s, g.key)},
                "model_pairs": s.model_pairs,
            } for s in studies]}


def _shortfall(study: ChallengeStudy, key: str) -> str | None:
    """:func:`block_shortfall` of a model group or of the reference it is compared with."""
    group = next((g for g in study.groups if g.key == key), None)
    ref = study.reference
    return ((block_shortfall(group) if group is not None else None)
            or (block_shortfall(ref) if ref is not None else None))


def verdicts(study: ChallengeStudy) -> list[Verdict]:
    """Each model group against the reference, as values (:mod:`.verdict`): the largest JS
    divergence over the pairs with its bootstrap interval against the tolerance, decided by
    :func:`.verdict.rule` for the model and for its control (each run's opening repeated), and
    worded once by :func:`.verdict.phrase`. ``no_reference``: no reference, no frames."""
    from analysis.observables.ramachandran import verdict as verdict_mod

    ref = study.reference
    tol = study.settings.js_tolerance
    out = []
    for group in study.groups:
        if group.is_reference:
            continue
        comp = study.comparisons.get(group.key, {})
        if ref is None or any(c["js_divergence_bits"] is None for c in comp.values()):
            reason = "no_reference_data" if ref is None else "no_frames"
            v = Verdict("ramachandran", group.model, group.temperature_K, None, "",
                        decision="no_reference", tolerance=tol, n_runs=len(group.files),
                        unit="bits", reason=reason)
        else:
            worst = max(comp, key=lambda name: comp[name]["js_divergence_bits"])
            model = verdict_mod.Evidence(comp[worst]["js_divergence_bits"], worst,
                                         study.intervals.get(group.key) or {},
                                         study.pair_intervals.get(group.key, {}))
            control = None
            if found := study.control_intervals.get(group.key):
                pairs = study.control_pair_intervals.get(group.key, {})
                values = {k: p["value"] for k, p in pairs.items() if p.get("value") is not None}
                control = verdict_mod.Evidence(found.get("value"),
                                               max(values, key=values.get) if values else worst,
                                               found, pairs)
            v = verdict_mod.judge(study, group, model, control, study.bootstrap)
        v.detail = verdict_mod.phrase(v, study)
        out.append(v)
    return out


def to_markdown(study: ChallengeStudy, figures: list[Path] | None = None) -> str:
    """Populations, transitions and divergences of one challenge as Markdown tables."""
    s = study.settings
    lines = [f"### {study.title}", "",
             f"DBSCAN on the torus (periodic distance), eps {s.eps_deg:g} deg, min_samples "
             f"{s.min_samples or f'auto ({s.min_fraction:g} of the clustered points)'}, "
             f"clusters merged at {s.merge_transitions} mutual transitions, frame stride "
             f"{s.stride}, at most {s.max_points} points clustered (the rest assigned to the "
             "nearest core point). Populations in percent of the assigned frames; "
             "'assigned' is the share of frames in any cluster.", ""]
    for pair in study.pairs:
        lines += [f"**Pair {pair.name} ({pair.label})**", "",
                  "| group | frames | assigned % | clusters (population %, centre phi/psi deg) "
                  "| transitions | JS vs ref (bits) | Hellinger | JS as the verdict compared "
                  "(bits) [95%] |", "|---|---|---|---|---|---|---|---|"]
        for group in study.groups:
            res = group.pairs[pair.name]
            clusters = "; ".join(f"{c['id']}: {c['population_percent']:.1f} "
                                 f"({c['centre_deg'][0]:.0f}, {c['centre_deg'][1]:.0f})"
                                 for c in res.clusters) or "none"
            n_trans = int(np.sum(res.transitions)) if res.transitions else 0
            comp = study.comparisons.get(group.key, {}).get(pair.name)
            has = comp and comp["js_divergence_bits"] is not None
            js = f"{comp['js_divergence_bits']:.3f}" if has else "-"
            hel = f"{comp['hellinger']:.3f}" if has else "-"
            name = f"{group.model} {group.temperature_K:g} K"
            name = f"**reference** {name}" if group.is_reference else name
            lines.append(f"| {name} | {res.n_frames} | {res.assigned_percent:.1f} | {clusters} "
                         f"| {n_trans} | {js} | {hel} | {_as_compared(study, group, pair)} |")
        if pair.name in study.reference_noise:
            lines += ["", f"Sampling noise scale: JS between the halves of the reference "
                          f"({study.reference_split}): "
                          f"{study.reference_noise[pair.name]:.3f} bits."]
        lines.append("")
    for name, comp in study.between_models.items():
        text = ", ".join(f"{pair} " + ("-" if c["js_divergence_bits"] is None
                                       else f"{c['js_divergence_bits']:.3f}")
                         for pair, c in comp.items())
        lines.append(f"- {name}: JS divergence (bits) {text}")
    if study.model_pairs:
        from analysis.observables.base import pairs_table

        lines += ["", pairs_table(study.model_pairs, "largest JS divergence over the pairs",
                                  "bits"), ""]
    lines += [study.reference_text, ""]
    for verdict in verdicts(study):
        lines.append(f"- {verdict.model} {verdict.temperature_K:g} K: {verdict.decision}; "
                     f"{verdict.detail}")
    for fig in figures or []:
        lines += ["", f"![{fig.stem}]({fig.name})"]
    return "\n".join(lines) + "\n"


def _as_compared(study: ChallengeStudy, group: rama.GroupResult, pair) -> str:
    """The JS of one pair as the verdict compared it: paired by start (the reference cut to the
    model's runs) where it was, with its interval; '-' for the reference itself."""
    row = study.pair_intervals.get(group.key, {}).get(pair.name)
    if group.is_reference or not row or row.get("value") is None:
        return "-"
    text = f"{row['value']:.3f}"
    if row.get("low") is not None and row.get("high") is not None:
        text += f" [{row['low']:.3f}, {row['high']:.3f}]"
    found = study.intervals.get(group.key, {}).get("paired")
    if row.get("paired") and found:
        low, high = found["reference_cut_ps"]
        span = f"{high:g} ps" if abs(high - low) < 1e-6 else f"{low:g}-{high:g} ps"
        text += f", paired by start (reference cut to {span})"
    return text


def write_figures(study: ChallengeStudy, folder: Path) -> list[Path]:
    """Density and transition-graph grids of one challenge."""
    from analysis.observables.ramachandran import plots

    pts = plot_points(study)
    return [plots.figure_grid(study.groups, pts, "density",
                              folder / f"ramachandran-{study.challenge}.png",
                              compared_reference(study)),
            plots.figure_grid(study.groups, pts, "transitions",
                              folder / f"transitions-{study.challenge}.png")]


def export_angles(studies: list[ChallengeStudy], path: Path) -> int:
    """Per-frame angles as CSV: file, frame, time_ps, pair, phi_deg, psi_deg; returns rows."""
    rows = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("file,frame,time_ps,pair,phi_deg,psi_deg\n")
        for study in studies:
            stride = study.settings.stride
            for data in study.data.values():
                times = data.split(data.times_ps)
                angles = data.split(data.angles)
                for file, t, a in zip(data.files, times, angles, strict=True):
                    frames = np.arange(len(t)) * stride
                    for k, pair in enumerate(study.pairs):
                        block = np.column_stack([frames, t, a[:, 2 * k], a[:, 2 * k + 1]])
                        prefix = f"{json.dumps(str(file))},"
                        text = "\n".join(f"{prefix}{int(r[0])},{r[1]:.6g},{pair.name},"
                                         f"{r[2]:.4f},{r[3]:.4f}" for r in block)
                        if text:
                            fh.write(text + "\n")
                        rows += len(block)
    return rows
