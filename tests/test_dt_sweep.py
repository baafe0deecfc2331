"""Time-step sweeps (``--protocol dt-sweep``): the plan, and the harmonic well in NVE, whose
conserved-energy fluctuation must grow as dt^2 (velocity Verlet's shadow energy)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import analysis, launch
from harness import config, h5md, protocols
from harness.errors import UserError

DTS = (0.25, 0.5, 1.0, 2.0)


def _plan(out: Path, *argv: str):
    settings = config.resolve_settings(config.build_parser().parse_args(
        ["--out", str(out), *argv]))
    return protocols.protocol_of(settings).plan(settings)


def test_sweep_plan_same_starts_seeds_thermostat_and_time(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "--model", "harmonic", "--protocol", "dt-sweep", "--dts",
                 "2fs,0.25fs,0.5,1fs", "--temperatures", "300,500", "--replicas", "2",
                 "--time", "1ps")
    assert len(plan) == 4 * 2 * 2
    by_dt = {dt: [s for s in plan if s.dt_fs == dt] for dt in DTS}
    base = by_dt[0.25]
    for dt, specs in by_dt.items():
        for spec, ref in zip(specs, base, strict=True):
            for key in ("seed", "start_file", "temperature_K", "replica", "thermostat",
                        "thermostat_tau_fs", "ensemble"):
                assert getattr(spec, key) == getattr(ref, key), key
            assert spec.length_ps == pytest.approx(1.0)
            assert spec.stride * spec.dt_fs == pytest.approx(ref.stride * ref.dt_fs)
            assert spec.model_label == f"harmonic-dt{dt:g}fs" and spec.protocol == "dt-sweep"
            assert f"/harmonic-dt{dt:g}fs/" in spec.out_file
    nve = _plan(tmp_path, "--model", "harmonic", "--protocol", "dt-sweep", "--dts", "1fs",
                "--ensemble", "nve", "--replicas", "1", "--temperatures", "300")
    assert nve[0].model_label == "harmonic-nve-dt1fs" and nve[0].ensemble == "nve"
    with pytest.raises(UserError, match="--dt does not apply"):
        _plan(tmp_path, "--model", "harmonic", "--protocol", "dt-sweep", "--dts", "1fs",
              "--dt", "1fs")
    with pytest.raises(UserError, match="needs --dts"):
        _plan(tmp_path, "--model", "harmonic", "--protocol", "dt-sweep")
    with pytest.raises(UserError, match="given twice"):
        _plan(tmp_path, "--model", "harmonic", "--protocol", "dt-sweep", "--dts", "1fs,1")


@pytest.fixture(scope="module")
def harmonic_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The harmonic well (k = 1 eV/A^2) on Challenge I in NVE, 0.2 ps at 0.25/0.5/1/2 fs."""
    out = tmp_path_factory.mktemp("sweep") / "runs"
    launch("--model", "harmonic", "--criteria", "non_finite", "--protocol", "dt-sweep",
           "--dts", ",".join(f"{dt:g}fs" for dt in DTS), "--ensemble", "nve",
           "--temperatures", "300", "--replicas", "1", "--time", "0.2ps", "--out", str(out),
           "--jobs", "2", "--stall-timeout", "600", timeout=900, check=True)
    return out


def test_harmonic_nve_fluctuation_grows_as_dt_squared(harmonic_sweep: Path) -> None:
    proc = analysis("dt-sweep", str(harmonic_sweep), "--json")
    assert proc.returncode == 0, proc.stderr
    tables = json.loads(proc.stdout)
    rows = {r["dt_fs"]: r for r in tables["dt_sweep"]}
    assert sorted(rows) == list(DTS)
    rms = np.array([rows[dt]["rms_fluctuation_mev_per_atom"] for dt in DTS])
    expected = rms[0] * (np.array(DTS) / DTS[0]) ** 2
    np.testing.assert_allclose(rms, expected, rtol=0.10)  # the must-show: dt^2 within 10%
    (summary,) = tables["dt_sweep_summary"]
    assert summary["model"] == "harmonic-nve"
    assert abs(summary["rms_exponent"] - 2.0) < 0.05
    assert all(rows[dt]["n_failed"] == 0 for dt in DTS)


