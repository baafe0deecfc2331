"""``analysis triage`` and ``analysis errors`` on real short runs, with GFN2-xTB as the reference.

Cases whose answer is known by design:

* ``breaking_models`` (springs on every bond but N3-C4, which a constant 8 eV/A force pulls
  apart) breaks N3-C4; xTB holds that bond together: a *model artefact*;
* GFN2-xTB at 6000 K breaks a bond; triaged against GFN2-xTB it is *physical*, with
  model-minus-reference errors at the SCF convergence level (the run's own SCF started each step
  from the previous step's density; the reference starts from scratch);
* the demo GAP against xTB: per-element force MAE equals an independent loop with ASE
  calculators over the same frames.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.calculators.calculator import CalculationFailed, Calculator, all_changes
from ase.io import read

from analysis.triage.triage import bond_force, classify
from harness import h5md

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join((str(TESTS), str(REPO))), OMP_NUM_THREADS="1")
PEPTIDE = "alanine-tetrapeptide"


def _launch(out: Path, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "harness.launch", "--quiet", "--replicas", "1",
                           "--out", str(out), *args], env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _analysis(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis.cli", *args], env=ENV,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A breaking-model run, a 6000 K xTB run (both fail) and a short GAP run (survives)."""
    out = tmp_path_factory.mktemp("triage") / "runs"
    _launch(out, "--model", "ase:breaking_models:make", "--model-option", "pull=3-4",
            "--temperatures", "300", "--time", "0.2ps")
    _launch(out, "--model", "xtb", "--temperatures", "6000", "--time", "0.1ps")
    _launch(out, "--model", "gap", "--temperatures", "300", "--time", "10fs", "--stride", "4")
    files = {
        "breaking": out / PEPTIDE / "ase-breaking_models-make" / "300K" / "replica-00.h5",
        "xtb": out / PEPTIDE / "xtb" / "6000K" / "replica-00.h5",
        "gap": out / PEPTIDE / "gap" / "300K" / "replica-00.h5",
    }
    assert h5md.read_meta(files["breaking"])["status"] == "failed"
    assert h5md.read_meta(files["xtb"])["status"] == "failed"  # fixed seeds: it breaks early
    assert h5md.read_meta(files["gap"])["status"] == "completed"
    return {"out": out, **files}


def _xtb(atoms):
    from tblite.ase import TBLite

    atoms = atoms.copy()
    atoms.calc = TBLite(method="GFN2-xTB", verbosity=0)
    return atoms.get_potential_energy(), atoms.get_forces()


def test_classification_rule_and_bond_force_sign() -> None:
    assert classify(8.0, -3.0)[0] == "model artefact"
    assert classify(-4.5, -4.5)[0] == "physical"          # model agrees with the reference
    assert classify(2.0, 1.0)[0] == "physical"            # the reference pulls apart too
    assert classify(0.2, -0.3)[0] == "unclear"            # both below the threshold
    assert classify(-6.0, -1.0)[0] == "unclear"           # the model holds it more tightly
    assert classify(None, None)[0] == "unclear"           # not a bond event
    assert classify(0.3, -0.3, threshold=0.5)[0] == "unclear"
    assert classify(0.3, -0.3, threshold=0.1)[0] == "model artefact"
    pos = np.array([[[0.0, 0, 0], [1.5, 0, 0]]])
    apart = np.array([[[-1.0, 0, 0], [1.0, 0, 0]]])
    assert bond_force(pos, apart, 0, 1)[0] == pytest.approx(1.0)
    assert bond_force(pos, -apart, 0, 1)[0] == pytest.approx(-1.0)
    assert bond_force(pos, np.array([[[1.0, 0, 0], [1.0, 0, 0]]]), 0, 1)[0] == 0.0


