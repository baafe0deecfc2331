"""The options of an analysis that can change a verdict, as one value.

They reach the code as an argument (``report_sections(files, workdir, settings=...)``), never
through environment variables, and :meth:`AnalysisSettings.cache_key` is part of the report's
cache key (:mod:`analysis.report`): a report made with the bootstrap off is never served to
one made with it on, nor one made against another reference.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

#: What ``--reference`` takes besides a folder (:mod:`analysis.reference`).
WORDS = ("none", "equilibrium")


@dataclass(frozen=True)
class AnalysisSettings:
    """What every section provider may be told.

    Attributes
    ----------
    bootstrap : bool
        Compute the bootstrap intervals (default). False gives values without intervals,
        decided on their point values: only to time the rest (``analysis report
        --no-bootstrap``).
    reference : str or None
        A folder of reference trajectories (resolved, as ``--reference DIR``), ``"none"`` for
        no reference trajectories, ``"equilibrium"`` for each challenge's shipped equilibrium
        ensemble, or None for each challenge's shipped reference.
    """

    bootstrap: bool = True
    reference: str | None = None

    @classmethod
    def make(cls, bootstrap: bool = True, reference: str | Path | None = None
             ) -> AnalysisSettings:
        """Settings with the reference folder resolved (None and the words ``"none"`` and
        ``"equilibrium"`` kept)."""
        if reference is not None and str(reference) not in WORDS:
            reference = str(Path(reference).resolve())
        return cls(bool(bootstrap), None if reference is None else str(reference))

    def cache_key(self) -> str:
        """The settings as a canonical string, for the cache key."""
        return json.dumps(asdict(self), sort_keys=True)

    def reference_folder(self) -> Path | None:
        """The brought reference folder, if one is given and exists."""
        if self.reference and self.reference not in WORDS and Path(self.reference).is_dir():
            return Path(self.reference)
        return None


#: The settings of a report or command given no options.
DEFAULT = AnalysisSettings()
