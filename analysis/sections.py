"""The contract between observables and ``analysis report``.

Every analysis command module (``analysis/commands/<name>.py``) may define::

    def report_sections(files: list[Path], workdir: Path) -> list[Section]: ...

``files`` are trajectory files the report found (keep those your observable applies to, return
``[]`` when none; ``analysis report`` calls once per challenge with that challenge's files, other
callers may mix challenges); ``workdir`` is a folder where the function writes its figures
(PNG) and any cached numbers. The report calls it, embeds the figures, renders the Markdown and
collects the verdicts. The function must not print; it may be slow the first time and should
reuse its own cached results when the files did not change (the report keys its cache on the
files' content too).
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


@dataclass
class Verdict:
    """Whether one model agrees with the reference (or with the other models) on one observable.

    ``agrees`` is None when there is nothing to compare against. ``detail`` states the numbers and
    the tolerance used, e.g. ``"JS divergence 0.04 <= 0.10 vs xTB reference"``.
    """

    observable: str
    model: str
    temperature_K: float | None
    agrees: bool | None
    detail: str


@dataclass
class Section:
    """One observable of one challenge, models side by side."""

    challenge: str
    title: str
    markdown: str
    figures: list[Figure] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