def test_triage_classifies_the_known_cases_and_exports_labels(runs, tmp_path: Path) -> None:
    report, export = runs["out"] / "reports", tmp_path / "failures.extxyz"
    proc = _analysis("triage", str(runs["out"]), "--jobs", "2",
                     "--export-failures", str(export), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "reference calls" in proc.stderr  # the expected cost, said before the work
    data = json.loads((report / "triage.json").read_text())
    entries = {Path(e["file"]).parent.parent.name: e for e in data["entries"]}
    assert sorted(entries) == ["ase-breaking_models-make", "xtb"]  # the GAP run did not fail
    broken = entries["ase-breaking_models-make"]
    assert broken["file"] == str(runs["breaking"])
    assert broken["bond"] == "N-C (3-4)" and broken["classification"] == "model artefact"
    assert broken["approach"]["bond_force_model"] > 7.0   # the 8 eV/A pull, minus springs
    assert broken["approach"]["bond_force_reference"] < -1.0  # xTB restores the bond
    hot = entries["xtb"]
    assert hot["classification"] == "physical"
    event = h5md.read_meta(runs["xtb"])["failure"]
    assert hot["bond"] == "{}-{} ({}-{})".format(*event["elements"], *event["atoms"])
    assert abs(hot["approach"]["excess_pull"]) < 1e-3
    assert max(abs(x) for x in hot["series"]["energy_error_eV"]) < 1e-6
    assert max(hot["series"]["force_mae"]) < 1e-3
    assert data["summary"]["groups"][0]["model artefact"] == 1
    assert "| C-N | 1 (1 A / 0 P / 0 U) | 0 |" in (report / "triage.md").read_text()
    assert (report / f"triage-{PEPTIDE}.png").stat().st_size > 20_000

    frames = read(export, index=":")
    pre_b, pre_x = h5md.read_pre_failure(runs["breaking"]), h5md.read_pre_failure(runs["xtb"])
    assert len(frames) == len(pre_b["step"]) + len(pre_x["step"])
    last = [f for f in frames if f.info["model"] == "ase-breaking_models-make"][-1]
    assert last.info["step"] == pre_b["step"][-1] and last.info["bond"] == "N-C (3-4)"
    assert last.info["classification"] == "model artefact"
    assert last.info["reference_model"] == "xtb"
    assert last.info["model_energy"] == pytest.approx(pre_b["energy"][-1], abs=1e-9)
    assert np.allclose(last.arrays["model_forces"], pre_b["forces"][-1], atol=1e-7)
    exact = last.copy()
    exact.positions = pre_b["positions"][-1]  # extxyz keeps 8 decimals of the positions
    assert np.allclose(last.positions, exact.positions, atol=1e-7)
    energy, forces = _xtb(exact)
    assert last.info["reference_energy"] == pytest.approx(energy, abs=1e-8)
    assert np.allclose(last.arrays["reference_forces"], forces, atol=1e-7)

    again = _analysis("triage", str(runs["out"]), "--quiet")
    assert again.returncode == 0, again.stderr
    cost = json.loads((report / "triage.json").read_text())["cost"][PEPTIDE]
    assert cost["reference_calls"] == 0 and cost["cached_frames"] > 30  # all from the cache

    from analysis.commands.triage import report_sections

    # the report finds the command's cache in OUT/reports/reference-cache: no new call
    sections = report_sections([runs["breaking"], runs["xtb"], runs["gap"]], tmp_path)
    assert [s.title for s in sections] == ["Why models failed"]
    assert "model artefact" in sections[0].markdown and sections[0].figures[0].path.is_file()
    assert json.loads((tmp_path / "triage.json").read_text())["cost"][PEPTIDE][
        "reference_calls"] == 0


def test_errors_per_element_match_an_independent_loop(runs, tmp_path: Path) -> None:
    from harness import models

    report = tmp_path / "report"
    proc = _analysis("errors", str(runs["gap"]), str(runs["xtb"]), "--report-dir", str(report),
                     "--frames-per-run", "3", "--quiet")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((report / "errors.json").read_text())
    rows = {(r["model"], r["frames"]): r for r in data["rows"]}
    steps = data["sampled_steps"][str(runs["gap"])]
    assert len(steps) == 3 and steps[0] == 0

    family = models.get_family("gap")
    gap = family.ase_calculator(models.resolve_model_file(family, None, PEPTIDE), {})
    start = read(h5md.read_meta(runs["gap"])["run_spec"]["start_file"])
    stored = h5md.read_frames(runs["gap"])
    diffs, energy = [], []
    for step in steps:
        atoms = start.copy()
        atoms.positions = stored["positions"][list(stored["step"]).index(step)]
        atoms.calc = gap
        e_ref, f_ref = _xtb(atoms)
        diffs.append(atoms.get_forces() - f_ref)
        energy.append((atoms.get_potential_energy() - e_ref) / len(atoms))
    diffs = np.array(diffs)
    symbols = np.array(start.get_chemical_symbols())
    row = rows[("gap", "sampled")]
    for element in ("H", "C", "N", "O"):
        expected = np.mean(np.abs(diffs[:, symbols == element]))
        assert row["force_mae_by_element"][element] == pytest.approx(expected, abs=1e-8)
    assert row["force_rmse"] == pytest.approx(np.sqrt(np.mean(diffs ** 2)), abs=1e-8)
    energy = np.array(energy)
    assert row["energy_mae_per_atom_eV"] == pytest.approx(
        np.mean(np.abs(energy - energy.mean())), abs=1e-10)
    atom_mae = np.mean(np.abs(diffs), axis=(0, 2))
    assert row["per_atom_cv"] == pytest.approx(np.std(atom_mae) / np.mean(atom_mae), rel=1e-9)
    assert row["worst_atoms"][0]["index"] == int(np.argmax(atom_mae))
    # xTB against itself: zero up to the SCF convergence of the run's own numbers
    assert rows[("xtb", "sampled")]["force_mae"] < 1e-3
    assert rows[("xtb", "before failure")]["force_mae"] < 1e-3
    assert ("gap", "before failure") not in rows  # the GAP run did not fail
    assert (report / f"errors-{PEPTIDE}-gap.png").stat().st_size > 10_000


def test_bad_input_is_one_line(runs, tmp_path: Path) -> None:
    cases = [("--jobs", "0"), ("--reference-model", "nosuchmodel"),
             ("--max-frames", "1", "--report-dir", str(tmp_path / "fresh"))]
    for extra in cases:
        proc = _analysis("triage", str(runs["breaking"]), "--quiet", *extra)
        assert proc.returncode == 2, (extra, proc.stderr)
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "--max-frames" in proc.stderr


class FailsWhenStretched(Calculator):
    """Raises (like an SCF that does not converge) once N3-C4 is longer than ``limit`` A."""

    implemented_properties = ["energy", "forces"]

    def __init__(self, limit: float = 1.8) -> None:
        super().__init__()
        self.limit = limit

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.atoms.get_distance(3, 4) > self.limit:
            raise CalculationFailed("SCF not converged (test)")
        self.results = {"energy": 1.0, "forces": np.zeros((len(self.atoms), 3))}


def make_failing(**options):
    """Factory for ``ase:test_triage:make_failing``."""
    return FailsWhenStretched(**options)


def test_frames_the_reference_cannot_evaluate_are_left_out_and_counted(runs) -> None:
    from analysis.commands.triage import compute
    from analysis.triage.study import ReferenceSettings

    settings = ReferenceSettings(reference_model="ase:test_triage:make_failing")
    result = compute([runs["breaking"]], settings)
    (entry,) = result["entries"]
    lengths = np.array(entry["series"]["bond_length_A"])
    pre = h5md.read_pre_failure(runs["breaking"])
    stretched = int(np.sum(np.linalg.norm(pre["positions"][:, 4] - pre["positions"][:, 3],
                                          axis=1) > 1.8))
    assert stretched > 0 and lengths.max() <= 1.8  # those frames are gone from the numbers
    assert result["cost"][PEPTIDE]["reference_failed_frames"] == stretched
    assert f"could not evaluate {stretched} frame(s)" in result["markdown"]


def test_trajectories_without_forces_are_left_out_and_named(runs, tmp_path: Path) -> None:
    """A compact reference file (positions and energies, no forces) given as a run is named,
    not read as if it held forces (it used to stop the report's errors section)."""
    import shutil

    from harness import challenges

    compact = tmp_path / "ladder" / "replica-00.h5"
    compact.parent.mkdir()
    shipped = challenges.load(PEPTIDE).path / "reference" / "equilibrium"
    shutil.copy(next(shipped.glob("*.h5")), compact)
    report = tmp_path / "report"
    proc = _analysis("errors", str(runs["gap"]), str(compact), "--report-dir", str(report),
                     "--frames-per-run", "2", "--quiet")
    assert proc.returncode == 0, proc.stderr
    data = json.loads((report / "errors.json").read_text())
    assert {r["model"] for r in data["rows"]} == {"gap"}
    assert f"1 trajectory stores no forces and is left out: {compact}" in proc.stdout
