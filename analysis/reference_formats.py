"""Reading other codes' trajectories (and writing two of them) for reference imports.

Readers return a :class:`Source` in the harness's units (Angstrom, ps, eV, eV/Angstrom,
Angstrom/ps), whatever the file used:

* anything ASE reads (extxyz, xyz, ASE ``.traj``, ...): energies and forces from the frames'
  calculator results, velocities from momenta;
* MD22 / sGDML ``.npz``: ``R`` (frames, atoms, 3), ``z``, optional ``E`` and ``F``; Angstrom and
  kcal/mol unless the file says otherwise in ``r_unit`` / ``e_unit`` (sGDML's own keys);
* H5MD (``.h5``, ``.h5md``, ``.hdf5``): ``/particles/<group>/position`` with the units of its
  ``unit`` attributes, species (atomic numbers) when present, time stamps, forces, velocities,
  ``/observables/potential_energy``; any group name (MDAnalysis writes ``trajectory``).

:func:`export_extxyz` and :func:`export_npz` turn a harness trajectory into the first two forms
(round-trip tests; handing a reference to another tool).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from harness import h5md
from harness.errors import UserError
from harness.units import EV_TO_KJ_PER_MOL

#: Length units (as written by codes and the H5MD unit convention) in Angstrom.
LENGTH_ANGSTROM = {"angstrom": 1.0, "ang": 1.0, "a": 1.0, "å": 1.0, "nm": 10.0, "pm": 0.01,
                   "bohr": 0.529177210903, "au": 0.529177210903}
#: Energy units in eV (kJ/mol from the harness's own constant; 1 kcal = 4.184 kJ).
ENERGY_EV = {"ev": 1.0, "kcal/mol": 4.184 / EV_TO_KJ_PER_MOL,
             "kcal mol-1": 4.184 / EV_TO_KJ_PER_MOL, "kj/mol": 1.0 / EV_TO_KJ_PER_MOL,
             "kj mol-1": 1.0 / EV_TO_KJ_PER_MOL, "hartree": 27.211386245988,
             "ha": 27.211386245988}
#: Time units in ps.
TIME_PS = {"ps": 1.0, "fs": 1e-3, "ns": 1e3}
#: MD22 / sGDML defaults.
NPZ_LENGTH_UNIT = "Ang"
NPZ_ENERGY_UNIT = "kcal/mol"


@dataclass
class Source:
    """One trajectory read from a file, in Angstrom, ps and eV."""

    path: Path
    format: str
    numbers: np.ndarray | None  # atomic numbers; None: the file names no elements
    positions: np.ndarray  # (frames, atoms, 3)
    energies: np.ndarray | None = None  # (frames,) eV
    forces: np.ndarray | None = None  # eV/Angstrom
    velocities: np.ndarray | None = None  # Angstrom/ps
    cells: np.ndarray | None = None  # (frames, 3, 3) Angstrom, periodic sources only
    times_ps: np.ndarray | None = None
    temperature_K: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        """Number of frames."""
        return int(self.positions.shape[0])


def read(path: Path) -> Source:
    """Read one trajectory file; the format follows from its suffix and content.

    Raises
    ------
    UserError
        When the file is missing or none of the readers can make sense of it.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file; give an extxyz, xyz, ASE .traj, MD22 .npz or "
                        "H5MD file")
    if path.suffix.lower() == ".npz":
        return read_npz(path)
    if h5py.is_hdf5(path):
        return read_h5md(path)
    return read_ase(path)


def _unit(text: Any, table: dict[str, float], what: str, path: Path) -> float:
    key = (text.decode() if isinstance(text, bytes) else str(text)).strip().lower()
    if key not in table:
        raise UserError(f"{path}: {what} unit {key!r} is not known; known: "
                        f"{', '.join(sorted(table))}")
    return table[key]


def read_ase(path: Path) -> Source:
    """Any trajectory ASE reads; energies/forces/velocities when the frames carry them."""
    import ase.io
    from ase import units

    if path.stat().st_size == 0:
        return Source(path, "empty file", None, np.zeros((0, 0, 3)))
    try:
        frames = ase.io.read(str(path), index=":")
    except Exception as exc:  # ASE's readers raise many kinds; all mean "cannot read"
        raise UserError(f"{path}: not a trajectory ASE can read ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); give "
                        "extxyz, xyz, ASE .traj, MD22 .npz or H5MD") from None
    if not isinstance(frames, list):
        frames = [frames]
    if not frames:
        return Source(path, "ASE", None, np.zeros((0, 0, 3)))
    numbers = frames[0].get_atomic_numbers()
    if any(len(a) != len(numbers) or np.any(a.get_atomic_numbers() != numbers) for a in frames):
        raise UserError(f"{path}: the atoms change between frames; give one molecule's "
                        "trajectory per file")
    src = Source(path, f"{ase.io.formats.filetype(str(path), read=False)} (ASE)", numbers,
                 np.array([a.positions for a in frames]))

    def results(key: str) -> list[Any] | None:
        values = [a.calc.results.get(key) if a.calc is not None else None for a in frames]
        return None if any(v is None for v in values) else values

    energies, forces = results("energy"), results("forces")
    if energies is not None:
        src.energies = np.array(energies, dtype=float)
    if forces is not None:
        src.forces = np.array(forces, dtype=float)
    if all(a.has("momenta") for a in frames):
        # ASE velocity unit: Angstrom per ASE time unit; 1 ps = 1000 * units.fs
        src.velocities = np.array([a.get_velocities() for a in frames]) * 1000.0 * units.fs
    if all(a.pbc.any() for a in frames):
        src.cells = np.array([a.cell.array for a in frames])
    return src


