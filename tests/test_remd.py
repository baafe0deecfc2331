"""Replica exchange (``--protocol remd``) on a case with a known answer.

Two carbon atoms in a tilted double well along their bond (``harness.models.doublewell``): the
equilibrium population of each well is known exactly at every temperature, so the populations
the ladder samples are checked against it, the acceptance of each neighbouring pair against
the one predicted from the sampled energy distributions, and a run killed with SIGKILL then
resumed against the bookkeeping of a straight run (every frame once, every exchange once).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import launch
from harness import h5md
from harness.models.doublewell import KB_EV_PER_K, population_right
from harness.protocols import remd

H_EV = 0.04  # barrier: at 300 K about 1.5 kT, so the low temperatures cross mostly by exchange
LADDER = "300K:900K:4"
TEMPS = remd.geometric_ladder(300, 900, 4)


def make_challenge(root: Path) -> Path:
    """A two-atom challenge folder (4 fs steps: a carbon pair in 0.04 eV wells is slow)."""
    folder = root / "doublewell"
    (folder / "starts").mkdir(parents=True)
    (folder / "challenge.toml").write_text(
        'title = "Two carbon atoms in a tilted double well"\nelements = ["C"]\nn_atoms = 2\n'
        "periodic = false\n\n[protocol]\ntemperatures_K = [300]\nreplicas = 1\n"
        'length_ps = 10.0\ndt_fs = 4.0\nstride = 5\nthermostat = "langevin"\n'
        "thermostat_tau_fs = 100.0\n\n[demo]\ntemperatures_K = [300]\nreplicas = 1\n"
        "length_ps = 1.0\n\n[stability]\nbond_break_angstrom = 10.0\n\n[observables]\n"
        "names = []\n")
    for k, x in enumerate((-1.0, 1.0)):
        (folder / "starts" / f"start-{k:02d}.xyz").write_text(
            f"2\nProperties=species:S:1:pos:R:3\nC 0 0 0\nC {x} 0 0\n")
    return folder


def _bond_x(path: Path) -> np.ndarray:
    positions = h5md.read_frames(path)["positions"]
    return positions[:, 1, 0] - positions[:, 0, 0]


def _batch_se(values: np.ndarray, blocks: int = 10) -> float:
    """Standard error of the mean from batch means (the frames are correlated)."""
    usable = len(values) // blocks * blocks
    means = values[:usable].reshape(blocks, -1).mean(axis=1)
    return float(means.std(ddof=1) / np.sqrt(blocks))


@pytest.fixture(scope="module")
def ladder_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("remd")
    challenge = make_challenge(root)
    launch("--model", "doublewell", "--model-option", f"h={H_EV}", "--challenge",
           str(challenge), "--protocol", "remd", "--ladder", LADDER, "--exchange-stride", "25",
           "--time", "16ps", "--out", str(root / "runs"), "--jobs", "1", timeout=600,
           check=True)
    return root / "runs" / "doublewell" / "doublewell-remd-ladder1"


def test_populations_match_the_exact_boltzmann_ones(ladder_run: Path) -> None:
    for temp in TEMPS:
        right = (_bond_x(remd.temperature_file(ladder_run, temp)) > 0).astype(float)
        exact = population_right(temp, h=H_EV)
        se = _batch_se(right[1:])
        # 3.5 standard errors of 10 batch means (t, 9 dof: two-sided p ~ 0.007); the exact
        # populations run from 0.21 (300 K) to 0.39 (900 K), so a sampler stuck in the start
        # well (0 or 1) or at the wrong temperature's population fails
        assert abs(right.mean() - exact) < 3.5 * se + 0.01, (temp, right.mean(), exact, se)


def test_acceptance_as_predicted_from_the_energy_distributions(ladder_run: Path) -> None:
    summary = remd.read_record(ladder_run / remd.RECORD)
    assert summary["status"] == "completed"
    for pair, (t_low, t_high) in enumerate(zip(TEMPS, TEMPS[1:], strict=False)):
        u_low = h5md.read_observables(remd.temperature_file(ladder_run, t_low),
                                      ("potential_energy",))["potential_energy"]
        u_high = h5md.read_observables(remd.temperature_file(ladder_run, t_high),
                                       ("potential_energy",))["potential_energy"]
        d_beta = 1 / (KB_EV_PER_K * t_low) - 1 / (KB_EV_PER_K * t_high)
        # every combination of an independent draw from each temperature's ensemble
        predicted = np.minimum(1.0, np.exp(d_beta * (u_low[:, None] - u_high[None, :]))).mean()
        tried, accepted = summary["attempted"][pair], summary["accepted"][pair]
        observed = accepted / tried
        se = np.sqrt(predicted * (1 - predicted) / tried)
        assert abs(observed - predicted) < 4 * se + 0.03, (pair, observed, predicted, tried)


def test_exchange_record_is_consistent(ladder_run: Path) -> None:
    summary = remd.read_record(ladder_run / remd.RECORD)
    n_exchange_steps = 4000 // 25  # 16 ps of 4 fs steps, an attempt round every 25 steps
    # even pairs at odd rounds and odd pairs at even rounds: 80 attempts each
    assert summary["attempted"] == [n_exchange_steps // 2] * 3
    assert summary["n_steps"] == 4000
    assert sum(summary["round_trips"]) >= 4  # the walkers travel the whole ladder
    for temp in TEMPS:
        meta = h5md.read_meta(remd.temperature_file(ladder_run, temp))
        assert meta["status"] == "completed"
        assert meta["n_frames"] == 4000 // 5 + 1
        assert meta["run_spec"]["protocol"] == "remd"


def test_walker_trajectories_are_continuous_across_exchanges(ladder_run: Path) -> None:
    """``remd.walker_temperatures`` follows each walker through its exchanges: along a walker
    the bond changes by a vibration's worth between frames, also at the frames where it just
    changed temperature, while along one temperature's file it jumps there (another walker)."""
    plan = remd.RemdPlan.from_json((ladder_run / "remd" / "plan.json").read_text())
    where = remd.walker_temperatures(ladder_run, plan)
    x = np.array([_bond_x(remd.temperature_file(ladder_run, t)) for t in plan.temperatures_K])
    n = where.shape[1]
    assert where.shape == (4, n) and n == 4000 // 5 + 1
    assert np.all(np.sort(where, axis=0) == np.arange(4)[:, None])  # a walker per temperature
    frames = np.arange(n)
    walker_x = np.array([x[where[w], frames] for w in range(4)])
    moved = np.diff(where, axis=1) != 0  # (walker, frame): changed temperature at frame + 1
    assert moved.sum() >= 100  # about 80 rounds x 3 pairs x acceptance ~0.5, two walkers each
    along_walker = np.abs(np.diff(walker_x, axis=1))[moved]
    # the same frames along the temperature the walker left: another walker's bond
    t_left = where[:, :-1][moved]
    along_temperature = np.abs(x[t_left, frames[1:][None, :].repeat(4, 0)[moved]]
                               - x[t_left, frames[:-1][None, :].repeat(4, 0)[moved]])
    elsewhere = np.abs(np.diff(walker_x, axis=1))[~moved]
    # measured: medians 0.12 A along the walker (0.11 A at its other frames) against 0.66 A
    # along the temperature it left; the off-by-one-frame mapping gives 0.66 A along the walker
    assert np.median(along_walker) < 1.5 * np.median(elsewhere)
    assert np.median(along_walker) < 0.4 * np.median(along_temperature)


