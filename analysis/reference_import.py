"""``analysis reference import``: a user's reference trajectories turned into reference files.

Each input file is one reference trajectory (a replica); each becomes one H5MD file in the
runs' own form (:mod:`harness.h5md`, positions float32 + gzip like the shipped reference, forces
and energies kept when the source has them), named ``replica-NN.h5`` like runs (every command
that takes a run folder takes this one too), with a ``reference`` attribute under
``/parameters/harness``: method, temperature, frame interval, source files with their sha256,
the atom order used, and what made it. Every analysis reads
these files like runs; :func:`analysis.reference.load` finds them through ``--reference DIR``.

Checks, each a one-line :class:`~harness.errors.UserError`: the elements and atom count against
the challenge's starts (a differing order is mapped through the bond graph,
:mod:`analysis.atom_order`), a file without frames, positions that are not finite, the
temperature and frame interval (from the flags or the file; both given must agree), time stamps
that are not evenly spaced, and an output folder that already holds H5MD files (``--force``).
Nothing is written until every file has passed: outputs go to temporary names first.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis import atom_order, reference_formats
from harness import __version__, challenges, h5md
from harness.errors import UserError

MADE_BY = "analysis reference import"
#: Frames appended to the output per write (bounded memory for long trajectories).
WRITE_BLOCK_FRAMES = 5000
#: Relative spread of time stamp differences accepted as one even interval.
INTERVAL_RTOL = 1e-3


@dataclass(frozen=True)
class Imported:
    """One written reference file and what was done to get it."""

    path: Path
    source: Path
    n_frames: int
    length_ps: float
    atom_order: str
    notes: tuple[str, ...]


def label_of(method: str) -> str:
    """A file-name-safe label of a method (``PBE+MBD (FHI-aims)`` -> ``PBE+MBD-FHI-aims``)."""
    return re.sub(r"[^A-Za-z0-9+.]+", "-", method).strip("-") or "reference"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _target(challenge: challenges.Challenge) -> tuple[list[str], np.ndarray]:
    import ase.io

    start = ase.io.read(str(challenge.starts[0]))
    return start.get_chemical_symbols(), start.positions


def check_output(out: Path, names: list[str], force: bool) -> list[Path]:
    """H5MD files already in ``out`` that an import would replace (error without ``force``)."""
    existing = sorted(out.glob("*.h5")) if out.is_dir() else []
    if existing and not force:
        raise UserError(f"--out {out} already holds {len(existing)} H5MD file(s) "
                        f"({existing[0].name}, ...); give --force to replace them or another "
                        "--out folder")
    foreign = [p for p in existing if p.name not in names and not _is_import(p)]
    if foreign:
        raise UserError(f"--out {out}: {foreign[0].name} is not a reference made by "
                        f"'{MADE_BY}'; the folder would mix it in: choose an empty --out folder")
    return existing


def _is_import(path: Path) -> bool:
    try:
        with h5md.open_file(path, "r") as f:
            ref = json.loads(f[h5md.PARAMS].attrs.get("reference", "{}"))
    except (OSError, KeyError, ValueError):
        return False
    return str(ref.get("made_by", "")).startswith(MADE_BY)


def _symbols(source: reference_formats.Source, target: list[str]) -> tuple[list[str], str]:
    from ase.data import chemical_symbols

    if source.numbers is None:
        if source.positions.shape[1] != len(target):
            raise UserError(f"{source.path}: {source.positions.shape[1]} atoms, the challenge "
                            f"has {len(target)}; give a trajectory of the challenge's molecule")
        return list(target), "the file names no elements: the challenge's taken, bonds checked"
    return [chemical_symbols[int(z)] for z in source.numbers], ""


def resolve_order(source: reference_formats.Source, target: list[str],
                  target_positions: np.ndarray, periodic: bool = False
                  ) -> tuple[atom_order.AtomOrder, str]:
    """The atom order of a source (an error when elements, count or bonds do not fit).

    Bonds come from plain distances, so a periodic system (bonds across the cell) must come
    in the challenge's order; only its element count is checked.
    """
    symbols, note = _symbols(source, target)
    if periodic and sorted(symbols) == sorted(target) and symbols != list(target):
        raise UserError(f"{source.path}: the atoms are not in the order of the challenge's "
                        "starts, and a periodic system's order is not mapped; write them in "
                        "the starts' order")
    order = atom_order.resolve(target, target_positions, symbols, source.positions[0])
    if isinstance(order, str):
        raise UserError(f"{source.path}: {order}; give a trajectory of the challenge's molecule "
                        "(see docs/reference.md, atom order)")
    if note and not periodic:
        from harness.challenges import backbone

        expected = backbone.bonds_from_geometry(target, target_positions)
        if backbone.bonds_from_geometry(target, source.positions[0]) != expected:
            raise UserError(f"{source.path}: no species in the file and its first frame's bonds "
                            "differ from the challenge's molecule in its atom order; write the "
                            "species (atomic numbers) into the file")
    return order, note


def interval_ps(source: reference_formats.Source, flag_ps: float | None) -> tuple[float, str]:
    """Frame interval from the file's time stamps and/or ``--frame-interval`` (must agree)."""
    from_file = None
    if source.times_ps is not None and source.n_frames > 1:
        steps = np.diff(source.times_ps)
        from_file = float(np.median(steps))
        # float32 time stamps (MDAnalysis writes them) round by ~1e-7 of the largest time
        slack = INTERVAL_RTOL * abs(from_file) + 1e-6 * float(np.abs(source.times_ps).max())
        if from_file <= 0 or np.any(np.abs(steps - from_file) > slack):
            raise UserError(f"{source.path}: time stamps are not evenly spaced (from "
                            f"{steps.min() * 1e3:g} to {steps.max() * 1e3:g} fs); give one "
                            "continuous trajectory per file")
    if flag_ps is None and from_file is None:
        raise UserError(f"{source.path}: the file carries no time stamps; give "
                        "--frame-interval (time between stored frames, e.g. 10fs)")
    if flag_ps is not None and from_file is not None \
            and abs(flag_ps - from_file) > INTERVAL_RTOL * from_file:
        raise UserError(f"--frame-interval {flag_ps * 1e3:g}fs disagrees with the time stamps "
                        f"of {source.path} ({from_file * 1e3:g} fs); drop the flag or fix it")
    if flag_ps is not None:
        return flag_ps, "--frame-interval"
    return float(from_file), "the file's time stamps"  # type: ignore[arg-type]


