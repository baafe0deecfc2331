"""Train the demo SOAP/GAP model for TEA Challenge 2023, Challenge I, on GFN2-xTB data.

What
----
1. **Reference data.** Short ASE Langevin MD with GFN2-xTB (tblite) from the 12
   starting structures of ``harness/challenges/alanine-tetrapeptide/starts`` at
   300, 500 and 700 K (dt 0.5 fs, friction 0.01/fs, velocities drawn at 2T since
   the starts are minima).  After a 100 fs equilibration one frame is kept
   every 40 steps (20 fs), 13 frames per trajectory, 468 frames in total.
   Energies (eV) and forces (eV/A) go to
   ``harness/challenges/alanine-tetrapeptide/reference/xtb-frames.extxyz``; each
   frame's ``info`` names its start, temperature, MD step and trajectory.
2. **Split.** Whole trajectories are held out as the test set (no interleaved
   neighbours): trajectory (start ``s``, temperature index ``t``) is a test
   trajectory if ``s % 5 == t``, i.e. starts 0, 5, 10 at 300 K, 1, 6, 11 at
   500 K and 2, 7 at 700 K (8 of 36 trajectories, 104 frames).  Every held-out
   start is still seen in training at the other two temperatures.
3. **Active learning.** A model fitted to the xTB MD frames alone runs stably
   but its own MD drifts into configurations where its energy is ~0.8 eV too
   low (e.g. twisted amides).  So, for ``--al-rounds`` rounds (default 2):
   fit (in a scratch folder), run 600 steps of model MD from every start
   (start ``s`` at 300/500/700 K for ``s % 3`` = 0/1/2), label 6 snapshots
   per run with GFN2-xTB and add them to the training set; snapshots after a
   bond break or with an xTB force component above 25 eV/A are not used (such
   frames ruined the fit in a trial).  These frames are stored in
   ``reference/xtb-al-frames.extxyz`` (``config_type=al``) and reused by later
   runs unless ``--regenerate-al``.
4. **Fit.** ``gap_fit`` (quippy-ase): ``distance_2b`` per element pair
   (cutoff 5 A) plus one SOAP term per central element (cutoff 3 A,
   n_max 6, l_max 4, element-agnostic neighbour density, dot-product kernel
   ``zeta=4``), ``e0_method=average``, CUR sparse points with a fixed seed.
   Short SOAP cutoffs and the element-agnostic density were chosen because
   they were both more accurate and cheaper here than 4-5 A, element-resolved
   SOAP at the same model size; see ``metadata.json`` for the exact command.
   The final model is fitted and checked in a staging folder and only then
   copied, with ``gap_fit.log`` (ignored by git), into
   ``gap-alanine-tetrapeptide/``.
5. **Checks.** Test-set energy/force errors; evaluation time per energy+forces
   call (single thread); loading from another working directory; Langevin MD
   stability runs with the fitted model (300 K for 3 ps and 2 ps, 500 K and
   700 K for 1 ps; unstable if any SMILES bond exceeds 2 A), with GFN2-xTB
   recomputed on snapshots of those runs.  Everything goes to
   ``gap-alanine-tetrapeptide/metadata.json``.

Why
---
The harness ships a small, fast, self-contained model so that the Challenge I
pipeline can be run end-to-end without any heavy ML framework.  It is a demo:
its reference is GFN2-xTB, not the PBE+MBD data of the TEA challenge.

How
---
::

    python harness/models/demo/make_demo_gap.py --stage fit   # reuse all frames
    python harness/models/demo/make_demo_gap.py --stage fit --regenerate-al
    python harness/models/demo/make_demo_gap.py --regenerate  # everything

``--stage frames`` only generates the xTB MD frames.  ``--stage fit`` and
``--stage all`` generate the xTB MD frames only if the file is missing
(``--regenerate`` forces it, and implies ``--regenerate-al``).  Load the model
with ``quippy.potential.Potential(param_filename=".../gap.xml")`` from any
working directory.

Runtime (2-core machine; xTB and model MD single-threaded, ``gap_fit`` on 2
threads): xTB MD frames about 10 minutes (24,480 steps at ~20 ms); each
active-learning round about 4 minutes (7,200 model MD steps at ~27 ms plus a
~30 s fit); final fit about 30 s; checks about 7 minutes (14,000 model MD
steps).  ``--stage fit`` with stored frames: under 2 minutes plus the checks.
Results are deterministic for the fixed seeds (single-threaded MD; the
2-thread ``gap_fit`` gave bit-identical coefficients in repeated fits).
"""

from __future__ import annotations

import os

# Single-threaded xTB and quippy unless the caller chose otherwise; this must be
# set before numpy/tblite/quippy load their OpenMP runtimes.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import datetime as _dt  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from importlib.metadata import version  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
CHALLENGE = REPO / "harness" / "challenges" / "alanine-tetrapeptide"
STARTS_DIR = CHALLENGE / "starts"
FRAMES_FILE = CHALLENGE / "reference" / "xtb-frames.extxyz"
AL_FILE = CHALLENGE / "reference" / "xtb-al-frames.extxyz"
MODEL_DIR = HERE / "gap-alanine-tetrapeptide"
SMILES = "CC(=O)N[C@@H](C)C(=O)N[C@@H](C)C(=O)N[C@@H](C)C(=O)NC"
TEMPERATURES_K = (300.0, 500.0, 700.0)
BOND_BREAK_A = 2.0
AL_MAX_FORCE = 25.0  # eV/A; active-learning snapshots above this are not used