def _right_well_rhat(folder: Path) -> tuple[float, np.ndarray]:
    """Split-R-hat of the walkers' right-well indicators, and each walker's right-well share."""
    from analysis.stats import split_rhat

    plan = remd.RemdPlan.from_json((folder / "remd" / "plan.json").read_text())
    x = np.array([_bond_x(remd.temperature_file(folder, t)) for t in plan.temperatures_K])
    right = (remd.along_walkers(remd.walker_temperatures(folder, plan), x) > 0).astype(float)
    return split_rhat(right), right.mean(axis=1)


def test_walker_mixing_flags_walkers_that_keep_their_wells(ladder_run: Path,
                                                           tmp_path: Path) -> None:
    """Split-R-hat along the walkers: below the flag for the test ladder (0.04 eV barrier, the
    walkers cross it and carry wells up and down), above it for the same ladder over a 0.6 eV
    barrier (8 kT at the top, 900 K; 2 ps), where each walker keeps the well of its start (walkers
    0 and 2 from the left one, 1 and 3 from the right one) though the exchanges go on."""
    from analysis.stats import RHAT_FLAG

    rhat, shares = _right_well_rhat(ladder_run)
    assert rhat < RHAT_FLAG, (rhat, shares)
    challenge = make_challenge(tmp_path)
    launch("--model", "doublewell", "--model-option", "h=0.6", "--challenge", str(challenge),
           "--protocol", "remd", "--ladder", LADDER, "--exchange-stride", "25", "--time", "2ps",
           "--out", str(tmp_path / "runs"), "--jobs", "1", timeout=300, check=True)
    stuck = tmp_path / "runs" / "doublewell" / "doublewell-remd-ladder1"
    assert sum(remd.read_record(stuck / remd.RECORD)["accepted"]) > 10  # exchanges happen
    rhat, shares = _right_well_rhat(stuck)
    assert rhat > RHAT_FLAG, (rhat, shares)
    np.testing.assert_array_equal(shares, [0, 1, 0, 1])


