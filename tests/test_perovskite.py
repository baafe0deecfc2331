"""Challenge IV (MAPbI3): structure, starts, stability thresholds and the four observables,
each checked against an analytic case or an independent implementation."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import units
from ase.io import read

from analysis.observables.orientation import compute as orientation
from analysis.observables.phonons.compute import EV_A2_AMU_TO_CM, harmonic_frequencies
from analysis.observables.rdf import compute as rdf
from analysis.observables.spectrum import compute as spectrum
from conftest import REPO, launch
from conftest import analysis as _analysis
from harness import challenges

MAPBI3 = REPO / "harness" / "challenges" / "mapbi3"
#: fs per internal time unit of (eV, A, amu).
FS_PER_TIME_UNIT = np.sqrt(units._amu * 1e-20 / units._e) * 1e15


# --- challenge ---------------------------------------------------------------------------

def test_challenge_structure_and_thresholds() -> None:
    ch = challenges.load("mapbi3")
    assert ch.periodic and len(ch.starts) == 12
    assert ch.stability == {"bond_break_angstrom": 2.0, "pair_thresholds": {"Pb-I": 4.3}}
    atoms = read(ch.starts[0])
    assert len(atoms) == 96 and atoms.get_chemical_formula() == "C8H48I24N8Pb8"
    assert np.allclose(atoms.cell.cellpar()[3:], 90)
    # every Pb sits in an octahedron of six I at ~3.18 A; C-N bonds 1.48 A
    d = atoms.get_all_distances(mic=True)
    sym = np.array(atoms.get_chemical_symbols())
    pb_i = np.sort(d[np.ix_(sym == "Pb", sym == "I")], axis=1)
    assert np.all(np.abs(pb_i[:, :6] - 3.18) < 0.02) and pb_i[:, 6].min() > 5.0
    groups = ch.groups
    assert np.allclose(d[groups["carbon"], groups["nitrogen"]], 1.481, atol=0.002)

    from harness.config import watchdog_settings
    from harness.stability.watchdog import WatchdogSettings, build_frame_criteria

    settings = WatchdogSettings.from_dict(watchdog_settings(
        {"after_event": None, "criteria": None}, ch, 0.5))
    checks = build_frame_criteria(settings, atoms.numbers, atoms.positions,
                                  np.asarray(atoms.cell))
    bond = next(c for c in checks if c.name == "bond_break")
    pairs = {tuple(sorted((sym[i], sym[j]))): t for (i, j), t in zip(bond.bonds,
                                                                      bond.thresholds,
                                                                      strict=True)}
    assert pairs == {("I", "Pb"): 4.3, ("C", "N"): 2.0, ("C", "H"): 2.0, ("H", "N"): 2.0}
    assert np.sum([{sym[i], sym[j]} == {"Pb", "I"} for i, j in bond.bonds]) == 48


def test_starts_are_reproducible_and_differ(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(MAPBI3 / "make_starts.py"), "--outdir",
                           str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    flips = set()
    for k in range(12):
        new = read(tmp_path / f"start-{k:02d}.xyz")
        shipped = read(MAPBI3 / "starts" / f"start-{k:02d}.xyz")
        assert np.allclose(new.positions, shipped.positions, atol=1e-7)
        flips.add(shipped.info["cation_flips"])
        d = shipped.get_all_distances(mic=True)
        np.fill_diagonal(d, 9)
        assert d.min() > 0.9
    assert len(flips) >= 10  # orientations differ between starts


# --- spectrum ----------------------------------------------------------------------------

def test_vacf_blocks_are_exact() -> None:
    rng = np.random.default_rng(1)
    vel = rng.normal(size=(1003, 5, 3))
    weights = rng.uniform(1, 3, 5)
    acc = spectrum.VACFAccumulator(37)
    acc.add_blocks(iter([vel[:500], vel[500:777], vel[777:]]), weights, 0.005)
    _, corr = acc.vacf()
    direct = np.array([np.sum(weights[None, :, None] * vel[: len(vel) - k] * vel[k:])
                       / (len(vel) - k) for k in range(38)]) / weights.sum()
    assert np.abs(corr - direct).max() < 1e-12


def _diatomic(k_ev_a2=30.0, masses=(1.008, 18.998), dt_fs=0.25, stride=4, n_frames=10000):
    """Velocity-Verlet MD of a harmonic diatomic; velocities (A/ps) and analytic cm^-1."""
    m = np.array(masses)
    mu = m[0] * m[1] / m.sum()
    dt = dt_fs / FS_PER_TIME_UNIT
    r0 = 0.92
    x = np.array([[0.0, 0.0, 0.0], [r0 + 0.05, 0.02, 0.0]])
    v = np.zeros((2, 3))

    def forces(pos):
        d = pos[1] - pos[0]
        r = np.linalg.norm(d)
        f = -k_ev_a2 * (r - r0) * d / r
        return np.array([-f, f])

    f = forces(x)
    out = np.empty((n_frames, 2, 3))
    for i in range(n_frames * stride):
        if i % stride == 0:
            out[i // stride] = v
        v += 0.5 * dt * f / m[:, None]
        x += dt * v
        f = forces(x)
        v += 0.5 * dt * f / m[:, None]
    omega_per_ps = np.sqrt(k_ev_a2 / mu) / FS_PER_TIME_UNIT * 1000
    return out / FS_PER_TIME_UNIT * 1000, m, omega_per_ps / (2 * np.pi) / spectrum.C_CM_PER_PS


def test_diatomic_spectrum_peak_and_ipi_getacf(tmp_path: Path) -> None:
    vel, masses, nu0 = _diatomic()
    frame_ps = 0.001
    mlag = 1000
    acc = spectrum.VACFAccumulator(mlag)
    acc.add_blocks(iter([vel]), np.ones(2), frame_ps)
    _, corr = acc.vacf()
    wn, inten = spectrum.power_spectrum(corr, frame_ps, "hann")
    mine = spectrum.peaks(wn, inten)
    assert len(mine) == 1 and abs(mine[0] - nu0) / nu0 < 0.005  # analytic, within 0.5 %
    # i-PI's own tool on the same velocities (atomic units, i-PI xyz format)
    bohr, aut_ps = units.Bohr, 2.4188843265857e-5
    with open(tmp_path / "vel.xyz", "w") as handle:
        for frame in vel / bohr * aut_ps:
            handle.write("2\n# CELL(abcABC): 20 20 20 90 90 90 Step: 0 Bead: 0 "
                         "velocities{atomic_unit} cell{atomic_unit}\n")
            for sym, row in zip(("H", "F"), frame, strict=True):
                handle.write(f"{sym} {row[0]:.16e} {row[1]:.16e} {row[2]:.16e}\n")
    proc = subprocess.run(["i-pi-getacf", "-ifile", "vel.xyz", "-mlag", str(mlag), "-ftwin",
                           "cosine-hanning", "-dt", f"{frame_ps * 1000} femtosecond",
                           "-ftpad", str(3 * mlag), "-oprefix", "ipi"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    facf = np.loadtxt(tmp_path / "ipi_facf.data")
    nu_ipi = facf[:, 0] / aut_ps / (2 * np.pi) / spectrum.C_CM_PER_PS
    sel = nu_ipi <= wn[-1]
    nu_ipi, ipi = nu_ipi[sel], facf[sel, 1] / np.trapezoid(facf[sel, 1], nu_ipi[sel])
    theirs = spectrum.peaks(nu_ipi, ipi)
    assert len(theirs) == 1 and abs(theirs[0] - mine[0]) / mine[0] < 1e-3
    ours_on_theirs = np.interp(nu_ipi, wn, inten)
    cosine = ours_on_theirs @ ipi / np.linalg.norm(ours_on_theirs) / np.linalg.norm(ipi)
    assert cosine > 0.99
    # i-PI correlates circularly within blocks of 2 mlag frames, we over all origins
    # (unbiased): the estimators agree at short lags and drift apart by ~lag/block later
    acf_ipi = np.loadtxt(tmp_path / "ipi_acf.data")[:, 1]
    assert np.abs(acf_ipi / acf_ipi[0] - corr / corr[0])[:50].max() < 0.03


# --- phonons -----------------------------------------------------------------------------

def test_phonons_equal_ase_vibrations(tmp_path: Path, monkeypatch) -> None:
    from ase.build import molecule
    from ase.vibrations import Vibrations
    from tblite.ase import TBLite

    water = molecule("H2O")
    water.calc = TBLite(method="GFN2-xTB", verbosity=0, accuracy=0.001)
    ours = harmonic_frequencies(water, fmax=0.005, delta=0.01)
    assert ours.max_force_ev_per_angstrom <= 0.005
    monkeypatch.chdir(tmp_path)
    vib = Vibrations(water, delta=0.01, nfree=2)
    vib.run()
    freqs = vib.get_frequencies()
    ase_cm = np.sort(np.where(np.abs(freqs.imag) > 0, -np.abs(freqs), freqs.real))
    assert np.abs(ase_cm - ours.frequencies_cm).max() < 0.1
    assert 1400 < ours.frequencies_cm[-3] < 1700 and ours.frequencies_cm[-1] > 3000


def test_phonons_command_analytic(tmp_path: Path) -> None:
    proc = _analysis("phonons", "--challenge", "mapbi3", "--model",
                     "ase:perovskite_models:isotropic_well", "--model-option", "k=2.0",
                     "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(next((tmp_path / "reports").glob("phonons-mapbi3-*.json")).read_text())
    masses = read(MAPBI3 / "starts" / "start-00.xyz").get_masses()
    expected = np.sort(np.repeat(np.sqrt(2.0 / masses) * EV_A2_AMU_TO_CM, 3))
    assert data["n_atoms"] == 96 and data["settings"]["delta"] == 0.01
    assert np.abs(np.sort(data["frequencies_cm"]) - expected).max() < 1e-3
    bad = _analysis("phonons", "--challenge", "mapbi3", "--model", "nosuchmodel")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


# --- rdf -------------------------------------------------------------------------------------

def test_rdf_equals_ase() -> None:
    from ase.geometry.rdf import get_rdf

    frames = [read(p) for p in sorted((MAPBI3 / "starts").glob("start-*.xyz"))]
    positions = np.array([a.positions for a in frames])
    cell = np.asarray(frames[0].cell)
    r_max, nbins = 4.5, 150
    edges = np.linspace(0, r_max, nbins + 1)
    for a, b in (("Pb", "I"), ("C", "N"), ("N", "I"), ("I", "I"), ("H", "H")):
        ia = np.nonzero(frames[0].symbols == a)[0]
        ib = np.nonzero(frames[0].symbols == b)[0]
        ours = rdf.histogram_frames(positions, cell, ia, ib, edges) / len(frames)
        ref, _ = get_rdf(frames, r_max, nbins, elements=(a, b))
        assert np.abs(ours - ref).max() < 1e-6, (a, b)
        assert ref.max() > 0


def test_rdf_beyond_half_the_cell_equals_ase_on_a_supercell() -> None:
    """Periodic images: g(r) of the 96-atom cell up to 6.3 A (> its half width 4.52 A)
    equals ASE's on the 2x1x1 supercell, where 6.3 A is within the minimum image."""
    from ase.geometry.rdf import get_rdf

    frames = [read(MAPBI3 / "starts" / f"start-{k:02d}.xyz") for k in (0, 5)]
    positions = np.array([a.positions for a in frames])
    cell = np.asarray(frames[0].cell)
    r_max, nbins = 6.3, 126
    edges = np.linspace(0, r_max, nbins + 1)
    assert r_max > rdf.max_radius(cell)
    for a, b in (("Pb", "Pb"), ("I", "I"), ("Pb", "I"), ("N", "I")):
        ia = np.nonzero(frames[0].symbols == a)[0]
        ib = np.nonzero(frames[0].symbols == b)[0]
        ours = rdf.histogram_frames(positions, cell, ia, ib, edges) / len(frames)
        ref, _ = get_rdf([f.repeat((2, 1, 1)) for f in frames], r_max, nbins, elements=(a, b))
        assert np.abs(ours - ref).max() < 1e-6, (a, b)
    assert ours.max() > 0