@dataclass(frozen=True)
class MDSettings:
    """Settings of the xTB reference MD.

    Attributes
    ----------
    dt_fs : float
        Time step in fs.
    friction_per_fs : float
        Langevin friction in 1/fs.
    n_equil : int
        Steps discarded before the first frame.
    stride : int
        Steps between kept frames.
    n_frames : int
        Frames kept per trajectory.
    seed : int
        Base random seed (per trajectory: ``seed + 100 * t + s``).
    """

    dt_fs: float = 0.5
    friction_per_fs: float = 0.01
    n_equil: int = 200
    stride: int = 40
    n_frames: int = 13
    seed: int = 2023


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def load_starts(starts_dir: Path = STARTS_DIR) -> list:
    """Read the 12 start structures in file order.

    Parameters
    ----------
    starts_dir : pathlib.Path
        Folder with ``start-XX.xyz``.

    Returns
    -------
    list of ase.Atoms
        Structures without calculators.
    """
    from ase.io import read

    files = sorted(starts_dir.glob("start-*.xyz"))
    if not files:
        raise FileNotFoundError(f"no start-*.xyz in {starts_dir}; run make_starts.py")
    out = []
    for f in files:
        atoms = read(f, format="extxyz")
        atoms.calc = None
        out.append(atoms)
    return out


def bonded_pairs() -> np.ndarray:
    """Bonded atom pairs of the SMILES graph (atom order of the start files).

    Returns
    -------
    numpy.ndarray
        Integer array, shape (n_bonds, 2).
    """
    from rdkit import Chem

    mol = Chem.AddHs(Chem.MolFromSmiles(SMILES))
    return np.array(
        sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()), dtype=int
    )


def max_bond_length(positions: np.ndarray, pairs: np.ndarray) -> float:
    """Longest bonded distance.

    Parameters
    ----------
    positions : numpy.ndarray
        Coordinates, shape (n_atoms, 3).
    pairs : numpy.ndarray
        Bonded pairs, shape (n_bonds, 2).

    Returns
    -------
    float
        Maximum bond length in Angstrom.
    """
    d = positions[pairs[:, 0]] - positions[pairs[:, 1]]
    return float(np.sqrt(np.max(np.sum(d * d, axis=1))))


def is_test_trajectory(start: int, temp_index: int) -> bool:
    """Deterministic train/test rule on whole trajectories.

    Parameters
    ----------
    start : int
        Start structure index (0-11).
    temp_index : int
        Index into :data:`TEMPERATURES_K`.

    Returns
    -------
    bool
        True if the trajectory belongs to the test set.
    """
    return start % 5 == temp_index


# --------------------------------------------------------------------------- #
# stage 1: reference frames
# --------------------------------------------------------------------------- #


def run_reference_md(
    atoms0, start: int, temp_index: int, md: MDSettings, pairs: np.ndarray
) -> tuple[list, dict]:
    """One GFN2-xTB Langevin trajectory; returns its sampled frames.

    Velocities are drawn from a Maxwell-Boltzmann distribution at twice the
    target temperature (the structures start at a minimum, so about half of the
    kinetic energy flows into the potential energy), with the centre-of-mass
    motion and rotation removed.

    Parameters
    ----------
    atoms0 : ase.Atoms
        Start structure.
    start : int
        Start index (for the seed and the frame labels).
    temp_index : int
        Index into :data:`TEMPERATURES_K`.
    md : MDSettings
        MD and sampling settings.
    pairs : numpy.ndarray
        Bonded pairs, for the bond-break check.

    Returns
    -------
    tuple of (list of ase.Atoms, dict)
        Frames with a :class:`~ase.calculators.singlepoint.SinglePointCalculator`
        holding energy and forces, and a summary of the trajectory.
    """
    from ase import units
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
    from tblite.ase import TBLite

    temp = TEMPERATURES_K[temp_index]
    seed = md.seed + 100 * temp_index + start
    rng = np.random.default_rng(seed)
    atoms = atoms0.copy()
    atoms.info = {}
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    thermalize_momenta(atoms, 2.0 * temp, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)
    atoms.set_constraint(FixCom())
    dyn = Langevin(
        atoms,
        timestep=md.dt_fs * units.fs,
        temperature_K=temp,
        friction=md.friction_per_fs / units.fs,
        fixcm=False,
        rng=rng,
    )
    frames = []
    temps = []
    max_bond = 0.0
    n_total = md.n_equil + md.stride * (md.n_frames - 1)
    sample_steps = {md.n_equil + k * md.stride for k in range(md.n_frames)}
    for step in range(1, n_total + 1):
        dyn.run(1)
        max_bond = max(max_bond, max_bond_length(atoms.positions, pairs))
        if step in sample_steps:
            frame = atoms.copy()
            frame.set_constraint()
            frame.arrays.pop("momenta", None)
            frame.info = {
                "start": start,
                "temperature_K": int(temp),
                "step": step,
                "time_fs": step * md.dt_fs,
                "traj": f"s{start:02d}-T{int(temp)}",
            }
            energy = float(atoms.get_potential_energy())
            forces = atoms.get_forces().copy()
            frame.calc = SinglePointCalculator(frame, energy=energy, forces=forces)
            frames.append(frame)
            temps.append(atoms.get_temperature())
    summary = {
        "start": start,
        "temperature_K": int(temp),
        "seed": seed,
        "steps": n_total,
        "mean_T_sampled_K": round(float(np.mean(temps)), 1),
        "max_bond_A": round(max_bond, 3),
    }
    return frames, summary


def generate_frames(md: MDSettings, out_file: Path) -> dict:
    """Run all 36 reference trajectories and write the frames file.

    Parameters
    ----------
    md : MDSettings
        MD and sampling settings.
    out_file : pathlib.Path
        Destination extxyz file.

    Returns
    -------
    dict
        Summary (timings, per-trajectory info).
    """
    from ase.io import write

    starts = load_starts()
    pairs = bonded_pairs()
    all_frames = []
    summaries = []
    t0 = time.perf_counter()
    for t_idx, temp in enumerate(TEMPERATURES_K):
        for s, atoms0 in enumerate(starts):
            t1 = time.perf_counter()
            frames, summ = run_reference_md(atoms0, s, t_idx, md, pairs)
            summ["wall_s"] = round(time.perf_counter() - t1, 1)
            all_frames.extend(frames)
            summaries.append(summ)
            print(
                f"  xTB MD start {s:2d} T={temp:5.0f} K: {summ['steps']} steps in "
                f"{summ['wall_s']:.1f} s, <T>={summ['mean_T_sampled_K']:.0f} K, "
                f"max bond {summ['max_bond_A']:.2f} A",
                flush=True,
            )
    wall = time.perf_counter() - t0
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_file.with_suffix(".partial")
    write(tmp, all_frames, format="extxyz")
    tmp.replace(out_file)
    n_steps = sum(s["steps"] for s in summaries)
    print(f"wrote {len(all_frames)} frames to {out_file} ({wall:.0f} s, {n_steps} xTB steps)")
    return {
        "n_frames": len(all_frames),
        "n_xtb_md_steps": n_steps,
        "wall_s": round(wall, 1),
        "ms_per_step": round(1000.0 * wall / n_steps, 1),
        "trajectories": summaries,
    }


