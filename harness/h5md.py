"""H5MD 1.1 trajectory files, written while the run goes.

Layout (units in ``unit`` attributes; MDAnalysis's H5MDReader opens the files):

    /h5md                        version [1, 1], author/, creator/
    /particles/all/position      step, time (ps), value (frames, atoms, 3)  Angstrom, float64
    /particles/all/velocity      ...                                         Angstrom ps-1
    /particles/all/force         ...                                         kJ mol-1 Angstrom-1
    /particles/all/box           boundary; edges/ (frames, 3, 3) Angstrom when periodic
    /particles/all/species       atomic numbers;  /particles/all/mass  (amu)
    /observables/{potential_energy, kinetic_energy, conserved_energy}  eV
    /observables/temperature     K
    /observables/wall_clock      s since the Unix epoch when the supervisor received the
                                 frame (resolution: its poll interval, 0.1 s); NaN if unknown
    /observables/model_time      s spent in the model's calls of this run up to the frame,
                                 cumulative over resumed segments (a --batch group's call is
                                 shared equally by its runs); NaN if unknown
    /parameters/harness          attributes: run_spec, provenance, status, failure (JSON)

Forces are stored in kJ mol-1 Angstrom-1 because that is a force unit MDAnalysis knows
(it rejects eV Angstrom-1); :func:`read_frames` returns them in eV/Angstrom.

Crash safety: the file is closed between flushes (append, flush, close), so a run killed
at any moment leaves a file that is complete up to its last flush.
"""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from harness import __version__
from harness.units import EV_TO_KJ_PER_MOL

PARTICLES = "/particles/all"
PARAMS = "/parameters/harness"
#: H5MD element name -> (frame key, unit, conversion factor from internal units)
PARTICLE_ELEMENTS = {
    "position": ("positions", "Angstrom", 1.0),
    "velocity": ("velocities", "Angstrom ps-1", 1.0),
    "force": ("forces", "kJ mol-1 Angstrom-1", EV_TO_KJ_PER_MOL),
}
OBSERVABLES = {
    "potential_energy": ("potential", "eV"),
    "kinetic_energy": ("kinetic", "eV"),
    "conserved_energy": ("conserved", "eV"),
    "temperature": ("temperature", "K"),
    "wall_clock": ("wall_clock", "s"),
    "model_time": ("model_time", "s"),
}
#: Frame keys that may be missing (then stored as NaN): the wall clock is stamped by the i-PI
#: supervisor and the model time comes from the force client; frames from other writers
#: (native LAMMPS runs, imports) may lack them.
OPTIONAL_KEYS = {"wall_clock", "model_time"}
STATUSES = ("running", "completed", "failed", "interrupted")


def open_file(path: Path, mode: str = "r") -> h5py.File:
    """Open an H5MD file; if another process holds HDF5's lock on it, open it without locks.

    The run supervisor appends while users read (``analysis``, MDAnalysis). With HDF5's
    locks alone, a reader could make the writer fail (and the other way round). The writer
    keeps the file consistent at every close, so ignoring a lock is safe for it; a reader that
    catches a write in progress gets an error and can try again.
    """
    try:
        return h5py.File(path, mode)
    except BlockingIOError:
        return h5py.File(path, mode, locking=False)


