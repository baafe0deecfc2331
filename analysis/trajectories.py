"""Finding trajectories and grouping them by what they say about themselves."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import h5md
from harness.errors import UserError


@dataclass(frozen=True)
class RunRecord:
    """One trajectory's identity, status and failure, read from its metadata."""

    path: Path
    challenge: str
    model: str
    temperature_K: float
    replica: int
    status: str
    reached_ps: float
    target_ps: float
    failure: dict[str, Any] | None
    #: the run's ``--protocol`` (``md`` where none is recorded)
    protocol: str = "md"

    @property
    def fixed_temperature(self) -> bool:
        """Whether the run is judged like a TEA run (stability, observables): False for a
        protocol whose runs have a report section of their own (ramp, dt-sweep)."""
        from harness.protocols import report_owner

        return report_owner(self.protocol) is None

    @property
    def group(self) -> tuple[str, str, float]:
        """(challenge, model, temperature)."""
        return self.challenge, self.model, self.temperature_K


@dataclass(frozen=True)
class Unreadable:
    """A file that looks like a trajectory but cannot be read, and why."""

    path: Path
    reason: str


def damage(path: Path) -> str | None:
    """Why ``path`` cannot be read as a trajectory, or None when it can (cheap: no frames)."""
    try:
        with h5md.open_file(path, "r") as f:
            json.loads(f[h5md.PARAMS].attrs["run_spec"])
            f[f"{h5md.PARTICLES}/position/step"].shape  # noqa: B018 - must exist
    except (OSError, KeyError, ValueError, TypeError) as exc:
        text = str(exc)
        match = re.search(r"truncated file: eof = (\d+).*stored_eof = (\d+)", text)
        if match:
            return (f"truncated: {int(match.group(1))} of {int(match.group(2))} bytes "
                    "(a copy cut short, or a full disk)")
        return text.split("\n")[0][:200] or type(exc).__name__
    return None


def scan(paths: list[Path]) -> tuple[list[Path], list[Unreadable]]:
    """Trajectory files under the given files or folders (recursively), sorted: the readable
    ones, and the unreadable ones with the reason."""
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found += [p for p in path.rglob("replica-*.h5") if p.stem.count(".") == 0]
        else:
            raise UserError(f"{path}: no such file or folder; give the --out folder of a launch")
    good: list[Path] = []
    bad: list[Unreadable] = []
    for path in sorted(set(found)):
        reason = damage(path)
        if reason is None:
            good.append(path)
        else:
            bad.append(Unreadable(path, reason))
    return good, bad


def find(paths: list[Path]) -> list[Path]:
    """Readable trajectory files under the given files or folders (recursively), sorted.

    A damaged file among good ones is left out with a one-line warning on stderr (the
    report lists it too, see :func:`scan`); only when no file is readable is it an error.
    """
    good, bad = scan(paths)
    for item in bad:
        print(f"warning: {item.path}: unreadable, left out ({item.reason}); "
              f"'analysis info {item.path}' says more", file=sys.stderr, flush=True)
    if not good:
        if bad:
            raise UserError(f"no readable trajectory under {', '.join(map(str, paths))}: "
                            f"{bad[0].path}: {bad[0].reason}")
        raise UserError(f"no trajectories (replica-NN.h5) under {', '.join(map(str, paths))}")
    return good


def read_record(path: Path) -> RunRecord:
    """The :class:`RunRecord` of one trajectory."""
    try:
        meta = h5md.read_meta(path)
    except (OSError, KeyError) as exc:
        raise UserError(f"{path} is not a tea-harness trajectory ({exc})") from None
    spec = meta["run_spec"]
    reached = float(meta["times_ps"][-1]) if meta["n_frames"] else 0.0
    failure = meta["failure"]
    if failure and failure.get("time_ps") is not None:
        reached = float(failure["time_ps"])
    return RunRecord(path=path, challenge=spec["challenge"], model=spec["model_label"],
                     temperature_K=float(spec["temperature_K"]), replica=int(spec["replica"]),
                     status=meta["status"], reached_ps=reached,
                     target_ps=spec["n_steps"] * spec["dt_fs"] * 1e-3, failure=failure,
                     protocol=str(spec.get("protocol") or "md"))