# --- orientation ---------------------------------------------------------------------------

def test_orientation_of_constructed_frame() -> None:
    cell = np.diag([9.0, 16.0, 12.0])
    theta = np.radians([90.0, 30.0, 150.0, 90.0, 60.0, 10.0])
    phi = np.radians([45.0, -135.0, -30.0, 170.0, 100.0, -80.0])
    direction = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi),
                          np.cos(theta)], axis=1)
    carbons = np.array([[0.3, 0.2, 0.4], [8.8, 11.9, 11.7], [4.0, 8.0, 6.0],
                        [0.1, 5.0, 8.9], [5.0, 15.5, 0.2], [8.9, 4.1, 3.1]])
    nitrogens = carbons + 1.48 * direction  # several bonds cross the cell boundary
    positions = np.concatenate([carbons, np.mod(nitrogens, np.diag(cell))])[None]
    numbers = np.array([6] * 6 + [7] * 6)
    pairs = orientation.cn_pairs(numbers, positions[0], cell)
    got_theta, got_phi = orientation.angles(positions, pairs, cell)
    assert np.abs(got_theta[0] - theta).max() < 1e-12
    assert np.abs(got_phi[0] - phi).max() < 1e-12
    ratios = orientation.quadrant_ratios(got_phi)
    assert np.isclose(ratios.sum(), 1.0)
    # quadrants: -135 | -30, -80 | 45 | 170, 100
    assert np.allclose(ratios, np.array([1, 2, 1, 2]) / 6)
    # a rotated copy of the same crystal gives the same angles in the lattice frame
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    t2, p2 = orientation.angles(positions @ rot.T, pairs, cell @ rot.T)
    assert np.allclose(t2, got_theta) and np.allclose(p2, got_phi)