def frames_settings(md: MDSettings) -> dict:
    """Describe the reference-data settings for the metadata.

    Parameters
    ----------
    md : MDSettings
        MD and sampling settings.

    Returns
    -------
    dict
        JSON-serialisable description.
    """
    return {
        "file": str(FRAMES_FILE.relative_to(REPO)),
        "method": f"GFN2-xTB via tblite {version('tblite')} (ASE calculator), gas phase",
        "md": "ASE Langevin (fixcm=False + FixCom), MB velocities at 2T, "
        "initial COM motion and rotation removed",
        "temperatures_K": list(TEMPERATURES_K),
        "dt_fs": md.dt_fs,
        "friction_per_fs": md.friction_per_fs,
        "equilibration_steps": md.n_equil,
        "stride_steps": md.stride,
        "frames_per_trajectory": md.n_frames,
        "seed_rule": f"{md.seed} + 100 * temperature_index + start",
        "units": "energy eV, forces eV/A, positions A",
    }


# --------------------------------------------------------------------------- #
# stage 2: split and fit
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class FitSettings:
    """Hyperparameters of the GAP.

    Attributes
    ----------
    cutoff : float
        SOAP cutoff in Angstrom.
    cutoff_width : float
        SOAP cutoff transition width in Angstrom.
    species_resolved : bool
        Separate SOAP density channels per neighbour element (True) or one
        element-agnostic density (False; far fewer dimensions).
    cutoff_2b : float
        Cutoff of the 2-body term in Angstrom.
    pairwise_2b : bool
        One 2-body GP per element pair (True) or one for all pairs (False).
    n_max, l_max : int
        SOAP radial and angular basis sizes.
    atom_sigma : float
        SOAP Gaussian width in Angstrom.
    zeta : int
        Exponent of the SOAP dot-product kernel.
    delta_soap, delta_2b : float
        Prior energy scales (eV) of the SOAP and 2-body terms.
    theta_2b : float
        Length scale of the 2-body squared-exponential kernel (Angstrom).
    n_sparse_2b : int
        Sparse points per element pair of the 2-body term.
    n_sparse : dict of int to int
        SOAP sparse points per central element (atomic number).
    sigma_energy : float
        Energy regularisation per atom (eV).
    sigma_force : float
        Force regularisation (eV/A).
    seed : int
        ``gap_fit`` random seed (CUR selection).
    threads : int
        OpenMP threads for ``gap_fit``.
    timeout_s : int
        Hard limit for ``gap_fit``.
    """

    cutoff: float = 3.0
    cutoff_width: float = 1.0
    species_resolved: bool = False
    cutoff_2b: float = 5.0
    pairwise_2b: bool = True
    n_max: int = 6
    l_max: int = 4
    atom_sigma: float = 0.5
    zeta: int = 4
    delta_soap: float = 1.0
    delta_2b: float = 1.0
    theta_2b: float = 0.5
    n_sparse_2b: int = 30
    n_sparse: tuple[tuple[int, int], ...] = ((1, 300), (6, 250), (7, 120), (8, 120))
    sigma_energy: float = 0.001
    sigma_force: float = 0.02
    seed: int = 7
    threads: int = 2
    timeout_s: int = 1800


SPECIES_Z = (1, 6, 7, 8)


def gap_string(fs: FitSettings) -> str:
    """Build the ``gap={...}`` descriptor string for ``gap_fit``.

    One ``distance_2b`` term (per element pair if ``fs.pairwise_2b``) and one
    SOAP term per central element.  ``add_species=F`` on the SOAP terms keeps
    ``gap_fit`` from multiplying each of them by the number of elements; the
    neighbour species are resolved through ``n_species``/``species_Z`` (nested
    braces are doubled inside the ``gap`` string).

    Parameters
    ----------
    fs : FitSettings
        Hyperparameters.

    Returns
    -------
    str
        The value of the ``gap`` argument (without ``gap=``).
    """
    species = " ".join(str(z) for z in SPECIES_Z)
    channels = (
        f"n_species={len(SPECIES_Z)} species_Z={{{{{species}}}}} "
        if fs.species_resolved
        else "n_species=1 species_Z={{0}} "
    )
    terms = [
        f"distance_2b cutoff={fs.cutoff_2b} covariance_type=ard_se delta={fs.delta_2b} "
        f"theta_uniform={fs.theta_2b} n_sparse={fs.n_sparse_2b} sparse_method=uniform "
        f"add_species={'T' if fs.pairwise_2b else 'F'}"
    ]
    for z, n_sparse in fs.n_sparse:
        terms.append(
            f"soap cutoff={fs.cutoff} cutoff_transition_width={fs.cutoff_width} "
            f"n_max={fs.n_max} l_max={fs.l_max} atom_sigma={fs.atom_sigma} "
            f"zeta={fs.zeta} delta={fs.delta_soap} covariance_type=dot_product "
            f"{channels}Z={z} "
            f"n_sparse={n_sparse} sparse_method=cur_points add_species=F"
        )
    return "{" + " : ".join(terms) + "}"


def split_frames(frames: list) -> tuple[list, list]:
    """Split frames into train and test by whole trajectories.

    Parameters
    ----------
    frames : list of ase.Atoms
        Frames with ``start`` and ``temperature_K`` in ``info``.

    Returns
    -------
    tuple of (list, list)
        Training and test frames.
    """
    train, test = [], []
    for f in frames:
        t_idx = TEMPERATURES_K.index(float(f.info["temperature_K"]))
        (test if is_test_trajectory(int(f.info["start"]), t_idx) else train).append(f)
    return train, test


