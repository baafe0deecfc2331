"""``analysis scan`` with the periodic xTB reference equals an independent loop of ASE single
points; scan bookkeeping on an analytic model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import surface_toy
from ase.data import atomic_masses
from ase.io import read

from analysis.cli import main as analysis_main
from analysis.observables.scan import compute as scan
from analysis.observables.surface.geometry import SurfaceGroups
from harness import challenges

CHALLENGE = "naphthyridine-graphene"


def _independent_structure(atoms, distance: float):
    """The displaced complex computed without the harness's geometry code: the sheet of the
    shipped (orthorhombic, a and b in the xy plane) cell is normal to z, its plane height is
    the mean z of its atoms and the molecule's height is its centre of mass z."""
    challenge = challenges.load(CHALLENGE)
    surface = np.array(challenge.groups["surface"])
    molecule = np.array(challenge.groups["molecule"])
    masses = atomic_masses[atoms.numbers[molecule]]
    height = masses @ atoms.positions[molecule, 2] / masses.sum() \
        - atoms.positions[surface, 2].mean()
    out = atoms.copy()
    out.positions[molecule, 2] += distance - height
    return out


def test_xtb_scan_equals_independent_ase_single_points(tmp_path: Path) -> None:
    """The command's xTB scan (registry calculator, shipped reference settings) against tblite
    called directly in a plain loop over the same structures, in the same order with one
    calculator (tblite restarts each SCF from the previous one, so the order is part of the
    computation), and the separated energy from fresh calculators: equal to 1e-6 eV."""
    from tblite.ase import TBLite

    out = tmp_path / "scan"
    code = analysis_main(["scan", "--challenge", CHALLENGE, "--model", "xtb", "--d-min", "3.5",
                          "--d-max", "8.0", "--step", "4.5", "--max-relax-steps", "0",
                          "--out", str(out)])
    assert code == 0
    result = scan.ScanResult.from_json((out / "scan-xtb.json").read_text())
    assert result.distances == [3.5, 8.0]
    atoms = read(challenges.load(CHALLENGE).path / "reference" / "relaxed-xtb.xyz")
    settings = {"method": "GFN2-xTB", "accuracy": 1.0, "electronic_temperature": 300.0,
                "verbosity": 0}
    calc = TBLite(**settings)
    direct = []
    for distance in (3.5, 8.0):
        structure = _independent_structure(atoms, distance)
        structure.calc = calc
        direct.append(structure.get_potential_energy())
    np.testing.assert_allclose(result.energies, direct, atol=1e-6, rtol=0)
    challenge = challenges.load(CHALLENGE)
    parts = 0.0
    for key in ("surface", "molecule"):
        part = atoms[challenge.groups[key]]
        part.calc = TBLite(**settings)
        parts += part.get_potential_energy()
    assert result.separated_energy == pytest.approx(parts, abs=1e-6)
    # a fresh calculator at 8 A (SCF from scratch instead of from the 3.5 A density) agrees
    # to the SCF convergence, not bit for bit: that is why the loop above keeps one calculator
    fresh = _independent_structure(atoms, 8.0)
    fresh.calc = TBLite(**settings)
    assert abs(fresh.get_potential_energy() - direct[1]) < 1e-4
    summary = json.loads((out / "scan-summary.json").read_text())
    assert summary[0]["dU_8A_eV"] == pytest.approx(direct[1] - direct[0], abs=1e-6)
    assert (out / "scan.png").stat().st_size > 10_000


def test_scan_bookkeeping_on_analytic_model() -> None:
    challenge = challenges.load(CHALLENGE)
    atoms = read(challenge.path / "reference" / "relaxed-xtb.xyz")
    groups = SurfaceGroups.from_table(challenge.groups, atoms.numbers)
    distances = scan.grid(2.5, 10.0, 0.1)
    assert len(distances) == 76 and distances[-1] == 10.0
    result = scan.run_scan(atoms, groups, surface_toy.make, "toy", distances, max_relax_steps=0)
    summary = result.summary()
    assert summary["D_min_angstrom"] == pytest.approx(3.4, abs=1e-9)
    assert summary["dU_8A_eV"] == pytest.approx(0.5 - 0.5 * np.exp(-4.6 ** 2), abs=1e-12)
    assert summary["dU_infinite_eV"] == pytest.approx(0.5, abs=1e-12)
    assert result.relative()[0] == pytest.approx(0.5 - 0.5 * np.exp(-0.9 ** 2), abs=1e-12)
    with pytest.raises(Exception, match="d-min"):
        scan.grid(5.0, 4.0, 0.1)


@pytest.mark.parametrize("args, message", [
    (["--model", "nosuchmodel"], "unknown model"),
    (["--challenge", "alanine-tetrapeptide", "--model", "xtb"], "no such file"),
    (["--model", "xtb", "--d-min", "6", "--d-max", "5"], "d-min"),
    (["--model", "xtb,harmonic", "--model-file", "x.xml"], "one --model-file per --model"),
])
def test_scan_bad_input_is_one_line_error(args: list[str], message: str, capsys,
                                          tmp_path: Path) -> None:
    assert analysis_main(["scan", *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_scan_command_generic_ase_model_joins_the_reference_plot(tmp_path: Path) -> None:
    """Any ASE calculator through --model ase:MODULE:FACTORY; the plot and table hold it and the
    shipped xTB reference scan."""
    out = tmp_path / "scan"
    assert analysis_main(["scan", "--model", "ase:surface_toy:make", "--model-option",
                          "depth=0.3", "--max-relax-steps", "0", "--out", str(out)]) == 0
    rows = {r["model"]: r for r in json.loads((out / "scan-summary.json").read_text())}
    assert set(rows) == {"xtb", "ase-surface_toy-make"}
    assert rows["ase-surface_toy-make"]["dU_infinite_eV"] == pytest.approx(0.3, abs=1e-12)
    assert rows["xtb"]["dU_infinite_eV"] == pytest.approx(0.7956, abs=1e-4)
    assert "| ase-surface_toy-make | 3.40 |" in (out / "scan.md").read_text()
