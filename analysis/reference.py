"""Reference trajectories: the challenge's shipped ones or a folder a user brings (``--reference``).

A reference folder holds H5MD files in the runs' own form (``harness.h5md``: ``/parameters/harness``
with ``run_spec``, ``provenance``, ``status``), so every analysis reads them like runs. Each file
may carry a ``reference`` attribute under ``/parameters/harness``: JSON with at least ``method``
(e.g. ``"GFN2-xTB (tblite)"`` or ``"PBE+MBD (FHI-aims)"``) and ``temperature_K``; files written by
``analysis reference import`` and by :mod:`harness.challenges.reference_md` have it. Files without
it take the method from the challenge's ``reference_method``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import challenges, h5md
from harness.errors import UserError

#: What ``--reference`` takes to mean "compare with nothing".
NONE = "none"


@dataclass
class ReferenceSet:
    """The reference trajectories of one challenge at one temperature, and what they are."""

    directory: Path
    method: str
    temperature_K: float
    files: list[Path]
    shipped: bool
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_runs(self) -> int:
        """Number of reference trajectories."""
        return len(self.files)

    def describe(self) -> str:
        """One line for reports: method, temperature, runs and where it comes from."""
        where = "shipped with the challenge" if self.shipped else str(self.directory)
        return (f"{self.method} at {self.temperature_K:g} K, {self.n_runs} trajectories "
                f"({where})")


def _attrs(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run_spec, reference attribute) of one file."""
    try:
        with h5md.open_file(path, "r") as f:
            params = f[h5md.PARAMS]
            spec = json.loads(params.attrs["run_spec"])
            ref = json.loads(params.attrs["reference"]) if "reference" in params.attrs else {}
    except (OSError, KeyError, ValueError) as exc:
        raise UserError(f"{path}: not a reference trajectory in H5MD form ({exc}); "
                        "convert it with 'analysis reference import'") from None
    return spec, ref


def load(challenge: challenges.Challenge, directory: Path | str | None = None
         ) -> ReferenceSet | None:
    """The reference of ``challenge``: ``directory`` if given, else the shipped ``reference/``.

    Returns None when there is none (no folder, no ``*.h5`` in it, or ``directory == "none"``).
    A folder given explicitly that does not exist or holds no H5MD files is a user error.
    """
    shipped = directory is None
    if directory is not None and str(directory) == NONE:
        return None
    folder = challenge.path / "reference" if shipped else Path(directory)
    files = sorted(folder.rglob("*.h5")) if folder.is_dir() else []
    if not files:
        if shipped:
            return None
        raise UserError(f"--reference {folder}: no H5MD files there; make them with "
                        "'analysis reference import FILE --challenge NAME ...'")
    specs = [_attrs(p) for p in files]
    spec, ref = specs[0]
    temps = {float(s.get("temperature_K", ref.get("temperature_K", 0.0))) for s, _ in specs}
    if len(temps) > 1:
        raise UserError(f"--reference {folder}: files at several temperatures "
                        f"({', '.join(f'{t:g} K' for t in sorted(temps))}); give one folder per "
                        "temperature")
    method = ref.get("method") or challenge.raw.get("reference_method", "reference")
    return ReferenceSet(directory=folder, method=str(method), temperature_K=temps.pop(),
                        files=files, shipped=shipped, info=ref)
