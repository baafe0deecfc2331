"""What every observable shares, written once: options, applicability, groups, reference,
frame selection, intervals, the verdict loop, figures and the report section.

An observable is a folder ``analysis/observables/<name>/`` whose ``__init__.py`` declares one
instance of a subclass of :class:`Observable` (or :class:`TrajectoryObservable`, for those
computed from the frames of runs) as ``OBSERVABLE``, and exposes its ``register`` and
``report_sections``; the ``analysis`` command and ``analysis report`` find the folders
(:mod:`analysis.observables`). docs/observables.md shows the smallest complete example.

The observable writes only what is its own: how one trajectory contributes (``contributions``:
an array of numbers per run or per time block that add up), what the summed numbers mean
(``summary``), the distance between two groups (``distance``) and its plot. The base turns this
into groups by (model, temperature), a reference per temperature, bootstrap intervals over the
runs (time blocks when a group has fewer than :data:`MIN_RUNS` runs), verdicts with the four
decisions, model-against-model distances, the single command and the report section.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis.framesets import FrameSelection
from analysis.observables.decisions import (  # noqa: F401 - part of the observable contract
    CONTROL_KINDS,
    CONTROL_OPENING_PS,
    N_RESAMPLES,
    REASONS,
    SEED,
    clipped,
    decide,
    detectable,
    finite,
    interval,
    interval_columns,
)
from analysis.observables.presentation import pair_json, pairs_table  # noqa: F401
from analysis.sections import Figure, Section, Verdict
from analysis.settings import DEFAULT, AnalysisSettings
from harness.errors import UserError

#: Groups with fewer runs than this are resampled by time blocks instead of runs.
MIN_RUNS = 4
#: Time blocks per run when blocks are resampled.
N_BLOCKS = 8
#: The shared options, each declared once here with one type.
SHARED_OPTIONS = ("skip", "every", "challenge", "report_dir", "reference", "model_file")


# --- shared options --------------------------------------------------------------------------

def duration(text: str) -> float:
    """``--skip`` and other durations with a unit (``5ps``, ``500fs``; ``0`` for none) in ps."""
    from harness.units import parse_time_ps

    if str(text).strip() in ("0", "0ps", "0fs", "0ns"):
        return 0.0
    try:
        return parse_time_ps(text, "--skip")
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    """An integer >= 1 (``--every``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number >= 1")
    return value


def add_shared_options(parser: argparse.ArgumentParser, names: Iterable[str],
                       every_default: int = 1, challenge_default: str | None = None) -> None:
    """Add the shared options ``names`` (from :data:`SHARED_OPTIONS`), typed the same everywhere."""
    for name in names:
        if name == "skip":
            parser.add_argument("--skip", type=duration, default=0.0, metavar="DURATION",
                                help="leave out this much of the start of every run, with a "
                                "unit (e.g. 5ps; default 0)")
        elif name == "every":
            parser.add_argument("--every", type=positive_int, default=every_default,
                                metavar="N", help=f"use every N-th frame (default "
                                f"{every_default})")
        elif name == "challenge":
            parser.add_argument("--challenge", default=challenge_default,
                                help="only this challenge (name or folder with a "
                                "challenge.toml)" + (f"; default {challenge_default}"
                                                     if challenge_default else ""))
        elif name == "report_dir":
            parser.add_argument("--report-dir", type=Path, metavar="DIR",
                                help="where to write the outputs (default OUT/reports)")
        elif name == "reference":
            parser.add_argument("--reference", metavar="DIR",
                                help="reference trajectories (H5MD, e.g. from 'analysis "
                                "reference import') instead of the challenge's shipped ones; "
                                "'none' for no reference trajectories")
        elif name == "model_file":
            parser.add_argument("--model-file", action="append", metavar="FILE",
                                help="trained model file, repeatable (one per --model, in "
                                "order)")
        else:
            raise ValueError(f"unknown shared option {name!r}")


def selection(args: argparse.Namespace) -> FrameSelection:
    """The frame selection of parsed shared options."""
    return FrameSelection(float(getattr(args, "skip", 0.0) or 0.0),
                          int(getattr(args, "every", 1) or 1))


def report_dir(given: Path | str | None, paths: Sequence[Path | str]) -> Path:
    """``--report-dir`` or ``OUT/reports`` next to the first path; created."""
    if given:
        out = Path(given)
    else:
        first = Path(paths[0])
        out = (first if first.is_dir() else first.parent) / "reports"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create {out} ({exc}); give a writable --report-dir") from None
    return out


# --- what the challenge declares ----------------------------------------------------------

def load_challenge(name: str):
    """The challenge, or None when it is not known here (runs of a challenge defined elsewhere)."""
    from harness import challenges

    try:
        return challenges.load(name)
    except UserError:
        return None


def reference_model(challenge) -> str | None:
    """The challenge's reference model for comparisons inside an output folder.

    ``reference_model`` in challenge.toml (or ``model`` of its ``[reference]`` table).
    """
    raw = challenge.raw if challenge is not None else {}
    name = raw.get("reference_model") or raw.get("reference", {}).get("model")
    return str(name) if name else None


def group_of(challenge, key: str, default: Any = None) -> Any:
    """An entry of the challenge's ``[groups]`` table (``default`` when absent)."""
    if challenge is None:
        return default
    return challenge.groups.get(key, default)


def save_figure(fig, path: Path, dpi: int = 120) -> Path:
    """Write a matplotlib figure as PNG and close it."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def new_figure(*args: Any, **kwargs: Any):
    """``plt.subplots`` on the file-only backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(*args, **kwargs)


def label(key: tuple[str, str, float]) -> str:
    """``MODEL 300K``."""
    return f"{key[1]} {key[2]:g}K"


def slug(text: str) -> str:
    """File-name-safe text."""
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


# --- groups of runs ------------------------------------------------------------------------

@dataclass
class Group:
    """The runs of one (model, temperature), or the reference at one temperature.

    ``units`` (n_units, D) are the summable contributions of its runs (``method`` "runs") or
    of the time blocks of its runs ("time blocks", when it has fewer than MIN_RUNS runs).
    """

    challenge: str
    model: str
    temperature_K: float
    files: list[Path]
    units: np.ndarray
    method: str
    is_reference: bool = False
    source: str = ""
    #: The units of the group's control (:meth:`TrajectoryObservable.control_units`), if any.
    control_units: np.ndarray | None = None

    @property
    def key(self) -> tuple[str, str, float]:
        """(challenge, model, temperature)."""
        return self.challenge, self.model, self.temperature_K

    @property
    def n_runs(self) -> int:
        """Number of trajectories."""
        return len(self.files)

    @property
    def total(self) -> np.ndarray:
        """The contributions of every run summed."""
        return self.units.sum(axis=0)


@dataclass
class Study:
    """One observable computed for one challenge: groups, references, verdicts, model pairs."""

    observable: str
    challenge: str
    settings: dict[str, Any]
    groups: list[Group]
    references: dict[float, Group] = field(default_factory=dict)
    verdicts: list[Verdict] = field(default_factory=list)
    pairs: list[dict[str, Any]] = field(default_factory=list)
    reference_text: str = ""


# --- the declarations ------------------------------------------------------------------------

class Observable:
    """An observable: its name in challenge.toml, its command and its report section.

    Subclasses set the class attributes and override :meth:`add_options`, :meth:`command`
    and :meth:`sections`. ``shared`` names the shared options the command takes.
    """

    #: The name used in ``[observables] names`` of challenge.toml and as the command.
    name = ""
    #: Section title in the report.
    title = ""
    #: One line for ``analysis --help``.
    help = ""
    shared: tuple[str, ...] = ("skip", "every", "challenge", "report_dir", "reference")
    every_default = 1
    #: Bumped when the section changes in a way the code digest would not show.
    report_version = "1"

    def applies_to(self, challenge) -> bool:
        """Whether the challenge declares this observable in ``[observables] names``."""
        return challenge is not None and self.name in challenge.observables

    def default_challenge(self) -> str | None:
        """The first challenge (by name) that declares this observable, for commands that
        take a structure rather than runs (``--challenge`` default)."""
        from harness import challenges

        for name in challenges.available():
            challenge = load_challenge(name)
            if self.applies_to(challenge):
                return name
        return None

    # command -------------------------------------------------------------------------------
    def register(self, subparsers: Any) -> argparse.ArgumentParser:
        """Add the subcommand with the shared options and the observable's own."""
        parser = subparsers.add_parser(self.name, help=self.help, description=self.help)
        if self.takes_paths:
            parser.add_argument("paths", nargs="+", metavar="OUT",
                                help="output folders or .h5 files")
        add_shared_options(parser, self.shared, self.every_default,
                           None if self.takes_paths else self.default_challenge())
        self.add_options(parser)
        parser.set_defaults(func=self.command)
        return parser

    #: Whether the command takes output folders / trajectory files.
    takes_paths = True

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """The observable's own options."""

    def command(self, args: argparse.Namespace) -> int:
        """The ``analysis <name>`` command."""
        raise NotImplementedError

    # report --------------------------------------------------------------------------------
    def report_sections(self, files: list[Path], workdir: Path,
                        settings: AnalysisSettings = DEFAULT) -> list[Section]:
        """The report contract (analysis/sections.py): one section per applicable challenge,
        made with the report's ``settings`` (bootstrap, reference)."""
        from analysis import trajectories

        by_challenge: dict[str, list[Path]] = defaultdict(list)
        for path in files:
            by_challenge[trajectories.read_record(Path(path)).challenge].append(Path(path))
        out = []
        for name, paths in sorted(by_challenge.items()):
            challenge = load_challenge(name)
            if self.applies_to(challenge):
                out += self.sections(challenge, paths, workdir, settings)
        return out

    def sections(self, challenge, files: list[Path], workdir: Path,
                 settings: AnalysisSettings = DEFAULT) -> list[Section]:
        """The sections of one challenge the observable applies to."""
        raise NotImplementedError


class TrajectoryObservable(Observable):
    """An observable computed from the frames of runs, compared by a distance.

    Subclasses implement :meth:`contributions`, :meth:`summary`, :meth:`distance` and
    :meth:`figure`, and may extend :meth:`settings` and :meth:`table`.
    """

    #: What the distance measures, its unit and the default tolerance.
    measure = "distance"
    unit = ""
    tolerance = 0.0
    #: The largest value the distance can take (1 for a JS divergence in bits; None: no
    #: bound): intervals are clipped to it.
    distance_max: float | None = None
    #: The verdict's control (:data:`CONTROL_OPENING_PS`): ``veto`` (``agrees`` stands only
    #: where the control ``differs``; the default), ``stated`` (a structure that stays put can
    #: honestly be right here, e.g. RDF peak positions: the control is decided and said, the
    #: decision kept) or ``none`` (no control can be formed; :attr:`control_note` says why).
    control = "veto"
    control_note = ""

    # the observable's own parts ------------------------------------------------------------
    def settings(self, challenge, args: argparse.Namespace | None) -> dict[str, Any]:
        """Settings from the challenge's data and the command's options (None: defaults).

        Keys starting with ``_`` hold working data (not written to the outputs).
        """
        return {}

    def report_settings(self, challenge, files: list[Path]) -> dict[str, Any]:
        """Settings of the report section (default: those of the command without options)."""
        return self.settings(challenge, None)

    def accepts(self, path: Path) -> bool:
        """Whether a trajectory can contribute (e.g. long enough)."""
        return True

    def contributions(self, path: Path, sel: FrameSelection, settings: dict[str, Any],
                      n_blocks: int) -> np.ndarray:
        """(n_blocks, D) numbers of one trajectory that add up over runs and blocks."""
        raise NotImplementedError

    def summary(self, total: np.ndarray, settings: dict[str, Any]) -> dict[str, Any]:
        """JSON-ready numbers of a group from its summed contributions."""
        raise NotImplementedError

    def distance(self, total_a: np.ndarray, total_b: np.ndarray,
                 settings: dict[str, Any]) -> float:
        """The distance between two groups (0: identical), in :attr:`unit`."""
        raise NotImplementedError

    def figure(self, study: Study, path: Path) -> Path:
        """Write the section's figure."""
        raise NotImplementedError

    def figures(self, study: Study, folder: Path, stem: str) -> list[Figure]:
        """Write every figure of a study into ``folder`` (one, :meth:`figure`, by default)."""
        return [Figure(self.figure(study, folder / f"{stem}.png"), self.caption(study))]

    def caption(self, study: Study) -> str:
        """The figure caption."""
        return self.title

    def introduction(self, study: Study) -> str:
        """A sentence or two before the table."""
        return ""

    def table_columns(self, study: Study) -> list[str]:
        """Columns of the group table beyond model, T and runs."""
        return []

    def table_cells(self, summary: dict[str, Any], study: Study) -> list[str]:
        """Cells of one group's row, for :meth:`table_columns`."""
        return []

    # computed once, here ---------------------------------------------------------------------
    def make_group(self, challenge: str, model: str, temperature_K: float,
                   files: list[Path], sel: FrameSelection, settings: dict[str, Any],
                   is_reference: bool = False, source: str = "") -> Group | None:
        """Read a group's runs into units (runs, or time blocks under MIN_RUNS runs)."""
        files = [f for f in files if self.accepts(f)]
        if not files:
            return None
        n_blocks = 1 if len(files) >= MIN_RUNS else N_BLOCKS
        parts = [self.contributions(f, sel, settings, n_blocks) for f in files]
        units = np.concatenate([np.atleast_2d(p) for p in parts])
        units = units[np.any(units != 0, axis=1)] if n_blocks > 1 else units
        if len(units) == 0:
            return None
        return Group(challenge, model, temperature_K, files, units,
                     "runs" if len(units) == len(files) else "time blocks", is_reference,
                     source)

    def study(self, challenge, files: list[Path], sel: FrameSelection,
              settings: dict[str, Any], options: AnalysisSettings = DEFAULT) -> Study:
        """Groups, references, verdicts and model pairs of one challenge (``options``: the
        reference and the bootstrap switch)."""
        from analysis import reference as reference_mod
        from analysis import trajectories

        grouped: dict[tuple[str, float], list[Path]] = defaultdict(list)
        for path in files:
            record = trajectories.read_record(path)
            grouped[(record.model, record.temperature_K)].append(path)
        groups = [g for (model, temp), paths in sorted(grouped.items())
                  if (g := self.make_group(challenge.name, model, temp, sorted(paths), sel,
                                           settings)) is not None]
        study = Study(self.name, challenge.name, settings, groups)
        ref_model = reference_model(challenge)
        for g in groups:
            if g.model == ref_model:
                study.references[g.temperature_K] = g
        brought = reference_mod.load(challenge, options.reference)
        if brought is not None:
            ref = self.make_group(challenge.name, "reference", brought.temperature_K,
                                  brought.files, sel, settings, True, brought.describe())
            if ref is not None:
                study.references[brought.temperature_K] = ref
        study.reference_text = self.reference_text(study, ref_model)
        for g in groups:
            if g.model != ref_model and g.temperature_K in study.references:
                g.control_units = self.control_units(g, sel, settings)
        study.verdicts = [self.verdict(g, study.references.get(g.temperature_K), settings,
                                       ref_model, options.bootstrap)
                          for g in groups if g.model != ref_model]
        study.pairs = self.model_pairs(groups, settings, options.bootstrap)
        return study

    def reference_text(self, study: Study, ref_model: str | None) -> str:
        """Which reference each temperature is compared with."""
        if not study.references:
            return (f"No reference: no {ref_model} runs in these folders and no reference "
                    "trajectories." if ref_model else "No reference declared.")
        parts = [f"{t:g} K: " + (g.source if g.is_reference else f"the {g.model} runs here")
                 for t, g in sorted(study.references.items())]
        return "Reference " + "; ".join(parts) + "."

    def control_units(self, group: Group, sel: FrameSelection,
                      settings: dict[str, Any]) -> np.ndarray | None:
        """The units of the group's control: each run's opening (its first
        :data:`CONTROL_OPENING_PS`) repeated over the frames the run contributes, i.e. the
        opening's contributions scaled to the run's frame count (every time block alike).
        None when the declaration says ``none`` or a run has no opening to read."""
        from analysis import framesets

        if self.control == "none":
            return None
        opening = FrameSelection(0.0, sel.every, CONTROL_OPENING_PS)
        n_blocks = 1 if group.method == "runs" else N_BLOCKS
        rows = []
        for path in group.files:
            meta = framesets.info(path)
            used = sum(len(range(a, b, sel.every))
                       for a, b in sel.ranges(meta.n_frames, meta.frame_dt_ps))
            read = sum(len(range(a, b, sel.every))
                       for a, b in opening.ranges(meta.n_frames, meta.frame_dt_ps))
            if used == 0:
                continue
            if read == 0:
                return None
            first = np.atleast_2d(self.contributions(path, opening, settings, 1))[0]
            rows += [first * (used / read / n_blocks)] * n_blocks
        return np.array(rows) if rows else None

    def _distance(self, settings: dict[str, Any]) -> Callable[[np.ndarray, np.ndarray], float]:
        return lambda a, b: self.distance(a, b, settings)

    def verdict(self, group: Group, ref: Group | None, settings: dict[str, Any],
                ref_model: str | None, bootstrap: bool = True) -> Verdict:
        """One model group against the reference at its temperature."""
        if ref is None:
            return Verdict(self.name, group.model, group.temperature_K, None,
                           f"no reference at {group.temperature_K:g} K (no {ref_model} runs "
                           "at this temperature, no reference trajectories)",
                           decision="no_reference", n_runs=group.n_runs, unit=self.unit)
        method = "runs" if group.method == ref.method == "runs" else "time blocks"
        ci = interval([group.units, ref.units], self._distance(settings), method,
                      upper=self.distance_max, bootstrap=bootstrap)
        decision = decide(ci, self.tolerance, bootstrap)
        reason = REASONS.get(decision, decision)
        facts: dict[str, Any] = {"control": {"kind": self.control,
                                             "opening_ps": CONTROL_OPENING_PS}}
        control_decision = None
        if group.control_units is not None:
            cci = interval([group.control_units, ref.units], self._distance(settings), method,
                           upper=self.distance_max, bootstrap=bootstrap)
            control_decision = decide(cci, self.tolerance, bootstrap)
            facts["control"].update(decision=control_decision, value=cci.value, low=cci.low,
                                    high=cci.high)
            if self.control == "veto" and decision == "agrees" \
                    and control_decision != "differs":
                decision, reason = "inconclusive", "control_not_excluded"
        against = ref.source or f"{ref.model} runs"
        verdict = Verdict(self.name, group.model, group.temperature_K, None, "",
                          decision=decision, value=ci.value, ci_low=ci.low, ci_high=ci.high,
                          tolerance=self.tolerance, n_runs=group.n_runs, unit=self.unit,
                          method=method, reason=reason,
                          scope={"kind": "unpaired", "label": "unpaired, the runs' "
                                 "distribution against the reference's"},
                          control_decision=control_decision,
                          detectable=detectable(ci, self.tolerance), facts=facts)
        verdict.detail = (f"{self.measure} vs {against}: {verdict.interval_text()} "
                          f"({_resampled(group, ref)})" + self._control_text(verdict))
        return verdict

    def _control_text(self, verdict: Verdict) -> str:
        """The control's part of a verdict's words, from its facts (written once, here)."""
        found = verdict.facts.get("control", {})
        if self.control == "none":
            return f". No control: {self.control_note}" if self.control_note else ""
        if found.get("decision") is None:
            return ""
        value = Verdict(self.name, "", None, None, "", decision=found["decision"],
                        value=found["value"], ci_low=found["low"], ci_high=found["high"],
                        tolerance=self.tolerance, unit=self.unit).interval_text()
        text = (f". Control (each run's first {found['opening_ps']:g} ps repeated over its "
                f"length, a model that stays where it started): {value}")
        if verdict.reason == "control_not_excluded":
            text += ("; since the control is not told apart from the reference either, these "
                     "runs cannot tell a model that samples from one that stays put: "
                     "inconclusive (longer runs, or a reference further from the starts, "
                     "would decide)")
        elif self.control == "stated" and found["decision"] == "agrees":
            text += (f"; the control passes too, and that is expected here: "
                     f"{self.control_note}")
        return text

    def model_pairs(self, groups: list[Group], settings: dict[str, Any],
                    bootstrap: bool = True) -> list[dict[str, Any]]:
        """Distance between every two models at the same temperature, with its interval.

        A pair is flagged ``disagree`` when the lower bound of its interval exceeds the
        between-replica noise of both models (:func:`analysis.stats.pairwise`).
        """
        from analysis import stats

        out = []
        for temp in sorted({g.temperature_K for g in groups}):
            mine = {g.model: g for g in groups if g.temperature_K == temp and len(g.units) >= 2}
            if len(mine) < 2 or not bootstrap:
                continue
            found = stats.pairwise({m: g.units for m, g in mine.items()}, self._distance(settings),
                                   n_resamples=N_RESAMPLES, seed=SEED, histograms=True,
                                   methods={m: g.method for m, g in mine.items()})
            out += [pair_json(p, temp, self.distance_max) for p in found]
        return out

    # outputs -------------------------------------------------------------------------------
    def to_json(self, study: Study) -> dict[str, Any]:
        """Everything the study says, JSON-ready."""
        return {"observable": self.name, "challenge": study.challenge,
                "settings": {k: v for k, v in study.settings.items() if not k.startswith("_")},
                "unit": self.unit, "measure": self.measure,
                "tolerance": self.tolerance, "reference": study.reference_text,
                "groups": [{"challenge": g.challenge, "model": g.model,
                            "temperature_K": g.temperature_K, "n_trajectories": g.n_runs,
                            "is_reference": g.is_reference, "resampled": g.method,
                            **self.summary(g.total, study.settings)}
                           for g in [*study.groups,
                                     *(r for r in study.references.values() if r.is_reference)]],
                "verdicts": [vars(v) for v in study.verdicts],
                "model_pairs": study.pairs}

    def markdown(self, study: Study) -> str:
        """Introduction, group table, reference, model pairs."""
        columns = self.table_columns(study)
        rows = ["| model | T (K) | runs | " + " | ".join(columns) + " |",
                "|---|---:|---:|" + "---|" * len(columns)]
        shown = [*study.groups, *(r for r in study.references.values() if r.is_reference)]
        for g in shown:
            name = f"**reference** ({g.source})" if g.is_reference else g.model
            rows.append(f"| {name} | {g.temperature_K:g} | {g.n_runs} | "
                        + " | ".join(self.table_cells(self.summary(g.total, study.settings),
                                                      study)) + " |")
        text = [self.introduction(study), "", "\n".join(rows), "", study.reference_text]
        if study.pairs:
            text += ["", pairs_table(study.pairs, self.measure, self.unit)]
        return "\n".join(text).strip() + "\n"

    def sections(self, challenge, files: list[Path], workdir: Path,
                 settings: AnalysisSettings = DEFAULT) -> list[Section]:
        """The report section of one challenge, with the observable's default settings and
        the report's (``settings``)."""
        sel = FrameSelection()
        own = self.report_settings(challenge, files)
        study = self.study(challenge, files, sel, own, settings)
        if not study.groups:
            return []
        figures = self.figures(study, workdir, f"{self.name}-{slug(challenge.name)}")
        return [Section(challenge.name, self.title, self.markdown(study), figures,
                        study.verdicts, self.to_json(study))]

    def command(self, args: argparse.Namespace) -> int:
        """``analysis <name> OUT``: the study of every applicable challenge found."""
        from analysis import trajectories

        paths = [Path(p) for p in args.paths]
        self.settings(load_challenge(args.challenge) if args.challenge else None, args)
        files = trajectories.find(paths)
        by_challenge: dict[str, list[Path]] = defaultdict(list)
        for path in files:
            name = trajectories.read_record(path).challenge
            if args.challenge in (None, name) or (
                    args.challenge and Path(args.challenge).name == name):
                by_challenge[name].append(path)
        if not by_challenge:
            raise UserError(f"no {args.challenge} trajectories under "
                            f"{', '.join(map(str, paths))}: run python -m harness.launch "
                            f"--challenge {args.challenge} first")
        out = report_dir(args.report_dir, args.paths)
        sel = selection(args)
        studies = []
        for name, mine in sorted(by_challenge.items()):
            challenge = load_challenge(args.challenge if args.challenge and
                                       Path(args.challenge).name == name else name)
            if challenge is None:
                raise UserError(f"challenge {name!r} of {mine[0]} is not known here; give "
                                "--challenge FOLDER holding its challenge.toml")
            settings = self.settings(challenge, args)
            study = self.study(challenge, mine, sel, settings, AnalysisSettings.make(
                reference=getattr(args, "reference", None)))
            if study.groups:
                studies.append(study)
        if not studies:
            raise UserError(f"no trajectories under {', '.join(map(str, paths))} that "
                            f"'{self.name}' can use")
        several = len(studies) > 1
        written = []
        for study in studies:
            suffix = f"-{slug(study.challenge)}" if several else ""
            written += [f.path for f in self.figures(study, out, f"{self.name}{suffix}")]
            print(f"## {study.challenge}\n\n{self.markdown(study)}")
            for v in study.verdicts:
                print(f"- {v.model} {v.temperature_K:g} K: {v.decision}; {v.detail}")
            self.extra_outputs(study, args)
        data = [self.to_json(s) for s in studies]
        (out / f"{self.name}.json").write_text(json.dumps(data[0] if not several else
                                                          {"challenges": data}, indent=1,
                                                          default=_json_default))
        print(f"report: {out / (self.name + '.json')}, "
              + ", ".join(str(p) for p in written))
        return 0

    def extra_outputs(self, study: Study, args: argparse.Namespace) -> None:
        """Anything else the command writes (e.g. a CSV export)."""


def _resampled(group: Group, ref: Group) -> str:
    what = {"runs": "runs resampled", "time blocks": f"time blocks resampled, fewer than "
            f"{MIN_RUNS} runs"}
    if group.method == ref.method:
        return f"{group.n_runs} vs {ref.n_runs} runs, {what[group.method]}"
    return f"{group.n_runs} vs {ref.n_runs} runs, time blocks resampled where fewer than " \
           f"{MIN_RUNS} runs"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
