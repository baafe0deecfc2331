"""Real i-PI runs through the launcher: H5MD contents, i-PI's own output, kill -9, dead drivers."""

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
from ipi.utils.io.backends import io_binary

from conftest import HARMONIC, REPO, SOCKET_TAG, launch, processes_matching, socket_dirs
from harness import h5md, sockets
from harness.engines import ipi_input
from harness.plan import RunSpec

CHALLENGE = "alanine-tetrapeptide"


def _h5(out_dir: Path, model: str, temp: str, replica: int) -> Path:
    return out_dir / CHALLENGE / model / temp / f"replica-{replica:02d}.h5"


def _ipi_reference_positions(spec: RunSpec, work: Path) -> tuple[list[int], np.ndarray]:
    """Run plain i-PI (regular output files) + the harness driver on the same input."""
    work.mkdir()
    token = f"ref{os.getpid()}"
    sock_dir = sockets.folder_of(token)
    sock_dir.mkdir(mode=0o700)
    (work / "spec.json").write_text(spec.to_json())
    (work / "input.xml").write_text(ipi_input.make_input(spec, f"{token}/sock",
                                                         Path(spec.start_file)))
    ipi_cmd = str(Path(sys.executable).with_name("i-pi"))
    server = subprocess.Popen([sys.executable, ipi_cmd, "input.xml"], cwd=work,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # this checkout's driver, as the harness's own runs use (harness.procs.own_package_env)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
        subprocess.run([sys.executable, "-m", "harness.driver", "--spec", "spec.json",
                        "--address", sockets.full_path(sockets.address_of(token))],
                       cwd=work, timeout=120, check=True, capture_output=True, env=env)
        server.wait(timeout=60)
    finally:
        server.kill()
        server.wait()
        for p in sock_dir.iterdir():
            p.unlink()
        sock_dir.rmdir()
    blob = (work / "pos_0.bin").read_bytes()
    marker = "Step:".encode("utf-32-le")
    starts = []
    at = blob.find(marker)
    while at >= 0:
        starts.append(at)
        at = blob.find(marker, at + 1)
    size = starts[1] - starts[0]
    steps, positions = [], []
    for k in range(len(blob) // size):
        piece = work / "one.bin"
        piece.write_bytes(blob[k * size:(k + 1) * size])
        with open(piece, "rb") as handle:
            title, _, q, _, _ = io_binary.read_binary(handle)
        step = int(title.split()[1])
        if step not in steps:
            steps.append(step)
            positions.append(q.reshape(-1, 3))
    return steps, np.array(positions)


def test_run_writes_h5md_equal_to_ipi_output(out_dir: Path, tmp_path: Path) -> None:
    launch(*HARMONIC, "--temperatures", "300", "--replicas", "1", "--time", "0.1ps",
           "--stride", "5", "--out", str(out_dir), check=True)
    path = _h5(out_dir, "harmonic", "300K", 0)
    meta = h5md.read_meta(path)
    assert meta["status"] == "completed"
    assert meta["n_frames"] == 200 // 5 + 1
    np.testing.assert_array_equal(meta["steps"], np.arange(0, 201, 5))
    np.testing.assert_allclose(meta["times_ps"], meta["steps"] * 0.5e-3, rtol=1e-12)
    frames = h5md.read_frames(path)
    # the harmonic well: forces are exactly -k r (k = 1 eV/A^2)
    np.testing.assert_allclose(frames["forces"], -frames["positions"], rtol=1e-12, atol=1e-12)
    with h5md.open_file(path) as f:
        assert list(f["h5md"].attrs["version"]) == [1, 1]
        assert f["particles/all/position/value"].dtype == np.float64
        assert f["particles/all/position/value"].attrs["unit"] == "Angstrom"
        assert f["particles/all/velocity/value"].attrs["unit"] == "Angstrom ps-1"
    prov = meta["provenance"]
    assert prov["seed"] == meta["run_spec"]["seed"] and prov["versions"]["ipi"]
    assert "harness.launch" in prov["command_line"] and prov["end_time"]
    # plain i-PI on the same input gives the same positions, to the last bit
    spec = RunSpec(**meta["run_spec"])
    steps, ref = _ipi_reference_positions(spec, tmp_path / "ref")
    assert steps == list(meta["steps"])
    np.testing.assert_array_equal(frames["positions"], ref)


def test_mdanalysis_reads_the_trajectory(out_dir: Path) -> None:
    mda = pytest.importorskip("MDAnalysis")
    launch(*HARMONIC, "--temperatures", "300", "--replicas", "1", "--time", "0.05ps",
           "--out", str(out_dir), check=True)
    path = _h5(out_dir, "harmonic", "300K", 0)
    start = h5md.read_meta(path)["run_spec"]["start_file"]
    universe = mda.Universe(start, str(path), format="H5MD")
    frames = h5md.read_frames(path)
    assert len(universe.trajectory) == len(frames["step"]) == 6
    universe.trajectory[3]
    np.testing.assert_allclose(universe.atoms.positions, frames["positions"][3], atol=1e-5)
    np.testing.assert_allclose(universe.atoms.velocities, frames["velocities"][3], rtol=1e-5)
    # MDAnalysis converts our kJ/mol/A forces itself; ours are eV/A
    np.testing.assert_allclose(universe.atoms.forces / 96.485332, frames["forces"][3], rtol=1e-4)
    assert universe.trajectory.ts.time == pytest.approx(frames["time"][3])


#: The fault tests' runs (1 ps, 2000 steps): a frame every 20 steps, saved every 10 frames,
#: so a run has ten saves (H5MD flush + i-PI checkpoint) to be cut between. (Stride 2 would
#: save as often at 100 frames per save, but i-PI writing every other step costs ~1 ms/step.)
SAVE_OFTEN = ("--stride", "20", "--flush-every", "10")
FRAMES = 2000 // 20 + 1


def _wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_kill9_then_resume_without_duplicates(out_dir: Path) -> None:
    args = [*HARMONIC, "--temperatures", "300", "--replicas", "2", "--jobs", "2",
            "--time", "1ps", *SAVE_OFTEN, "--out", str(out_dir), "--quiet"]
    before = socket_dirs()
    proc = subprocess.Popen([sys.executable, "-m", "harness.launch", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    paths = [_h5(out_dir, "harmonic", "300K", r) for r in range(2)]

    def flushed() -> bool:
        try:
            return all(p.exists() and (h5md.last_step(p) or 0) >= 400 for p in paths)
        except OSError:
            return False

    assert _wait_for(flushed, 120), "runs never flushed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert _wait_for(lambda: not processes_matching(str(out_dir)), 30), "children outlived launch"
    for path in paths:  # the socket folders carry this session's tag (what the leak checks see)
        record = path.parent / f".{path.stem}.work" / "socket_dir"
        assert Path(record.read_text().strip()).name.startswith(sockets.folder_of(SOCKET_TAG).name)
    partial = {}
    for path in paths:  # readable up to the last flush
        meta = h5md.read_meta(path)
        assert meta["status"] == "running"
        assert 0 < meta["n_frames"] < FRAMES
        partial[path] = meta["n_frames"]
    done = launch(*args, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for path in paths:
        meta = h5md.read_meta(path)
        assert meta["status"] == "completed"
        steps = meta["steps"]
        np.testing.assert_array_equal(steps, np.arange(0, 2001, 20))  # no gap, no duplicate
        frames = h5md.read_frames(path)
        np.testing.assert_array_equal(frames["time"], meta["times_ps"])
        assert len(meta["provenance"]["segments"]) == 1  # the killed segment left no record
        resumed = meta["provenance"]["resumed_at_steps"]  # noted when the resume began
        assert len(resumed) == 1 and 0 < resumed[0] < 2000
        _timing_across_the_resume(path)
    assert socket_dirs() <= before


def _timing_across_the_resume(path: Path) -> None:
    """The model time goes on from where the kept frames left it; the speed analysis splits
    the run at the resume, so the pause between the kill and the resume is not MD time."""
    from analysis.speed import run_health

    timing = h5md.read_timing(path)
    model_s, wall = timing["model_time"], timing["wall_clock"]
    assert np.all(np.isfinite(model_s)) and np.all(np.diff(model_s) >= 0)
    health = run_health(path)
    assert 1800 < health.steps_timed <= 2000 and len(health.spans) == 2
    md_s = health.step_ms * 1e-3 * health.steps_timed
    assert md_s < wall[-1] - wall[0] - 0.5  # the pause (relaunch, i-PI start) left out
    assert 0 < health.model_ms < health.step_ms


def test_dead_driver_fails_run_and_others_go_on(out_dir: Path) -> None:
    args = [*HARMONIC, "--temperatures", "300", "--replicas", "2", "--jobs", "2",
            "--time", "1ps", *SAVE_OFTEN, "--out", str(out_dir)]
    before = socket_dirs()
    proc = subprocess.Popen([sys.executable, "-m", "harness.launch", "--quiet", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = str(out_dir / CHALLENGE / "harmonic" / "300K" / ".replica-00.work")

    def driver_pids() -> list[int]:
        return [p for p in processes_matching("harness.driver") if p in
                processes_matching(victim)]

    path = _h5(out_dir, "harmonic", "300K", 0)

    def going() -> bool:  # a read can meet a flush half-way: then look again
        try:
            return path.exists() and (h5md.last_step(path) or 0) >= 400
        except OSError:
            return False

    assert _wait_for(going, 120)
    killed_at = time.monotonic()
    os.kill(driver_pids()[0], signal.SIGKILL)

    def failed() -> bool:
        try:
            return h5md.read_meta(path)["status"] == "failed"
        except OSError:
            return False

    assert _wait_for(failed, 60), "the run did not end within 60 s"
    assert time.monotonic() - killed_at < 60
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1
    meta = h5md.read_meta(path)
    assert meta["failure"]["kind"] == "driver_died"
    assert "SIGKILL" in meta["failure"]["message"]
    assert meta["n_frames"] > 0
    assert path.with_suffix(".log").is_file()
    other = h5md.read_meta(_h5(out_dir, "harmonic", "300K", 1))
    assert other["status"] == "completed" and other["n_frames"] == FRAMES
    assert "1 completed, 1 failed" in stdout
    assert not processes_matching(str(out_dir))
    assert socket_dirs() <= before


def test_ctrl_c_stops_softly_and_resumes(out_dir: Path) -> None:
    # 5 ps (10000 steps, ~5 s of harmonic MD): with 1 ps the run could finish between the
    # check below and the signal on an idle machine (seen once in CI: 101 of 101 frames)
    args = [*HARMONIC, "--temperatures", "300", "--replicas", "1", "--time", "5ps",
            *SAVE_OFTEN, "--out", str(out_dir), "--quiet"]
    before = socket_dirs()
    proc = subprocess.Popen([sys.executable, "-m", "harness.launch", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    path = _h5(out_dir, "harmonic", "300K", 0)
    assert _wait_for(lambda: path.exists() and (h5md.last_step(path) or 0) >= 400, 120)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert "Traceback" not in stderr
    assert "1 interrupted" in stdout
    meta = h5md.read_meta(path)
    assert meta["status"] == "interrupted"
    assert meta["steps"][-1] >= 400 and meta["n_frames"] < 10000 // 20 + 1
    assert not processes_matching(str(out_dir))
    assert socket_dirs() <= before
    done = launch(*args, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    meta = h5md.read_meta(path)
    assert meta["status"] == "completed"
    np.testing.assert_array_equal(meta["steps"], np.arange(0, 10001, 20))
    assert [s["outcome"] for s in meta["provenance"]["segments"]] == ["interrupted", "completed"]


def test_hung_driver_is_detected_as_stalled(out_dir: Path) -> None:
    args = [*HARMONIC, "--temperatures", "300", "--replicas", "1", "--time", "20ps",
            *SAVE_OFTEN, "--out", str(out_dir), "--stall-timeout", "5", "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "harness.launch", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    path = _h5(out_dir, "harmonic", "300K", 0)
    assert _wait_for(lambda: path.exists() and (h5md.last_step(path) or 0) >= 400, 120)
    drivers = [p for p in processes_matching("harness.driver") if p in
               processes_matching(str(out_dir))]
    os.kill(drivers[0], signal.SIGSTOP)  # alive but silent: only the stall limit can tell
    stopped_at = time.monotonic()
    stdout, _ = proc.communicate(timeout=90)
    assert time.monotonic() - stopped_at < 60
    meta = h5md.read_meta(path)
    assert meta["status"] == "failed" and meta["failure"]["kind"] == "stalled"
    assert "1 failed" in stdout
    assert not processes_matching(str(out_dir))


def test_unreadable_trajectory_is_kept_aside_not_overwritten(out_dir: Path) -> None:
    path = _h5(out_dir, "harmonic", "300K", 0)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half-written garbage")
    launch(*HARMONIC, "--temperatures", "300", "--replicas", "1", "--time", "0.02ps",
           "--out", str(out_dir), check=True)
    assert h5md.read_meta(path)["status"] == "completed"
    kept = list(path.parent.glob("replica-00.unreadable.*.h5"))
    assert len(kept) == 1 and kept[0].read_bytes() == b"half-written garbage"


def test_a_reader_holding_the_file_does_not_break_the_run(out_dir: Path) -> None:
    import h5py

    args = [*HARMONIC, "--temperatures", "300", "--replicas", "1", "--time", "1ps",
            *SAVE_OFTEN, "--out", str(out_dir), "--quiet"]
    proc = subprocess.Popen([sys.executable, "-m", "harness.launch", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    path = _h5(out_dir, "harmonic", "300K", 0)
    assert _wait_for(path.exists, 60)
    with h5py.File(path, "r") as held:  # HDF5's default shared lock, as other tools take
        time.sleep(4)
        assert held["particles/all/position/value"].dtype == np.float64
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    meta = h5md.read_meta(path)
    assert meta["status"] == "completed" and meta["n_frames"] == FRAMES


def test_longer_time_extends_a_completed_run_exactly(out_dir: Path, tmp_path: Path) -> None:
    """0.2 ps, then the same command with --time 0.4ps: the run goes on from its kept final
    checkpoint (thermostat and random state included), so it equals a straight 0.4 ps run."""
    args = [*HARMONIC, "--temperatures", "300", "--replicas", "1", "--stride", "20",
            "--quiet"]
    first = launch(*args, "--time", "0.2ps", "--out", str(out_dir), timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    path = _h5(out_dir, "harmonic", "300K", 0)
    meta = h5md.read_meta(path)
    assert meta["status"] == "completed" and meta["has_final_checkpoint"]
    assert ipi_input.checkpoint_step(h5md.read_final_checkpoint(path)) == 400
    again = launch(*args, "--time", "0.2ps", "--out", str(out_dir), timeout=300)
    assert "1 already done" in again.stdout  # the same length: nothing to do
    longer = launch(*args, "--time", "0.4ps", "--out", str(out_dir), timeout=300)
    assert longer.returncode == 0, longer.stdout + longer.stderr
    assert "completed at 400 steps, extended to 800 from its final checkpoint" in longer.stdout
    meta = h5md.read_meta(path)
    assert meta["status"] == "completed" and meta["run_spec"]["n_steps"] == 800
    np.testing.assert_array_equal(meta["steps"], np.arange(0, 801, 20))  # no gap, no repeat
    assert meta["provenance"]["extended"][0] | {"at": ""} == {
        "from_steps": 400, "to_steps": 800, "from": "final checkpoint", "at": ""}
    assert ipi_input.checkpoint_step(h5md.read_final_checkpoint(path)) == 800
    straight = tmp_path / "straight"
    launch(*args, "--time", "0.4ps", "--out", str(straight), check=True, timeout=300)
    a = h5md.read_frames(path)
    b = h5md.read_frames(_h5(straight, "harmonic", "300K", 0))
    np.testing.assert_allclose(a["positions"], b["positions"], atol=1e-6)
    np.testing.assert_allclose(a["velocities"], b["velocities"], rtol=1e-6, atol=1e-8)
    # an extension whose work folder is lost (scratch wiped) goes on from the checkpoint the
    # file kept, cutting the frames after it, and still equals the straight run (1000 steps:
    # i-PI leaves <total_steps> out of that checkpoint, its default, and it must be added)
    launch(*args, "--time", "0.5ps", "--out", str(out_dir), check=True, timeout=300)
    h5md.set_status(path, "interrupted")  # as if killed, then its work folder deleted
    with h5md.open_file(path, "a") as f:
        spec = json.loads(f["parameters/harness"].attrs["run_spec"])
        f["parameters/harness"].attrs["run_spec"] = json.dumps(spec | {"n_steps": 1200})
    assert not (path.parent / ".replica-00.work").exists()
    launch(*args, "--time", "0.6ps", "--out", str(out_dir), check=True, timeout=300)
    meta = h5md.read_meta(path)
    np.testing.assert_array_equal(meta["steps"], np.arange(0, 1201, 20))
    assert 1000 in meta["provenance"]["resumed_at_steps"]  # from the kept checkpoint
    assert not list(path.parent.glob("replica-00.*.h5"))  # nothing set aside
    launch(*args, "--time", "0.6ps", "--out", str(tmp_path / "straight6"), check=True,
           timeout=300)
    c = h5md.read_frames(_h5(tmp_path / "straight6", "harmonic", "300K", 0))
    np.testing.assert_allclose(h5md.read_frames(path)["positions"], c["positions"], atol=1e-6)
    # another protocol is not continued: one line says why, the file stays as it is
    other = launch(*HARMONIC, "--temperatures", "300", "--replicas", "1", "--stride", "10",
                   "--time", "0.7ps", "--out", str(out_dir), "--quiet", timeout=300)
    assert "not extended to 1400: this launch changes its stride" in other.stderr
    assert h5md.read_meta(path)["run_spec"]["n_steps"] == 1200


def test_a_file_without_checkpoint_goes_on_from_its_last_frame(out_dir: Path) -> None:
    """A completed run whose file keeps no checkpoint (written before they were kept) is
    extended from its last frame: no gap, no repeat, and positions, temperature and conserved
    energy go on without a jump (only the thermostat's random numbers start afresh)."""
    import h5py

    args = [*HARMONIC, "--temperatures", "300", "--replicas", "1", "--stride", "20",
            "--quiet", "--out", str(out_dir)]
    launch(*args, "--time", "0.4ps", check=True, timeout=300)
    path = _h5(out_dir, "harmonic", "300K", 0)
    with h5py.File(path, "a") as f:
        del f["parameters/harness"][h5md.FINAL_CHECKPOINT]
    longer = launch(*args, "--time", "0.8ps", timeout=300)
    assert longer.returncode == 0, longer.stdout + longer.stderr
    assert "completed at 800 steps, extended to 1600 from its last frame" in longer.stdout
    meta = h5md.read_meta(path)
    assert meta["status"] == "completed" and meta["has_final_checkpoint"]
    np.testing.assert_array_equal(meta["steps"], np.arange(0, 1601, 20))
    np.testing.assert_allclose(meta["times_ps"], meta["steps"] * 0.5e-3, rtol=0, atol=1e-11)
    assert meta["provenance"]["extended"][0]["from"] == "last frame"
    frames = h5md.read_frames(path)
    join = 40  # frame index of step 800, the last frame before the extension
    around = slice(join - 10, join + 11)  # the frames on either side of the join
    moves = np.abs(np.diff(frames["positions"], axis=0)).max(axis=(1, 2))
    assert moves[join] < 2 * np.median(moves[around]), moves[around]  # 20 steps on, no leap
    obs = h5md.read_observables(path, ("conserved_energy", "temperature"))
    jumps = np.abs(np.diff(obs["conserved_energy"]))
    assert jumps[join] < 5 * np.median(jumps[around]), jumps[around]  # ethermo carried over
    temps = obs["temperature"]
    assert temps[join + 1] < 2 * temps[join - 10:join + 1].max(), temps[around]