def write_training_file(frames: list, path: Path) -> None:
    """Write frames for ``gap_fit``.

    ``gap_fit`` ignores the energies of frames without a ``Lattice``, so a
    50 A box is added (``pbc`` stays false; the molecule never sees an image).

    Parameters
    ----------
    frames : list of ase.Atoms
        Frames with energy and forces.
    path : pathlib.Path
        Output extxyz file.
    """
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    out = []
    for f in frames:
        a = f.copy()
        a.cell = np.eye(3) * 50.0
        a.pbc = False
        a.info = {"traj": f.info["traj"], "config_type": f.info.get("config_type", "md")}
        a.calc = SinglePointCalculator(a, energy=f.get_potential_energy(), forces=f.get_forces())
        out.append(a)
    write(path, out, format="extxyz")


def gap_fit_command(fs: FitSettings, train_file: str) -> list[str]:
    """Argument list of the ``gap_fit`` call.

    Parameters
    ----------
    fs : FitSettings
        Hyperparameters.
    train_file : str
        Training file name (relative to the working directory).

    Returns
    -------
    list of str
        Command and arguments.
    """
    exe = shutil.which("gap_fit") or str(Path(sys.executable).parent / "gap_fit")
    return [
        exe,
        f"at_file={train_file}",
        "gap_file=gap.xml",
        "e0_method=average",
        "energy_parameter_name=energy",
        "force_parameter_name=forces",
        "do_copy_at_file=F",
        "sparse_separate_file=T",
        f"default_sigma={{{fs.sigma_energy} {fs.sigma_force} 0.0 0.0}}",
        f"rnd_seed={fs.seed}",
        f"gap={gap_string(fs)}",
    ]


