"""Challenge III through the real launcher (i-PI + driver, periodic cell), then the analysis."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase.io import read

from analysis.cli import main as analysis_main
from conftest import launch
from harness import challenges, h5md

CHALLENGE = "naphthyridine-graphene"


def _h5(out: Path, model: str, temp: str) -> Path:
    return out / CHALLENGE / model / temp / "replica-00.h5"


def test_periodic_challenge_runs_and_analyses(out_dir: Path, tmp_path: Path) -> None:
    """A few steps with a nearly flat harmonic well: the periodic cell reaches the driver and
    the file; analysis surface reads the run back with the start's geometry."""
    launch("--challenge", CHALLENGE, "--model", "harmonic", "--model-option", "k=1e-5",
           "--criteria", "non_finite", "--temperatures", "300", "--replicas", "1",
           "--time", "10fs", "--stride", "5", "--out", str(out_dir), check=True, timeout=300)
    path = _h5(out_dir, "harmonic", "300K")
    meta = h5md.read_meta(path)
    assert meta["status"] == "completed" and meta["n_frames"] == 5
    frames = h5md.read_frames(path)
    start = read(challenges.load(CHALLENGE).starts[0])
    np.testing.assert_allclose(frames["box"][-1], np.asarray(start.cell), atol=1e-9)
    np.testing.assert_allclose(frames["positions"][0], start.positions, atol=1e-6)
    report = tmp_path / "report"
    assert analysis_main(["surface", str(out_dir), "--report-dir", str(report)]) == 0
    summary = json.loads((report / "surface.json").read_text())
    (group,) = summary["groups"]
    assert group["frames"] == 5 and group["runs_desorbed"] == 0
    assert abs(group["D_mean"] - start.info["D_angstrom"]) < 0.05


@pytest.mark.slow
def test_xtb_md_of_challenge_three(out_dir: Path, tmp_path: Path) -> None:
    """0.2 ps of periodic GFN2-xTB MD at 500 K through the harness (400 steps of 0.5 fs:
    15-60 min on a shared 2-core machine): finite energies, the molecule stays adsorbed."""
    launch("--challenge", CHALLENGE, "--model", "xtb", "--temperatures", "500",
           "--replicas", "1", "--time", "0.2ps", "--stride", "4", "--stall-timeout", "900",
           "--out", str(out_dir), check=True, timeout=4 * 3600)
    path = _h5(out_dir, "xtb", "500K")
    meta = h5md.read_meta(path)
    assert meta["status"] == "completed"
    assert meta["times_ps"][-1] == pytest.approx(0.2)
    frames = h5md.read_frames(path)
    assert np.all(np.isfinite(frames["potential"])) and np.all(np.isfinite(frames["forces"]))
    report = tmp_path / "report"
    assert analysis_main(["surface", str(out_dir), "--report-dir", str(report)]) == 0
    (group,) = json.loads((report / "surface.json").read_text())["groups"]
    assert group["runs_desorbed"] == 0 and 2.5 < group["D_mean"] < 5.0
