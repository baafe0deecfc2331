"""``python -m harness.challenges new``: a challenge folder from one structure file.

From one structure (any format ASE reads) this writes ``PARENT/NAME/`` with

* ``challenge.toml``: every key explained in a comment, defaults chosen from the system
  (:mod:`harness.challenges.defaults`);
* ``starts/start-NN.xyz``: diverse starting structures (:mod:`harness.challenges.starts`),
  from the user's multi-frame file or from a short high-temperature MD with a chosen model;
  ``starts/selection.json`` says how they were picked;
* ``input/``: a copy of the structure file; ``make_starts.sh``: the command that made it all.

The folder is written under a temporary name and renamed at the end, so an interrupted or
failed command leaves no half-made challenge behind.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from harness import challenges, models
from harness.challenges import defaults, starts
from harness.challenges.toml_text import render
from harness.errors import UserError

#: Above this many atoms GFN2-xTB is too slow to be the default sampling model.
XTB_MAX_ATOMS = 150


@dataclass(frozen=True)
class Request:
    """What ``new`` was asked to make (the command-line flags)."""

    name: str
    structure: Path
    parent: Path = Path(".")
    periodic: bool = False
    charge: int = 0
    multiplicity: int = 1
    observables: tuple[str, ...] | None = None
    title: str | None = None
    starts_file: Path | None = None
    starts_model: str | None = None
    starts_model_file: str | None = None
    starts_model_options: tuple[str, ...] = ()
    starts_temperature_K: float | None = None
    starts_time_ps: float = 2.0
    n_starts: int = 12
    seed: int = 2023
    force: bool = False
    command: str = ""


@dataclass
class Made:
    """What ``new`` wrote."""

    folder: Path
    starts: list[Path]
    selection: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def target_folder(request: Request) -> Path:
    """``PARENT/NAME``, checked: a plain name, not a shipped challenge, not there unless --force."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", request.name):
        raise UserError(f"challenge name {request.name!r}: use letters, digits, '.', '_' and "
                        "'-' only (it becomes a folder and part of every run's path)")
    if request.name in challenges.available():
        raise UserError(f"challenge name {request.name!r} is a shipped challenge's name; "
                        "choose another so the analysis cannot confuse them")
    folder = (request.parent / request.name).expanduser().resolve()
    if folder.exists() and not request.force:
        raise UserError(f"{folder} exists already: choose another NAME or --dir, or give "
                        "--force to replace it")
    return folder


def read_structure(path: Path, periodic: bool):
    """The structure, periodic when the file has a cell (or ``--periodic``), checked.

    Raises
    ------
    UserError
        Unreadable file, ``--periodic`` without a cell, two atoms closer than 0.5 A.
    """
    from ase.io import read

    if not path.is_file():
        raise UserError(f"--from {path}: no such file; give a structure file ASE reads")
    try:
        atoms = read(str(path), index=0)  # the first frame of a multi-frame file
    except Exception as exc:  # noqa: BLE001 - ASE raises many kinds for unreadable files
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise UserError(f"--from {path}: ASE cannot read it ({type(exc).__name__}: {first}); "
                        "give a structure file in a format ASE reads (xyz, extxyz, pdb, cif, "
                        "POSCAR, ...), or name the format in the file's extension") from None
    has_cell = atoms.cell.rank == 3
    if periodic and not has_cell:
        raise UserError(f"--periodic: {path} has no cell (three lattice vectors); give a file "
                        "with one (extxyz Lattice=, cif, POSCAR) or leave --periodic out")
    atoms.pbc = bool(has_cell and (periodic or atoms.pbc.any()))
    if not atoms.pbc.any():
        atoms.cell = np.zeros((3, 3))
    atoms.calc = None
    check_contacts(atoms, path)
    return atoms


def check_contacts(atoms, path: Path, min_angstrom: float = 0.5) -> None:
    """UserError when two atoms are closer than ``min_angstrom`` (minimum image if periodic)."""
    from ase.neighborlist import neighbor_list

    if len(atoms) < 2:
        raise UserError(f"--from {path}: {len(atoms)} atom; a crash test needs at least 2")
    i, j, d = neighbor_list("ijd", atoms, min_angstrom)
    if len(d):
        k = int(np.argmin(d))
        raise UserError(f"--from {path}: atoms {i[k]} ({atoms[i[k]].symbol}) and {j[k]} "
                        f"({atoms[j[k]].symbol}) are {d[k]:.2f} A apart, closer than "
                        f"{min_angstrom} A: fix the structure (duplicate atom? wrong units?)")


