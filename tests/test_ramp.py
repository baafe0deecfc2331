"""Heating ramps (``--protocol ramp``): the plan, i-PI's input, real runs with a kill and a
resume, the breaking temperatures and ``analysis ramp`` / the report's tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import analysis
from harness import config, h5md, protocols
from harness.errors import UserError
from harness.protocols.ramp import Ramp, parse_ramp

TESTS = Path(__file__).resolve().parent
MORSE = "ase:ase.calculators.morse:MorsePotential"
RAMP = "100K:5000K:10000K/ps"  # 0.49 ps, 490 steps of 1 fs
LABEL = "ramp100-5000K-10000Kps"


def _plan(out: Path, *argv: str):
    settings = config.resolve_settings(config.build_parser().parse_args(
        ["--out", str(out), *argv]))
    return protocols.protocol_of(settings).plan(settings)


def test_parse_ramp_spellings_and_refusals() -> None:
    assert parse_ramp("300K:3000K:500K/ps") == Ramp(300.0, 3000.0, 500.0)
    assert parse_ramp("300:3000:500") == Ramp(300.0, 3000.0, 500.0)
    assert parse_ramp("300K:3000K:0.5K/fs") == Ramp(300.0, 3000.0, 500.0)
    assert parse_ramp("300K:3000K:5e5K/ns").rate_K_per_ps == pytest.approx(500.0)
    ramp = parse_ramp("300K:3000K:500K/ps")
    assert ramp.length_ps == pytest.approx(5.4)
    assert ramp.temperature_at(1.0) == 800.0 and ramp.temperature_at(10.0) == 3000.0
    assert ramp.temperature_at_step(5400, 10800) == 1650.0
    for text, why in (("3000K:300K:500K/ps", "must go up"), ("300K:300K:1K/ps", "must go up"),
                      ("300K:3000K:0K/ps", "rate must be above 0"),
                      ("300K:3000K:-5K/ps", "rate must be above 0"),
                      ("0K:3000K:5K/ps", "start temperature must be above 0"),
                      ("300K-3000K", "START:END:RATE"), ("300K:3000K:5K/min", "START:END:RATE")):
        with pytest.raises(UserError, match=why):
            parse_ramp(text)


def test_ramp_plan_has_the_tea_starts_and_seeds_and_its_own_label(tmp_path: Path) -> None:
    ramp = _plan(tmp_path, "--model", "harmonic", "--protocol", "ramp", "--ramp",
                 "300K:3000K:500K/ps", "--replicas", "3")
    tea = _plan(tmp_path, "--model", "harmonic", "--temperatures", "300", "--replicas", "3")
    assert len(ramp) == len(tea) == 3
    for r, t in zip(ramp, tea, strict=True):
        for key in ("seed", "start_file", "dt_fs", "thermostat", "thermostat_tau_fs",
                    "temperature_K", "replica", "stride"):
            assert getattr(r, key) == getattr(t, key), key
        assert r.model_label == "harmonic-ramp300-3000K-500Kps" != t.model_label
        assert r.n_steps == 10800 and r.protocol == "ramp"  # 5.4 ps of 0.5 fs
        assert r.protocol_options == {"start_K": 300.0, "end_K": 3000.0, "rate_K_per_ps": 500.0}
        assert "/harmonic-ramp300-3000K-500Kps/300K/" in r.out_file
        assert r.highest_temperature_K == 3000.0  # what the temperature criterion checks
    with pytest.raises(UserError, match="--time does not apply to --protocol ramp"):
        _plan(tmp_path, "--model", "harmonic", "--protocol", "ramp", "--ramp", "1:2:1",
              "--time", "1ps")
    with pytest.raises(UserError, match="needs --ramp"):
        _plan(tmp_path, "--model", "harmonic", "--protocol", "ramp")
    with pytest.raises(UserError, match="drop --ensemble nve"):
        _plan(tmp_path, "--model", "harmonic", "--protocol", "ramp", "--ramp", "1:2:1",
              "--ensemble", "nve")


def test_ipi_reads_the_ramp_motion_first_then_the_dynamics(tmp_path: Path) -> None:
    """i-PI's own input classes build a MultiMotion: TemperatureRamp (in i-PI's units, the
    counter at the start step), then the unchanged Langevin dynamics."""
    from ipi.engine.motion.dynamics import Dynamics
    from ipi.engine.motion.multi import MultiMotion
    from ipi.engine.motion.ramp import TemperatureRamp
    from ipi.inputs.motion import InputMotion
    from ipi.utils.io.inputs.io_xml import xml_parse_string
    from ipi.utils.units import unit_to_internal

    from harness.engines import ipi_input

    spec = _plan(tmp_path, "--model", "harmonic", "--protocol", "ramp", "--ramp",
                 "300K:3000K:500K/ps", "--replicas", "1")[0]
    root = ET.fromstring(ipi_input.make_input(spec, "x/sock", Path(spec.start_file),
                                              start_step=7))
    motion = root.find("system/motion")
    assert motion.get("mode") == "multi"
    parsed = InputMotion()
    parsed.parse(xml_parse_string(ET.tostring(motion, encoding="unicode")).fields[0][1])
    multi = parsed.fetch()
    assert isinstance(multi, MultiMotion)
    heat, dynamics = multi.mlist
    assert isinstance(heat, TemperatureRamp) and isinstance(dynamics, Dynamics)
    kelvin = unit_to_internal("energy", "kelvin", 1.0)
    assert heat.t_start / kelvin == pytest.approx(300.0)
    assert heat.t_end / kelvin == pytest.approx(3000.0)
    assert (heat.total_steps, heat.current_step, heat.logscale) == (10800, 7, False)
    assert dynamics.enstype == "nvt"
    plain = _plan(tmp_path, "--model", "harmonic", "--replicas", "1", "--temperatures", "300")
    root = ET.fromstring(ipi_input.make_input(plain[0], "x/sock", Path(plain[0].start_file)))
    assert root.find("system/motion").get("mode") == "dynamics"  # TEA runs unchanged


def test_a_run_continued_from_a_stored_frame_heats_on_from_its_step(tmp_path: Path) -> None:
    """Without a checkpoint, a run goes on from its last frame: the ramp's counter starts at
    that frame's step, and the thermostat's energy is found inside the multi motion."""
    from harness.engines import ipi_input

    spec = _plan(tmp_path, "--model", "harmonic", "--protocol", "ramp", "--ramp",
                 "300K:3000K:500K/ps", "--replicas", "1")[0]
    start = Path(spec.start_file)
    n_atoms = int(start.read_text().split()[0])
    xml = ipi_input.make_last_frame_input(spec, start, [0.0] * (3 * n_atoms), 400, 0.5, 11)
    root = ET.fromstring(xml)
    assert int(root.find(".//t_ramp/current_step").text) == 400
    assert int(root.find("step").text) == 400
    assert root.find("system/motion/motion/dynamics/thermostat/ethermo") is not None


def _runs(temperatures: list[float], failed: list[bool]) -> list[SimpleNamespace]:
    return [SimpleNamespace(path=Path(f"r{k:02d}"), temperature_K=t, failed=f)
            for k, (t, f) in enumerate(zip(temperatures, failed, strict=True))]


def test_intact_to_verdict_can_agree_differ_and_refuses_a_control() -> None:
    """12 runs on a 300 -> 3000 K ramp, required to stay intact to 700 K."""
    from analysis.commands.ramp import decide
    from analysis.ramp import model_ramp

    def decision(temps: list[float], failed: list[bool], need: float = 700.0) -> str:
        group = model_ramp("m", _runs(temps, failed))
        return decide(group.median, group.runs, need, 300.0)

    rng = np.random.default_rng(3)
    hot = list(rng.uniform(1500, 2500, 12))
    assert decision(hot, [True] * 12) == "agrees"
    assert decision([3000.0] * 12, [False] * 12) == "agrees"  # none broke: Wilson decides
    assert decision([3000.0] * 2, [False] * 2) == "inconclusive"  # 2 runs cannot say it
    assert decision(list(rng.uniform(350, 600, 12)), [True] * 12) == "differs"
    assert decision([300.0] * 12, [True] * 12) == "differs"  # the control: broken at start
    assert decision(hot, [True] * 12, need=300.0) == "inconclusive"  # control would agree
    assert decision(hot[:6] + list(rng.uniform(400, 650, 6)), [True] * 12) == "inconclusive"
    # a run still going at 500 K says nothing about 700 K: left out, not counted intact
    assert decision(hot[:11] + [500.0], [True] * 11 + [False]) == "agrees"


def _launch_args(challenge: Path, out: Path) -> list[str]:
    return ["--model", f"{MORSE},doublewell", "--model-option", f"{MORSE}:epsilon=0.5",
            "--model-option", "doublewell:h=1.0", "--criteria", "bond_break", "--challenge",
            str(challenge), "--protocol", "ramp", "--ramp", RAMP, "--flush-every", "10",
            "--out", str(out), "--jobs", "2", "--stall-timeout", "600"]


@pytest.fixture(scope="module")
def ramp_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Morse bond that dissociates (epsilon 0.5 eV) and a stiff double well that does not,
    3 replicas each, heated 100 -> 5000 K at 10^4 K/ps; the launch is killed (SIGKILL, with
    its children) once the first double-well run has flushed 100 steps, then run again."""
    from ramp_toy import make_challenge

    root = tmp_path_factory.mktemp("ramp")
    challenge, out = make_challenge(root), root / "runs"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        p for p in (str(TESTS), os.environ.get("PYTHONPATH", "")) if p))
    cmd = [sys.executable, "-m", "harness.launch", "--quiet", *_launch_args(challenge, out)]
    first = out / "morse" / f"doublewell-{LABEL}" / "100K" / "replica-00.h5"
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline:
        try:
            if first.exists() and (h5md.last_step(first) or 0) >= 100:
                break
        except OSError:
            pass
        time.sleep(0.3)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the first double-well run flushed nothing in 400 s")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert h5md.read_meta(first)["status"] == "running"
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout + again.stderr
    return out


