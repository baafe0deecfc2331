"""A challenge of one's own: ``python -m harness.challenges new NAME --from FILE``.

End to end as a user would: ASE's built-in ethanol (not a TEA system) -> a new challenge
(starts from a short GFN2-xTB MD) -> a short launch with two models -> ``analysis report``.
Then the defaults chosen from the system, the starts from a user's file, and every bad input.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule
from ase.io import read, write

from conftest import REPO, launch
from harness import challenges
from harness.challenges import defaults, starts
from harness.challenges.__main__ import main as challenges_main
from harness.stability import criteria

SHIPPED = REPO / "harness" / "challenges"


def new(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m harness.challenges new ARGS`` in a subprocess."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "harness.challenges", "new", *args],
                          capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


def one_line_error(capsys: pytest.CaptureFixture, argv: list[str], expected: str) -> None:
    """The command returns 2 with one ``error:`` line naming the problem."""
    code = challenges_main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert expected in err, err


@pytest.fixture(scope="module")
def ethanol(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Ethanol from ASE's G2 set, made into a challenge with starts from a 0.2 ps xTB MD."""
    root = tmp_path_factory.mktemp("own")
    write(root / "ethanol.xyz", molecule("CH3CH2OH"))
    proc = new("ethanol", "--from", "ethanol.xyz", "--dir", "mine", "--starts-time", "0.2ps",
               "--observables", "stability,spectrum", cwd=root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"root": root, "folder": root / "mine" / "ethanol", "proc": proc}