def temperature(source: reference_formats.Source, flag_K: float | None) -> tuple[float, str]:
    """Temperature from ``--temperature`` and/or the file (must agree)."""
    if flag_K is None and source.temperature_K is None:
        raise UserError(f"{source.path}: the file states no temperature; give --temperature "
                        "(the reference MD's temperature in K)")
    if flag_K is not None and flag_K <= 0:
        raise UserError(f"--temperature {flag_K:g}: give the temperature in K (> 0)")
    if flag_K is not None and source.temperature_K is not None \
            and abs(flag_K - source.temperature_K) > 0.5:
        raise UserError(f"--temperature {flag_K:g} disagrees with {source.path} "
                        f"({source.temperature_K:g} K); drop the flag or fix it")
    if flag_K is not None:
        return float(flag_K), "--temperature"
    return float(source.temperature_K), "the file"  # type: ignore[arg-type]


def check_frames(source: reference_formats.Source, challenge: challenges.Challenge) -> None:
    """No frames, non-finite positions, a periodic challenge without cells: one-line errors."""
    if source.n_frames == 0:
        raise UserError(f"{source.path}: no frames in the file; give a trajectory with at "
                        "least one frame")
    bad = ~np.isfinite(source.positions).all(axis=(1, 2))
    if bad.any():
        raise UserError(f"{source.path}: positions are not finite in {int(bad.sum())} frame(s) "
                        f"(first: frame {int(np.argmax(bad))}); cut the trajectory before them")
    if challenge.periodic and source.cells is None:
        raise UserError(f"{source.path}: challenge {challenge.name!r} is periodic but the file "
                        "has no cell; give a format with the box (extxyz Lattice, H5MD box)")


def _run_spec(challenge: challenges.Challenge, label: str, temperature_K: float, replica: int,
              n_frames: int, interval_fs: float, source: Path) -> dict[str, Any]:
    """A run spec for an imported trajectory: one 'step' per stored frame."""
    return {"challenge": challenge.name, "model": "reference", "model_label": label,
            "temperature_K": temperature_K, "replica": replica,
            "n_steps": max(0, n_frames - 1), "dt_fs": interval_fs, "stride": 1,
            "periodic": challenge.periodic, "thermostat": "as in the source (imported)",
            "thermostat_tau_fs": 0.0, "seed": None, "start_file": str(source),
            "model_file": None, "model_options": {}, "imported": True}


def _provenance(command_line: str) -> dict[str, Any]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {"made_by": MADE_BY, "command_line": command_line, "user": user,
            "model": "reference (imported)", "host": socket.gethostname(),
            "start_time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "seed": None,
            "versions": {"tea-harness": __version__}}