def read_npz(path: Path) -> Source:
    """An MD22 / sGDML-layout ``.npz`` (``R``, ``z``, ``E``, ``F``)."""
    import zipfile

    if not zipfile.is_zipfile(path):
        raise UserError(f"{path}: not an .npz archive (numpy.savez writes one); give an "
                        "MD22/sGDML .npz or rename the file after its real format")
    wanted = ("R", "z", "E", "F", "lattice", "r_unit", "e_unit")
    try:
        with np.load(path, allow_pickle=False) as npz:  # only the keys used (no pickles)
            data = {k: npz[k] for k in wanted if k in npz.files}
            present = list(npz.files)
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npz ({exc})") from None
    missing = [k for k in ("R", "z") if k not in data]
    if missing:
        raise UserError(f"{path}: an MD22/sGDML .npz needs the keys R (positions) and z "
                        f"(atomic numbers); missing {', '.join(missing)} (has "
                        f"{', '.join(sorted(present))})")
    r_unit = str(data.get("r_unit", NPZ_LENGTH_UNIT))
    e_unit = str(data.get("e_unit", NPZ_ENERGY_UNIT))
    length = _unit(r_unit, LENGTH_ANGSTROM, "length (r_unit)", path)
    energy = _unit(e_unit, ENERGY_EV, "energy (e_unit)", path)
    positions = np.asarray(data["R"], dtype=float)
    if positions.ndim != 3 or positions.shape[-1] != 3:
        raise UserError(f"{path}: R has shape {positions.shape}; expected (frames, atoms, 3)")
    src = Source(path, "MD22/sGDML npz", np.asarray(data["z"], dtype=int).ravel(),
                 positions * length,
                 notes=[f"units {r_unit} and {e_unit} converted to Angstrom and eV"])
    if "E" in data:
        src.energies = np.asarray(data["E"], dtype=float).reshape(-1) * energy
    if "F" in data:
        src.forces = np.asarray(data["F"], dtype=float) * (energy / length)
    if "lattice" in data:
        src.cells = np.broadcast_to(np.asarray(data["lattice"], float) * length,
                                    (len(positions), 3, 3)).copy()
    return src


def _particle_group(f: h5py.File, path: Path) -> str:
    groups = [name for name, item in f.get("particles", {}).items()
              if isinstance(item, h5py.Group) and "position" in item
              and "value" in item["position"]]
    if not groups:
        raise UserError(f"{path}: an HDF5 file without /particles/<group>/position/value; "
                        "give an H5MD trajectory")
    if "all" in groups:
        return "all"
    if len(groups) > 1:
        raise UserError(f"{path}: several particle groups ({', '.join(groups)}); write one "
                        "group per file")
    return groups[0]


def _force_factor(unit: str) -> float | None:
    """eV/Angstrom per unit of ``unit`` (``kJ mol-1 Angstrom-1``, ``eV/Angstrom``, ...)."""
    tokens = [t.removesuffix("-1").lower() for t in unit.replace("/", " ").split()]
    if len(tokens) < 2 or tokens[-1] not in LENGTH_ANGSTROM:
        return None
    energy = " ".join(tokens[:-1]).replace(" mol", "/mol")
    if energy not in ENERGY_EV:
        return None
    return ENERGY_EV[energy] / LENGTH_ANGSTROM[tokens[-1]]


def _times(element: h5py.Group, n: int, path: Path) -> np.ndarray | None:
    """Per-frame times in ps of an H5MD time series (array, or fixed interval as a scalar)."""
    if "time" not in element:
        return None
    ds = element["time"]
    scale = _unit(ds.attrs.get("unit", "ps"), TIME_PS, "time", path)
    if ds.shape == ():
        offset = float(ds.attrs.get("offset", 0.0))
        return (offset + float(ds[()]) * np.arange(n)) * scale
    return np.asarray(ds[:n], dtype=float) * scale


