"""Challenges are data: ``harness/challenges/<name>/challenge.toml`` plus ``starts/*.xyz``.

The TOML holds the protocol (temperatures, replicas, length, time step, thermostat),
the stability thresholds, the observables that apply and the atom groups they use.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError

CHALLENGES_DIR = Path(__file__).resolve().parent
#: Environment variable: more folders holding challenge folders (separated like PATH), searched
#: after the shipped ones, so a user's own challenge is found by its name.
#: Environment variable: folders (separated by ``os.pathsep``) holding challenges of one's own.
SEARCH_PATH_ENV = "TEA_HARNESS_CHALLENGE_PATH"


def search_path() -> list[Path]:
    """The shipped challenges' folder, then those of ``TEA_HARNESS_CHALLENGE_PATH``."""
    extra = [Path(p).expanduser()
             for p in os.environ.get(SEARCH_PATH_ENV, "").split(os.pathsep) if p]
    return [CHALLENGES_DIR, *extra]


@dataclass(frozen=True)
class Protocol:
    """MD settings shared by every model of a challenge (the 'identical conditions')."""

    temperatures_K: tuple[float, ...]
    replicas: int
    length_ps: float
    dt_fs: float
    stride: int
    thermostat: str
    thermostat_tau_fs: float


@dataclass(frozen=True)
class Challenge:
    """A loaded challenge definition."""

    name: str
    path: Path
    title: str
    elements: tuple[str, ...]
    periodic: bool
    protocol: Protocol
    demo: Protocol
    starts: tuple[Path, ...]
    stability: dict[str, Any] = field(default_factory=dict)
    observables: tuple[str, ...] = ()
    groups: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def start_for_replica(self, replica: int) -> Path:
        """The starting structure of a replica (replicas cycle through the starts)."""
        return self.starts[replica % len(self.starts)]


def available() -> list[str]:
    """Names of the shipped challenges and of those on ``TEA_HARNESS_CHALLENGE_PATH``."""
    return sorted({p.parent.name for root in search_path()
                   for p in root.glob("*/challenge.toml")})


def _protocol(table: dict[str, Any], base: Protocol | None, where: str) -> Protocol:
    def get(key: str, default: Any = None) -> Any:
        if key in table:
            return table[key]
        if base is not None:
            return getattr(base, key)
        if default is not None:
            return default
        raise UserError(f"{where}: missing key {key!r}")

    return Protocol(
        temperatures_K=tuple(float(t) for t in get("temperatures_K")),
        replicas=int(get("replicas")),
        length_ps=float(get("length_ps")),
        dt_fs=float(get("dt_fs")),
        stride=int(get("stride")),
        thermostat=str(get("thermostat")),
        thermostat_tau_fs=float(get("thermostat_tau_fs")),
    )



def find(name: str) -> Path:
    """The folder of a challenge: shipped, a folder path, or NAME under a search-path folder.

    The search path (``TEA_HARNESS_CHALLENGE_PATH``) lets commands that know a challenge only
    by the name its runs record (the analysis) find challenges made with
    ``python -m harness.challenges new`` outside the current folder.

    Raises
    ------
    UserError
        When no folder with a ``challenge.toml`` is found.
    """
    candidates = [CHALLENGES_DIR / name, Path(name).expanduser()]
    candidates += [root / name for root in search_path()[1:]]
    for folder in candidates:
        if (folder / "challenge.toml").is_file():
            return folder.resolve()
    raise UserError(f"unknown challenge {name!r}: choose one of {', '.join(available())}, "
                    f"give a folder with a challenge.toml, or add its parent folder to "
                    f"{SEARCH_PATH_ENV}")


def load(name: str) -> Challenge:
    """Load a challenge by name, or from a folder holding a ``challenge.toml`` (:func:`find`).

    Raises
    ------
    UserError
        For an unknown name or an invalid definition.
    """
    folder = find(name)
    toml_path = folder / "challenge.toml"
    try:
        raw = tomllib.loads(toml_path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{toml_path}: invalid TOML ({exc})") from None
    protocol = _protocol(raw.get("protocol", {}), None, f"{toml_path} [protocol]")
    demo = _protocol(raw.get("demo", {}), protocol, f"{toml_path} [demo]")
    starts = tuple(sorted((folder / "starts").glob("*.xyz")))
    if not starts:
        raise UserError(f"challenge {name!r} has no starting structures in {folder / 'starts'}")
    return Challenge(
        name=folder.name,
        path=folder,
        title=raw.get("title", folder.name),
        elements=tuple(raw.get("elements", ())),
        periodic=bool(raw.get("periodic", False)),
        protocol=protocol,
        demo=demo,
        starts=starts,
        stability=raw.get("stability", {}),
        observables=tuple(raw.get("observables", {}).get("names", ())),
        groups=raw.get("groups", {}),
        raw=raw,
    )