def test_ethanol_new_launch_two_models_report(ethanol: dict) -> None:
    root, folder = ethanol["root"], ethanol["folder"]
    assert f"wrote {folder}: challenge.toml, 12 starts" in ethanol["proc"].stdout
    out = root / "runs"
    launch("--challenge", str(folder), "--model", "xtb,harmonic", "--replicas", "1",
           "--time", "0.05ps", "--out", str(out), "--stall-timeout", "600", check=True)
    for model in ("xtb", "harmonic"):
        assert (out / "ethanol" / model / "300K" / "replica-00.h5").is_file()
    env = dict(os.environ, OMP_NUM_THREADS="1",
               TEA_HARNESS_CHALLENGE_PATH=str(folder.parent))  # the analysis finds it by name
    proc = subprocess.run([sys.executable, "-m", "analysis.cli", "report", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    md = (out / "reports" / "report.md").read_text()
    assert "Challenge: C2H6O from ethanol.xyz, gas phase" in md
    assert "Declared observables: stability, spectrum." in md
    assert "### Stability" in md and "### Vibrational spectrum (VACF)" in md
    assert "| xtb | 300 |" in md and "| harmonic | 300 |" in md


def test_ethanol_defaults_from_the_system(ethanol: dict) -> None:
    chal = challenges.load(str(ethanol["folder"]))
    assert chal.elements == ("C", "H", "O") and not chal.periodic
    assert chal.raw["n_atoms"] == 9 and chal.raw["charge"] == 0
    assert chal.raw["multiplicity"] == 1
    p = chal.protocol
    # H present: 0.5 fs; spectrum declared: frames 5 fs apart, tau 1 ps; TEA molecule temps
    assert (p.dt_fs, p.stride, p.thermostat_tau_fs) == (0.5, 10, 1000.0)
    assert p.temperatures_K == (300.0, 500.0, 700.0) and p.replicas == 12
    assert p.length_ps == 1000.0 and p.thermostat == "langevin"
    assert chal.stability == {"bond_break_angstrom": 2.0, "min_distance_angstrom": 0.5}
    assert chal.observables == ("stability", "spectrum")
    text = (ethanol["folder"] / "challenge.toml").read_text()
    for key in ("title", "elements", "charge", "dt_fs", "stride", "thermostat_tau_fs",
                "bond_break_angstrom", "names"):  # every key is explained on the line above
        line = next(n for n, s in enumerate(text.splitlines()) if s.startswith(f"{key} ="))
        assert text.splitlines()[line - 1].startswith("#") or key == "thermostat_tau_fs"


def test_ethanol_starts_are_intact_distinct_and_reproducible(ethanol: dict) -> None:
    folder = ethanol["folder"]
    frames = [read(p) for p in sorted((folder / "starts").glob("start-*.xyz"))]
    assert len(frames) == 12
    given = molecule("CH3CH2OH")
    np.testing.assert_allclose(frames[0].positions, given.positions, atol=1e-6)
    geom = criteria.Geometry(given.numbers)
    bonds = criteria.bond_topology(geom, given.positions)
    for frame in frames:
        assert list(frame.numbers) == list(given.numbers) and "momenta" not in frame.arrays
        d = np.linalg.norm(frame.positions[bonds[:, 0]] - frame.positions[bonds[:, 1]], axis=1)
        assert d.max() < 2.0  # no start with a broken bond
    flat = np.array([f.get_all_distances()[np.triu_indices(9, 1)] for f in frames])
    gaps = np.linalg.norm(flat[:, None] - flat[None], axis=-1)[np.triu_indices(12, 1)]
    assert gaps.min() > 0.05  # twelve different structures
    selection = json.loads((folder / "starts" / "selection.json").read_text())
    assert selection["descriptor"] == "distances" and selection["picked"][0] == 0
    assert selection["how"]["model"] == "xtb" and selection["how"]["temperature_K"] == 700
    script = (folder / "make_starts.sh").read_text()
    assert "python -m harness.challenges new ethanol --from ethanol/input/ethanol.xyz" in script
    assert (folder / "input" / "ethanol.xyz").is_file()


def test_starts_from_a_file_and_ramachandran_pairs_from_the_backbone(tmp_path: Path) -> None:
    """The shipped Challenge I starts as the user's frames: the backbone pairs found are the
    quadruples the shipped challenge.toml states, and the selection spreads in dihedrals."""
    shipped = sorted((SHIPPED / "alanine-tetrapeptide" / "starts").glob("start-*.xyz"))
    write(tmp_path / "frames.extxyz", [read(p) for p in shipped])
    code = challenges_main(["new", "peptide", "--from", str(shipped[0]), "--dir",
                            str(tmp_path), "--starts", str(tmp_path / "frames.extxyz"),
                            "--n-starts", "5"])
    assert code == 0
    chal = challenges.load(str(tmp_path / "peptide"))
    assert chal.observables == ("stability", "ramachandran") and len(chal.starts) == 5
    pairs = chal.raw["ramachandran"]["pairs"]
    original = challenges.load("alanine-tetrapeptide").raw["ramachandran"]["pairs"]
    assert pairs["A"]["phi"] == original["B"]["phi"] and pairs["A"]["psi"] == original["B"]["psi"]
    assert pairs["B"]["phi"] == original["A"]["phi"] and pairs["B"]["psi"] == original["A"]["psi"]
    assert pairs["C"]["label"] == "phi3/psi3"
    selection = json.loads((tmp_path / "peptide" / "starts" / "selection.json").read_text())
    assert selection["descriptor"] == "dihedrals" and selection["how"]["frames"] == 12
    assert len(set(selection["picked"])) == 5 and selection["picked"][0] == 0


def test_farthest_points_and_thresholds() -> None:
    line = np.array([[0.0], [1.0], [2.0], [3.0], [10.0]])
    assert starts.farthest_points(line, 3) == [0, 4, 3]
    # TEA: 2 A for organic bonds; Pb-I 1.5 x (1.46 + 1.39) = 4.275 -> 4.3 A as TEA's choice;
    # Pb-H 1.5 x (1.46 + 0.31) = 2.655 -> 2.7 A
    bonds = np.array([[0, 1], [1, 2], [2, 3]])
    default, pairs = defaults.bond_thresholds(["C", "H", "Pb", "I"], bonds)
    assert default == 2.0 and pairs == {"Pb-H": 2.7, "Pb-I": 4.3}
    masses = {"with H": [1.008, 12.0], "C,N,O": [12.0, 16.0], "Si,O": [28.1, 16.0 + 10]}
    assert [defaults.time_step_fs(np.array(m)).value for m in masses.values()] == [0.5, 1.0, 2.0]


def test_bad_inputs_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write(tmp_path / "ethanol.xyz", molecule("CH3CH2OH"))
    base = ["new", "x", "--dir", str(tmp_path), "--from"]
    (tmp_path / "junk.xyz").write_text("this is not\na structure file\n")
    one_line_error(capsys, [*base, str(tmp_path / "junk.xyz")], "ASE cannot read it")
    close = molecule("CH3CH2OH")
    close.positions[3] = close.positions[0] + [0.3, 0.0, 0.0]
    write(tmp_path / "close.xyz", close)
    one_line_error(capsys, [*base, str(tmp_path / "close.xyz")], "0.30 A apart")
    one_line_error(capsys, [*base, str(tmp_path / "ethanol.xyz"), "--periodic"],
                   "has no cell")
    one_line_error(capsys, [*base, str(tmp_path / "ethanol.xyz"), "--multiplicity", "2"],
                   "26 electrons")
    one_line_error(capsys, [*base, str(tmp_path / "ethanol.xyz"), "--observables",
                            "ramachandran"], "no peptide backbone")
    one_line_error(capsys, [*base, str(tmp_path / "ethanol.xyz"), "--observables",
                            "stability,rdf"], "need a periodic cell")
    one_line_error(capsys, ["new", "mapbi3", "--dir", str(tmp_path), "--from",
                            str(tmp_path / "ethanol.xyz")], "shipped challenge's name")
    write(tmp_path / "water.xyz", molecule("H2O"))
    one_line_error(capsys, [*base, str(tmp_path / "ethanol.xyz"), "--starts",
                            str(tmp_path / "water.xyz")], "other atoms")
    cell = molecule("CH3CH2OH", vacuum=5.0, pbc=True)
    write(tmp_path / "box.extxyz", cell)
    one_line_error(capsys, [*base, str(tmp_path / "box.extxyz")], "--starts-model")
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x.*"))


def test_elements_the_sampling_model_does_not_cover(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    """The shipped demo GAP covers C, H, N, O: methanethiol's S is refused before any MD."""
    pytest.importorskip("quippy")
    write(tmp_path / "ch3sh.xyz", molecule("CH3SH"))
    gap = REPO / "harness" / "models" / "demo" / "gap-alanine-tetrapeptide" / "gap.xml"
    one_line_error(capsys, ["new", "x", "--dir", str(tmp_path), "--from",
                            str(tmp_path / "ch3sh.xyz"), "--starts-model", "gap",
                            "--starts-model-file", str(gap)], "does not cover S")
    # GFN2-xTB stops at Rn
    atoms = molecule("CH3CH2OH")
    atoms.numbers[0] = 92
    write(tmp_path / "u.xyz", atoms)
    one_line_error(capsys, ["new", "x", "--dir", str(tmp_path), "--from",
                            str(tmp_path / "u.xyz")], "does not cover U")


def test_existing_folder_needs_force(ethanol: dict) -> None:
    root = ethanol["root"]
    proc = new("ethanol", "--from", "ethanol.xyz", "--dir", "mine", cwd=root)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1
    assert "exists already" in proc.stderr and "--force" in proc.stderr
    assert (ethanol["folder"] / "challenge.toml").is_file()  # untouched


def test_charge_and_multiplicity_reach_the_calculator(tmp_path: Path) -> None:
    """--charge 1 --multiplicity 4 (ethanol cation, 25 electrons, 3 unpaired): stored in the
    starts, and the first energy of an xTB run is that of the quartet cation (tblite would
    make a doublet of an odd electron count on its own, so the quartet proves the spin came
    through)."""
    from tblite.ase import TBLite

    from harness import h5md

    neutral = molecule("CH3CH2OH")
    write(tmp_path / "ethanol.xyz", neutral)
    write(tmp_path / "frames.extxyz", [neutral, neutral])
    assert challenges_main(["new", "cation", "--from", str(tmp_path / "ethanol.xyz"), "--dir",
                            str(tmp_path), "--charge", "1", "--multiplicity", "4", "--starts",
                            str(tmp_path / "frames.extxyz"), "--n-starts", "1"]) == 0
    chal = challenges.load(str(tmp_path / "cation"))
    assert (chal.raw["charge"], chal.raw["multiplicity"]) == (1, 4)
    start = read(chal.starts[0])
    assert start.get_initial_charges().sum() == 1
    assert start.get_initial_magnetic_moments().sum() == 3
    out = tmp_path / "runs"
    launch("--model", "xtb", "--challenge", str(chal.path), "--replicas", "1", "--time", "2fs",
           "--stride", "1", "--out", str(out), check=True)
    [path] = sorted(out.rglob("replica-00.h5"))
    energy = h5md.read_frames(path, 0, 1)["potential"][0]
    energies = {}
    for charge, multiplicity in ((0, 1), (1, 2), (1, 4)):
        neutral.calc = TBLite(method="GFN2-xTB", charge=charge, multiplicity=multiplicity,
                              verbosity=0)
        energies[charge, multiplicity] = neutral.get_potential_energy()
    assert min(abs(energies[1, 4] - energies[c]) for c in ((0, 1), (1, 2))) > 5.0
    assert energy == pytest.approx(energies[1, 4], abs=1e-4)  # the run had charge and spin