def fit_gap(train: list, fs: FitSettings, model_dir: Path, workdir: Path) -> dict:
    """Run ``gap_fit`` and install the model files into ``model_dir``.

    Parameters
    ----------
    train : list of ase.Atoms
        Training frames.
    fs : FitSettings
        Hyperparameters.
    model_dir : pathlib.Path
        Destination of ``gap.xml`` and its ``sparseX`` files; ``gap_fit.log``
        is written there too.
    workdir : pathlib.Path
        Scratch folder for the fit.

    Returns
    -------
    dict
        Command line and wall time.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in workdir.glob("gap.xml*"):
        stale.unlink()
    write_training_file(train, workdir / "train.extxyz")
    cmd = gap_fit_command(fs, "train.extxyz")
    env = dict(os.environ, OMP_NUM_THREADS=str(fs.threads))
    model_dir.mkdir(parents=True, exist_ok=True)
    log_path = model_dir / "gap_fit.log"
    t0 = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.run(
            cmd,
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=fs.timeout_s,
            check=False,
        )
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not (workdir / "gap.xml").is_file():
        raise RuntimeError(f"gap_fit failed (rc={proc.returncode}); see {log_path}")
    for old in model_dir.glob("gap.xml*"):
        old.unlink()
    for new in sorted(workdir.glob("gap.xml*")):
        shutil.copy2(new, model_dir / new.name)
    print(f"gap_fit finished in {wall:.0f} s; model in {model_dir}")
    shown = [Path(cmd[0]).name] + cmd[1:]
    gap_version = "unknown"
    for line in log_path.read_text(errors="replace").splitlines():
        if "git version" in line:
            gap_version = line.split("git version", 1)[1].strip()
            break
    return {
        "command": " ".join(shown),
        "wall_s": round(wall, 1),
        "omp_threads": fs.threads,
        "gap_fit_version": gap_version,
    }


# --------------------------------------------------------------------------- #
# stage 3: checks
# --------------------------------------------------------------------------- #


def load_model(model_dir: Path):
    """Load the GAP as an ASE calculator, from a foreign working directory.

    Parameters
    ----------
    model_dir : pathlib.Path
        Folder holding ``gap.xml`` and its ``sparseX`` files.

    Returns
    -------
    quippy.potential.Potential
        The calculator.
    """
    from quippy.potential import Potential

    old = Path.cwd()
    os.chdir(tempfile.gettempdir())
    try:
        return Potential(param_filename=str((model_dir / "gap.xml").resolve()))
    finally:
        os.chdir(old)


def errors(frames: list, calc) -> dict:
    """Energy and force errors of ``calc`` against the stored references.

    Parameters
    ----------
    frames : list of ase.Atoms
        Frames with reference energy and forces.
    calc : ase.calculators.calculator.Calculator
        Model to test.

    Returns
    -------
    dict
        MAE/RMSE of energies (eV, meV/atom) and force components (eV/A).
    """
    de, df = [], []
    for f in frames:
        a = f.copy()
        a.calc = calc
        de.append(a.get_potential_energy() - f.get_potential_energy())
        df.append((a.get_forces() - f.get_forces()).ravel())
    de_arr = np.array(de)
    df_arr = np.concatenate(df)
    n_atoms = len(frames[0])
    ref_f = np.concatenate([f.get_forces().ravel() for f in frames])
    return {
        "n_frames": len(frames),
        "energy_mae_eV": round(float(np.mean(np.abs(de_arr))), 5),
        "energy_rmse_eV": round(float(np.sqrt(np.mean(de_arr**2))), 5),
        "energy_mae_meV_per_atom": round(1000 * float(np.mean(np.abs(de_arr))) / n_atoms, 3),
        "energy_rmse_meV_per_atom": round(1000 * float(np.sqrt(np.mean(de_arr**2))) / n_atoms, 3),
        "energy_max_abs_eV": round(float(np.max(np.abs(de_arr))), 5),
        "energy_mean_signed_error_eV": round(float(np.mean(de_arr)), 5),
        "force_mae_eV_A": round(float(np.mean(np.abs(df_arr))), 4),
        "force_rmse_eV_A": round(float(np.sqrt(np.mean(df_arr**2))), 4),
        "force_max_abs_eV_A": round(float(np.max(np.abs(df_arr))), 4),
        "reference_force_rms_eV_A": round(float(np.sqrt(np.mean(ref_f**2))), 4),
    }


def time_model(calc, frames: list, n_calls: int = 200) -> dict:
    """Wall time per energy+forces call on 42 atoms (current thread count).

    Each call uses slightly displaced coordinates so that nothing is cached.

    Parameters
    ----------
    calc : ase.calculators.calculator.Calculator
        Model to time.
    frames : list of ase.Atoms
        Structures to cycle through.
    n_calls : int
        Number of timed calls (after 5 warm-up calls).

    Returns
    -------
    dict
        Median, mean and minimum time in ms.
    """
    rng = np.random.default_rng(0)
    atoms = frames[0].copy()
    atoms.calc = calc
    times = []
    for k in range(n_calls + 5):
        atoms.positions = frames[k % len(frames)].positions + rng.normal(0, 1e-3, (len(atoms), 3))
        t0 = time.perf_counter()
        atoms.get_potential_energy()
        atoms.get_forces()
        if k >= 5:
            times.append(time.perf_counter() - t0)
    ms = 1000 * np.array(times)
    return {
        "n_calls": n_calls,
        "omp_threads": os.environ.get("OMP_NUM_THREADS"),
        "median_ms": round(float(np.median(ms)), 2),
        "mean_ms": round(float(np.mean(ms)), 2),
        "min_ms": round(float(np.min(ms)), 2),
    }


def stability_run(
    calc,
    atoms0,
    start: int,
    temp: float,
    n_steps: int,
    seed: int,
    pairs: np.ndarray,
    n_snapshots: int = 8,
) -> tuple[dict, list]:
    """Langevin MD with the model; checks that no bonded pair exceeds 2 A.

    Parameters
    ----------
    calc : ase.calculators.calculator.Calculator
        Model.
    atoms0 : ase.Atoms
        Start structure.
    start : int
        Start index (for the report).
    temp : float
        Temperature in K.
    n_steps : int
        Number of 0.5 fs steps.
    seed : int
        Random seed.
    pairs : numpy.ndarray
        Bonded pairs (SMILES graph).
    n_snapshots : int
        Number of evenly spaced snapshots to return.

    Returns
    -------
    tuple of (dict, list of ase.Atoms)
        Result summary and the snapshots (``info["step"]``); if a bond broke,
        the broken configuration is appended with ``info["broken"] = True``.
    """
    from ase import units
    from ase.constraints import FixCom
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta

    rng = np.random.default_rng(seed)
    atoms = atoms0.copy()
    atoms.info = {}
    atoms.calc = calc
    thermalize_momenta(atoms, temp, rng=rng)
    Stationary(atoms)
    ZeroRotation(atoms)
    atoms.set_constraint(FixCom())
    dyn = Langevin(
        atoms,
        timestep=0.5 * units.fs,
        temperature_K=temp,
        friction=0.01 / units.fs,
        fixcm=False,
        rng=rng,
    )
    n_all = len(atoms)
    bonded = np.zeros((n_all, n_all), dtype=bool)
    bonded[pairs[:, 0], pairs[:, 1]] = True
    bonded |= bonded.T
    nonbonded = np.triu(~bonded, k=1)
    max_bond = 0.0
    min_nonbonded = np.inf
    temps = []
    snapshots = []
    broken_at = None
    t0 = time.perf_counter()
    snap_every = max(1, n_steps // n_snapshots)
    for step in range(1, n_steps + 1):
        dyn.run(1)
        pos = atoms.positions
        mb = max_bond_length(pos, pairs)
        max_bond = max(max_bond, mb)
        if step % 10 == 0:
            d = np.linalg.norm(pos[:, None, :] - pos[None, :, :], axis=-1)
            min_nonbonded = min(min_nonbonded, float(np.min(d[nonbonded])))
            temps.append(atoms.get_temperature())
        if step % snap_every == 0 or mb > BOND_BREAK_A:
            snap = atoms.copy()
            snap.set_constraint()
            snap.calc = None
            snap.info = {"step": step, "broken": bool(mb > BOND_BREAK_A)}
            snapshots.append(snap)
        if mb > BOND_BREAK_A:
            broken_at = step
            break
    wall = time.perf_counter() - t0
    result = {
        "start": start,
        "temperature_K": temp,
        "steps_requested": n_steps,
        "steps_done": step,
        "time_ps": round(step * 0.5e-3, 3),
        "stable": broken_at is None,
        "max_bond_A": round(max_bond, 3),
        "min_nonbonded_distance_A": round(min_nonbonded, 3),
        "mean_T_K": round(float(np.mean(temps)), 1) if temps else None,
        "wall_s": round(wall, 1),
    }
    return result, snapshots


def label_with_xtb(structures: list) -> list:
    """GFN2-xTB energies and forces for a list of structures.

    Parameters
    ----------
    structures : list of ase.Atoms
        Structures to label (not modified).

    Returns
    -------
    list of ase.Atoms
        Copies carrying a :class:`~ase.calculators.singlepoint.SinglePointCalculator`;
        structures whose xTB calculation fails are left out.
    """
    from ase.calculators.singlepoint import SinglePointCalculator
    from tblite.ase import TBLite

    out = []
    for s in structures:
        a = s.copy()
        a.arrays.pop("momenta", None)
        a.calc = TBLite(method="GFN2-xTB", verbosity=0)
        try:
            e, f = a.get_potential_energy(), a.get_forces()
        except Exception as exc:  # SCF failure on a mangled geometry
            print(f"  xTB failed on a snapshot ({exc}); skipped")
            continue
        a.calc = SinglePointCalculator(a, energy=e, forces=f)
        out.append(a)
    return out


def active_learning_round(
    calc, round_idx: int, n_steps: int, n_snapshots: int, seed: int
) -> tuple[list, list, dict]:
    """One round of model MD from all starts, labelled with GFN2-xTB.

    Start ``s`` runs at ``TEMPERATURES_K[s % 3]``.  Snapshots of the model's
    own trajectories are exactly where a model trained on xTB MD alone is
    most wrong (it drifts into configurations with spuriously low energy), so
    adding them removes those holes.  Configurations past a bond break and
    snapshots with any xTB force component above :data:`AL_MAX_FORCE` are not
    used: such far-off-equilibrium frames wrecked the fit in a trial run.

    Parameters
    ----------
    calc : ase.calculators.calculator.Calculator
        Current model.
    round_idx : int
        Round number (1-based), for seeds and labels.
    n_steps : int
        Model MD steps (0.5 fs) per start.
    n_snapshots : int
        Snapshots per run.
    seed : int
        Base seed.

    Returns
    -------
    tuple of (list of ase.Atoms, list of dict, dict)
        New labelled frames (``config_type=al``), the run summaries and the
        counts of skipped snapshots.
    """
    starts = load_starts()
    pairs = bonded_pairs()
    frames, runs = [], []
    skipped = {"broken": 0, "high_force": 0}
    for s, atoms0 in enumerate(starts):
        temp = TEMPERATURES_K[s % len(TEMPERATURES_K)]
        run_seed = seed + 1000 * round_idx + s
        res, snaps = stability_run(
            calc, atoms0, s, temp, n_steps, run_seed, pairs, n_snapshots=n_snapshots
        )
        runs.append(res)
        intact = [x for x in snaps if not x.info.get("broken")]
        skipped["broken"] += len(snaps) - len(intact)
        for f in label_with_xtb(intact):
            if float(np.max(np.abs(f.get_forces()))) > AL_MAX_FORCE:
                skipped["high_force"] += 1
                continue
            f.info = {
                "start": s,
                "temperature_K": int(temp),
                "step": int(f.info["step"]),
                "traj": f"al{round_idx}-s{s:02d}-T{int(temp)}",
                "config_type": "al",
                "al_round": round_idx,
            }
            frames.append(f)
        print(
            f"  AL round {round_idx} start {s:2d} T={temp:.0f} K: "
            f"{res['steps_done']}/{n_steps} steps, stable={res['stable']}",
            flush=True,
        )
    return frames, runs, skipped


def xtb_crosscheck(snapshots: list, calc) -> dict:
    """Compare the model with GFN2-xTB on snapshots of the model's own MD.

    Parameters
    ----------
    snapshots : list of ase.Atoms
        Structures visited by the model MD.
    calc : ase.calculators.calculator.Calculator
        Model.

    Returns
    -------
    dict
        Force RMSE/MAE (eV/A) and energy error spread (eV).
    """
    ref = label_with_xtb([s for s in snapshots if not s.info.get("broken")])
    err = errors(ref, calc)
    return {
        "n_snapshots": len(ref),
        "force_mae_eV_A": err["force_mae_eV_A"],
        "force_rmse_eV_A": err["force_rmse_eV_A"],
        "energy_rmse_eV": err["energy_rmse_eV"],
        "energy_mean_signed_error_eV": err["energy_mean_signed_error_eV"],
    }


def model_files_size(model_dir: Path) -> dict:
    """Sizes of the model files.

    Parameters
    ----------
    model_dir : pathlib.Path
        Model folder.

    Returns
    -------
    dict
        File name -> bytes, plus ``total_bytes``.
    """
    sizes = {p.name: p.stat().st_size for p in sorted(model_dir.glob("gap.xml*"))}
    return {"files": sizes, "total_bytes": sum(sizes.values())}


def check_model(model_dir: Path, train: list, test: list, stab_runs: list, seed: int) -> dict:
    """All post-fit checks.

    Parameters
    ----------
    model_dir : pathlib.Path
        Model folder.
    train, test : list of ase.Atoms
        Reference frames.
    stab_runs : list of tuple
        ``(start, temperature_K, n_steps)`` per stability run.
    seed : int
        Base seed of the stability runs.

    Returns
    -------
    dict
        Errors, timing, stability and size results.
    """
    calc = load_model(model_dir)
    res: dict = {"loaded_from_foreign_cwd": True}
    res["test"] = errors(test, calc)
    res["train"] = errors(train, calc)
    res["test_by_temperature"] = {
        str(int(t)): errors([f for f in test if f.info["temperature_K"] == int(t)], calc)[
            "force_rmse_eV_A"
        ]
        for t in TEMPERATURES_K
    }
    print(f"test errors: {res['test']}")
    res["timing"] = time_model(calc, test)
    print(f"evaluation: {res['timing']}")
    starts = load_starts()
    pairs = bonded_pairs()
    runs, snaps = [], []
    for k, (s, temp, n) in enumerate(stab_runs):
        r, sn = stability_run(calc, starts[s], s, temp, n, seed + k, pairs)
        runs.append(r)
        snaps.extend(sn)
        print(f"stability: {r}", flush=True)
    res["stability"] = {
        "protocol": "ASE Langevin, dt 0.5 fs, friction 0.01/fs, MB velocities at T; "
        f"unstable if any SMILES bond > {BOND_BREAK_A} A",
        "all_stable": all(r["stable"] for r in runs),
        "runs": runs,
        "xtb_on_model_md_snapshots": xtb_crosscheck(snaps, calc),
    }
    res["size"] = model_files_size(model_dir)
    return res


# --------------------------------------------------------------------------- #
# driver
# --------------------------------------------------------------------------- #


def parse_stability(spec: str) -> list[tuple[int, float, int]]:
    """Parse ``start:T:steps,start:T:steps,...``.

    Parameters
    ----------
    spec : str
        Comma-separated run specifications.

    Returns
    -------
    list of tuple
        ``(start, temperature_K, n_steps)`` per run.
    """
    runs = []
    for item in spec.split(","):
        s, t, n = item.split(":")
        runs.append((int(s), float(t), int(n)))
    return runs


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv``).

    Returns
    -------
    argparse.Namespace
        Parsed options.
    """
    d = FitSettings()
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--stage", choices=("all", "frames", "fit"), default="all")
    p.add_argument("--regenerate", action="store_true", help="redo the xTB MD frames")
    p.add_argument("--regenerate-al", action="store_true", help="redo the active-learning frames")
    p.add_argument("--al-rounds", type=int, default=2)
    p.add_argument("--al-steps", type=int, default=600, help="model MD steps per start")
    p.add_argument("--al-snapshots", type=int, default=6, help="snapshots per run")
    p.add_argument("--al-seed", type=int, default=500)
    p.add_argument("--al-file", type=Path, default=AL_FILE, help="active-learning frames")
    p.add_argument("--model-dir", type=Path, default=MODEL_DIR)
    p.add_argument("--workdir", type=Path, default=None, help="gap_fit scratch (temp)")
    p.add_argument("--threads", type=int, default=2, help="gap_fit OpenMP threads")
    p.add_argument("--n-max", type=int, default=d.n_max)
    p.add_argument("--l-max", type=int, default=d.l_max)
    p.add_argument("--cutoff", type=float, default=d.cutoff, help="SOAP cutoff (A)")
    p.add_argument("--cutoff-2b", type=float, default=d.cutoff_2b)
    p.add_argument(
        "--species-resolved",
        action=argparse.BooleanOptionalAction,
        default=d.species_resolved,
        help="SOAP density channels per neighbour element",
    )
    p.add_argument("--zeta", type=int, default=d.zeta)
    p.add_argument("--delta-soap", type=float, default=d.delta_soap)
    p.add_argument("--delta-2b", type=float, default=d.delta_2b)
    p.add_argument(
        "--n-sparse",
        default=",".join(f"{z}:{n}" for z, n in d.n_sparse),
        help="SOAP sparse points per element, Z:n,...",
    )
    p.add_argument("--sigma-energy", type=float, default=d.sigma_energy, help="eV/atom")
    p.add_argument("--sigma-force", type=float, default=d.sigma_force, help="eV/A")
    p.add_argument(
        "--stability",
        default="0:300:6000,6:300:4000,3:500:2000,9:700:2000",
        help="model MD runs start:T_K:steps,... (0.5 fs steps)",
    )
    p.add_argument("--stability-seed", type=int, default=11)
    return p.parse_args(argv)


