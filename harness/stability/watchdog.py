"""The watchdog: which criteria a run uses, built once per run from its spec and start.

Runs inside the force client (every MD step, on the exact positions i-PI integrates) for
the criteria that need positions, forces or energy, and inside the run supervisor (every
frame) for the temperature. :func:`reevaluate` applies the same criteria to a stored
trajectory after the run.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.errors import UserError
from harness.stability import criteria as C

#: Named sets of criteria (``--criteria tea,mlipx``); single criterion names work too.
CRITERIA_SETS: dict[str, tuple[str, ...]] = {
    "tea": ("non_finite", "bond_break", "atom_collapse", "temperature"),
    "mdsim": ("bond_deviation",),
    "mlipaudit": ("temperature", "h_detached"),
    "mlipx": ("max_force",),
    "lambench": ("energy_drift",),
}
#: Evaluation order when several criteria trip on the same frame.
ORDER = ("non_finite", "bond_break", "atom_collapse", "h_detached", "bond_deviation",
         "max_force", "temperature", "energy_drift")
FRAME_CRITERIA = tuple(c for c in ORDER if c not in ("temperature", "energy_drift"))


def expand(names: Iterable[str]) -> tuple[str, ...]:
    """Expand set names into criterion names, in evaluation order; unknown names: UserError."""
    chosen: set[str] = set()
    for name in names:
        if name in CRITERIA_SETS:
            chosen.update(CRITERIA_SETS[name])
        elif name in ORDER:
            chosen.add(name)
        else:
            raise UserError(f"--criteria {name!r}: choose from sets "
                            f"{', '.join(CRITERIA_SETS)} or criteria {', '.join(ORDER)}")
    return tuple(c for c in ORDER if c in chosen)


@dataclass(frozen=True)
class WatchdogSettings:
    """The stability settings of a run (stored in its RunSpec)."""

    criteria: tuple[str, ...] = CRITERIA_SETS["tea"]
    bond_break_angstrom: float = 2.0
    pair_thresholds: dict[str, float] = field(default_factory=dict)
    min_distance_angstrom: float = 0.5
    bond_deviation_angstrom: float = 0.5
    h_detached_angstrom: float = 2.5
    max_force_ev_per_angstrom: float = 100.0
    max_excess_K: float = 10_000.0
    max_jump: float = 100.0
    max_drift_mev_per_atom_ps: float = 1.0  # criteria.DRIFT_LIMIT_MEV_PER_ATOM_PS
    after_event_steps: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WatchdogSettings:
        """Rebuild from :func:`dataclasses.asdict` output (JSON)."""
        data = dict(data)
        data["criteria"] = tuple(data.get("criteria", cls.criteria))
        return cls(**data)


def build_frame_criteria(settings: WatchdogSettings, numbers: np.ndarray,
                         start_positions: np.ndarray, cell: np.ndarray | None) -> list[Any]:
    """Criteria on positions/forces/energy, with the bond topology of the starting structure."""
    geom = C.Geometry(numbers, cell)
    bonds = C.bond_topology(geom, start_positions)
    factories = {
        "non_finite": lambda: C.NonFinite(geom),
        "bond_break": lambda: C.BondBreak(geom, bonds, settings.bond_break_angstrom,
                                          settings.pair_thresholds),
        "atom_collapse": lambda: C.AtomCollapse(geom, settings.min_distance_angstrom),
        "h_detached": lambda: C.HDetached(geom, settings.h_detached_angstrom),
        "bond_deviation": lambda: C.BondDeviation(geom, bonds, start_positions,
                                                  settings.bond_deviation_angstrom),
        "max_force": lambda: C.MaxForce(geom, settings.max_force_ev_per_angstrom),
    }
    return [factories[name]() for name in FRAME_CRITERIA if name in settings.criteria]


def build_temperature_criterion(settings: WatchdogSettings,
                                target_K: float) -> C.Temperature | None:
    """The frame-level temperature criterion, if selected."""
    if "temperature" not in settings.criteria:
        return None
    return C.Temperature(target_K, settings.max_excess_K, settings.max_jump)


def first_event(checks: list[Any], frame: C.Frame) -> C.Event | None:
    """The first criterion (in evaluation order) that trips on a frame."""
    for check in checks:
        event = check.check(frame)
        if event is not None:
            return event
    return None
