"""Finding trajectories and grouping them by what they say about themselves."""

from __future__ import annotations

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

    @property
    def group(self) -> tuple[str, str, float]:
        """(challenge, model, temperature)."""
        return self.challenge, self.model, self.temperature_K


def find(paths: list[Path]) -> list[Path]:
    """Trajectory files under the given files or folders (recursively), sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            found += [p for p in path.rglob("replica-*.h5") if p.stem.count(".") == 0]
        else:
            raise UserError(f"{path}: no such file or folder; give the --out folder of a launch")
    if not found:
        raise UserError(f"no trajectories (replica-NN.h5) under {', '.join(map(str, paths))}")
    return sorted(set(found))


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
                     target_ps=spec["n_steps"] * spec["dt_fs"] * 1e-3, failure=failure)