def fit_settings_from_args(args: argparse.Namespace) -> FitSettings:
    """Build :class:`FitSettings` from the command line.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed options.

    Returns
    -------
    FitSettings
        Hyperparameters.
    """
    n_sparse = tuple(
        (int(z), int(n)) for z, n in (item.split(":") for item in args.n_sparse.split(","))
    )
    return FitSettings(
        cutoff=args.cutoff,
        cutoff_2b=args.cutoff_2b,
        species_resolved=args.species_resolved,
        n_max=args.n_max,
        l_max=args.l_max,
        zeta=args.zeta,
        delta_soap=args.delta_soap,
        delta_2b=args.delta_2b,
        n_sparse=n_sparse,
        sigma_energy=args.sigma_energy,
        sigma_force=args.sigma_force,
        threads=args.threads,
    )


def install_model(stage: Path, model_dir: Path, probe: list) -> None:
    """Replace the model files in ``model_dir`` by those in ``stage``.

    Afterwards the installed copy is loaded (from a foreign working directory)
    and must reproduce the staged model's energies and forces on ``probe``.

    Parameters
    ----------
    stage : pathlib.Path
        Folder with the freshly fitted ``gap.xml*`` and ``gap_fit.log``.
    model_dir : pathlib.Path
        Destination (created if needed).
    probe : list of ase.Atoms
        Structures for the consistency check.
    """
    model_dir.mkdir(parents=True, exist_ok=True)
    for old in model_dir.glob("gap.xml*"):
        old.unlink()
    for f in sorted(stage.glob("gap.xml*")) + [stage / "gap_fit.log"]:
        shutil.copy2(f, model_dir / f.name)
    staged, installed = load_model(stage), load_model(model_dir)
    for frame in probe:
        a, b = frame.copy(), frame.copy()
        a.calc, b.calc = staged, installed
        if abs(a.get_potential_energy() - b.get_potential_energy()) > 1e-8 or not np.allclose(
            a.get_forces(), b.get_forces(), atol=1e-8
        ):
            raise RuntimeError("installed model differs from the staged one")
    print(f"installed model in {model_dir}")