def test_killed_ramp_resumes_where_it_stopped(ramp_runs: Path) -> None:
    for replica in range(3):
        path = ramp_runs / "morse" / f"doublewell-{LABEL}" / "100K" / f"replica-{replica:02d}.h5"
        meta = h5md.read_meta(path)
        assert meta["status"] == "completed", meta["failure"]
        np.testing.assert_array_equal(meta["steps"], np.arange(0, 491, 5))  # no gap, no twin
        xml = h5md.read_final_checkpoint(path)  # i-PI's own state at the end
        counter = ET.fromstring(xml).find(".//t_ramp/current_step")
        assert int(counter.text) == 490  # not 490 - resume step: the resume kept the ramp
    resumed = h5md.read_meta(ramp_runs / "morse" / f"doublewell-{LABEL}" / "100K" /
                             "replica-00.h5")["provenance"]["resumed_at_steps"]
    assert len(resumed) == 1 and 100 <= resumed[0] < 490


def test_the_thermostat_follows_the_ramp(ramp_runs: Path) -> None:
    """Kinetic temperature of the double well's relative motion against the ramp's, lagging
    by about rate x tau (10^4 K/ps x 10 fs): within 25% over 50-490 fs, 3 runs pooled.
    (i-PI's multi motion counts 6 degrees of freedom for the 2 atoms, fixcom leaves 3: x2.)"""
    measured, ramp = [], []
    for replica in range(3):
        path = ramp_runs / "morse" / f"doublewell-{LABEL}" / "100K" / f"replica-{replica:02d}.h5"
        times = np.asarray(h5md.read_meta(path)["times_ps"])
        kinetic = h5md.read_observables(path, ("temperature",))["temperature"]
        keep = times > 0.05
        measured += list(2 * kinetic[keep])
        ramp += list(100 + 1e4 * times[keep] - 1e4 * 0.01)
    assert 0.75 < np.mean(measured) / np.mean(ramp) < 1.25