def test_basin_visits_count_crossings_of_one_trajectory_with_hysteresis() -> None:
    from harness.challenges.reference_remd import basin_visits

    out_, in_ = -120.0, 60.0
    phi = np.concatenate([
        np.full(10, out_),
        np.full(5, in_),
        [5.0, -5.0, 5.0, -5.0],  # wobbles across the edge at 0, inside the margin: no visit
        np.full(6, in_),
        np.full(3, 170.0), np.full(2, -170.0),  # outside, across the +-180 seam
        np.full(4, in_),
    ])
    v = basin_visits(phi, dt_ps=0.5, region=(0.0, 126.0), margin=15.0)
    assert v["entries"] == 2 and v["exits"] == 1
    # the wobble keeps the walker inside: one stay of 5 + 4 + 6 frames, then an open one of 4
    assert v["visits_ps"] == [7.5, 2.0]
    assert v["longest_visit_ps"] == 7.5
    assert v["time_in_ps"] == 9.5 and v["time_out_ps"] == 7.5
    plain_inside = 5 + 2 + 6 + 4  # the +5 wobble frames count in the plain share
    assert v["share"] == pytest.approx(plain_inside / len(phi))
    # the same trajectory without hysteresis would count the wobble as two more visits
    assert basin_visits(phi, 0.5, margin=0.0)["entries"] == 4


#: How the walkers' forces are computed: one ordinary client, or one batched client serving
#: all three walkers from "another" Python (this one, through the --model-python path).
CLIENTS = {"single": ("--jobs", "1"),
           "batched": ("--batch", "3", "--model-python", f"doublewell={sys.executable}")}


def _resume_args(challenge: Path, out: Path, clients: str) -> list[str]:
    return ["--model", "doublewell", "--challenge", str(challenge), "--protocol", "remd",
            "--ladder", "300K:600K:3", "--exchange-stride", "10", "--time", "6ps", "--stride",
            "5", "--flush-every", "20", "--out", str(out), *CLIENTS[clients]]


