"""Re-evaluate stability criteria on a stored trajectory, after the run.

Applies the same criteria as the watchdog to the stored frames and to the every-step frames
kept before a failure (``/particles/pre_failure``), in step order; so with the criteria of
the run it finds the very event (step, atoms) the watchdog recorded, and with other criteria
(``mdsim``, ``mlipx``, ...) it tells what those benchmarks would have said.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from pathlib import Path

from harness import h5md
from harness.stability import criteria as C
from harness.stability.criteria import Event, Frame
from harness.stability.watchdog import (
    WatchdogSettings,
    build_frame_criteria,
    build_temperature_criterion,
    expand,
    first_event,
)

CHUNK_FRAMES = 5000


def _stored_frames(path: Path) -> Iterator[tuple[int, Frame]]:
    with h5md.open_file(path, "r") as f:
        n = f[f"{h5md.PARTICLES}/position/step"].shape[0]
    for start in range(0, n, CHUNK_FRAMES):
        chunk = h5md.read_frames(path, start, start + CHUNK_FRAMES)
        for k, step in enumerate(chunk["step"]):
            yield int(step), Frame(int(step), float(chunk["time"][k]), chunk["positions"][k],
                                   chunk["forces"][k], float(chunk["potential"][k]),
                                   float(chunk["temperature"][k]))


def _merged(path: Path) -> Iterator[tuple[bool, Frame]]:
    """(is_stored, frame) in step order: stored frames plus the pre-failure steps."""
    pre = h5md.read_pre_failure(path)
    extra: list[Frame] = []
    if pre is not None:
        extra = [Frame(int(s), float(pre["time"][k]), pre["positions"][k], pre["forces"][k],
                       float(pre["energy"][k])) for k, s in enumerate(pre["step"])]
    k = 0
    for step, frame in _stored_frames(path):
        while k < len(extra) and extra[k].step < step:
            yield False, extra[k]
            k += 1
        while k < len(extra) and extra[k].step == step:
            k += 1  # the stored frame has the same positions, plus the temperature
        yield True, frame
    yield from ((False, f) for f in extra[k:])


def reevaluate(path: Path, criteria: Iterable[str] | None = None) -> Event | None:
    """The first stability event in a stored trajectory, or None.

    Parameters
    ----------
    path
        A trajectory written by the harness.
    criteria
        Criterion or set names (default: those the run used).
    """
    meta = h5md.read_meta(path)
    spec = meta["run_spec"]
    settings = WatchdogSettings.from_dict(spec.get("watchdog") or {})
    if criteria:
        settings = dataclasses.replace(settings, criteria=expand(criteria))
    start_positions, start_cell = h5md.read_start(path)
    cell = start_cell if spec["periodic"] else None
    checks = build_frame_criteria(settings, meta["species"], start_positions, cell)
    temperature = build_temperature_criterion(settings, spec["temperature_K"])
    for stored, frame in _merged(path):
        event = first_event(checks, frame)
        if event is None and stored and temperature is not None:
            event = temperature.check(frame)
        if event is not None:
            return event
    if "energy_drift" in settings.criteria:
        frames = h5md.read_frames(path)
        return C.energy_drift(frames["time"], frames["conserved"], meta["n_atoms"],
                              spec["dt_fs"] * 1e-3, settings.max_drift_mev_per_atom_ps)
    return None


def same_event(recorded: dict | None, event: Event | None) -> bool:
    """Whether a recorded failure and a re-evaluated event agree on kind, step and atoms."""
    if recorded is None or event is None:
        return recorded is None and event is None
    return (recorded.get("kind") == event.kind and recorded.get("step") == event.step
            and list(recorded.get("atoms", [])) == list(event.atoms))
