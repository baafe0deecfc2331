"""``analysis surface`` on H5MD files written by the harness's own writer with known content."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from ase.data import atomic_masses
from ase.io import read

from analysis.cli import main as analysis_main
from analysis.observables import surface as surface_command
from analysis.observables.surface import compute as surface
from analysis.observables.surface.geometry import SurfaceGroups, analyse
from harness import challenges, h5md
from harness.plan import RunSpec, output_path

CHALLENGE = "naphthyridine-graphene"


def _spec(out: Path, model: str, temperature: float, replica: int, n_steps: int) -> RunSpec:
    challenge = challenges.load(CHALLENGE)
    return RunSpec(challenge=CHALLENGE, model=model, model_label=model, model_file=None,
                   temperature_K=temperature, replica=replica,
                   start_file=str(challenge.starts[0]), seed=1, dt_fs=0.5, n_steps=n_steps,
                   stride=1, thermostat="langevin", thermostat_tau_fs=100.0, periodic=True,
                   out_file=str(output_path(out, CHALLENGE, model, temperature, replica)))


def write_run(out: Path, model: str, temperature: float, replica: int,
              heights: np.ndarray, k_spring: float = 0.0, d0: float = 3.4) -> Path:
    """A completed trajectory: the start structure with the molecule moved rigidly to the given
    heights; forces: +-F on molecule/sheet along z with F = -k (D - d0)."""
    challenge = challenges.load(CHALLENGE)
    atoms = read(challenge.starts[0])
    groups = SurfaceGroups.from_table(challenge.groups, atoms.numbers)
    cell = np.asarray(atoms.cell)
    base = analyse(atoms.positions, atoms.numbers, groups, cell)
    spec = _spec(out, model, temperature, replica, len(heights) - 1)
    path = Path(spec.out_file)
    h5md.create(path, atoms.numbers, atoms.get_masses(), True, json.dumps(asdict(spec)),
                {"model": model}, atoms.positions, cell)
    frames = []
    masses = atomic_masses[atoms.numbers]
    for step, height in enumerate(heights):
        pos = atoms.positions.copy()
        pos[groups.molecule] += (height - base["D"][0]) * base["normal"][0]
        force = np.zeros_like(pos)
        total = -k_spring * (height - d0)
        force[groups.molecule, 2] = total * masses[groups.molecule] / masses[groups.molecule].sum()
        force[groups.surface, 2] = -total / len(groups.surface)
        frames.append({"step": step, "time": step * 5e-4, "positions": pos,
                       "velocities": np.zeros_like(pos), "forces": force, "potential": 0.0,
                       "kinetic": 0.0, "conserved": 0.0, "temperature": temperature,
                       "box": cell})
    h5md.append(path, frames)
    h5md.set_status(path, "completed")
    return path


def test_series_desorption_events_and_free_energy(tmp_path: Path, monkeypatch) -> None:
    """Known heights give the same D (read in several chunks); desorption is found at the right
    frame; F(D) from both estimators of a harmonic spring returns the spring constant."""
    monkeypatch.setattr(surface, "CHUNK_FRAMES", 700)
    rng = np.random.default_rng(3)
    k, d0, temperature = 0.5, 3.5, 300.0
    sigma = np.sqrt(8.617333262e-5 * temperature / k)
    heights = rng.normal(d0, sigma, 3000)
    bound = write_run(tmp_path, "toy", temperature, 0, heights, k, d0)
    escape = np.concatenate([np.full(10, 3.5), np.linspace(3.5, 9.0, 20), np.full(5, 9.0),
                             np.full(5, 4.0)])
    leaving = write_run(tmp_path, "toy", temperature, 1, escape)
    series = surface.trajectory_series(bound)
    assert series is not None
    np.testing.assert_allclose(series.D, heights, atol=1e-9)
    np.testing.assert_allclose(series.force_D, -k * (heights - d0), atol=1e-9)
    event = surface.trajectory_series(leaving).desorption(8.0)
    first = int(np.argmax(escape > 8.0))
    assert event["desorbed"] and event["first_time_ps"] == pytest.approx(first * 5e-4)
    assert event["fraction_beyond"] == pytest.approx(np.mean(escape > 8.0))
    assert not series.desorption(8.0)["desorbed"]
    from analysis.observables.surface import free_energy

    prof = surface.profiles([series], temperature, d_range=(2.9, 4.1))
    for name in ("histogram", "mean force"):
        k_fit, d_fit = free_energy.spring_constant(prof[name])
        assert abs(k_fit / k - 1) < 0.15, name  # 3000 samples only: loose here, tight in
        assert abs(d_fit - d0) < 0.03, name     # test_surface_geometry on 400k samples


def test_analysis_surface_command_writes_report(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    for model in ("xtb", "toy"):
        for temp in (300.0, 500.0):
            for replica in range(2):
                shift = 0.0 if model == "xtb" else 0.6
                write_run(tmp_path, model, temp, replica, rng.normal(3.4 + shift, 0.2, 200))
    report = tmp_path / "rep"
    assert analysis_main(["surface", str(tmp_path), "--report-dir", str(report)]) == 0
    summary = json.loads((report / "surface.json").read_text())
    assert len(summary["groups"]) == 4 and len(summary["runs"]) == 8
    toy = next(g for g in summary["groups"] if g["model"] == "toy" and g["temperature_K"] == 300)
    assert toy["D_mean"] == pytest.approx(4.0, abs=0.05)
    for name in ("distributions-300K.png", "free-energy-500K.png", "maps-toy-300K.png"):
        assert (report / name).stat().st_size > 10_000
    assert "| toy | 300 | 2 | 400 |" in (report / "surface.md").read_text()
    sections = surface_command.report_sections(sorted(tmp_path.rglob("replica-*.h5")),
                                                tmp_path / "work")
    assert len(sections) == 1 and sections[0].challenge == CHALLENGE
    verdicts = {(v.model, v.temperature_K): v for v in sections[0].verdicts}
    assert set(verdicts) == {("toy", 300.0), ("toy", 500.0)}
    assert verdicts[("toy", 300.0)].agrees is False  # shifted by 0.6 A = 3 sigma
    assert all(fig.path.is_file() for fig in sections[0].figures)


def test_analysis_surface_without_surface_runs_is_a_user_error(tmp_path: Path, capsys) -> None:
    assert analysis_main(["surface", str(tmp_path / "nothing")]) == 2
    assert "no such file or folder" in capsys.readouterr().err


def test_scan_report_section_shows_reference_and_judges_other_scans(tmp_path: Path) -> None:
    from analysis.observables import scan as scan_command
    from analysis.observables.scan import compute as scan

    files = [write_run(tmp_path / "runs", "toy", 300.0, 0, np.full(5, 3.4))]
    work = tmp_path / "work"
    (work / "scan").mkdir(parents=True)
    toy = scan.ScanResult(model="toy", distances=[3.0, 3.5, 8.0], energies=[0.1, 0.0, 0.7],
                          separated_energy=0.6, relaxed_D=3.5, relax_steps=0,
                          relax_converged=False)
    (work / "scan" / "scan-toy.json").write_text(toy.to_json())
    (section,) = scan_command.report_sections(files, work)
    assert {row["model"] for row in section.data["scans"]} == {"xtb", "toy"}
    (verdict,) = section.verdicts
    assert verdict.model == "toy" and verdict.agrees is False  # dU(inf) 0.6 vs 0.796 eV
    assert "-0.196 eV" in verdict.detail
    assert section.figures[0].path.stat().st_size > 10_000


def test_distance_distribution_divergence_equals_scipy() -> None:
    from scipy.spatial.distance import jensenshannon

    rng = np.random.default_rng(3)
    a, b = rng.normal(3.3, 0.1, 5000), rng.normal(3.5, 0.2, 5000)
    edges = np.arange(2.5, 4.5, 0.05)
    hp, _ = np.histogram(a, bins=edges)
    hq, _ = np.histogram(b, bins=edges)
    expected = jensenshannon(hp, hq, base=2) ** 2
    assert surface.js_divergence(a, b, edges) == pytest.approx(expected, rel=1e-12)
    assert np.isnan(surface.js_divergence(a, np.array([10.0]), edges))  # nothing in range