def _processes_naming(folder: Path) -> list[int]:
    """Live processes that name ``folder`` on their command line or work in it (the ladder's
    i-PI server and force clients)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            cwd = os.readlink(entry / "cwd")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (str(folder).encode() in cmdline or cwd.startswith(str(folder))):
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("clients", sorted(CLIENTS))
def test_killed_run_resumes_without_duplicated_or_missing_frames(tmp_path: Path,
                                                                 clients: str) -> None:
    challenge = make_challenge(tmp_path)
    out = tmp_path / "runs"
    folder = out / "doublewell" / "doublewell-remd-ladder1"
    args = _resume_args(challenge, out, clients)
    proc = subprocess.Popen([sys.executable, "-m", "harness.launch", "--quiet", *args],
                            env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    seg = folder / "remd" / "seg-000"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill after two checkpoints (every 100 steps)
        if len(list(seg.glob("chk_*"))) >= 2 and (seg / "w0_properties").exists():
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("the run wrote no checkpoint in 120 s")
    os.killpg(proc.pid, signal.SIGKILL)  # the launch and its i-PI and client together
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 10  # children die with their parent (PR_SET_PDEATHSIG)
    while _processes_naming(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _processes_naming(folder), "a child of the killed ladder outlived it"
    resumed = launch(*args, timeout=300, check=True)
    assert "completed at step 1500 of 1500" in resumed.stdout
    if clients == "batched":  # the resumed segment was served by a batched client again
        # (the killed segment's client died before writing its stats)
        stats = json.loads((remd.segments(folder / "remd")[-1] / "batch-0" /
                            "client_stats.json").read_text())
        first = remd.segment_start(remd.segments(folder / "remd")[-1])
        assert stats["max_batch"] == 3 and stats["structures"] == 3 * (1500 - first + 1), stats
    # i-PI polls its socket less often under a batched client, so more walkers' positions go
    # out together; the resumed segment (from a checkpoint, which leaves defaults out) too
    for seg in remd.segments(folder / "remd"):
        root = remd.ET.parse(seg / "input.xml").getroot()
        assert float(root.find("ffsocket/latency").text) == (
            remd.BATCH_POLL_LATENCY_S if clients == "batched" else 1e-4), seg
    assert len(remd.segments(folder / "remd")) == 2
    summary = remd.read_record(folder / remd.RECORD)
    # 150 rounds of attempts, alternating pair 0 (odd rounds) and pair 1 (even rounds)
    assert summary["attempted"] == [75, 75]
    walkers = []
    for temp in (300, 424.3, 600):
        path = remd.temperature_file(folder, temp)
        steps = h5md.read_meta(path)["steps"]
        assert np.array_equal(steps, np.arange(0, 1501, 5)), temp
        with h5md.open_file(path) as f:
            walkers.append(f[h5md.PARAMS]["remd_walker"][:])
    # at every frame each walker is at exactly one temperature
    assert np.all(np.sort(np.array(walkers), axis=0) == np.arange(3)[:, None])
    # the walkers' temperature history from the exchange log agrees with the frames' own
    # thermostat temperatures at every exchange step
    with remd.h5py.File(folder / remd.RECORD) as f:
        index = f["walker_temperature_index"][:]
        ex_steps = f["exchange_step"][:]
    for row, step in zip(index, ex_steps, strict=True):
        for walker, t_index in enumerate(row):
            assert walkers[t_index][int(step) // 5] == walker, (step, row)



def test_batched_clients_give_the_same_ladder_as_single_ones(tmp_path: Path) -> None:
    """``--batch 3``: one client holds three connections to the i-PI socket and evaluates the
    three walkers' structures in one call; under ``--model-python`` (here this interpreter,
    through the other-environment path). The frames at every temperature and the exchanges
    equal those of one ordinary client exactly: only who computes the forces changed."""
    import json

    challenge = make_challenge(tmp_path)
    common = ("--model", "doublewell", "--challenge", str(challenge), "--protocol", "remd",
              "--ladder", "300K:600K:3", "--exchange-stride", "10", "--time", "1ps",
              "--stride", "5")
    launch(*common, "--jobs", "1", "--out", str(tmp_path / "single"), timeout=300, check=True)
    batched = launch(*common, "--batch", "3", "--model-python",
                     f"doublewell={sys.executable}", "--out", str(tmp_path / "batched"),
                     timeout=300, check=True)
    assert "1 batched force client(s) serving 3 walkers under" in batched.stdout
    folders = [tmp_path / kind / "doublewell" / "doublewell-remd-ladder1"
               for kind in ("single", "batched")]
    for temp in (300, 424.3, 600):
        single, both = (h5md.read_frames(remd.temperature_file(f, temp)) for f in folders)
        assert len(single["step"]) == 250 // 5 + 1
        for key in ("positions", "velocities", "forces"):
            assert np.array_equal(single[key], both[key]), (temp, key)
        meta = h5md.read_meta(remd.temperature_file(folders[1], temp))
        assert meta["run_spec"]["model_python"] == sys.executable
    records = [remd.read_record(f / remd.RECORD) for f in folders]
    assert records[0]["accepted"] == records[1]["accepted"]
    assert records[0]["attempted"] == records[1]["attempted"] == [12, 13]
    stats = json.loads(next((folders[1] / "remd").glob("seg-*/batch-0/client_stats.json"))
                       .read_text())
    # i-PI hands out the first system's positions alone and the others together once its
    # forces are back: about two calls per step for the three walkers (364 when measured)
    assert stats["max_batch"] == 3 and stats["structures"] == 3 * 251
    assert stats["model_calls"] <= 2 * 251 + 20, stats


BAD = {
    "ladder not increasing": (["--protocol", "remd", "--temperatures", "600,500"],
                              "strictly increasing"),
    "one temperature": (["--protocol", "remd", "--temperatures", "500"],
                        "at least 2 temperatures"),
    "ladder of one": (["--protocol", "remd", "--ladder", "500K:900K:1"],
                      "at least 2 temperatures"),
    "ladder spelling": (["--protocol", "remd", "--ladder", "500-900"], "LOW:HIGH:N"),
    "ladder going down": (["--protocol", "remd", "--ladder", "900K:500K:4"],
                          "strictly increasing"),
    "ladder without protocol": (["--ladder", "500K:900K:8"], "belongs to --protocol remd"),
    "exchange stride without protocol": (["--exchange-stride", "50"],
                                         "belongs to --protocol remd"),
    "unknown protocol": (["--protocol", "metad"], "choose one of md, remd"),
    "no ladder": (["--protocol", "remd"], "needs a ladder"),
    "replicas": (["--protocol", "remd", "--ladder", "500K:900K:4", "--replicas", "12"],
                 "does not apply"),
    "batch beside jobs": (["--protocol", "remd", "--ladder", "500K:900K:4", "--batch", "2",
                           "--jobs", "2"], "--batch and --jobs both set the force clients"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_exit_2(case: str, tmp_path: Path) -> None:
    args, expected = BAD[case]
    proc = launch("--model", "harmonic", *args, "--out", str(tmp_path / "runs"), "--dry-run")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], \
        proc.stderr
    assert not (tmp_path / "runs").exists()


def test_suggested_ladder_gives_the_target_acceptance() -> None:
    # Gaussian energies with C_V = 20 kB: x = 2 erfcinv(0.25) / sqrt(20) between neighbours
    temps = remd.suggest_ladder(500, 900, heat_capacity_kB=20.0, acceptance=0.25)
    ratios = np.diff(np.log(temps))
    assert temps[0] == 500 and temps[-1] == 900
    from scipy.special import erfc

    # a geometric ladder whose steps are at most the target's: acceptance >= 25% everywhere
    assert np.all(erfc(np.expm1(ratios) * np.sqrt(20.0) / 2) >= 0.25 - 1e-9)
    # and no more temperatures than needed: one fewer would fall below the target
    fewer = remd.geometric_ladder(500, 900, len(temps) - 1)
    assert erfc(np.expm1(np.diff(np.log(fewer))).max() * np.sqrt(20.0) / 2) < 0.25


def test_analysis_remd_reports_the_exchange_record(ladder_run: Path) -> None:
    import json

    from conftest import analysis

    proc = analysis("remd", str(ladder_run.parent.parent), "--json")
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    summary = remd.read_record(ladder_run / remd.RECORD)
    assert row["attempted"] == summary["attempted"] == [80, 80, 80]
    assert row["accepted"] == summary["accepted"]
    for observed, predicted in zip(row["acceptance"], row["predicted_acceptance"],
                                   strict=True):
        assert abs(observed - predicted) < 0.15
    assert row["low"] == [False] * 3
    assert row["suggested_ladder_K"][0] == 300 and row["suggested_ladder_K"][-1] == 900
    table = analysis("remd", str(ladder_run.parent.parent))
    assert "| 300-432.7 K | 80 |" in table.stdout


def test_killed_before_any_checkpoint_starts_over_and_keeps_the_old_segment(
        tmp_path: Path) -> None:
    challenge = make_challenge(tmp_path)
    out = tmp_path / "runs"
    args = ["--model", "doublewell", "--challenge", str(challenge), "--protocol", "remd",
            "--ladder", "300K:600K:3", "--exchange-stride", "10", "--time", "6ps",
            "--stride", "5", "--flush-every", "1000", "--out", str(out), "--jobs", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "harness.launch", "--quiet", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    work = out / "doublewell" / "doublewell-remd-ladder1" / "remd"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (work / "seg-000" / "w0_properties").exists():
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert not list((work / "seg-000").glob("chk_*"))  # killed before any checkpoint
    done = launch(*args, timeout=300, check=True)
    assert "completed at step 1500 of 1500" in done.stdout
    assert "starting over" in done.stderr
    [aside] = list(work.glob("set-aside-*"))
    assert (aside / "seg-000" / "w0_properties").exists()  # kept, not deleted
    assert [s.name for s in remd.segments(work)] == ["seg-000"]
    steps = h5md.read_meta(remd.temperature_file(work.parent, 300))["steps"]
    np.testing.assert_array_equal(steps, np.arange(0, 1501, 5))


def test_a_periodic_only_model_gets_the_runs_vacuum_box(tmp_path: Path) -> None:
    """CHGNet (periodic-only) on the gas-phase Challenge I: the ladder's plan states the box its
    force clients put the molecule in, the edge computed from the walkers' own starts."""
    import importlib.util

    if importlib.util.find_spec("chgnet") is None:
        pytest.skip("needs chgnet: pip install -e '.[test]'")
    from harness import challenges, models

    proc = launch("--model", "chgnet", "--protocol", "remd", "--ladder", "500K:900K:3",
                  "--batch", "3", "--dry-run", "--out", str(tmp_path), timeout=300, check=True)
    starts = [str(challenges.load("alanine-tetrapeptide").start_for_replica(k))
              for k in range(3)]  # ladder 1: walker k from start k
    edge = models.vacuum_box(models.get_family("chgnet"), starts)["edge_angstrom"]
    assert edge > 6.0 + 10.0  # cutoff + margin, plus the molecule
    assert f"1 batched force client(s) serving 3 walkers; vacuum box {edge:g} A" in proc.stdout