def test_breaking_temperatures_analysis_and_report(ramp_runs: Path) -> None:
    for replica in range(3):
        path = ramp_runs / "morse" / f"ase-ase.calculators.morse-MorsePotential-{LABEL}" / \
            "100K" / f"replica-{replica:02d}.h5"
        meta = h5md.read_meta(path)
        assert meta["status"] == "failed" and meta["failure"]["kind"] == "bond_break"
    proc = analysis("ramp", str(ramp_runs), "--json", "--intact-to", "1000")
    assert proc.returncode == 0, proc.stderr
    tables = json.loads(proc.stdout)
    rows = {r["model"]: r for r in tables["breaking_temperature"]}
    morse, well = rows["ase-ase.calculators.morse-MorsePotential"], rows["doublewell"]
    assert morse["n_failed"] == 3 and well["n_failed"] == 0
    temps = sorted(morse["breaking_temperatures_K"])
    for replica, temp in enumerate(morse["breaking_temperatures_K"]):
        path = ramp_runs / "morse" / f"ase-ase.calculators.morse-MorsePotential-{LABEL}" / \
            "100K" / f"replica-{replica:02d}.h5"
        step = h5md.read_meta(path)["failure"]["step"]
        assert temp == pytest.approx(100 + 4900 * step / 490)  # the thermostat's at the event
    assert morse["breaking_temperature_K"] == {"value": temps[1], "ci_low": temps[0],
                                               "ci_high": temps[2]}  # 3 runs: KM median
    assert well["breaking_temperature_K"] == {"value": None, "ci_low": None, "ci_high": None}
    assert well["breaking_temperatures_K"] == [5000.0] * 3  # censored at the end
    (pair,) = tables["breaking_temperature_log_rank"]
    assert 0 < pair["p_value"] < 0.05  # 3 breaks against none
    decisions = {v["model"]: v["decision"] for v in tables["breaking_temperature_verdicts"]}
    # 3 of 3 intact at 1000 K is not 95% confidence that most runs are (Wilson [0.44, 1])
    assert decisions[f"doublewell-{LABEL}"] == "inconclusive"
    assert decisions[f"ase-ase.calculators.morse-MorsePotential-{LABEL}"] == "inconclusive"
    report = analysis("report", str(ramp_runs), "--sections", "ramp", "--no-cache")
    assert report.returncode == 0, report.stdout + report.stderr
    data = json.loads((ramp_runs / "reports" / "report.json").read_text())
    (chal,) = data["challenges"]
    assert chal["tables"]["breaking_temperature"][0]["breaking_temperature_K"]["value"] in temps
    assert chal["tables"]["breaking_temperature_log_rank"][0]["p_value"] == pair["p_value"]
    assert "Heating ramps" in (ramp_runs / "reports" / "report.md").read_text()