def test_harmonic_nve_drift_is_round_off(harmonic_sweep: Path) -> None:
    """Velocity Verlet on U = k/2 sum r^2 conserves E_h = H - sum_i PE_i omega_i^2 dt^2 / 4
    exactly (H: i-PI's conserved quantity, here KE + PE); so H's drift is its bounded O(dt^2)
    oscillation (what the least-squares "drift" of a short run measures, growing as dt^2)
    plus what is left in E_h, which must be round-off only.

    Thresholds: E_h's relative spread below 1e-13 (450 ulp of float64, for round-off summed
    over 800 steps and 42 atoms; measured 8e-16) and its slope below 1e-8 meV/atom/ps
    (measured ~3e-11). Both fail by orders of magnitude when the model's forces are not the
    exact gradient of its energy in i-PI's units: with i-PI's table value for eV/A (1.07e-7
    off the ratio of its eV and Angstrom) the spread was 1.0e-7 and the slope -2e-4.
    omega^2 dt^2 is computed in i-PI's atomic units, with its constants, as it integrates."""
    from ase.data import atomic_masses
    from ipi.utils.units import Constants, unit_to_internal

    from harness.units import ipi_atomic_units

    bohr_to_ang, ev_to_ha, _ = ipi_atomic_units()
    k_au = 1.0 * ev_to_ha * bohr_to_ang ** 2  # k = 1 eV/A^2 in Hartree/Bohr^2
    naive = {}
    for dt in DTS:
        path = next(harmonic_sweep.rglob(f"harmonic-nve-dt{dt:g}fs/300K/replica-00.h5"))
        meta = h5md.read_meta(path)
        positions = h5md.read_frames(path)["positions"]
        conserved = h5md.read_observables(path, ("conserved_energy",))["conserved_energy"]
        mass_au = atomic_masses[np.asarray(meta["species"])] * Constants.amu
        omega2_dt2 = k_au / mass_au * unit_to_internal("time", "femtosecond", dt) ** 2
        shadow = conserved - (0.5 * (positions ** 2).sum(axis=2) * omega2_dt2 / 4).sum(axis=1)
        times = np.asarray(meta["times_ps"])
        n_atoms = len(mass_au)
        slope = np.polyfit(times - times.mean(), shadow, 1)[0] * 1000 / n_atoms
        assert np.ptp(shadow) / abs(shadow.mean()) < 1e-13, dt
        assert abs(slope) < 1e-8, dt  # meV/atom/ps
        naive[dt] = np.polyfit(times - times.mean(), conserved, 1)[0] * 1000 / n_atoms
        # the bounded oscillation is far above round-off: the test can tell them apart
        assert np.ptp(conserved) / abs(conserved.mean()) > 1e-5
    # the least-squares slope of H itself is that oscillation seen through 0.2 ps: ~dt^2
    ratios = [naive[b] / naive[a] for a, b in zip(DTS, DTS[1:], strict=False)]
    assert all(2.5 < r < 6.5 for r in ratios), ratios


def test_ipi_force_conversion_is_the_energy_gradient() -> None:
    """The force clients' eV/A -> Hartree/Bohr factor is the product of their energy and
    length factors (i-PI's own table entry is 1.07e-7 off it), and the factor applied to what
    i-PI writes back in ev/ang undoes i-PI's table entry."""
    from ipi.utils.units import unit_to_internal, unit_to_user

    from harness.units import ipi_atomic_units, ipi_force_output_factor

    bohr_to_ang, ev_to_ha, evang_to_au = ipi_atomic_units()
    assert bohr_to_ang == unit_to_user("length", "angstrom", 1.0)
    assert ev_to_ha == unit_to_internal("energy", "electronvolt", 1.0)
    assert evang_to_au == ev_to_ha * bohr_to_ang
    table = unit_to_internal("force", "ev/ang", 1.0)
    assert abs(table / evang_to_au - 1) > 1e-8  # why the product is needed
    force_ev = 1.2345
    assert unit_to_user("force", "ev/ang", force_ev * evang_to_au) * ipi_force_output_factor() \
        == pytest.approx(force_ev, rel=1e-15)