def check_charge(atoms, charge: int, multiplicity: int) -> None:
    """UserError when the multiplicity does not fit the electron count."""
    electrons = int(atoms.numbers.sum()) - charge
    if multiplicity < 1 or electrons < 0:
        raise UserError(f"--charge {charge} --multiplicity {multiplicity}: give a multiplicity "
                        f">= 1 and a charge <= {int(atoms.numbers.sum())}")
    if (electrons + multiplicity - 1) % 2:
        raise UserError(f"--multiplicity {multiplicity}: {atoms.get_chemical_formula()} with "
                        f"charge {charge} has {electrons} electrons, which needs an "
                        f"{'odd' if electrons % 2 else 'even'} multiplicity ({multiplicity + 1}"
                        f" or {max(1, multiplicity - 1)}?)")


def sampling_calculator(request: Request, atoms, family_name: str):
    """The ASE calculator of the sampling model, checked as a launch checks a model."""
    family = models.get_family(family_name)
    family.check_installed()
    if family.ase_calculator is None:
        raise UserError(f"--starts-model {family_name}: this model runs only inside LAMMPS; "
                        "give a model with an ASE calculator, or the starts with --starts FILE")
    model_file = models.resolve_model_file(family, request.starts_model_file, request.name)
    covered = family.model_elements(model_file)
    missing = sorted(set(atoms.get_chemical_symbols()) - covered) if covered is not None else []
    if missing:
        listed = ",".join(sorted(covered)) if len(covered) <= 12 else f"{len(covered)} elements"
        raise UserError(f"--starts-model {family_name}"
                        + (f" ({model_file.name})" if model_file else "")
                        + f" does not cover {','.join(missing)} of the structure (it covers "
                        f"{listed}): choose a model that covers every element, or give the "
                        "starts with --starts FILE")
    family.check_structure(model_file, atoms)
    options: dict[str, Any] = {}
    for item in request.starts_model_options:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"--starts-model-option {item!r}: write KEY=VALUE")
        if family.options is not None and key not in family.options:
            raise UserError(f"--starts-model-option {key}: model {family_name!r} takes "
                            + (", ".join(family.options) or "no options"))
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return family.ase_calculator(model_file, options), model_file


def sampling_model(request: Request, atoms) -> str:
    """The model of the sampling MD: the user's, or GFN2-xTB for a molecule up to 150 atoms."""
    if request.starts_model:
        return request.starts_model
    if atoms.pbc.any() or len(atoms) > XTB_MAX_ATOMS:
        what = "a periodic system" if atoms.pbc.any() else f"{len(atoms)} atoms"
        raise UserError(f"{what}: GFN2-xTB is too slow to be the default model of the start "
                        "sampling; give your model with --starts-model NAME (and "
                        "--starts-model-file FILE), or the starts with --starts FILE")
    return "xtb"


def candidates(request: Request, atoms, protocol: defaults.Protocol, watchdog
               ) -> tuple[list, dict[str, Any]]:
    """Candidate structures (the first is the start of the selection) and how they came."""
    if request.starts_file is not None:
        frames = starts.read_frames(request.starts_file, atoms)
        return frames, {"source": "file", "file": str(request.starts_file.resolve()),
                        "frames": len(frames)}
    name = sampling_model(request, atoms)
    calculator, model_file = sampling_calculator(request, atoms, name)
    temperature = request.starts_temperature_K or max(protocol.temperatures_K.value)
    dt = float(protocol.dt_fs.value)
    every = max(1, int(round(10.0 / dt)))
    system = atoms.copy()
    starts.set_charge_and_spin(system, request.charge, request.multiplicity)
    try:
        run = starts.sample_md(system, calculator, temperature, dt, request.starts_time_ps,
                               every, request.seed, watchdog)
    except Exception as exc:  # noqa: BLE001 - the user's model on the user's system
        first = (str(exc).splitlines() or [""])[0]
        raise UserError(f"the sampling MD with --starts-model {name} failed "
                        f"({type(exc).__name__}: {first}); check the structure, --charge and "
                        "--multiplicity, or give the starts with --starts FILE") from None
    how = {"source": "md", "model": name, "model_file": str(model_file) if model_file else None,
           "model_options": list(request.starts_model_options), "temperature_K": temperature,
           "dt_fs": dt, "time_ps": round(run.time_ps, 6), "steps": run.steps,
           "frame_every_steps": every, "equilibration_dropped": "first 20 %",
           "thermostat": "ASE Langevin, friction 0.01 1/fs", "seed": request.seed,
           "wall_s": round(run.wall_s, 2), "stopped_early": run.stopped,
           "candidates": len(run.frames) + 1}
    first = atoms.copy()
    first.info = {"sampled_time_ps": 0.0}
    return [first, *run.frames], how


