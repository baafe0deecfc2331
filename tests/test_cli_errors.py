"""Bad input: one line naming the problem and the fix, exit code 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import launch

CASES = {
    "unknown model": (["--model", "nosuchmodel"], "unknown model 'nosuchmodel'"),
    "unknown challenge": (["--model", "xtb", "--challenge", "nope"], "unknown challenge 'nope'"),
    "missing model file": (["--model", "gap", "--model-file", "/nonexistent/gap.xml"],
                           "no such file"),
    "negative temperature": (["--model", "xtb", "--temperatures", "-300"], "not a temperature"),
    "malformed time": (["--model", "xtb", "--time", "2 parsecs"], "is not a duration"),
    "zero time": (["--model", "xtb", "--time", "0ps"], "must be positive"),
    # default stride: 20 steps of 0.5 fs = 10 fs per frame; 5 fs would store no frame after
    # the start and every run would end `failed` at step 0
    "shorter than one frame": (["--model", "harmonic", "--time", "5fs"],
                               "--time 5fs: the run (5 fs) is shorter than one frame interval "
                               "(20 steps of 0.5 fs = 10 fs); give --time 10fs or more"),
    "stride beyond the run": (["--model", "harmonic", "--time", "10fs", "--stride", "40"],
                              "shorter than one frame interval (40 steps of 0.5 fs = 20 fs)"),
    "no model": ([], "no model given"),
    "bad replicas": (["--model", "xtb", "--replicas", "0"], "at least 1"),
    "no saves": (["--model", "xtb", "--flush-every", "0"], "--flush-every 0: give at least 1"),
    "ramp going down": (["--model", "harmonic", "--protocol", "ramp", "--ramp",
                         "3000K:300K:500K/ps"], "the ramp must go up"),
    "ramp of zero rate": (["--model", "harmonic", "--protocol", "ramp", "--ramp",
                           "300K:3000K:0K/ps"], "the rate must be above 0 K/ps"),
    "ramp without its protocol": (["--model", "harmonic", "--ramp", "300K:3000K:500K/ps"],
                                  "--ramp belongs to --protocol ramp"),
    "ramp protocol without a ramp": (["--model", "harmonic", "--protocol", "ramp"],
                                     "--protocol ramp needs --ramp"),
    "zero time step in a sweep": (["--model", "harmonic", "--protocol", "dt-sweep", "--dts",
                                   "0.5fs,0fs"], "--dts 0fs: a time step must be above 0"),
    "negative time step in a sweep": (["--model", "harmonic", "--protocol", "dt-sweep",
                                       "--dts=-1fs"], "--dts -1fs: a time step must be above"),
    "zero time step": (["--model", "harmonic", "--dt", "0fs"],
                       "--dt must be positive, got '0fs'"),
    "negative time step": (["--model", "harmonic", "--dt=-0.5"],
                           "--dt must be positive, got '-0.5'"),
    "negative ramp rate": (["--model", "harmonic", "--protocol", "ramp",
                            "--ramp=300K:3000K:-500K/ps"], "the rate must be above 0 K/ps"),
    "time step sweep with --dt": (["--model", "harmonic", "--protocol", "dt-sweep", "--dts",
                                   "1fs", "--dt", "1fs"], "--dt does not apply"),
    "sweep without its protocol": (["--model", "harmonic", "--dts", "1fs"],
                                   "--dts belongs to --protocol dt-sweep"),
}


def _assert_user_error(proc, expected: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_flags(case: str, out_dir: Path) -> None:
    args, expected = CASES[case]
    _assert_user_error(launch(*args, "--out", str(out_dir), "--dry-run"), expected)
    assert not out_dir.exists()


def test_corrupt_model_file(tmp_path: Path) -> None:
    bad = tmp_path / "gap.xml"
    bad.write_text("<GAP_params><unclosed>")
    _assert_user_error(launch("--model", "gap", "--model-file", str(bad), "--dry-run"),
                       "not a readable GAP xml")


def test_model_missing_elements(tmp_path: Path) -> None:
    partial = tmp_path / "gap.xml"
    partial.write_text('<GAP_params label="x"><GAP_data e0="0"><e0 Z="1" value="-1"/>'
                       '<e0 Z="6" value="-1"/><e0 Z="7" value="0"/></GAP_data><gpSparse>'
                       '<gpCoordinates><descriptor>distance_2b cutoff=5 Z1=1 Z2=6</descriptor>'
                       '</gpCoordinates></gpSparse></GAP_params>')
    _assert_user_error(launch("--model", "gap", "--model-file", str(partial), "--dry-run"),
                       "needs N,O")


def test_unknown_config_key(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text('model = "xtb"\ntemprature = [300]\n')
    _assert_user_error(launch("--config", str(cfg), "--dry-run"), "unknown key 'temprature'")


def test_config_keys_are_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text('model = "xtb"\ntemperatures = [350]\nreplicas = 3\ntime = "1ps"\n')
    proc = launch("--config", str(cfg), "--out", str(tmp_path / "o"), "--dry-run", check=True)
    assert "T = 350 K, 3 replicas, 1ps each" in proc.stdout
    assert proc.stdout.count(" to do  -> ") == 3


def test_flag_overrides_config(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text('model = "xtb"\nreplicas = 3\ntemperatures = [300]\n')
    proc = launch("--config", str(cfg), "--replicas", "1", "--dry-run", "--out",
                  str(tmp_path / "o"), check=True)
    assert proc.stdout.count(" to do  -> ") == 1


def test_tea2023_preset_plan(tmp_path: Path) -> None:
    proc = launch("--model", "xtb", "--preset", "tea2023", "--dry-run", "--out",
                  str(tmp_path / "o"), check=True)
    assert "T = 300, 500, 700 K, 12 replicas, 1ns each" in proc.stdout
    assert "36 runs" in proc.stdout


@pytest.mark.parametrize("command", [
    ["phonons", "--challenge", "alanine-tetrapeptide", "--model", "snap"],
    ["scan", "--challenge", "naphthyridine-graphene", "--model", "snap", "--model-file",
     "harness/models/demo/snap-alanine-tetrapeptide/snap.snapcoeff"],
])
def test_single_point_commands_refuse_lammps_only_models(command: list[str],
                                                        tmp_path: Path) -> None:
    # phonons and scan call the model's ASE calculator; a pair-style-only model has none
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "analysis.cli", *command, "--out",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
                          cwd=repo)
    _assert_user_error(proc, "runs only inside LAMMPS")
