"""Helpers shared by the observable commands (not a command itself: leading underscore)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from analysis.trajectories import RunRecord
from harness.units import parse_time_ps


def report_dir(args_dir: str | None, paths: list[str]) -> Path:
    """``--report-dir`` or ``OUT/reports`` (next to the first path)."""
    if args_dir:
        out = Path(args_dir)
    else:
        first = Path(paths[0])
        out = (first if first.is_dir() else first.parent) / "reports"
    out.mkdir(parents=True, exist_ok=True)
    return out


def label(key: tuple[str, str, float], several_challenges: bool = False) -> str:
    """``MODEL 300K`` (prefixed with the challenge when several are mixed)."""
    challenge, model, temp = key
    text = f"{model} {temp:g}K"
    return f"{challenge} {text}" if several_challenges else text


def slug(key: tuple[str, str, float]) -> str:
    """File-name-safe ``challenge_model_300K``."""
    challenge, model, temp = key
    return f"{challenge}_{model}_{temp:g}K".replace("/", "-").replace(" ", "-")


def skip_ps(text: str | None) -> float:
    """``--skip`` as ps (0 when absent or zero)."""
    if text in (None, "", "0", "0ps", "0fs"):
        return 0.0
    return parse_time_ps(text, "--skip")


def paths_of(records: list[RunRecord]) -> list[Path]:
    """The trajectory files of a group."""
    return [r.path for r in records]


def files_key(files: list[Path], extra: dict[str, Any]) -> str:
    """A cache key over file names, sizes, modification times and settings."""
    digest = hashlib.sha256(json.dumps(extra, sort_keys=True).encode())
    for path in sorted(files):
        stat = path.stat()
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def cached(workdir: Path, name: str, key: str) -> dict[str, Any] | None:
    """Cached JSON of a previous report run with the same key, or None."""
    path = workdir / f"{name}.cache.json"
    if path.is_file():
        data = json.loads(path.read_text())
        if data.get("key") == key:
            return data
    return None


def store(workdir: Path, name: str, key: str, data: dict[str, Any]) -> None:
    """Write a cache entry."""
    (workdir / f"{name}.cache.json").write_text(json.dumps({"key": key, **data}))