def select(frames: list, n: int, quads: dict[str, list[int]]) -> tuple[list, dict[str, Any]]:
    """``n`` frames by farthest-point sampling from the first (see :mod:`starts`)."""
    kind = "dihedrals" if quads else "distances"
    features = starts.descriptors(frames, kind, quads)
    picked = starts.farthest_points(features, n)
    return [frames[k] for k in picked], {"descriptor": kind, "picked": picked,
                                         "dihedrals": quads if quads else None}


def create(request: Request) -> Made:
    """Make the challenge folder (see the module docstring); returns what was written."""
    from harness.stability.watchdog import WatchdogSettings

    began = time.perf_counter()
    folder = target_folder(request)
    atoms = read_structure(request.structure, request.periodic)
    check_charge(atoms, request.charge, request.multiplicity)
    symbols = atoms.get_chemical_symbols()
    quads = defaults.backbone_quadruples(symbols, atoms.positions)
    names = defaults.observables(list(request.observables) if request.observables else None,
                                 bool(quads), bool(atoms.pbc.any()))
    protocol = defaults.protocol(atoms.get_masses(), bool(atoms.pbc.any()), names)
    bond_default, pair_thresholds = defaults.bond_thresholds(symbols, _bonds(atoms))
    watchdog = WatchdogSettings(criteria=("non_finite", "bond_break", "atom_collapse"),
                                bond_break_angstrom=bond_default,
                                pair_thresholds=pair_thresholds)
    pool, how = candidates(request, atoms, protocol, watchdog)
    picked, selection = select(pool, request.n_starts, quads)
    selection.update(how=how, request=_jsonable(asdict(request)), versions=_versions(),
                     sampled_time_ps=[f.info.get("sampled_time_ps") for f in picked])
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{request.name}.", dir=folder.parent))
    try:
        paths = starts.write_starts(picked, scratch / "starts", request.charge,
                                    request.multiplicity)
        (scratch / "starts" / "selection.json").write_text(json.dumps(selection, indent=1))
        (scratch / "input").mkdir()
        shutil.copyfile(request.structure, scratch / "input" / request.structure.name)
        (scratch / "make_starts.sh").write_text(_script(request))
        (scratch / "challenge.toml").write_text(render(
            request=request, atoms=atoms, protocol=protocol, observables=names,
            bond_default=bond_default, pair_thresholds=pair_thresholds, quads=quads,
            n_starts=len(paths), how=how))
        if folder.exists():
            shutil.rmtree(folder)
        scratch.rename(folder)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch)
    challenges.load(str(folder))  # what the launcher will read must load
    return Made(folder, sorted((folder / "starts").glob("start-*.xyz")), selection,
                time.perf_counter() - began)


def _bonds(atoms) -> np.ndarray:
    from harness.stability import criteria

    geom = criteria.Geometry(atoms.numbers, atoms.cell.array if atoms.pbc.any() else None)
    return criteria.bond_topology(geom, atoms.positions)


def _script(request: Request) -> str:
    """``make_starts.sh``: the command as given, and one that remakes the folder from its copy
    of the structure (run from anywhere; ``--force`` replaces the folder)."""
    args = ["new", request.name, "--from", f"{request.name}/input/{request.structure.name}",
            "--dir", ".", "--force", "--charge", str(request.charge),
            "--multiplicity", str(request.multiplicity), "--seed", str(request.seed),
            "--n-starts", str(request.n_starts)]
    args += ["--periodic"] if request.periodic else []
    args += ["--title", request.title] if request.title else []
    args += ["--observables", ",".join(request.observables)] if request.observables else []
    if request.starts_file is not None:
        args += ["--starts", str(request.starts_file.resolve())]
    else:
        args += ["--starts-time", f"{request.starts_time_ps:g}ps"]
        args += ["--starts-model", request.starts_model] if request.starts_model else []
        if request.starts_model_file:
            args += ["--starts-model-file", str(Path(request.starts_model_file).resolve())]
        for item in request.starts_model_options:
            args += ["--starts-model-option", item]
        if request.starts_temperature_K:
            args += ["--starts-temperature", f"{request.starts_temperature_K:g}"]
    return ("#!/bin/sh\n# Made by: " + request.command.replace("\n", " ") + "\n"
            "# Remake this challenge folder from its copy of the structure (same seed, same "
            "starts\n# for a deterministic model; --force replaces the folder):\n"
            'cd "$(dirname "$0")/.." || exit 1\n'
            "OMP_NUM_THREADS=1 " + command_line(args) + "\n")


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("ase", "numpy", "tblite", "tea-harness"):
        try:
            out[dist] = version(dist)
        except Exception:  # noqa: BLE001 - not installed
            out[dist] = "not installed"
    return out


def command_line(argv: list[str]) -> str:
    """The command as a user would type it again."""
    return "python -m harness.challenges " + shlex.join(argv)