@pytest.mark.parametrize("nu_per_ps", [1e3, 60.0])  # no run censored; about a quarter
def test_median_breaking_temperature_interval_covers_a_known_truth(nu_per_ps: float) -> None:
    """Arrhenius escape (1 eV) under 300 -> 3000 K at 500 K/ps, exact median; 300 seeded
    experiments of 12 runs (benchmarks/ramp_calibration.py has the 1000-experiment table)."""
    from ramp_toy import ArrheniusEscape

    from analysis.ramp import median_breaking_temperature

    model = ArrheniusEscape(1.0, nu_per_ps, 300.0, 3000.0, 500.0)
    censored = float(model.survival(3000.0))
    assert censored < 1e-6 if nu_per_ps == 1e3 else 0.15 < censored < 0.35
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(300):
        med = median_breaking_temperature(*model.sample(rng, 12))
        hits += med.low <= model.median_K <= med.high
    assert 0.91 <= hits / 300 <= 0.995, hits


def test_batched_ramp_breaks_at_the_same_temperatures(ramp_runs: Path,
                                                      tmp_path: Path) -> None:
    """The Morse runs again, three served by one force client (--batch 3): the same seeds and
    forces give the same breaking temperatures, run for run."""
    from ramp_toy import make_challenge

    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), env_path) if p)
    try:
        from conftest import launch

        launch("--model", MORSE, "--model-option", "epsilon=0.5", "--criteria", "bond_break",
               "--challenge", str(make_challenge(tmp_path)), "--protocol", "ramp", "--ramp",
               RAMP, "--batch", "3", "--out", str(tmp_path / "runs"), "--stall-timeout", "600",
               timeout=600, check=True)
    finally:
        os.environ["PYTHONPATH"] = env_path
    rows = [json.loads(analysis("ramp", str(out), "--json").stdout)["breaking_temperature"]
            for out in (ramp_runs, tmp_path / "runs")]
    alone = {r["model"]: r for r in rows[0]}["ase-ase.calculators.morse-MorsePotential"]
    (batched,) = rows[1]
    assert batched["breaking_temperatures_K"] == alone["breaking_temperatures_K"]