def read_h5md(path: Path) -> Source:
    """An H5MD trajectory (the harness's own, MDAnalysis's, or another code's)."""
    try:
        f = h5md.open_file(path, "r")
    except OSError as exc:
        raise UserError(f"{path}: cannot open as HDF5 ({exc})") from None
    with f:
        group = _particle_group(f, path)
        part = f[f"particles/{group}"]
        notes: list[str] = []
        pos = part["position/value"]
        if "unit" not in pos.attrs:
            notes.append("positions have no unit attribute: taken as Angstrom")
        length = _unit(pos.attrs.get("unit", "Angstrom"), LENGTH_ANGSTROM, "position", path)
        positions = np.asarray(pos[:], dtype=float) * length
        src = Source(path, f"H5MD (/particles/{group})", None, positions,
                     times_ps=_times(part["position"], len(positions), path), notes=notes)
        if "species" in part:
            species = part["species"]
            src.numbers = np.asarray(species["value"][0] if isinstance(species, h5py.Group)
                                     else species[:], dtype=int)
        _h5md_extras(f, part, src, length, path)
    return src


def _h5md_extras(f: h5py.File, part: h5py.Group, src: Source, length: float,
                 path: Path) -> None:
    """Forces, velocities, energies, box and temperature of an H5MD file, where present."""
    n = src.n_frames
    if "force/value" in part:
        unit = str(part["force/value"].attrs.get("unit", "none"))
        factor = _force_factor(unit)
        if factor is None:
            src.notes.append(f"forces left out (unit {unit!r} not known)")
        else:
            src.forces = np.asarray(part["force/value"][:n], dtype=float) * factor
    if "velocity/value" in part:
        unit = str(part["velocity/value"].attrs.get("unit", "Angstrom ps-1")).split()
        if len(unit) == 2 and unit[1] == "ps-1" and unit[0].lower() in LENGTH_ANGSTROM:
            src.velocities = (np.asarray(part["velocity/value"][:n], dtype=float)
                              * LENGTH_ANGSTROM[unit[0].lower()])
    if "observables/potential_energy/value" in f:
        ds = f["observables/potential_energy/value"]
        unit = str(ds.attrs.get("unit", "none")).lower()
        if ds.shape[:1] != (n,) or unit not in ENERGY_EV:
            src.notes.append(f"energies left out (unit {unit!r}, {ds.shape[0]} values)")
        else:
            src.energies = np.asarray(ds[:], float) * ENERGY_EV[unit]
    if "box/edges" in part:
        edges = part["box/edges"]
        value = np.asarray(edges["value"][:n] if isinstance(edges, h5py.Group) else edges[:],
                           dtype=float) * length
        if value.shape[-1:] == (3,) and value.ndim in (1, 2) and value.shape[-2:] != (3, 3):
            value = np.apply_along_axis(np.diag, -1, value)  # diagonal box, H5MD allows it
        src.cells = np.broadcast_to(value, (n, 3, 3)).copy()
    harness = f.get(h5md.PARAMS)
    if harness is not None:
        for key in ("reference", "run_spec"):
            if key in harness.attrs:
                temp = json.loads(harness.attrs[key]).get("temperature_K")
                if temp is not None:
                    src.temperature_K = float(temp)
                    break


def export_extxyz(src: Path, dst: Path, every: int = 1) -> int:
    """Write every ``every``-th frame of a harness trajectory as extxyz (positions, energies,
    forces where stored); returns the number of frames written."""
    import ase.io
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    meta = h5md.read_meta(src)
    frames = h5md.read_frames(src)
    images = []
    for k in range(0, meta["n_frames"], every):
        atoms = Atoms(numbers=meta["species"], positions=frames["positions"][k])
        results = {}
        if "potential" in frames:
            results["energy"] = float(frames["potential"][k])
        if "forces" in frames:
            results["forces"] = frames["forces"][k]
        if results:
            atoms.calc = SinglePointCalculator(atoms, **results)
        images.append(atoms)
    ase.io.write(str(dst), images, format="extxyz")
    return len(images)


def export_npz(src: Path, dst: Path) -> int:
    """Write a harness trajectory as an MD22/sGDML-layout ``.npz`` (Angstrom, kcal/mol)."""
    meta = h5md.read_meta(src)
    frames = h5md.read_frames(src)
    kcal = ENERGY_EV["kcal/mol"]
    data: dict[str, Any] = {"R": np.asarray(frames["positions"], dtype=float),
                            "z": np.asarray(meta["species"], dtype=np.int64),
                            "r_unit": np.array(NPZ_LENGTH_UNIT),
                            "e_unit": np.array(NPZ_ENERGY_UNIT), "type": np.array("d"),
                            "name": np.array(meta["run_spec"]["challenge"])}
    if "potential" in frames:
        data["E"] = (frames["potential"] / kcal).reshape(-1, 1)
    if "forces" in frames:
        data["F"] = frames["forces"] / kcal
    np.savez_compressed(dst, **data)
    return meta["n_frames"]
