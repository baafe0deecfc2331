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
#: amu Angstrom^2 / ps^2 in eV (ASE's constants, as the harness's H5MD masses are ASE's)
AMU_A2_PER_PS2_EV = 1.0364269652e-4


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


def test_harmonic_nve_shadow_energy_does_not_drift(harmonic_sweep: Path) -> None:
    """Velocity Verlet on k/2 r^2 conserves E_h = KE + sum_i PE_i (1 - omega_i^2 dt^2 / 4)
    exactly; what is left of it in the files is a dt-independent floor of ~1e-7 relative
    (ASE's and i-PI's unit constants differ in their last digits), so the integrator itself
    adds no drift: E_h's slope is the same at every dt, while the conserved energy's own
    least-squares slope (a bounded O(dt^2) oscillation over 0.2 ps) grows ~64x."""
    from ase.data import atomic_masses

    slopes, spreads = [], []
    for dt in DTS:
        path = next(harmonic_sweep.rglob(f"harmonic-nve-dt{dt:g}fs/300K/replica-00.h5"))
        meta = h5md.read_meta(path)
        frames = h5md.read_frames(path)
        mass = atomic_masses[np.asarray(meta["species"])]
        omega2 = 1.0 / (mass * AMU_A2_PER_PS2_EV)  # k = 1 eV/A^2, per ps^2
        kinetic = 0.5 * AMU_A2_PER_PS2_EV * (mass[None, :, None]
                                             * frames["velocities"] ** 2).sum(axis=(1, 2))
        potential = 0.5 * (frames["positions"] ** 2).sum(axis=2)
        h = dt * 1e-3
        shadow = kinetic + (potential * (1 - omega2[None, :] * h * h / 4)).sum(axis=1)
        times = np.asarray(meta["times_ps"])
        slopes.append(np.polyfit(times, shadow, 1)[0] * 1000 / len(mass))
        spreads.append(np.ptp(shadow) / abs(shadow.mean()))
    assert max(spreads) < 1e-6
    assert np.ptp(slopes) < 1e-4  # meV/atom/ps: no dt-dependent drift at all
    assert max(abs(s) for s in slopes) < 1e-2