def write_reference(source: reference_formats.Source, order: atom_order.AtomOrder, dst: Path,
                    run_spec: dict[str, Any], reference: dict[str, Any]) -> None:
    """Write one source (atoms in the challenge's order) as a compact H5MD reference file."""
    from ase.data import atomic_masses

    perm = order.permutation
    numbers = (np.asarray(source.numbers)[perm] if source.numbers is not None
               else np.asarray(reference["atomic_numbers"]))
    arrays = {"positions": source.positions[:, perm],
              "forces": None if source.forces is None else source.forces[:, perm],
              "velocities": None if source.velocities is None else source.velocities[:, perm],
              "potential": source.energies, "box": source.cells}
    present = [k for k, v in arrays.items() if v is not None]
    elements = tuple(name for name, (key, _, _) in h5md.PARTICLE_ELEMENTS.items()
                     if key in present)
    cell = source.cells[0] if source.cells is not None else np.zeros((3, 3))
    h5md.create(dst, numbers, atomic_masses[numbers], bool(run_spec["periodic"]),
                json.dumps(run_spec, sort_keys=True), _provenance(reference["command_line"]),
                arrays["positions"][0], cell, particle_elements=elements,
                observables=("potential_energy",) if source.energies is not None else (),
                compact=True)
    interval_ps = run_spec["dt_fs"] * 1e-3
    for start in range(0, source.n_frames, WRITE_BLOCK_FRAMES):
        stop = min(source.n_frames, start + WRITE_BLOCK_FRAMES)
        h5md.append(dst, [{"step": k, "time": k * interval_ps,
                           **{key: arrays[key][k] for key in present}}
                          for k in range(start, stop)])
    with h5md.open_file(dst, "a") as f:
        f[h5md.PARAMS].attrs["reference"] = json.dumps(reference, sort_keys=True)
    h5md.set_status(dst, "completed", provenance_update={
        "end_time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def _reference_attr(source: reference_formats.Source, order: atom_order.AtomOrder,
                    order_note: str, method: str, temp: tuple[float, str],
                    interval: tuple[float, str], command_line: str) -> dict[str, Any]:
    attr = {"method": method, "temperature_K": temp[0], "temperature_from": temp[1],
            "frame_interval_fs": interval[0] * 1e3, "frame_interval_from": interval[1],
            "frames": source.n_frames, "length_ps": (source.n_frames - 1) * interval[0],
            "source": {"file": source.path.name, "path": str(source.path.resolve()),
                       "sha256": sha256_of(source.path), "format": source.format},
            "atom_order": {"kind": order.kind, "applied": order.applied,
                           "permutation": order.permutation.tolist() if order.applied else None,
                           "meaning": "atom i of this file is atom permutation[i] of the source",
                           "note": order_note},
            "kept": [name for name, value in (("energies", source.energies),
                                              ("forces", source.forces),
                                              ("velocities", source.velocities))
                     if value is not None],
            "notes": list(source.notes),
            "made_by": f"{MADE_BY} (tea-harness {__version__})", "command_line": command_line,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    return attr


def import_files(files: list[Path], challenge: challenges.Challenge, method: str, out: Path,
                 temperature_K: float | None = None, frame_interval_ps: float | None = None,
                 force: bool = False, command_line: str = MADE_BY) -> list[Imported]:
    """Import reference trajectories (one file per replica) into ``out``; see the module doc.

    Raises
    ------
    UserError
        For any input the checks reject; then nothing is left in ``out``.
    """
    if not method.strip():
        raise UserError("--method is empty; name the reference method, e.g. "
                        "\"PBE+MBD (FHI-aims)\"")
    check_output(out, [], force)
    target, target_positions = _target(challenge)
    label = label_of(method)
    out.mkdir(parents=True, exist_ok=True)
    pending: list[tuple[Path, Imported, float]] = []
    partials: list[Path] = []
    try:
        for replica, path in enumerate(files):
            source = reference_formats.read(Path(path))
            check_frames(source, challenge)
            order, note = resolve_order(source, target, target_positions, challenge.periodic)
            temp = temperature(source, temperature_K)
            interval = interval_ps(source, frame_interval_ps)
            attr = _reference_attr(source, order, note, method, temp, interval, command_line)
            if source.numbers is None:
                from ase.data import atomic_numbers

                attr["atomic_numbers"] = [atomic_numbers[s] for s in target]
            name = f"replica-{replica:02d}.h5"
            partial = out / f".{name}.partial"
            spec = _run_spec(challenge, label, temp[0], replica, source.n_frames,
                             interval[0] * 1e3, source.path.resolve())
            partials.append(partial)
            write_reference(source, order, partial, spec, attr)
            done = Imported(out / name, source.path, source.n_frames, attr["length_ps"],
                            order.kind + (" (atoms reordered)" if order.applied else ""),
                            tuple(source.notes) + ((note,) if note else ()))
            pending.append((partial, done, temp[0]))
        temps = sorted({t for _, _, t in pending})
        if len(temps) > 1:
            listed = ", ".join(f"{t:g} K" for t in temps)
            raise UserError(f"the files are at several temperatures ({listed}); import one "
                            "temperature per --out folder")
        replaced = check_output(out, [d.path.name for _, d, _ in pending], force)
    except BaseException:
        for partial in partials:
            partial.unlink(missing_ok=True)
            partial.with_suffix(".h5.tmp").unlink(missing_ok=True)
        raise
    for old in replaced:
        old.unlink()
    for partial, done, _ in pending:
        partial.replace(done.path)
    return [d for _, d, _ in pending]
