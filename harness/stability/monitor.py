"""The in-run half of the watchdog: checks every MD step inside the force client.

The force client sees every structure i-PI integrates, in full precision and in step order,
so checking there costs no extra communication and stops a broken run at once: after the
event (plus an optional inspection window) the client answers the step's forces and
disconnects, which makes i-PI write its outputs and exit. The last steps before the event
are kept in a ring buffer and saved with the event.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from harness.stability.criteria import BondBreak, Event, Frame

EVENT_FILE = "event.json"
RING_FILE = "pre_failure.npz"


class StepMonitor:
    """Applies the frame criteria at every force call and decides when to stop.

    Parameters
    ----------
    checks
        Criteria from :func:`harness.stability.watchdog.build_frame_criteria`.
    first_step
        i-PI's step number of the first force call of this segment (0, or the restart step).
    dt_ps
        Time step, for event times.
    ring_steps
        How many of the last steps (positions, forces, energy) to keep for the record.
    after_event_steps
        Steps to keep running after the event (for inspection).
    """

    def __init__(self, checks: list[Any], first_step: int, dt_ps: float, ring_steps: int,
                 after_event_steps: int = 0):
        self.checks = checks
        self.step = first_step - 1
        self.dt_ps = dt_ps
        self.ring: deque[tuple[int, np.ndarray, np.ndarray, float]] = deque(maxlen=ring_steps)
        self.after = after_event_steps
        self.event: Event | None = None
        self.stop_at: int | None = None
        self.bond_check = next((c for c in checks if isinstance(c, BondBreak)), None)
        self.broken_after: set[tuple[int, int]] = set()

    def observe(self, positions: np.ndarray, forces: np.ndarray, energy: float) -> None:
        """Record one force call (Angstrom, eV/A, eV) and check it."""
        self.step += 1
        self.ring.append((self.step, positions.copy(), forces.copy(), energy))
        frame = Frame(self.step, self.step * self.dt_ps, positions, forces, energy)
        if self.event is None:
            for check in self.checks:
                self.event = check.check(frame)
                if self.event is not None:
                    break
            if self.event is not None:
                self.stop_at = self.step + self.after
        if self.event is not None and self.bond_check is not None:
            self._count_broken(frame)

    def _count_broken(self, frame: Frame) -> None:
        bonds = self.bond_check.bonds
        d = np.linalg.norm(self.bond_check.geom.vectors(frame.positions, bonds[:, 0],
                                                        bonds[:, 1]), axis=1)
        for k in np.nonzero(d > self.bond_check.thresholds)[0]:
            self.broken_after.add((int(bonds[k, 0]), int(bonds[k, 1])))

    @property
    def done(self) -> bool:
        """Whether the run should stop now."""
        return self.event is not None and self.step >= self.stop_at

    def save(self, folder: Path) -> None:
        """Write the event (JSON) and the ring buffer (npz) into the run's work folder."""
        assert self.event is not None
        record = self.event.to_dict()
        record["bonds_broken_by_end"] = len(self.broken_after)
        record["steps_after_event"] = self.step - self.event.step
        steps = np.array([r[0] for r in self.ring], dtype=np.int64)
        np.savez(folder / RING_FILE, step=steps, time=steps * self.dt_ps,
                 positions=np.array([r[1] for r in self.ring]),
                 forces=np.array([r[2] for r in self.ring]),
                 energy=np.array([r[3] for r in self.ring]))
        tmp = folder / (EVENT_FILE + ".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(folder / EVENT_FILE)
