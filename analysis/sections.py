"""The contract between observables and ``analysis report``.

Every observable folder (``analysis/observables/<name>/``, through its shared base) and every
command module (``analysis/commands/<name>.py``) may define::

    def report_sections(files: list[Path], workdir: Path,
                        settings: AnalysisSettings = DEFAULT) -> list[Section]: ...

``files`` are trajectory files the report found (keep those your observable applies to, return
``[]`` when none; ``analysis report`` calls once per challenge with that challenge's files, other
callers may mix challenges); ``workdir`` is a folder where the function writes its figures
(PNG). The report calls it, embeds the figures, renders the Markdown and collects the
verdicts. ``settings`` (:class:`analysis.settings.AnalysisSettings`: bootstrap, reference) are
optional: a function without that parameter is called without them. The function must not
print; the report caches what it returns, keyed on the files' content, the code, the
challenge's data and the settings (there is no other cache).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Figure:
    """A PNG written by the observable and a one-sentence caption."""

    path: Path
    caption: str


#: The four decisions of a verdict.
DECISIONS = ("agrees", "differs", "inconclusive", "no_reference")


@dataclass
class Verdict:
    """One model's number on one observable against the reference (or the other models).

    ``value`` is the number the verdict rests on (a distance to the reference, in the
    observable's unit), ``ci_low``/``ci_high`` its 95% interval from the replicas, and
    ``tolerance`` the largest distance that counts as agreement. ``decision`` is ``agrees``
    when the whole interval lies within the tolerance, ``differs`` when it lies wholly outside,
    ``inconclusive`` otherwise and ``no_reference`` when nothing could be compared. ``agrees``
    (True/False/None) is kept for older readers: True for ``agrees``, False for ``differs``.
    A provider that gives only ``agrees`` gets the matching ``decision``. ``detail`` states the
    numbers in words, e.g. ``"JS divergence 0.36 [0.31, 0.42] bits, tolerance 0.15"``.
    ``scope`` says as data what the verdict rests on (for stability: runs, their planned
    length, simulated time, the statistic, and a ``label`` such as ``"12 runs x 0.5 ps,
    failures per ns"``; for a comparison: ``kind``, ``length_ps`` where paired by start, and a
    ``label`` such as ``"paired by start, first 0.5 ps"``); ``reason`` why the decision came
    out as it did, as a key (e.g. ``within_tolerance``, ``control_not_excluded``).

    The decision is made by the statistics, never through ``detail``: ``facts`` holds the
    JSON-ready numbers the rule used, from which the observable's renderer writes ``detail``
    once. ``control_decision`` is the decision the same rule gives a control that never
    leaves its starts (each run's own opening repeated over its length; None: no control
    computed), and ``detectable`` the smallest true difference (in ``unit``) that this design
    would call ``differs``.
    """

    observable: str
    model: str
    temperature_K: float | None
    agrees: bool | None
    detail: str
    decision: str | None = None
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    tolerance: float | None = None
    n_runs: int | None = None
    unit: str = ""
    method: str = ""
    scope: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    control_decision: str | None = None
    detectable: float | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.decision is None:
            self.decision = {True: "agrees", False: "differs"}.get(self.agrees, "no_reference")
        elif self.decision not in DECISIONS:
            raise ValueError(f"verdict decision {self.decision!r}: one of {DECISIONS}")
        else:
            self.agrees = {"agrees": True, "differs": False}.get(self.decision)

    def interval_text(self, with_decision: bool = True) -> str:
        """``0.36 [0.31, 0.42] bits, tolerance 0.15: differs`` ('' without a value; without
        the ``: differs`` when ``with_decision`` is False)."""
        if self.value is None:
            return ""
        unit = f" {self.unit}" if self.unit else ""
        text = f"{_number(self.value)}"
        if self.ci_low is not None and self.ci_high is not None:
            text += f" [{_number(self.ci_low)}, {_number(self.ci_high)}]"
        text += unit
        if self.ci_high is not None and self.value > self.ci_high:
            # a basic interval of a divergence sits below a value whose plug-in bias exceeds
            # the sampling noise (docs/statistics.md): the reader is told, not left to wonder
            text += " (above its interval: plug-in bias larger than the noise; more frames " \
                "per run would sharpen it)"
        if self.tolerance is not None:
            text += f", tolerance {_number(self.tolerance)}"
        return f"{text}: {self.decision}" if with_decision else text


def _number(x: float) -> str:
    """Three significant digits, no exponent for everyday sizes."""
    return f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 or x == 0 else f"{x:.2e}"


@dataclass
class Section:
    """One observable of one challenge, models side by side."""

    challenge: str
    title: str
    markdown: str
    figures: list[Figure] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
