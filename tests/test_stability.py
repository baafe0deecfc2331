"""Crash detection: criteria on analytic frames, a model that really breaks, re-evaluation."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from conftest import launch
from harness import challenges, h5md
from harness.stability import criteria as C
from harness.stability.reevaluate import reevaluate, same_event

START = challenges.load("alanine-tetrapeptide").starts[0]
TESTS = Path(__file__).resolve().parent


def _geom_and_bonds():
    atoms = read(START)
    geom = C.Geometry(atoms.numbers)
    return atoms, geom, C.bond_topology(geom, atoms.positions)


def test_topology_of_the_peptide() -> None:
    atoms, geom, bonds = _geom_and_bonds()
    assert len(bonds) == 41  # acyclic: N - 1 bonds
    kinds = {tuple(sorted((geom.symbols[i], geom.symbols[j]))) for i, j in bonds}
    assert kinds == {("C", "C"), ("C", "H"), ("C", "N"), ("C", "O"), ("H", "N")}


def test_bond_break_names_the_stretched_bond() -> None:
    atoms, geom, bonds = _geom_and_bonds()
    pos = atoms.positions.copy()
    direction = pos[4] - pos[3]
    pos[4] += direction / np.linalg.norm(direction) * 0.7  # N3-C4 to ~2.15 A
    check = C.BondBreak(geom, bonds, 2.0)
    assert check.check(C.Frame(0, 0.0, atoms.positions)) is None
    event = check.check(C.Frame(40, 0.02, pos))
    assert event is not None and event.kind == "bond_break"
    assert event.atoms == [3, 4] and event.elements == ["N", "C"]
    assert event.distance_angstrom == np.linalg.norm(pos[4] - pos[3])
    assert event.label == "N-C (3-4)"


def test_pair_thresholds_and_periodic_images() -> None:
    geom = C.Geometry(np.array([82, 53]), cell=np.diag([10.0, 10.0, 10.0]))
    pos = np.array([[0.2, 0.0, 0.0], [9.0, 0.0, 0.0]])  # 1.2 A apart through the boundary
    bonds = C.bond_topology(geom, pos)
    assert bonds.tolist() == [[0, 1]]
    check = C.BondBreak(geom, bonds, 2.0, {"Pb-I": 4.3})
    assert check.thresholds.tolist() == [4.3]
    assert check.check(C.Frame(0, 0, np.array([[0.2, 0, 0], [6.3, 0, 0]]))) is None  # 3.9 A
    event = check.check(C.Frame(1, 0, np.array([[0.2, 0, 0], [5.6, 0, 0]])))  # 4.6 A
    assert event is not None and event.distance_angstrom == np.float64(5.4) - 0.8


def test_atom_just_below_a_cell_face_is_wrapped_into_the_box() -> None:
    """np.mod(-1e-17, L) == L: such an atom (an MD of a crystal with atoms at 0) must not
    crash the periodic neighbour search."""
    geom = C.Geometry(np.array([29, 29]), cell=np.diag([7.22, 7.22, 7.22]))
    pos = np.array([[-1e-17, 0.0, 0.0], [7.0, 0.0, 0.0]])
    assert C.bond_topology(geom, pos).tolist() == [[0, 1]]  # 0.22 A through the face
    event = C.AtomCollapse(geom).check(C.Frame(0, 0.0, pos))
    assert event is not None and abs(event.distance_angstrom - 0.22) < 1e-9


def test_other_criteria() -> None:
    atoms, geom, bonds = _geom_and_bonds()
    pos = atoms.positions.copy()
    pos[10] = pos[0] + [0.3, 0, 0]
    event = C.AtomCollapse(geom).check(C.Frame(1, 0, pos))
    assert event.atoms == [0, 10] and abs(event.distance_angstrom - 0.3) < 1e-12
    h = int(np.nonzero(atoms.numbers == 1)[0][0])
    pos = atoms.positions.copy()
    pos[h] += [30.0, 0, 0]
    event = C.HDetached(geom).check(C.Frame(1, 0, pos))
    assert event.kind == "h_detached" and h in event.atoms and event.distance_angstrom > 25
    assert C.HDetached(geom).check(C.Frame(1, 0, atoms.positions)) is None
    forces = np.zeros((42, 3))
    forces[7] = [0, 150.0, 0]
    assert C.MaxForce(geom).check(C.Frame(1, 0, atoms.positions, forces)).atoms == [7]
    forces[7, 1] = np.nan
    assert C.NonFinite(geom).check(C.Frame(1, 0, atoms.positions, forces)).atoms == [7]
    temp = C.Temperature(300)
    assert temp.check(C.Frame(0, 0, pos, temperature=310)) is None
    assert temp.check(C.Frame(1, 0, pos, temperature=12000)).kind == "temperature"
    assert C.Temperature(300).check(C.Frame(1, 0, pos, temperature=10_200)) is None
    ref = atoms.positions
    dev = C.BondDeviation(geom, bonds, ref)
    stretched = ref.copy()
    stretched[23] += (ref[23] - ref[3]) / np.linalg.norm(ref[23] - ref[3]) * 0.6  # N-H
    assert dev.check(C.Frame(1, 0, stretched)).atoms == [3, 23]


def test_model_that_breaks_is_stopped_and_named(out_dir: Path) -> None:
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = f"{TESTS}:{env_path}" if env_path else str(TESTS)
    try:
        proc = launch("--model", "ase:breaking_models:make", "--model-option", "pull=3-4",
                      "--temperatures", "300", "--replicas", "1", "--time", "2ps",
                      "--out", str(out_dir))
    finally:
        os.environ["PYTHONPATH"] = env_path
    assert proc.returncode == 0, proc.stdout + proc.stderr  # a broken model is a result
    path = out_dir / "alanine-tetrapeptide" / "ase-breaking_models-make" / "300K" / "replica-00.h5"
    meta = h5md.read_meta(path)
    failure = meta["failure"]
    assert meta["status"] == "failed" and failure["kind"] == "bond_break"
    assert failure["atoms"] == [3, 4] and failure["elements"] == ["N", "C"]
    assert 2.0 < failure["distance_angstrom"] < 2.2  # caught in the step it broke
    # stopped within 10 steps: no stored frame after the event step + 10
    assert meta["steps"][-1] <= failure["step"] + 10
    # the every-step record before the event contains the event step itself
    pre = h5md.read_pre_failure(path)
    assert pre["step"][-1] == failure["step"]
    d = np.linalg.norm(pre["positions"][-1, 4] - pre["positions"][-1, 3])
    assert d == failure["distance_angstrom"]
    # same event when the finished trajectory is re-evaluated
    event = reevaluate(path)
    assert same_event(failure, event), (failure, event)
    frames = read(path.with_suffix(".failure.extxyz"), index=":")
    assert frames[-1].info["step"] == failure["step"]
    assert np.allclose(frames[-1].get_forces(), pre["forces"][-1])


def test_stability_report_counts_failures(out_dir: Path, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    # the tests folder (breaking_models) and this checkout, not whatever harness is installed
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((str(TESTS), str(TESTS.parent))))
    subprocess.run([sys.executable, "-m", "harness.launch", "--quiet", "--model",
                    "ase:breaking_models:make", "--model-option", "pull=3-4",
                    "--temperatures", "300", "--replicas", "2", "--time", "0.5ps",
                    "--out", str(out_dir)], env=env, capture_output=True, timeout=300)
    launch("--model", "harmonic", "--criteria", "non_finite", "--temperatures", "300",
           "--replicas", "2", "--time", "0.05ps", "--out", str(out_dir), check=True)
    report = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "analysis.cli", "stability", str(out_dir),
                           "--report-dir", str(report), "--export-failures",
                           str(tmp_path / "failures.extxyz")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((report / "stability.json").read_text())
    groups = {g["model"]: g for g in summary["groups"]}
    assert groups["ase-breaking_models-make"]["stable"] == 0
    assert groups["ase-breaking_models-make"]["failed"] == 2
    assert groups["ase-breaking_models-make"]["failure_kinds"] == {"bond_break": 2}
    assert 0 < groups["ase-breaking_models-make"]["median_time_to_failure_ps"] < 0.05
    assert groups["harmonic"]["stable"] == 2 and groups["harmonic"]["failed"] == 0
    assert summary["broken_bonds"] == {"C-N": {"ase-breaking_models-make 300 K": 2}}
    broken = [r["broken"] for r in summary["runs"] if r["broken"]]
    assert broken == ["N-C (3-4)", "N-C (3-4)"]
    surv = groups["ase-breaking_models-make"]["survival"]
    assert surv["fraction"][0] == 1.0 and surv["fraction"][-1] == 0.0
    assert (report / "survival.png").stat().st_size > 10_000
    assert "| C-N | 2 |" in (report / "stability.md").read_text()
    # the verdicts on simulated time: two failures within 0.1 ps are far above 0.5 per ns;
    # two completed runs of 0.05 ps are no evidence of stability
    verdicts = {v["model"]: v for v in summary["verdicts"]}
    assert verdicts["ase-breaking_models-make"]["decision"] == "differs"
    assert (verdicts["harmonic"]["decision"], verdicts["harmonic"]["reason"]) == (
        "inconclusive", "runs_too_short")
    assert verdicts["harmonic"]["scope"]["label"] == "2 runs x 50 fs, failures per ns"
    assert "| harmonic | 300 | inconclusive | 2 runs x 50 fs, failures per ns |" in proc.stdout
    frames = read(tmp_path / "failures.extxyz", index=":")
    assert len(frames) >= 2 and {f.info["event_kind"] for f in frames} == {"bond_break"}


def test_energy_drift_criterion() -> None:
    t = np.linspace(0, 10, 101)
    flat = C.energy_drift(t, -5.0 + 1e-5 * np.sin(t), 42, 0.5e-3)
    assert flat is None
    drifting = C.energy_drift(t, -5.0 + 0.084 * t, 42, 0.5e-3)  # 2 meV/atom/ps
    assert drifting.kind == "energy_drift" and abs(drifting.value - 2.0) < 1e-9
    assert drifting.step == 20000


def test_after_event_window_and_explosion_count(out_dir: Path) -> None:
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = f"{TESTS}:{env_path}" if env_path else str(TESTS)
    try:
        launch("--model", "ase:breaking_models:make", "--model-option", "pull=3-4",
               "--temperatures", "300", "--replicas", "1",
               "--time", "1ps", "--after-event", "20fs", "--out", str(out_dir))
    finally:
        os.environ["PYTHONPATH"] = env_path
    path = out_dir / "alanine-tetrapeptide" / "ase-breaking_models-make" / "300K" / "replica-00.h5"
    meta = h5md.read_meta(path)
    failure = meta["failure"]
    assert failure["kind"] == "bond_break" and failure["steps_after_event"] == 40
    assert failure["bonds_broken_by_end"] >= 1
    assert failure["step"] + 40 - 20 <= meta["steps"][-1] <= failure["step"] + 40 + 1


def test_failed_runs_are_results_unless_retried(out_dir: Path) -> None:
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = f"{TESTS}:{env_path}" if env_path else str(TESTS)
    args = ("--model", "ase:breaking_models:make", "--temperatures", "300", "--replicas", "1",
            "--time", "0.2ps", "--out", str(out_dir))
    try:
        first = launch(*args)
        again = launch(*args)
        retried = launch(*args, "--retry-failed")
    finally:
        os.environ["PYTHONPATH"] = env_path
    assert first.returncode == 0 and "1 failed" in first.stdout
    assert again.returncode == 0 and "0 failed, 0 interrupted, 1 already done" in again.stdout
    assert retried.returncode == 0 and "1 failed" in retried.stdout
    folder = out_dir / "alanine-tetrapeptide" / "ase-breaking_models-make" / "300K"
    assert sorted(p.name for p in folder.iterdir()) == [
        "replica-00.failure.extxyz", "replica-00.h5", "replica-00.log"]


# --- the stability verdict: failures per ns of simulated time -------------------------------

def _records(times_ps: list[float], failed: list[bool], target_ps: float, model: str = "m"):
    from analysis.trajectories import RunRecord

    return [RunRecord(Path(f"r{i}.h5"), "c", model, 300.0, i, "failed" if f else "completed",
                      t, target_ps, {"kind": "bond_break"} if f else None)
            for i, (t, f) in enumerate(zip(times_ps, failed, strict=True))]


def _verdict(times_ps: list[float], failed: list[bool], target_ps: float):
    from analysis.observables import stability
    from analysis.observables.stability import compute

    (group,) = compute.summarize(_records(times_ps, failed, target_ps))["groups"]
    return stability.verdict(group)


def test_short_runs_are_never_evidence_of_stability() -> None:
    """12 runs that completed 10 fs each: the old rule said `agrees`; simulated time says no."""
    v = _verdict([0.01] * 12, [False] * 12, 0.01)
    assert v.decision == "inconclusive" and v.reason == "runs_too_short"
    assert v.value == 0.0 and v.ci_high == pytest.approx(3.689 / 0.00012, rel=1e-3)
    assert v.scope["label"] == "12 runs x 10 fs, failures per ns"
    assert v.scope["exposure_ns"] == pytest.approx(0.00012) and v.scope["evidence_ns"] == 0
    assert "7.38 ns more in such runs without a failure would decide" in v.detail
    # even 1000 runs of 10 ps (10 ns, enough time under a constant hazard) cannot agree
    from analysis.observables.stability import rule

    many = rule.judge([10.0] * 1000, [False] * 1000, [10.0] * 1000)
    assert many.rate.high < rule.MAX_FAILURES_PER_NS
    assert (many.decision, many.reason) == ("inconclusive", "runs_too_short")
    # runs still going at 600 ps of 1000 count (past 500 ps): 7.2 ns, 0.18 ns short of 7.38;
    # the intact fraction is described where the runs are
    running = rule.judge([600.0] * 12, [False] * 12, [1000.0] * 12)
    assert (running.decision, running.reason) == ("inconclusive", "too_little_time")
    assert running.survival_at_ps == 600.0 and running.needed_ns == pytest.approx(0.1778,
                                                                                  abs=1e-3)


def test_long_runs_without_failure_agree_and_a_late_failure_weighs_less() -> None:
    v = _verdict([1000.0] * 12, [False] * 12, 1000.0)
    assert (v.decision, v.agrees, v.reason) == ("agrees", True, "rate_within_tolerance")
    assert v.ci_high == pytest.approx(3.689 / 12, rel=1e-3) and v.tolerance == 0.5
    assert v.unit == "failures/ns" and v.scope["label"] == "12 runs x 1000 ps, failures per ns"
    assert "fraction intact at 1000 ps 1 [1, 1]" in v.detail
    # one failure after 999 ps: 12 ns simulated, at most 0.464 per ns: still agrees
    late = _verdict([999.0] + [1000.0] * 11, [True] + [False] * 11, 1000.0)
    assert late.decision == "agrees" and late.ci_high == pytest.approx(0.4643, abs=1e-3)
    # the same failure after 1 ps: 11 ns simulated, up to 0.506 per ns: not decided
    early = _verdict([1.0] + [1000.0] * 11, [True] + [False] * 11, 1000.0)
    assert (early.decision, early.reason) == ("inconclusive", "too_little_time")
    assert early.value > late.value and early.ci_high > 0.5
    # the failed share is only a description: the same 1 of 12 for both
    assert "failed share 0.0833 [0.0149, 0.354]" in late.detail
    assert "failed share 0.0833 [0.0149, 0.354]" in early.detail


def test_failures_decide_unstable_at_any_run_length() -> None:
    v = _verdict([0.5] * 9 + [0.1, 0.2, 0.3], [False] * 9 + [True] * 3, 0.5)
    assert (v.decision, v.reason) == ("differs", "rate_above_tolerance") and v.ci_low > 0.5
    assert v.scope["label"] == "12 runs x 0.5 ps, failures per ns"


def test_stability_rule_error_rates_on_known_failure_rates() -> None:
    """The rule on synthetic run sets of 12 runs (exponential failures, 200 experiments each):
    benchmarks/stability_calibration.py measures the full table of docs/statistics.md."""
    from stats_synthetic import stability_decisions

    assert stability_decisions(0.0, 12, 0.01, 200, seed=1)["agrees"] == 0.0  # 12 x 10 fs
    assert stability_decisions(0.0, 12, 1000.0, 200, seed=2)["agrees"] == 1.0  # 12 x 1 ns
    high = stability_decisions(5.0, 12, 1000.0, 200, seed=3)  # 10 x the tolerance
    assert high["differs"] >= 0.99 and high["agrees"] == 0.0
    at = stability_decisions(0.5, 12, 1000.0, 200, seed=4)  # truth at the tolerance
    assert at["agrees"] <= 0.05 and at["differs"] <= 0.05
    assert stability_decisions(0.1, 12, 1000.0, 200, seed=5)["differs"] == 0.0
    late = stability_decisions(2.0, 100, 100.0, 200, seed=6, shape=3.0)  # failing once drifted
    assert late["agrees"] == 0.0
