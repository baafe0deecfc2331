"""``--batch N``: one force client per group of runs, the same trajectories as without it.

Real i-PI servers, real runner and client processes, real launches: nothing is mocked.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import HARMONIC, launch, processes_matching, socket_dirs
from harness import h5md, models
from harness.batch import GROUPS_DIR, make_groups
from harness.batch_driver import CLIENT_PID

CHALLENGE = "alanine-tetrapeptide"
TESTS = Path(__file__).resolve().parent
#: Batched and unbatched runs compute the same forces with the same code on the same
#: positions, so the trajectories agree bit for bit; the issue's bound is 1e-8 A.
TOLERANCE_ANGSTROM = 1e-8
HOT_BREAKER = ("--model", "ase:breaking_models:make_hot_breaker",
               "--criteria", "bond_break")  # springs only: no angles to keep H apart


def _h5(out: Path, model: str, temperature: str, replica: int = 0) -> Path:
    return out / CHALLENGE / model / temperature / f"replica-{replica:02d}.h5"


def _series(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {key: f[f"particles/all/{key}/value"][:] for key in ("position", "velocity")}


def _with_tests_on_path(*args: str, **kwargs) -> subprocess.CompletedProcess:
    """``launch`` with the tests folder importable (for ``ase:breaking_models:...``)."""
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = f"{TESTS}:{env_path}" if env_path else str(TESTS)
    try:
        return launch(*args, **kwargs)
    finally:
        os.environ["PYTHONPATH"] = env_path


def _nothing_left(out: Path, sockets_before: set[str]) -> None:
    assert not processes_matching(str(out)), "a runner, i-PI or client process outlived its run"
    assert socket_dirs() <= sockets_before, "a socket folder was left behind"
    assert not (out / GROUPS_DIR).exists(), "a group folder was left behind"


def test_batched_runs_equal_unbatched_runs(tmp_path: Path) -> None:
    common = (*HARMONIC, "--temperatures", "300,500,700", "--replicas", "1",
              "--time", "0.05ps", "--stride", "5")
    before = socket_dirs()
    started = time.time()
    batched = launch(*common, "--batch", "3", "--out", str(tmp_path / "b"), check=True)
    launch(*common, "--out", str(tmp_path / "u"), check=True)
    assert "3 completed, 0 failed" in batched.stdout
    for temperature in ("300K", "500K", "700K"):
        b = _h5(tmp_path / "b", "harmonic", temperature)
        u = _h5(tmp_path / "u", "harmonic", temperature)
        sb, su = _series(b), _series(u)
        assert sb["position"].shape == su["position"].shape == (21, 42, 3)
        assert np.abs(sb["position"] - su["position"]).max() <= TOLERANCE_ANGSTROM
        assert np.abs(sb["velocity"] - su["velocity"]).max() <= TOLERANCE_ANGSTROM
        segment = h5md.read_meta(b)["provenance"]["segments"][-1]
        assert segment["batch"]["batch_size"] == 3
        assert segment["batch"]["runs_in_plan_group"] == 3
        assert "batch" not in h5md.read_meta(u)["provenance"]["segments"][-1]
        steps, stamps = h5md.read_wall_clock(b)  # per-frame wall clock (H5MD observable)
        assert list(steps) == list(range(0, 101, 5))
        assert started <= stamps[0] and np.all(np.diff(stamps) >= 0)
        assert stamps[-1] <= time.time()
        for path in (b, u):  # the model's time per run (a group's call shared by its runs)
            model_s = h5md.read_timing(path)["model_time"]
            assert np.all(np.isfinite(model_s)) and np.all(np.diff(model_s) >= 0)
            assert 0 < model_s[-1] < stamps[-1] - started
    _nothing_left(tmp_path / "b", before)


@pytest.mark.parametrize("family_name", [
    "harmonic",  # 25 s on the loaded 2-core machine; the others take minutes there
    pytest.param("sgdml", marks=pytest.mark.slow),  # 1.9 min
    pytest.param("mace", marks=pytest.mark.slow),  # 5.5 min
])
def test_batched_md_equals_unbatched_md_for_200_frames(family_name: str,
                                                       tmp_path: Path) -> None:
    """Two runs in one group (the family's batched evaluation, or the loop fallback for
    harmonic) against the same runs alone, same seeds: 201 frames (every step of 100 fs).

    Measured (2026-11-27): max position difference 0 A (harmonic, loop fallback), 0 A
    (sGDML, one vectorised predict), 2.7e-14 A (tiny MACE, float64, one batched graph; its
    random weights move atoms by 5 A in the 100 fs, so any difference would grow)."""
    import tiny_models

    model: tuple[str, ...] = ("--model", family_name, "--criteria", "non_finite")
    if family_name != "harmonic":
        pytest.importorskip(family_name)
        if family_name == "mace":
            model_file = tiny_models.make_mace(tmp_path / "tiny.model")
        else:
            model_file = tiny_models.make_sgdml(tmp_path / "tiny.npz")
        model += ("--model-file", str(model_file))
    assert (models.get_family(family_name).batch_evaluator is None) == (
        family_name == "harmonic")  # the loop fallback, and the two batched evaluations
    common = (*model, "--temperatures", "300,500", "--replicas", "1", "--time", "0.1ps",
              "--stride", "1", "--threads", "1")
    batched = launch(*common, "--batch", "2", "--out", str(tmp_path / "b"), check=True,
                     timeout=900)
    launch(*common, "--jobs", "2", "--out", str(tmp_path / "u"), check=True, timeout=900)
    assert "2 completed, 0 failed" in batched.stdout
    label = next((tmp_path / "b" / CHALLENGE).iterdir()).name  # e.g. mace-tiny
    for temperature in ("300K", "500K"):
        b = _h5(tmp_path / "b", label, temperature)
        u = _h5(tmp_path / "u", label, temperature)
        sb, su = _series(b), _series(u)
        assert sb["position"].shape == su["position"].shape == (201, 42, 3)
        # the runs moved (a frozen pair of runs would agree trivially)
        assert np.abs(sb["position"][-1] - sb["position"][0]).max() > 0.01
        difference = np.abs(sb["position"] - su["position"]).max()
        print(f"{family_name} {temperature}: max position difference {difference:.3g} A")
        assert difference <= TOLERANCE_ANGSTROM
        assert h5md.read_meta(b)["provenance"]["segments"][-1]["batch"]["batch_size"] == 2


def test_a_run_that_breaks_leaves_the_group_and_the_others_complete(tmp_path: Path) -> None:
    """Four runs of one model in one group; the hot one breaks at the step it breaks alone."""
    common = (*HOT_BREAKER, "--replicas", "1", "--time", "0.1ps", "--stride", "5")
    before = socket_dirs()
    proc = _with_tests_on_path(*common, "--temperatures", "20,40,60,3000", "--batch", "4",
                               "--out", str(tmp_path / "b"))
    assert proc.returncode == 0, proc.stdout + proc.stderr  # a broken model is a result
    assert "3 completed, 1 failed" in proc.stdout
    _with_tests_on_path(*common, "--temperatures", "3000", "--out", str(tmp_path / "u"),
                        check=True)
    model = "ase-breaking_models-make_hot_breaker"
    alone = h5md.read_meta(_h5(tmp_path / "u", model, "3000K"))
    grouped = h5md.read_meta(_h5(tmp_path / "b", model, "3000K"))
    assert alone["status"] == grouped["status"] == "failed"
    for key in ("kind", "step", "atoms"):
        assert grouped["failure"][key] == alone["failure"][key], key
    assert grouped["failure"]["source"] == "watchdog"
    for temperature in ("20K", "40K", "60K"):
        meta = h5md.read_meta(_h5(tmp_path / "b", model, temperature))
        assert meta["status"] == "completed" and meta["n_frames"] == 200 // 5 + 1
    _nothing_left(tmp_path / "b", before)


def _wait_for(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def test_kill9_of_the_group_client_fails_every_member_then_a_rerun_completes(
        tmp_path: Path) -> None:
    out = tmp_path / "runs"
    group = [*HARMONIC, "--temperatures", "300,500,700", "--replicas", "1", "--stride", "5",
             "--batch", "3", "--out", str(out)]
    args = [*group, "--time", "10ps"]
    before = socket_dirs()
    proc = subprocess.Popen([sys.executable, "-m", "harness.launch", "--quiet", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    paths = [_h5(out, "harmonic", t) for t in ("300K", "500K", "700K")]

    def running() -> bool:
        return all(p.exists() and (h5md.last_step(p) or 0) >= 200 for p in paths)

    assert _wait_for(running, 300), "the group did not start"  # slow when the machine is busy
    pid_files = list((out / GROUPS_DIR).glob(f"*/{CLIENT_PID}"))
    assert len(pid_files) == 1
    client_pid = int(pid_files[0].read_text())
    # its OpenMP threads sleep while waiting: spinning ones starved the i-PI servers
    environ = Path(f"/proc/{client_pid}/environ").read_bytes().split(b"\0")
    assert b"OMP_WAIT_POLICY=PASSIVE" in environ
    killed_at = time.monotonic()
    os.kill(client_pid, signal.SIGKILL)

    def all_failed() -> bool:
        try:
            return all(h5md.read_meta(p)["status"] == "failed" for p in paths)
        except OSError:
            return False

    assert _wait_for(all_failed, 60), "the members did not end within 60 s"
    assert time.monotonic() - killed_at < 60
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stdout + stderr  # the machinery failed, not the model
    for path in paths:
        failure = h5md.read_meta(path)["failure"]
        assert failure["kind"] == "driver_died"
        assert "group force client" in failure["message"]
    assert not processes_matching(str(out)) and socket_dirs() <= before
    # the same command again, retrying the failed runs, completes every member
    rerun = launch(*group, "--time", "0.05ps", "--retry-failed", check=True)
    assert "3 completed, 0 failed" in rerun.stdout
    for path in paths:
        meta = h5md.read_meta(path)
        assert meta["status"] == "completed"
        assert np.all(np.diff(meta["steps"]) > 0)
    _nothing_left(out, before)


def test_groups_are_cut_per_model(tmp_path: Path) -> None:
    from harness.plan import RunSpec

    def spec(model: str, temperature: float) -> RunSpec:
        return RunSpec(CHALLENGE, model, model, None, temperature, 0, "s.xyz", 1, 0.5, 10, 5,
                       "langevin", 100.0, False, str(tmp_path / f"{model}-{temperature}.h5"))

    todo = [spec("a", 300), spec("b", 300), spec("a", 500), spec("a", 700), spec("b", 500)]
    groups = make_groups(todo, 2)
    assert [[s.model for s in g] for g in groups] == [["a", "a"], ["a"], ["b", "b"]]
    assert [s.temperature_K for s in groups[0]] == [300, 500]


def test_batch_refuses_lammps_served_runs(tmp_path: Path) -> None:
    proc = launch("--model", "snap", "--batch", "2", "--dry-run", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert "--batch 2" in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def peptide_frames() -> list:
    from tiny_models import training_frames

    return training_frames(4)


def _one_at_a_time(family: models.ModelFamily, model_file: Path, frames: list) -> list:
    calc = family.ase_calculator(model_file, {})
    out = []
    for atoms in frames:
        atoms = atoms.copy()
        calc.calculate(atoms, ["energy", "forces"])
        out.append((calc.results["energy"], np.array(calc.results["forces"])))
    return out


@pytest.mark.parametrize("family_name", ["mace", "sgdml"])
def test_batched_model_call_equals_one_at_a_time(family_name: str, tmp_path: Path,
                                                 peptide_frames: list) -> None:
    import tiny_models

    pytest.importorskip({"mace": "mace", "sgdml": "sgdml"}[family_name])
    family = models.get_family(family_name)
    if family_name == "mace":
        model_file = tiny_models.make_mace(tmp_path / "tiny.model")
    else:
        model_file = tiny_models.make_sgdml(tmp_path / "tiny.npz")
    batched = family.batch_evaluator(model_file, {})(peptide_frames)
    single = _one_at_a_time(family, model_file, peptide_frames)
    assert len(batched) == len(single) == 4
    for (eb, fb), (es, fs) in zip(batched, single, strict=True):
        assert fb.shape == fs.shape == (42, 3)
        assert abs(eb - es) <= 1e-9 * max(1.0, abs(es))
        assert np.abs(fb - fs).max() <= 1e-10
    # the structures are really different: a mix-up of the batch order would be seen
    assert np.abs(batched[0][1] - batched[1][1]).max() > 1e-3
