"""Models served through the i-PI driver give the model's own forces; physics checks (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from conftest import launch
from harness import h5md, models

CHALLENGE = "alanine-tetrapeptide"


def _run(out_dir: Path, model: str, time: str, *extra: str) -> Path:
    launch("--model", model, "--temperatures", "300", "--replicas", "1", "--time", time,
           "--stride", "10", "--out", str(out_dir), *extra, check=True, timeout=600)
    return out_dir / CHALLENGE / model / "300K" / "replica-00.h5"


def _forces_from_calculator(path: Path, family: str, frame: int) -> tuple[np.ndarray, np.ndarray]:
    meta = h5md.read_meta(path)
    frames = h5md.read_frames(path)
    fam = models.get_family(family)
    model_file = meta["run_spec"]["model_file"]
    calc = fam.ase_calculator(Path(model_file) if model_file else None, {})
    atoms = Atoms(numbers=meta["species"], positions=frames["positions"][frame])
    atoms.calc = calc
    return frames["forces"][frame], atoms.get_forces()


def test_registry_lists_families() -> None:
    found = models.families()
    assert {"gap", "xtb", "harmonic"} <= set(found)
    for family in found.values():
        assert family.description


def test_xtb_forces_served_through_ipi_equal_tblite(out_dir: Path) -> None:
    path = _run(out_dir, "xtb", "0.02ps")
    # frame 0 is the driver's first, fresh SCF: identical to a fresh calculator. i-PI converts
    # eV/A -> Hartree/Bohr -> eV/A on the way, which costs ~1e-15 relative.
    stored, direct = _forces_from_calculator(path, "xtb", 0)
    np.testing.assert_allclose(stored, direct, atol=1e-8, rtol=0)
    # later frames restart the SCF from the previous step's density: same to SCF tolerance
    stored, direct = _forces_from_calculator(path, "xtb", 2)
    np.testing.assert_allclose(stored, direct, atol=2e-3, rtol=0)
    meta = h5md.read_meta(path)
    assert meta["status"] == "completed"
    assert meta["provenance"]["versions"]["tblite"] != "not installed"


def test_demo_gap_ships_with_metadata() -> None:
    family = models.get_family("gap")
    path = family.default_model_file(CHALLENGE)
    assert path is not None and path.is_file(), "the demo GAP must ship in the repository"
    assert family.model_elements(path) == {"C", "H", "N", "O"}
    meta = json.loads((path.parent / "metadata.json").read_text())
    text = json.dumps(meta)
    assert "rmse" in text.lower() and "GFN2-xTB" in text
    files = family.model_files(path)
    size = sum(p.stat().st_size for p in files)
    assert size < 8e6, f"demo GAP is {size / 1e6:.1f} MB"
    # the metadata describes these very files (a refit must rewrite both together)
    assert {p.name: p.stat().st_size for p in files} == meta["model_files"]["files"]


def test_gap_forces_served_through_ipi_equal_quippy(out_dir: Path) -> None:
    path = _run(out_dir, "gap", "0.01ps")
    stored, direct = _forces_from_calculator(path, "gap", 1)
    np.testing.assert_allclose(stored, direct, atol=1e-8, rtol=0)
    meta = h5md.read_meta(path)
    assert len(meta["provenance"]["model_sha256"]) == 64
    assert meta["provenance"]["model_metadata"]


@pytest.mark.slow
def test_xtb_mean_temperature_12x2ps(out_dir: Path) -> None:
    """12 x 2 ps of GFN2-xTB at 300 K: mean temperature within 3% (after 0.5 ps equilibration)."""
    launch("--model", "xtb", "--temperatures", "300", "--replicas", "12", "--time", "2ps",
           "--out", str(out_dir), check=True, timeout=3600)
    temps, temps_all = [], []
    for replica in range(12):
        path = out_dir / CHALLENGE / "xtb" / "300K" / f"replica-{replica:02d}.h5"
        meta = h5md.read_meta(path)
        assert meta["status"] == "completed", meta["failure"]  # no false alarm of the watchdog
        assert meta["run_spec"]["watchdog"]["criteria"] == [
            "non_finite", "bond_break", "atom_collapse", "temperature"]
        frames = h5md.read_frames(path)
        assert len(frames["step"]) == 4000 // 20 + 1
        temps.append(frames["temperature"][frames["time"] >= 0.5])
        temps_all.append(frames["temperature"])
    mean = float(np.mean(np.concatenate(temps)))
    print(f"mean T after 0.5 ps: {mean:.1f} K; over all frames: "
          f"{np.mean(np.concatenate(temps_all)):.1f} K")
    assert abs(mean - 300.0) < 0.03 * 300.0