def _time_series(group: h5py.Group, name: str, shape: tuple[int, ...], unit: str,
                 compact: bool = False) -> None:
    element = group.create_group(name)
    element.create_dataset("step", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(1024,))
    tds = element.create_dataset("time", shape=(0,), maxshape=(None,), dtype=np.float64,
                                 chunks=(1024,))
    tds.attrs["unit"] = "ps"
    chunk_frames = max(1, min(256, 65536 // max(1, int(np.prod(shape)))))
    # compact: float32 with shuffle+gzip (reference files shipped in the repository).
    extra = {"compression": "gzip", "compression_opts": 9, "shuffle": True} if compact else {}
    value = element.create_dataset("value", shape=(0, *shape), maxshape=(None, *shape),
                                   dtype=np.float32 if compact else np.float64,
                                   chunks=(chunk_frames, *shape), **extra)
    if unit:
        value.attrs["unit"] = unit


def create(path: Path, numbers: np.ndarray, masses: np.ndarray, periodic: bool,
           run_spec: str, provenance: dict[str, Any], start_positions: np.ndarray,
           start_cell: np.ndarray, *, particle_elements: tuple[str, ...] | None = None,
           observables: tuple[str, ...] | None = None, compact: bool = False) -> None:
    """Create an empty H5MD trajectory with status ``running``.

    The starting structure is kept under ``/parameters/harness`` (the bond topology of the
    stability criteria comes from it). ``particle_elements`` and ``observables`` (names of
    :data:`PARTICLE_ELEMENTS` and :data:`OBSERVABLES`; default all) choose the time series a
    file holds; ``compact`` stores the particle values as float32 with shuffle+gzip (imported
    reference trajectories).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".h5.tmp")
    try:
        _write_new(tmp, numbers, masses, periodic, run_spec, provenance, start_positions,
                   start_cell, particle_elements=particle_elements, observables=observables,
                   compact=compact)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


def _write_new(tmp: Path, numbers: np.ndarray, masses: np.ndarray, periodic: bool,
               run_spec: str, provenance: dict[str, Any], start_positions: np.ndarray,
               start_cell: np.ndarray, *, particle_elements: tuple[str, ...] | None = None,
               observables: tuple[str, ...] | None = None, compact: bool = False) -> None:
    natoms = len(numbers)
    with open_file(tmp, "w") as f:
        h5md = f.create_group("h5md")
        h5md.attrs["version"] = np.array([1, 1], dtype=np.int32)
        h5md.create_group("author").attrs["name"] = provenance.get("user", "unknown")
        creator = h5md.create_group("creator")
        creator.attrs["name"] = "tea-harness"
        creator.attrs["version"] = __version__
        part = f.create_group(PARTICLES)
        for name, (_, unit, _) in PARTICLE_ELEMENTS.items():
            if particle_elements is None or name in particle_elements:
                _time_series(part, name, (natoms, 3), unit, compact)
        box = part.create_group("box")
        box.attrs["dimension"] = 3
        box.attrs["boundary"] = np.array(["periodic" if periodic else "none"] * 3, dtype="S8")
        if periodic:
            _time_series(box, "edges", (3, 3), "Angstrom")
        part.create_dataset("species", data=np.asarray(numbers, dtype=np.int32))
        part.create_dataset("mass", data=np.asarray(masses, dtype=np.float64)).attrs["unit"] = \
            "amu"
        obs = f.create_group("observables")
        for name, (_, unit) in OBSERVABLES.items():
            if observables is None or name in observables:
                _time_series(obs, name, (), unit)
        params = f.create_group(PARAMS)
        params.attrs["run_spec"] = run_spec
        params.attrs["provenance"] = json.dumps(provenance, sort_keys=True)
        params.attrs["status"] = "running"
        params.attrs["failure"] = "null"
        params.create_dataset("start_positions", data=np.asarray(start_positions, float))
        params.create_dataset("start_cell", data=np.asarray(start_cell, float))


def _series(f: h5py.File) -> list[tuple[h5py.Group, str, float]]:
    # Elements may be absent (H5MD allows it): compacted reference files keep positions only.
    out = [(f[f"{PARTICLES}/{name}"], key, factor)
           for name, (key, _, factor) in PARTICLE_ELEMENTS.items() if name in f[PARTICLES]]
    out += [(f[f"/observables/{name}"], key, 1.0) for name, (key, _) in OBSERVABLES.items()
            if name in f["observables"]]
    if "edges" in f[f"{PARTICLES}/box"]:
        out.append((f[f"{PARTICLES}/box/edges"], "box", 1.0))
    return out


def _bytes_needed(series: list[tuple[h5py.Group, str, float]], old: int, added: int) -> int:
    """Upper bound of the bytes an append of ``added`` frames to ``old`` may allocate."""
    total = 1 << 16  # metadata: B-tree nodes, heap
    for group, _, _ in series:
        for name in ("step", "time", "value"):
            data = group[name]
            chunk = data.chunks or data.shape
            per_chunk = int(np.prod(chunk)) * data.dtype.itemsize
            chunks = -(-(old + added) // chunk[0]) - old // chunk[0]
            total += per_chunk * max(chunks, 1)
    return total


def _check_room(path: Path, needed: int) -> None:
    """Raise ``OSError(ENOSPC)`` before writing when the file system lacks ``needed`` bytes."""
    try:
        stat = os.statvfs(path.parent)
    except OSError:
        return
    free = stat.f_bavail * stat.f_frsize
    if free < needed:
        raise OSError(errno.ENOSPC, f"No space left on device: {free} bytes free, an append "
                      f"needs up to {needed} (with the reserve)", str(path))


def append(path: Path, frames: list[dict[str, Any]], reserve_bytes: int = 0) -> None:
    """Append frames (dicts of internal-unit arrays with 'step' and 'time') and close the file.

    A file system that would have fewer than ``reserve_bytes`` free after the append makes it
    raise ``OSError(ENOSPC)`` before anything is written: HDF5 can leave a file unreadable
    when a write fails half-way, so a full disk must be seen coming. Beyond that, the data go
    to disk (an explicit flush) before the step arrays, which say how many frames the file
    holds, grow; if a write fails anyway, every dataset is cut back to its old length (best
    effort) and the error is raised.
    """
    if not frames:
        return
    steps = np.array([fr["step"] for fr in frames], dtype=np.int64)
    times = np.array([fr["time"] for fr in frames], dtype=np.float64)
    with open_file(path, "a") as f:
        series = _series(f)
        old = {group.name: group["step"].shape[0] for group, _, _ in series}
        if reserve_bytes:
            held = f[f"{PARTICLES}/position/step"].shape[0]
            _check_room(path, reserve_bytes + _bytes_needed(series, held, len(frames)))
        try:
            for group, key, factor in series:
                new = old[group.name] + len(frames)
                if key in OPTIONAL_KEYS:
                    values = np.array([fr.get(key, np.nan) for fr in frames], dtype=np.float64)
                else:
                    values = np.array([fr[key] for fr in frames])
                for name, data in (("value", values * factor), ("time", times)):
                    group[name].resize(new, axis=0)
                    group[name][old[group.name]:new] = data
            f.flush()
            for group, _, _ in series:
                new = old[group.name] + len(frames)
                group["step"].resize(new, axis=0)
                group["step"][old[group.name]:new] = steps
            f.flush()
        except BaseException:
            _cut_back(f, series, old)
            raise


def _cut_back(f: h5py.File, series: list[tuple[h5py.Group, str, float]],
              old: dict[str, int]) -> None:
    """Best effort after a failed append: every dataset back to its old length."""
    for group, _, _ in series:
        for name in ("step", "time", "value"):
            try:
                group[name].resize(old[group.name], axis=0)
            except Exception:  # noqa: BLE001 - the first error is the one to report
                pass
    try:
        f.flush()
    except Exception:  # noqa: BLE001
        pass


def last_step(path: Path) -> int | None:
    """Step of the last frame on disk (None for an empty trajectory)."""
    with open_file(path, "r") as f:
        steps = f[f"{PARTICLES}/position/step"]
        return int(steps[-1]) if steps.shape[0] else None


def truncate_after(path: Path, step: int) -> int:
    """Drop frames with a step above ``step``; returns the number of frames kept."""
    with open_file(path, "a") as f:
        steps = f[f"{PARTICLES}/position/step"][:]
        keep = int(np.searchsorted(steps, step, side="right"))
        for group, _, _ in _series(f):
            for name in ("step", "time", "value"):
                group[name].resize(keep, axis=0)
        return keep


def set_status(path: Path, status: str, failure: dict[str, Any] | None = None,
               provenance_update: dict[str, Any] | None = None) -> None:
    """Record the run's status (and failure event), merging provenance fields."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")
    with open_file(path, "a") as f:
        params = f[PARAMS]
        params.attrs["status"] = status
        params.attrs["failure"] = json.dumps(failure)
        if provenance_update:
            prov = json.loads(params.attrs["provenance"])
            prov.update(provenance_update)
            params.attrs["provenance"] = json.dumps(prov, sort_keys=True)
        params.attrs["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")


def read_meta(path: Path) -> dict[str, Any]:
    """Run spec, provenance, status, failure and sizes of a trajectory, without the frames."""
    with open_file(path, "r") as f:
        params = f[PARAMS]
        steps = f[f"{PARTICLES}/position/step"][:]
        times = f[f"{PARTICLES}/position/time"][:len(steps)]
        return {
            "run_spec": json.loads(params.attrs["run_spec"]),
            "provenance": json.loads(params.attrs["provenance"]),
            "status": str(params.attrs["status"]),
            "failure": json.loads(params.attrs["failure"]),
            "n_atoms": int(f[f"{PARTICLES}/species"].shape[0]),
            "species": f[f"{PARTICLES}/species"][:],
            "n_frames": int(steps.shape[0]),
            "steps": steps,
            "times_ps": times,
            "has_final_checkpoint": FINAL_CHECKPOINT in params,
            "has_velocities": f"{PARTICLES}/velocity" in f,
        }


#: The i-PI checkpoint of a completed run's last step (UTF-8 XML, gzip): a longer ``--time``
#: continues the run from it exactly (positions, velocities, thermostat and random state).
FINAL_CHECKPOINT = "final_checkpoint"


def store_final_checkpoint(path: Path, xml: str) -> None:
    """Keep a completed run's last i-PI checkpoint in its file (replacing an older one)."""
    data = np.frombuffer(xml.encode(), dtype=np.uint8)
    with open_file(path, "a") as f:
        params = f[PARAMS]
        if FINAL_CHECKPOINT in params:
            del params[FINAL_CHECKPOINT]
        params.create_dataset(FINAL_CHECKPOINT, data=data, compression="gzip")


def read_final_checkpoint(path: Path) -> str | None:
    """The checkpoint :func:`store_final_checkpoint` kept, or None."""
    with open_file(path, "r") as f:
        params = f[PARAMS]
        if FINAL_CHECKPOINT not in params:
            return None
        return params[FINAL_CHECKPOINT][()].tobytes().decode()


def extend_run_spec(path: Path, n_steps: int, source: str) -> None:
    """Record that a completed run goes on to ``n_steps`` from ``source`` (run spec and
    provenance ``extended``: ``"final checkpoint"`` or ``"last frame"``)."""
    with open_file(path, "a") as f:
        params = f[PARAMS]
        spec = json.loads(params.attrs["run_spec"])
        prov = json.loads(params.attrs["provenance"])
        prov["extended"] = [*prov.get("extended", []),
                            {"from_steps": int(spec["n_steps"]), "to_steps": int(n_steps),
                             "from": source, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}]
        spec["n_steps"] = int(n_steps)
        params.attrs["run_spec"] = json.dumps(spec)
        params.attrs["provenance"] = json.dumps(prov, sort_keys=True)


def write_pre_failure(path: Path, ring: dict[str, np.ndarray]) -> None:
    """Store the watchdog's last steps before a failure in ``/particles/pre_failure``.

    Every MD step (not only every stride) up to the event: positions, forces and the
    potential energy, so the event can be re-evaluated at the step it happened.
    """
    with open_file(path, "a") as f:
        part = f[PARTICLES].parent
        if "pre_failure" in part:
            del part["pre_failure"]
        group = part.create_group("pre_failure")
        for name, key, unit, factor in (("position", "positions", "Angstrom", 1.0),
                                        ("force", "forces", "kJ mol-1 Angstrom-1",
                                         EV_TO_KJ_PER_MOL)):
            element = group.create_group(name)
            element.create_dataset("step", data=ring["step"])
            element.create_dataset("time", data=ring["time"]).attrs["unit"] = "ps"
            element.create_dataset("value", data=ring[key] * factor).attrs["unit"] = unit
        energy = group.create_group("potential_energy")
        energy.create_dataset("step", data=ring["step"])
        energy.create_dataset("time", data=ring["time"]).attrs["unit"] = "ps"
        energy.create_dataset("value", data=ring["energy"]).attrs["unit"] = "eV"


def read_pre_failure(path: Path) -> dict[str, np.ndarray] | None:
    """The watchdog's last steps before a failure (internal units), or None."""
    with open_file(path, "r") as f:
        if "particles/pre_failure" not in f:
            return None
        group = f["particles/pre_failure"]
        return {"step": group["position/step"][:], "time": group["position/time"][:],
                "positions": group["position/value"][:],
                "forces": group["force/value"][:] / EV_TO_KJ_PER_MOL,
                "energy": group["potential_energy/value"][:]}


def read_start(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Starting positions and cell stored with the run."""
    with open_file(path, "r") as f:
        return f[f"{PARAMS}/start_positions"][:], f[f"{PARAMS}/start_cell"][:]


def read_frames(path: Path, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
    """Frames in internal units: positions (A), velocities (A/ps), forces (eV/A), observables.

    The wall clock and the model time are left out (they differ between two runs of the same
    physics): read them with :func:`read_timing`.
    """
    out: dict[str, np.ndarray] = {}
    with open_file(path, "r") as f:
        # the step array counts the frames (see append): never read past it
        held = f[f"{PARTICLES}/position/step"].shape[0]
        stop = held if stop is None else min(stop, held) if stop >= 0 else stop
        for group, key, factor in _series(f):
            if key not in OPTIONAL_KEYS:
                out[key] = group["value"][start:stop] / factor
        out["step"] = f[f"{PARTICLES}/position/step"][start:stop]
        out["time"] = f[f"{PARTICLES}/position/time"][start:stop]
    return out


def read_wall_clock(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Steps and wall-clock stamps (s since the Unix epoch) of the frames; None for files
    written before the stamps existed."""
    with open_file(path, "r") as f:
        if "wall_clock" not in f["observables"]:
            return None
        group = f["observables/wall_clock"]
        return group["step"][:], group["value"][:]


def read_timing(path: Path) -> dict[str, np.ndarray]:
    """Steps, wall-clock stamps and cumulative model time (s) of the frames.

    A series the file lacks (written before it existed, or by another writer) comes back as
    NaN, so callers test with ``np.isfinite``.
    """
    out = read_observables(path, ("wall_clock", "model_time"))
    with open_file(path, "r") as f:
        out["step"] = f[f"{PARTICLES}/position/step"][:len(out["time"])]
    return out


def last_value(path: Path, observable: str) -> float | None:
    """The last stored value of an observable (None when the file has none or no frames)."""
    with open_file(path, "r") as f:
        group = f["observables"].get(observable)
        held = f[f"{PARTICLES}/position/step"].shape[0]
        if group is None or held == 0 or group["value"].shape[0] < held:
            return None
        return float(group["value"][held - 1])


def read_observables(path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Times (ps) and the values of some ``/observables`` series, without the particles.

    Cheap on long runs (a drift fit needs the conserved energy only); a series the file
    lacks comes back as NaN.
    """
    with open_file(path, "r") as f:
        held = f[f"{PARTICLES}/position/step"].shape[0]
        out = {"time": f[f"{PARTICLES}/position/time"][:held]}
        for name in names:
            group = f["observables"].get(name)
            values = np.full(held, np.nan)
            if group is not None:
                stored = group["value"][:held]
                values[:len(stored)] = stored
            out[name] = values
        return out