def test_visits_of_straight_runs_from_the_shipped_reference() -> None:
    """``reference_remd visits`` on the shipped 12 x 20 ps xTB runs at 500 K: start 0 holds
    pair A's left-handed basin nearly all the time (one short excursion out and back), start 1
    hardly visits it; no bond near the 2 A criterion. A missing file is one line, exit 2."""
    import json

    from harness import challenges

    ref = challenges.load("alanine-tetrapeptide").path / "reference"
    proc = subprocess.run([sys.executable, "-m", "harness.challenges.reference_remd", "visits",
                           str(ref / "xtb-500K-replica-00.h5"),
                           str(ref / "xtb-500K-replica-01.h5")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    start0, start1 = json.loads(proc.stdout)["runs"]
    assert start0["ps"] == start1["ps"] == 20.0
    assert start0["A"]["share"] > 0.95 and start0["A"]["exits"] == start0["A"]["entries"] == 1
    assert start1["A"]["share"] < 0.01 and start1["A"]["entries"] == 0
    assert max(start0["longest_bond_A"], start1["longest_bond_A"]) < 1.9
    bad = subprocess.run([sys.executable, "-m", "harness.challenges.reference_remd", "visits",
                          str(ref / "no-such.h5")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "no such trajectory file" in bad.stderr
    readme = Path(__file__).resolve().parent.parent / "README.md"  # a file, not H5MD
    wrong = subprocess.run([sys.executable, "-m", "harness.challenges.reference_remd",
                            "visits", str(readme)], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr
    assert "is not a tea-harness H5MD trajectory" in wrong.stderr