# --- the whole path: periodic run through i-PI, then every analysis ------------------------

def test_periodic_run_and_analyses(tmp_path: Path) -> None:
    from analysis import trajectories
    from harness import h5md

    # A nearly free system at 300 K: the H atoms fly off and the TEA criteria see it
    broken = tmp_path / "broken"
    proc = launch("--challenge", "mapbi3", "--model", "harmonic", "--model-option", "k=0.0001",
                  "--temperatures", "300", "--replicas", "1", "--time", "0.1ps", "--out",
                  str(broken), "--stall-timeout", "600")
    record = trajectories.read_record(next(broken.rglob("replica-*.h5")))
    assert record.status == "failed" and record.failure["kind"] == "bond_break", \
        proc.stdout + proc.stderr
    assert "H" in record.failure["elements"] and record.failure["distance_angstrom"] > 2.0
    # at 5 K the crystal barely moves in 50 fs: a run that completes, for the analyses
    out = tmp_path / "runs"
    launch("--challenge", "mapbi3", "--model", "harmonic", "--model-option", "k=0.0001",
           "--temperatures", "5", "--replicas", "2", "--time", "0.05ps", "--stride", "1",
           "--out", str(out), "--stall-timeout", "600", check=True)
    files = sorted(out.rglob("replica-*.h5"))
    assert len(files) == 2
    frames = h5md.read_frames(files[0])
    assert frames["box"].shape == (101, 3, 3) and np.allclose(frames["box"][0],
                                                              np.diag([9.04334, 16.70832,
                                                                       12.66141]))
    csv_path = tmp_path / "spectrum.csv"
    proc = _analysis("spectrum", str(out), "--max-lag", "20fs", "--export", str(csv_path))
    assert proc.returncode == 0, proc.stderr
    with open(csv_path) as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["model"] == "harmonic" and float(rows[1]["wavenumber_cm"]) > 0
    assert (out / "reports" / "spectrum.png").is_file()
    proc = _analysis("orientation", str(out))
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "reports" / "orientation.json").read_text())
    ratios = data["groups"][0]["quadrant_ratios"]
    assert np.isclose(sum(ratios), 1.0, atol=1e-3) and data["groups"][0]["n_samples"] == \
        2 * 101 * 8
    proc = _analysis("rdf", str(out), "--every", "5", "--export", str(tmp_path / "rdf.csv"))
    assert proc.returncode == 0, proc.stderr
    peaks = json.loads((out / "reports" / "rdf.json").read_text())["groups"][0]
    assert abs(peaks["first_peak_angstrom"]["Pb-I"] - 3.18) < 0.1
    assert abs(peaks["first_peak_angstrom"]["C-N"] - 1.48) < 0.1
    # Pb-Pb at 6.16 A (4 in the a-c plane) and 6.33 A (2 along b): beyond half the cell
    assert 6.0 < peaks["first_peak_angstrom"]["Pb-Pb"] < 6.45
    too_far = _analysis("rdf", str(out), "--r-max", "50")
    assert too_far.returncode == 2 and "--r-max 50" in too_far.stderr

    from analysis.observables import orientation as orientation_cmd
    from analysis.observables import rdf as rdf_cmd
    from analysis.observables import spectrum as spectrum_cmd

    work = tmp_path / "report"
    work.mkdir()
    for module in (orientation_cmd, rdf_cmd, spectrum_cmd):
        sections = module.report_sections(files, work)
        assert len(sections) == 1 and sections[0].challenge == "mapbi3"
        assert all(fig.path.is_file() for fig in sections[0].figures)
        assert "harmonic" in sections[0].markdown
        assert all(v.agrees is None for v in sections[0].verdicts)  # no xtb reference here


@pytest.mark.slow
def test_xtb_periodic_run(tmp_path: Path) -> None:
    """GFN2-xTB MD of MAPbI3 through the harness: 0.2 ps (400 steps), ~1-2 h on 1 core."""
    out = tmp_path / "runs"
    launch("--challenge", "mapbi3", "--model", "xtb", "--temperatures", "300", "--replicas",
           "1", "--time", "0.2ps", "--stride", "4", "--stall-timeout", "900", "--out",
           str(out), check=True, timeout=3 * 3600)
    from analysis import trajectories

    record = trajectories.read_record(next(out.rglob("replica-*.h5")))
    assert record.status == "completed" and record.reached_ps >= 0.2 - 1e-9


def test_bad_input_gives_one_line_errors(tmp_path: Path) -> None:
    for args, needle in ((["spectrum", str(tmp_path), "--window", "foo"], "--window"),
                         (["orientation", str(tmp_path), "--bins", "0"], "--bins"),
                         (["rdf", str(tmp_path), "--pairs", "Pb-Zz"], "Pb-Zz"),
                         (["spectrum", str(tmp_path / "missing")], "no such file")):
        proc = _analysis(*args)
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