def run_fit(train: list, fs: FitSettings, model_dir: Path, workdir: Path | None) -> dict:
    """Fit into ``model_dir``, in ``workdir`` or a temporary folder.

    Parameters
    ----------
    train : list of ase.Atoms
        Training frames.
    fs : FitSettings
        Hyperparameters.
    model_dir : pathlib.Path
        Destination folder.
    workdir : pathlib.Path or None
        Scratch folder (temporary if None).

    Returns
    -------
    dict
        See :func:`fit_gap`.
    """
    if workdir is not None:
        return fit_gap(train, fs, model_dir, workdir.resolve())
    with tempfile.TemporaryDirectory(prefix="gapfit-") as tmp:
        return fit_gap(train, fs, model_dir, Path(tmp))


def generate_al_frames(
    train: list, fs: FitSettings, args: argparse.Namespace, scratch: Path
) -> tuple[list, dict]:
    """Active learning: alternate fits and xTB-labelled model-MD snapshots.

    Parameters
    ----------
    train : list of ase.Atoms
        xTB MD training frames.
    fs : FitSettings
        Hyperparameters.
    args : argparse.Namespace
        Options (rounds, steps, snapshots, seed, workdir).
    scratch : pathlib.Path
        Folder for the intermediate models (never the shipped model folder).

    Returns
    -------
    tuple of (list of ase.Atoms, dict)
        All new frames and a per-round summary, including the error of the
        model of that round on the snapshots of its own MD (before they were
        added to the training set).
    """
    al_frames: list = []
    rounds = []
    t0 = time.perf_counter()
    for r in range(1, args.al_rounds + 1):
        run_fit(train + al_frames, fs, scratch, args.workdir)
        calc = load_model(scratch)
        new, runs, skipped = active_learning_round(
            calc, r, args.al_steps, args.al_snapshots, args.al_seed
        )
        err = errors(new, calc)
        rounds.append(
            {
                "round": r,
                "n_new_frames": len(new),
                "runs_stable": sum(x["stable"] for x in runs),
                "runs": len(runs),
                "snapshots_skipped": skipped,
                "model_error_on_new_frames": {
                    k: err[k]
                    for k in (
                        "force_rmse_eV_A",
                        "energy_rmse_eV",
                        "energy_mean_signed_error_eV",
                    )
                },
            }
        )
        print(f"AL round {r}: {rounds[-1]}", flush=True)
        al_frames.extend(new)
    summary = {
        "rounds": rounds,
        "n_frames": len(al_frames),
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    return al_frames, summary


def main(argv: list[str] | None = None) -> None:
    """Generate frames, fit the GAP, check it and write the metadata.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments.
    """
    from ase.io import read, write

    args = parse_args(argv)
    md = MDSettings()
    t_start = time.perf_counter()
    model_dir = args.model_dir.resolve()
    meta_path = model_dir / "metadata.json"
    old_meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}

    gen_summary = None
    if args.stage == "frames" or args.regenerate or not FRAMES_FILE.is_file():
        gen_summary = generate_frames(md, FRAMES_FILE)
    if args.stage == "frames":
        return
    if gen_summary is None:
        gen_summary = old_meta.get("reference_data", {}).get("generation")

    frames = read(FRAMES_FILE, index=":", format="extxyz")
    train, test = split_frames(frames)
    print(f"{len(frames)} xTB MD frames: {len(train)} train, {len(test)} test")
    fs = fit_settings_from_args(args)

    al_file = args.al_file.resolve()
    regen_al = args.regenerate or args.regenerate_al or not al_file.is_file()
    if regen_al and args.al_rounds > 0:
        with tempfile.TemporaryDirectory(prefix="gap-al-") as scratch:
            al_frames, al_summary = generate_al_frames(train, fs, args, Path(scratch))
        write(al_file.with_suffix(".partial"), al_frames, format="extxyz")
        al_file.with_suffix(".partial").replace(al_file)
        print(f"wrote {len(al_frames)} active-learning frames to {al_file}")
    elif args.al_rounds > 0:
        al_frames = read(al_file, index=":", format="extxyz")
        al_summary = old_meta.get("active_learning", {}).get("generation")
        print(f"reusing {len(al_frames)} active-learning frames from {al_file}")
    else:
        al_frames, al_summary = [], None

    # Fit and check in a staging folder; the shipped folder is replaced only
    # at the end, together with its metadata.
    with tempfile.TemporaryDirectory(prefix="gap-final-") as stage_name:
        stage = Path(stage_name)
        fit_info = run_fit(train + al_frames, fs, stage, args.workdir)
        checks = check_model(
            stage, train, test, parse_stability(args.stability), args.stability_seed
        )
        if al_frames:
            checks["al_frames"] = errors(al_frames, load_model(stage))
        install_model(stage, model_dir, test[:5])

    ref = frames_settings(md)
    ref["n_frames"] = len(frames)
    ref["generation"] = gen_summary
    meta = {
        "name": "gap-alanine-tetrapeptide (demo)",
        "description": "SOAP/GAP demo model for TEA Challenge 2023 Challenge I "
        "(Ac-Ala3-NHMe, gas phase), trained on GFN2-xTB, not on the TEA PBE+MBD data",
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "script": str(Path(__file__).resolve().relative_to(REPO)),
        "load": "quippy.potential.Potential(param_filename='<this folder>/gap.xml'); "
        "the sparseX files are found relative to gap.xml, any working directory",
        "elements": ["C", "H", "N", "O"],
        "n_atoms": len(frames[0]),
        "reference_method": f"GFN2-xTB via tblite {version('tblite')}",
        "reference_data": ref,
        "active_learning": {
            "file": str(al_file.relative_to(REPO))
            if al_file.is_relative_to(REPO)
            else str(al_file),
            "protocol": "per round: fit, then model Langevin MD (0.5 fs, 0.01/fs) "
            "from all 12 starts, start s at (300, 500, 700 K)[s % 3], "
            f"{args.al_steps} steps, {args.al_snapshots} snapshots per run, labelled "
            "with GFN2-xTB and added to the training set (config_type=al); snapshots "
            f"after a bond break or with an xTB force component > {AL_MAX_FORCE} eV/A "
            "are not used",
            "rounds": args.al_rounds,
            "n_frames": len(al_frames),
            "generation": al_summary,
        },
        "split": {
            "rule": "test = whole held-out xTB MD trajectories: start % 5 == temperature "
            "index (300 K: starts 0, 5, 10; 500 K: 1, 6, 11; 700 K: 2, 7); all other "
            "xTB MD frames and all active-learning frames are training data",
            "n_train": len(train) + len(al_frames),
            "n_train_md": len(train),
            "n_train_al": len(al_frames),
            "n_test": len(test),
        },
        "training": {
            "gap_fit_command": fit_info["command"],
            "gap_fit_wall_s": fit_info["wall_s"],
            "gap_fit_omp_threads": fit_info["omp_threads"],
            "training_file_note": "train frames written with a 50 A Lattice (pbc F) so "
            "that gap_fit reads their energies",
            "settings": {
                k: (dict(v) if k == "n_sparse" else v)
                for k, v in fs.__dict__.items()
                if k not in ("threads", "timeout_s")
            },
        },
        "test_errors": checks["test"],
        "test_force_rmse_by_temperature_eV_A": checks["test_by_temperature"],
        "train_errors_md_frames": checks["train"],
        "train_errors_al_frames": checks.get("al_frames"),
        "eval_ms_per_call": checks["timing"],
        "stability_check": checks["stability"],
        "model_files": checks["size"],
        "versions": {
            "quippy-ase": version("quippy-ase"),
            "gap_fit": fit_info["gap_fit_version"],
            "ase": version("ase"),
            "tblite": version("tblite"),
            "numpy": np.__version__,
            "python": sys.version.split()[0],
        },
        "total_script_wall_s": round(time.perf_counter() - t_start, 1),
    }
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {meta_path}")
    print(json.dumps({k: meta[k] for k in ("test_errors", "eval_ms_per_call")}, indent=1))


if __name__ == "__main__":
    main()
