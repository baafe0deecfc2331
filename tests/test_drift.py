"""Conserved-energy drift and speed per run: real i-PI runs of conservative and non-conservative
models, ``--ensemble nve``, the model's time per frame, ``analysis speed``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from conftest import analysis, launch, plan
from harness import h5md
from harness.errors import UserError
from harness.stability import criteria as C

TESTS = Path(__file__).resolve().parent
WELL = "ase:perovskite_models:isotropic_well"
ROTATING = "ase:breaking_models:rotating_well"


def test_drift_fit_leaves_out_the_first_fifth() -> None:
    t = np.linspace(0.0, 1.0, 101)
    slope = 0.042 * 3  # eV/ps over 42 atoms: 3 meV/atom/ps
    energy = -5.0 + slope * t
    energy[t < 0.19] += 0.5 * np.exp(-t[t < 0.19] / 0.02)  # equilibration transient
    assert abs(C.drift_mev_per_atom_ps(t, energy, 42) - 3.0) < 1e-9
    # the same transient inside the fit: a different number
    assert abs(C.drift_mev_per_atom_ps(t, energy, 42, discard_fraction=0.0) - 3.0) > 0.5
    event = C.energy_drift(t, energy, 42, 0.5e-3)
    assert event.kind == "energy_drift" and abs(event.value - 3.0) < 1e-9
    assert "beyond the limit of 1 meV/atom/ps" in event.message
    assert C.energy_drift(t, -5.0 + 0.5 * slope / 3 * t, 42, 0.5e-3) is None  # 0.5 < 1
    assert C.drift_mev_per_atom_ps(t[:3], energy[:3], 42) is None  # 2 frames after the cut


def test_ensemble_nve_input_plan_and_refusals(tmp_path: Path) -> None:
    from harness.engines import ipi_input

    nve = plan(tmp_path, "--model", "harmonic", "--ensemble", "nve", "--replicas", "1",
               "--temperatures", "300")[0]
    nvt = plan(tmp_path, "--model", "harmonic", "--replicas", "1", "--temperatures", "300")[0]
    assert nve.ensemble == "nve" and nve.model_label == "harmonic-nve"
    assert nvt.ensemble == "nvt" and nvt.model_label == "harmonic"
    assert nve.seed == nvt.seed  # same starting velocities, only the thermostat is gone
    root = ET.fromstring(ipi_input.make_input(nve, "x/sock", Path(nve.start_file)))
    dynamics = root.find("system/motion/dynamics")
    assert dynamics.get("mode") == "nve" and dynamics.find("thermostat") is None
    assert root.find("system/motion/fixcom").text.strip() == "false"
    root = ET.fromstring(ipi_input.make_input(nvt, "x/sock", Path(nvt.start_file)))
    assert root.find("system/motion/dynamics").get("mode") == "nvt"
    assert root.find("system/motion/dynamics/thermostat").get("mode") == "langevin"
    with pytest.raises(UserError, match="--ensemble 'npt': choose one of nvt, nve"):
        plan(tmp_path, "--model", "harmonic", "--ensemble", "npt")
    proc = launch("--model", "harmonic", "--out", str(tmp_path), "--dry-run", "--ensemble",
                  "nve", "--engine", "lammps")
    assert proc.returncode == 2 and "--ensemble nve needs --engine ipi" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two launches side by side: the isotropic well in NVE at 0.25 fs (2000 steps); the well
    and the rotating well (same seeds) in the default NVT (500 steps of 0.5 fs)."""
    out = tmp_path_factory.mktemp("drift") / "runs"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p))
    common = ("--quiet", "--temperatures", "300", "--replicas", "1", "--criteria",
              "non_finite", "--out", str(out), "--stall-timeout", "600")
    commands = [("--model", WELL, "--ensemble", "nve", "--dt", "0.25", "--time", "0.5ps",
                 "--stride", "20", "--jobs", "1"),
                ("--model", f"{WELL},{ROTATING}", "--dt", "0.5", "--time", "0.25ps",
                 "--stride", "10", "--jobs", "2")]
    procs = [subprocess.Popen([sys.executable, "-m", "harness.launch", *common, *c], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for c in commands]
    for proc in procs:
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output
    return out / "alanine-tetrapeptide"


def _file(runs: Path, label: str) -> Path:
    return runs / label / "300K" / "replica-00.h5"


def test_isotropic_well_in_nve_conserves_energy(runs: Path) -> None:
    from analysis.speed import run_health

    path = _file(runs, "ase-perovskite_models-isotropic_well-nve")
    meta = h5md.read_meta(path)
    assert meta["status"] == "completed" and meta["provenance"]["ensemble"] == "nve"
    assert meta["provenance"]["thermostat"] is None
    health = run_health(path)
    print(f"isotropic well, NVE, 0.25 fs: drift {health.drift_mev_per_atom_ps:.3g} meV/atom/ps")
    assert abs(health.drift_mev_per_atom_ps) < 1e-3 and not health.drift_flagged
    # the model's time per frame: recorded, cumulative, less than the wall time it sits in
    timing = h5md.read_timing(path)
    model, wall = timing["model_time"], timing["wall_clock"]
    assert np.all(np.isfinite(model)) and np.all(np.diff(model) >= 0) and model[-1] > 0
    assert model[-1] - model[0] < wall[-1] - wall[0]
    assert 0 < health.model_ms < health.step_ms and health.harness_ms > 0
    assert health.steps_timed >= 0.9 * meta["run_spec"]["n_steps"]


def test_non_conservative_forces_are_flagged(runs: Path) -> None:
    from analysis.speed import run_health

    rotating = run_health(_file(runs, "ase-breaking_models-rotating_well"))
    well = run_health(_file(runs, "ase-perovskite_models-isotropic_well"))
    print(f"NVT, 0.5 fs: rotating well {rotating.drift_mev_per_atom_ps:.3g}, "
          f"well {well.drift_mev_per_atom_ps:.3g} meV/atom/ps")
    assert rotating.drift_flagged and rotating.drift_mev_per_atom_ps > 1.0
    assert "beyond the limit of 1 meV/atom/ps" in rotating.drift_reason
    # the same seed and thermostat without the rotation: not flagged
    assert not well.drift_flagged and abs(well.drift_mev_per_atom_ps) < 0.5


def test_speed_command_tables(runs: Path) -> None:
    proc = analysis("speed", str(runs), "--json")
    assert proc.returncode == 0, proc.stderr
    tables = json.loads(proc.stdout)
    speed = {r["model"]: r for r in tables["speed"]}
    assert set(speed) == {"ase-perovskite_models-isotropic_well-nve",
                          "ase-perovskite_models-isotropic_well",
                          "ase-breaking_models-rotating_well"}
    for row in speed.values():
        assert row["atoms"] == 42 and row["accelerator"] == "CPU"
        total = row["total_ms_per_step"]
        assert abs(row["model_ms_per_step"] + row["harness_ms_per_step"] - total) < 1e-9
        assert abs(row["us_per_atom_step"] - total * 1e3 / 42) < 1e-9
        dt_fs = 0.25 if row["ensemble"] == "nve" else 0.5
        assert abs(row["ns_per_day_per_replica"] - dt_fs * 1e-6 / (total * 1e-3) * 86400) \
            < 1e-6 * row["ns_per_day_per_replica"]
        assert row["ns_per_day_per_node"] > 0 and row["stable_ns_per_device_hour"] > 0
    drift = {r["model"]: r for r in tables["drift"]}
    assert drift["ase-breaking_models-rotating_well"]["flagged"] == 1
    assert drift["ase-perovskite_models-isotropic_well-nve"]["flagged"] == 0
    text = analysis("speed", str(runs)).stdout
    assert "| model | ensemble | runs | atoms | model (ms/step) | harness (ms/step) |" in text
    assert "- ase-breaking_models-rotating_well, 300 K, replica 0: conserved energy drifts" \
        in text