def test_report_gives_ramp_and_sweep_runs_to_their_own_sections(tmp_path: Path) -> None:
    """A folder with TEA runs, ramp runs that all broke and sweep runs: the stability section
    judges the TEA runs only (a ramp's failures are breaking temperatures, owned by the ramp
    section; a sweep run is a point of its sweep, not a verdict at its time step), and
    ``analysis stability`` on ramps alone says where they belong, one line, exit code 2."""
    from report_data import synthesise

    runs = tmp_path / "runs"
    synthesise(runs, {"plain": 0.01}, replicas=2)
    ramp = Ramp(300.0, 3000.0, 2700.0 / 1.99)  # synthesise's 3980 steps of 0.5 fs
    ramp_label = f"gap-{ramp.label}"
    synthesise(runs, {ramp_label: 0.01}, replicas=2, protocol="ramp",
               protocol_options=ramp.as_options(),
               failing=frozenset({(ramp_label, 300.0, 0), (ramp_label, 300.0, 1)}))
    synthesise(runs, {"gap-dt0.5fs": 0.01}, replicas=2, protocol="dt-sweep",
               protocol_options={"dts_fs": [0.5]})
    report = analysis("report", str(runs), "--sections", "stability,ramp,dt_sweep",
                      "--no-cache")
    assert report.returncode == 0, report.stdout + report.stderr
    data = json.loads((runs / "reports" / "report.json").read_text())
    (chal,) = data["challenges"]
    stability = [v for v in chal["verdicts"] if v["observable"] == "stability"]
    assert {v["model"] for v in stability} == {"plain"}
    (row,) = chal["tables"]["breaking_temperature"]
    assert row["model"] == "gap" and row["n_failed"] == 2  # the ramp section has them
    assert {r["model"] for r in chal["tables"]["dt_sweep"]} == {"gap"}
    markdown = (runs / "reports" / "report.md").read_text()
    stability_text = markdown.split("### Stability")[1].split("\n### ")[0]
    assert "plain" in stability_text and "gap" not in stability_text
    ramps_only = runs / "alanine-tetrapeptide" / ramp_label
    report = analysis("report", str(ramps_only), "--no-cache")
    assert report.returncode == 0, report.stdout + report.stderr
    text = (ramps_only / "reports" / "report.md").read_text()
    assert "Heating ramps" in text and "no analysis module reported" not in text
    assert "### Stability" not in text
    alone = analysis("stability", str(ramps_only))
    assert alone.returncode == 2
    (line,) = alone.stderr.strip().splitlines()[-1:]
    assert "analysis ramp" in line and "Traceback" not in alone.stderr
