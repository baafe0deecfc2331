"""``analysis report``: every challenge found, models side by side, in one document.

The report does not compute observables itself. It finds the *section providers*, calls each
once per challenge with that challenge's trajectory files, and assembles what they return
(:class:`analysis.sections.Section`) with the run provenance; :mod:`analysis.render` turns the
result into HTML and Markdown. Providers are

* every observable folder in ``analysis/observables/`` and every module in
  ``analysis/commands/`` that defines ``report_sections(files, workdir)``
  (:func:`analysis.commands.section_modules`), and
* plug-ins from other packages, registered as entry points in the group
  ``tea_harness.report_sections`` (``name = package.module:report_sections``).

Each call is cached (:mod:`analysis.cache`) under a key made of the provider's name and
``REPORT_VERSION``, the digests of the code it may run and of the challenge's data folder,
and the content digests of its input files: a second report on unchanged data only hashes
what changed and renders.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import pickle
import shutil
import sys
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from analysis import cache, commands
from analysis.progress import Progress
from analysis.runs import RunInfo, read_runs
from analysis.sections import Figure, Section
from analysis.settings import DEFAULT, AnalysisSettings
from analysis.trajectories import Unreadable, scan
from harness.errors import UserError

ENTRY_POINT_GROUP = "tea_harness.report_sections"
#: Providers shown first, in this order; the others follow by name.
FIRST = ("stability", "speed")


@dataclass(frozen=True)
class Provider:
    """One ``report_sections`` function and the module it comes from."""

    name: str
    function: Callable[[list[Path], Path], list[Section]]
    module: ModuleType

    def call(self, files: list[Path], workdir: Path, settings: AnalysisSettings
             ) -> list[Section]:
        """``function(files, workdir, settings=settings)``, or without ``settings`` for a
        provider (a plug-in) that does not take them."""
        if self.takes_settings:
            return self.function(files, workdir, settings=settings)
        return self.function(files, workdir)

    @property
    def takes_settings(self) -> bool:
        """Whether ``function`` has a ``settings`` parameter (or ``**kwargs``)."""
        import inspect

        try:
            params = inspect.signature(self.function).parameters.values()
        except (TypeError, ValueError):
            return False
        return any(p.name == "settings" or p.kind is p.VAR_KEYWORD for p in params)

    @property
    def version(self) -> str:
        """``REPORT_VERSION`` (or ``__version__``) of the module, '' when it declares none."""
        return str(getattr(self.module, "REPORT_VERSION", getattr(self.module, "__version__",
                                                                   "")))


@dataclass
class Outcome:
    """What one provider gave for one challenge, and how."""

    provider: str
    version: str
    challenge: str
    sections: list[Section]
    seconds: float
    cached: bool
    error: str | None = None


@dataclass
class ChallengeReport:
    """Everything the report shows for one challenge."""

    name: str
    title: str
    tea_label: str
    reference_method: str
    declared: list[str]
    runs: list[RunInfo]
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def sections(self) -> list[Section]:
        """All sections, in provider order."""
        return [s for o in self.outcomes for s in o.sections]

    @property
    def missing(self) -> list[str]:
        """Declared observables that no section covers (see :func:`covers`); none when every
        run belongs to a protocol with its own section (ramps, sweeps: see :func:`runs_for`)."""
        if not any(r.record.fixed_temperature for r in self.runs):
            return []
        return [name for name in self.declared
                if not any(covers(s, name) for s in self.sections)]


@dataclass
class Report:
    """The whole report: challenges, runs, and how long each part took."""

    inputs: list[Path]
    challenges: list[ChallengeReport]
    created: str
    seconds: float = 0.0
    #: Temporary folder holding the figures when the cache is off (the caller removes it).
    scratch: Path | None = None
    #: Files found but not readable (left out of everything above), with the reason.
    unreadable: list[Unreadable] = field(default_factory=list)
    #: The providers asked for with ``--sections`` (None: all of them).
    only: list[str] | None = None

    @property
    def runs(self) -> list[RunInfo]:
        """Every run, all challenges."""
        return [r for c in self.challenges for r in c.runs]

    @property
    def errors(self) -> list[Outcome]:
        """Providers that raised."""
        return [o for c in self.challenges for o in c.outcomes if o.error]


def covers(section: Section, observable: str) -> bool:
    """Whether a section reports a declared observable.

    Matched case-insensitively against ``section.data["observable"]`` (the preferred way
    for a provider to say it), the verdicts' observable names and the section title.
    """
    want = observable.lower()
    names = [str(section.data.get("observable", "")), section.title,
             *(v.observable for v in section.verdicts)]
    return any(want == n.lower() or want in n.lower().split() for n in names if n)


def providers() -> list[Provider]:
    """Section providers: command modules first, then entry-point plug-ins."""
    found = {m.__name__.rsplit(".", 1)[-1]: Provider(m.__name__.rsplit(".", 1)[-1],
                                                     m.report_sections, m)
             for m in commands.section_modules()}
    for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            function = point.load()
        except Exception as exc:  # a broken plug-in must not stop the report
            raise UserError(f"report plug-in {point.name!r} ({point.value}) cannot be "
                            f"loaded: {exc}; fix or uninstall the package that declares it "
                            f"in the entry-point group {ENTRY_POINT_GROUP}") from None
        if not callable(function):
            raise UserError(f"report plug-in {point.name!r} ({point.value}) is not a function "
                            "report_sections(files, workdir)")
        found.setdefault(point.name, Provider(point.name, function,
                                              sys.modules[function.__module__]))
    rank = {name: i for i, name in enumerate(FIRST)}
    return sorted(found.values(), key=lambda p: (rank.get(p.name, len(rank)), p.name))


def select(found: list[Provider], only: list[str] | None) -> list[Provider]:
    """The providers named in ``only`` (``--sections``), in report order; all when None.

    Raises
    ------
    UserError
        A name that no provider has (the message lists the names there are).
    """
    if only is None:
        return found
    names = [p.name for p in found]
    unknown = [name for name in only if name not in names]
    if unknown or not only:
        raise UserError(f"--sections {','.join(only)}: no section provider "
                        f"{', '.join(map(repr, unknown)) or 'given'}; choose from "
                        f"{', '.join(names)}")
    return [p for p in found if p.name in only]


def build(paths: list[Path], cache_root: Path | None, progress: Progress,
          use: list[Provider] | None = None, only: list[str] | None = None,
          settings: AnalysisSettings = DEFAULT) -> Report:
    """Find the runs under ``paths``, call every provider per challenge, collect the results.

    ``progress`` counts two steps of its own (reading the runs; writing, which the caller
    does) and gets one more per (provider, challenge). ``cache_root`` None disables the
    cache: sections are computed in :attr:`Report.scratch`, which the caller removes.
    ``only`` keeps the providers of those names (:func:`select`). ``settings`` (bootstrap,
    reference) reach every provider that takes them and are part of each cache key.
    """
    start = time.perf_counter()
    found = select(providers() if use is None else use, only)
    hasher = cache.ContentHasher(cache_root / "digests.json" if cache_root else None)
    progress.start("reading runs")
    runs = read_runs(paths, hasher, cache_root, progress.partial)
    progress.finish(f"{len(runs)} runs")
    by_challenge: dict[str, list[RunInfo]] = defaultdict(list)
    for run in runs:
        by_challenge[run.challenge].append(run)
    progress.total += len(found) * len(by_challenge)
    challenges = [_challenge(name, group) for name, group in sorted(by_challenge.items())]
    scratch = None
    if cache_root is None:
        import tempfile

        scratch = Path(tempfile.mkdtemp(prefix="tea-report-"))
    store = cache.ResultCache(cache_root or scratch)
    try:
        for chal in challenges:
            for provider in found:
                if not runs_for(provider.name, chal.runs):
                    continue  # e.g. the ramp section where no run is a ramp: nothing to show
                progress.start(f"{provider.name}: {chal.name}")
                outcome = _run_provider(provider, chal, store, hasher, keep=scratch is None,
                                        settings=settings)
                chal.outcomes.append(outcome)
                progress.finish("error" if outcome.error else
                                "cached" if outcome.cached else f"{outcome.seconds:.1f} s")
    finally:
        hasher.save()
    return Report(inputs=paths, challenges=challenges,
                  created=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                  seconds=time.perf_counter() - start, scratch=scratch,
                  unreadable=scan(paths)[1], only=only)


def default_report_dir(paths: list[Path]) -> Path:
    """``OUT/reports`` for the first folder given (the folder of the first file given)."""
    first = paths[0]
    return (first if first.is_dir() else first.parent) / "reports"


def cached_sections(module: ModuleType, paths: list[Path],
                    cache_root: Path | None = None,
                    settings: AnalysisSettings = DEFAULT) -> list[Section]:
    """One command module's sections for the runs under ``paths``, through the report's cache.

    A single command (``analysis <observable> OUT``) that computes through this function
    leaves its result where ``analysis report OUT`` looks (``cache_root`` defaults to the
    report's), so the report reuses it when the files did not change. Exceptions propagate.
    """
    cache_root = cache_root or default_report_dir(paths) / ".cache"
    provider = Provider(module.__name__.rsplit(".", 1)[-1], module.report_sections, module)
    hasher = cache.ContentHasher(cache_root / "digests.json")
    runs = read_runs(paths, hasher, cache_root)
    by_challenge: dict[str, list[RunInfo]] = defaultdict(list)
    for run in runs:
        by_challenge[run.challenge].append(run)
    store = cache.ResultCache(cache_root)
    try:
        return [section for name, group in sorted(by_challenge.items())
                for section in _run_provider(provider, _challenge(name, group), store, hasher,
                                             keep=True, catch=False,
                                             settings=settings).sections]
    finally:
        hasher.save()


def _challenge(name: str, runs: list[RunInfo]) -> ChallengeReport:
    from harness import challenges

    try:
        chal = challenges.load(name)
    except UserError:  # a challenge defined elsewhere: show what the files say
        return ChallengeReport(name, name, "", "", [], runs)
    raw = chal.raw
    return ChallengeReport(name=name, title=chal.title, tea_label=str(raw.get("tea_challenge",
                                                                              "")),
                           reference_method=str(raw.get("reference_method", "")),
                           declared=list(chal.observables), runs=runs)


def _challenge_files(name: str, settings: AnalysisSettings = DEFAULT) -> list[Path]:
    """The challenge's data files and those of a ``--reference`` folder: both can change a
    section, so both are in its cache key."""
    from harness import challenges

    folders = []
    try:
        folders.append(challenges.load(name).path)
    except UserError:
        pass
    if (brought := settings.reference_folder()) is not None:
        folders.append(brought)
    return sorted(p for folder in folders for p in folder.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)


def runs_for(provider: str, runs: list[RunInfo]) -> list[RunInfo]:
    """The runs a section provider is given, by each run's protocol.

    The runs of a protocol with a section of its own (``ramp``: breaking temperatures,
    ``dt_sweep``: failures and drift per time step; :func:`harness.protocols.report_owner`)
    go to that section alone: a ramp run's failure is its breaking temperature, not a failure
    at the temperature it started from, and a run of a time-step sweep is one point of the
    sweep, not a stability verdict at its time step. Every other provider (stability, speed,
    the observables) gets the fixed-temperature runs (``md``, ``remd``).
    """
    from harness.protocols import PROTOCOLS, report_owner

    if any(p.report_section == provider for p in PROTOCOLS.values()):
        return [r for r in runs if report_owner(r.spec.get("protocol")) == provider]
    return [r for r in runs if report_owner(r.spec.get("protocol")) is None]


def _run_provider(provider: Provider, chal: ChallengeReport, store: cache.ResultCache,
                  hasher: cache.ContentHasher, keep: bool, catch: bool = True,
                  settings: AnalysisSettings = DEFAULT) -> Outcome:
    """Load the provider's sections for this challenge from the cache, or compute them.

    ``keep`` False: never read the cache (it is a scratch folder). ``catch``: an exception
    of the provider becomes :attr:`Outcome.error` instead of propagating. The key holds the
    ``settings`` (:meth:`AnalysisSettings.cache_key`), whether the provider takes them or not.
    """
    runs = runs_for(provider.name, chal.runs)
    if not runs:
        return Outcome(provider.name, provider.version, chal.name, [], 0.0, cached=False)
    code = [hasher.digest(p) for p in cache.code_files(provider.module,
                                                       _challenge_files(chal.name, settings))]
    key = cache.make_key(provider.name, provider.version + "|" + settings.cache_key(),
                         code, [r.digest for r in runs])
    if keep:
        stored = store.load(provider.name, chal.name, key)
        if stored is not None:
            entry = store.entry(provider.name, chal.name, key)
            return Outcome(provider.name, provider.version, chal.name,
                           [_relocate(s, entry) for s in stored["sections"]],
                           stored["seconds"], cached=True)
    work = store.workdir(provider.name, chal.name, key)
    start = time.perf_counter()
    try:
        sections = list(provider.call([r.path for r in runs], work, settings))
        _check(sections, provider)
    except Exception as exc:  # a failing observable is shown in the report, not fatal
        store.discard(work)
        if not catch:
            raise
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return Outcome(provider.name, provider.version, chal.name, [],
                       time.perf_counter() - start, cached=False,
                       error=f"{type(exc).__name__}: {exc} ({Path(where.filename).name}:"
                             f"{where.lineno})")
    seconds = time.perf_counter() - start
    portable = [_make_portable(s, work, f"{n:02d}") for n, s in enumerate(sections)]
    try:
        entry = store.store(provider.name, chal.name, key, work,
                            {"sections": portable, "seconds": seconds})
    except (pickle.PicklingError, TypeError, AttributeError):  # data that cannot be stored
        entry = work  # shown now, computed again next time; the folder is swept later
    return Outcome(provider.name, provider.version, chal.name,
                   [_relocate(s, entry) for s in portable], seconds, cached=False)


def _check(sections: Any, provider: Provider) -> None:
    for section in sections:
        if not isinstance(section, Section):
            raise TypeError(f"{provider.name}.report_sections returned {type(section).__name__},"
                            " expected analysis.sections.Section")
        for figure in section.figures:
            if not Path(figure.path).is_file():
                raise FileNotFoundError(f"figure {figure.path} of section {section.title!r} "
                                        "was not written")


def _make_portable(section: Section, work: Path, tag: str) -> Section:
    """Figures as paths relative to the cache entry (copied in when written elsewhere)."""
    figures = []
    for i, fig in enumerate(section.figures):
        path = Path(fig.path).resolve()
        try:
            rel = path.relative_to(work.resolve())
        except ValueError:
            rel = Path("figures") / f"{tag}-{i:02d}-{path.name}"
            (work / rel).parent.mkdir(exist_ok=True)
            shutil.copyfile(path, work / rel)
        figures.append(Figure(rel, fig.caption))
    return dataclasses.replace(section, figures=figures)


def _relocate(section: Section, entry: Path) -> Section:
    return dataclasses.replace(section, figures=[Figure(entry / f.path, f.caption)
                                                 for f in section.figures])
