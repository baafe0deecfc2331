"""The runs a report covers: identity, status and provenance of every trajectory, by content.

Reading the metadata of a trajectory means reading its step and time arrays (100,001 of each
for a 1 ns TEA run), so :func:`read_runs` remembers it by the file's content digest in
``CACHE/runs.pkl``: a second report reads only files that changed.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis import trajectories
from analysis.cache import ContentHasher
from analysis.trajectories import RunRecord
from harness import h5md
from harness.errors import UserError

_MEMO = "runs.pkl"
#: Bumped when :class:`RunInfo` changes, so that memos of older versions are ignored.
_MEMO_VERSION = 1


@dataclass(frozen=True)
class RunInfo:
    """One trajectory file: what it is, how far it got, how it was made."""

    path: Path
    digest: str
    size_bytes: int
    challenge: str
    model_label: str
    model: str
    temperature_K: float
    replica: int
    status: str
    n_frames: int
    reached_ps: float
    target_ps: float
    failure: dict[str, Any] | None
    spec: dict[str, Any]
    provenance: dict[str, Any]

    @property
    def record(self) -> RunRecord:
        """The :class:`analysis.trajectories.RunRecord` of this run."""
        return RunRecord(self.path, self.challenge, self.model_label, self.temperature_K,
                         self.replica, self.status, self.reached_ps, self.target_ps,
                         self.failure, protocol=str(self.spec.get("protocol") or "md"))


def run_info(path: Path, digest: str) -> RunInfo:
    """Read one trajectory's metadata (not its frames)."""
    record = trajectories.read_record(path)
    meta = h5md.read_meta(path)
    spec = meta["run_spec"]
    return RunInfo(path=path, digest=digest, size_bytes=path.stat().st_size,
                   challenge=record.challenge, model_label=record.model,
                   model=str(spec.get("model", record.model)),
                   temperature_K=record.temperature_K, replica=record.replica,
                   status=record.status, n_frames=int(meta["n_frames"]),
                   reached_ps=record.reached_ps, target_ps=record.target_ps,
                   failure=record.failure, spec=spec, provenance=meta["provenance"])


def read_runs(paths: list[Path], hasher: ContentHasher, cache_root: Path | None,
              on_fraction: Callable[[float], None] | None = None) -> list[RunInfo]:
    """Every trajectory under ``paths`` with its content digest, sorted like the report.

    ``on_fraction`` is told how far the work is (bytes hashed, then files read).
    """
    files = trajectories.find(paths)
    to_hash = sum(p.stat().st_size for p in files if hasher.needs_reading(p))
    hashed = 0

    def count(n: int) -> None:
        nonlocal hashed
        hashed += n
        if on_fraction is not None and to_hash:
            on_fraction(0.8 * hashed / to_hash)

    digests = {p: hasher.digest(p, on_bytes=count) for p in files}
    memo = _load_memo(cache_root)
    runs = []
    for i, path in enumerate(files):
        known = memo.get(digests[path])
        runs.append(dataclasses.replace(known, path=path) if known is not None
                    else run_info(path, digests[path]))
        if on_fraction is not None:
            on_fraction(0.8 + 0.2 * (i + 1) / len(files))
    memo.update({r.digest: dataclasses.replace(r, path=Path()) for r in runs})
    _save_memo(cache_root, memo, keep={r.digest for r in runs})
    return sorted(runs, key=lambda r: (r.challenge, r.model_label, r.temperature_K, r.replica,
                                       str(r.path)))


def _load_memo(cache_root: Path | None) -> dict[str, RunInfo]:
    if cache_root is None or not (cache_root / _MEMO).is_file():
        return {}
    try:
        with open(cache_root / _MEMO, "rb") as handle:
            stored = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError,
            TypeError):
        return {}
    if not isinstance(stored, dict) or stored.get("version") != _MEMO_VERSION:
        return {}
    return stored["runs"]


def _save_memo(cache_root: Path | None, memo: dict[str, RunInfo], keep: set[str],
               limit: int = 20_000) -> None:
    """Write the memo; beyond ``limit`` entries, forget those this report did not use."""
    if cache_root is None:
        return
    if len(memo) > limit:
        memo = {k: v for k, v in memo.items() if k in keep}
    cache_root.mkdir(parents=True, exist_ok=True)
    tmp = cache_root / f"{_MEMO}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as handle:
            pickle.dump({"version": _MEMO_VERSION, "runs": memo}, handle)
        tmp.replace(cache_root / _MEMO)
    except OSError as exc:
        raise UserError(f"cannot write the report cache in {cache_root} ({exc}); "
                        "give a writable --cache-dir or --no-cache") from None
