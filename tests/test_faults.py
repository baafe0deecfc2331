"""Faults injected on purpose (issue 18): one writer per run, full and read-only disks, a model
that hangs after its first frames, a damaged file among good ones, and the habits of new users.

The disk faults are real: a 3 MB tmpfs and a read-only bind mount (root only; skipped with the
reason elsewhere). Every mount is undone in a fixture's finally.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import HARMONIC, launch, plan, processes_matching, socket_dirs
from harness import config, h5md, runlock
from harness.errors import UserError
from harness.units import parse_time_step_fs, parse_wall_s

TESTS = Path(__file__).resolve().parent
CHALLENGE = "alanine-tetrapeptide"


def _h5(out: Path, replica: int, model: str = "harmonic") -> Path:
    return out / CHALLENGE / model / "300K" / f"replica-{replica:02d}.h5"


def _env(*extra: str) -> dict[str, str]:
    path = os.pathsep.join([*extra, str(TESTS.parent)])
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, timeout=30)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 3 MB tmpfs (needs root), unmounted afterwards whatever happens."""
    where = tmp_path / "disk"
    where.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", "size=3M", "tmpfs", str(where))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {exc}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30)


@pytest.fixture
def read_only_folder(tmp_path: Path):
    """A folder that even root cannot write: a read-only bind mount."""
    source, target = tmp_path / "src", tmp_path / "ro"
    source.mkdir()
    target.mkdir()
    try:
        _mount("--bind", str(source), str(target))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot bind-mount here (needs root): {exc}")
    try:
        _mount("-o", "remount,ro,bind", str(target))
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], capture_output=True, timeout=30)


# ------------------------------------------------------------------------------ one writer

def test_two_launches_on_one_folder_give_each_run_one_writer(out_dir: Path) -> None:
    args = [*HARMONIC, "--temperatures", "300", "--replicas", "2", "--jobs", "1",
            "--time", "1ps", "--out", str(out_dir), "--quiet"]
    cmd = [sys.executable, "-m", "harness.launch", *args]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_env())
    time.sleep(2)  # as a resubmission or a second terminal would
    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env())
    out1, err1 = first.communicate(timeout=240)
    out2, err2 = second.communicate(timeout=240)
    assert first.returncode == 0 and second.returncode == 0, out1 + err1 + out2 + err2
    for replica in range(2):
        meta = h5md.read_meta(_h5(out_dir, replica))
        assert meta["status"] == "completed"
        np.testing.assert_array_equal(meta["steps"], np.arange(0, 2001, 20))  # monotone
        assert len(meta["provenance"]["segments"]) == 1  # one writer, one segment
        assert meta["run_spec"]["omp_threads"] == config.default_threads(1)  # cores / jobs
        assert not runlock.lock_path(_h5(out_dir, replica)).exists()  # released
    summaries = [next(line for line in out.splitlines() if " completed, " in line)
                 for out in (out1, out2)]
    assert sum(int(s.split(" completed")[0]) for s in summaries) == 2  # each run ran once
    # the second launch found replica 0 running in the first, skipped it and said so; the
    # first found replica 1 taken (or already done) by the second
    assert "1 skipped (running elsewhere)" in summaries[1], out2
    assert "replica-00: running elsewhere: held by pid" in out2
    assert "[skipped] alanine-tetrapeptide/harmonic/300K/replica-00" in err2
    assert "0 completed" not in summaries[0] and "0 completed" not in summaries[1]
    assert "short demo" not in out1  # a custom run is not the demo
    assert f"results: analysis report {out_dir}" in out1  # the next step, named
    assert not list((out_dir / ".launches").iterdir())  # each launch removed its folder


def _lock_for(out: Path, replica: int, pid: int) -> Path:
    owner = runlock._identity()
    owner.update(pid=pid, start_ticks=runlock._start_ticks(pid), token="someoneelse")
    path = runlock.lock_path(_h5(out, replica))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(owner))
    return path


def test_stale_lock_of_dead_process_is_taken_over_a_live_one_is_not(out_dir: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    _lock_for(out_dir, 0, dead.pid)  # its process is gone (kill -9 leaves such a lock)
    live = _lock_for(out_dir, 1, os.getpid())  # this test process: alive
    proc = launch(*HARMONIC, "--temperatures", "300", "--replicas", "2", "--time", "0.1ps",
                  "--out", str(out_dir))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert h5md.read_meta(_h5(out_dir, 0))["status"] == "completed"
    assert f"process {dead.pid} no longer exists" in proc.stderr
    assert not _h5(out_dir, 1).exists()  # left to its owner
    assert live.exists() and json.loads(live.read_text())["token"] == "someoneelse"
    assert "1 completed, 0 failed, 0 interrupted, 0 already done, 1 skipped (running " \
        "elsewhere)" in proc.stdout
    assert f"replica-01: running elsewhere: held by pid {os.getpid()}" in proc.stdout


def test_lock_staleness_rules() -> None:
    me = runlock._identity()
    other = dict(me, host="node-elsewhere", pid=1)
    assert runlock.stale_reason(other, lock_mtime=1000.0, server_now=1010.0) is None
    assert "no heartbeat for 200 s" in runlock.stale_reason(other, 1000.0, 1200.0)
    assert runlock.stale_reason(dict(me, boot_id="x"), 0, 0) == "its host rebooted"
    assert runlock.stale_reason(me, 0, 0) is None  # this very process
    container = dict(me, pid=1, pid_ns="pid:[1]")  # same host name, another pid namespace
    assert runlock.stale_reason(container, 1000.0, 1010.0) is None  # its pid 1 is not ours
    reused = dict(me, start_ticks=me["start_ticks"] + 1)  # same pid, another process
    assert "no longer exists" in runlock.stale_reason(reused, 0, 0)
    requeued = dict(other, slurm_job="77", slurm_task="3", slurm_restart=0)
    env = {"SLURM_JOB_ID": "77", "SLURM_ARRAY_TASK_ID": "3", "SLURM_RESTART_COUNT": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert "requeued" in runlock.stale_reason(requeued, 1000.0, 1001.0)
        assert runlock.stale_reason(dict(requeued, slurm_task="4"), 1000.0, 1001.0) is None
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _race(args: tuple[str, multiprocessing.Queue]) -> None:
    out, queue = args
    lock = runlock.RunLock(out)
    try:
        lock.acquire()
    except runlock.Busy:
        queue.put("busy")
        return
    queue.put("won")
    time.sleep(1.5)  # hold it while the others try
    lock.release()


def test_racing_takeovers_of_one_stale_lock_have_one_winner(tmp_path: Path) -> None:
    out = tmp_path / "replica-00.h5"
    dead = subprocess.Popen(["true"])
    dead.wait()
    owner = dict(runlock._identity(), pid=dead.pid, token="stale")
    runlock.lock_path(out).write_text(json.dumps(owner))
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_race, args=((str(out), queue),)) for _ in range(6)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    results = sorted(queue.get(timeout=5) for _ in workers)
    assert results == ["busy"] * 5 + ["won"]
    assert not runlock.lock_path(out).exists()


# ------------------------------------------------------------------------------ full disk

def test_full_disk_keeps_complete_frames_and_resumes(small_disk: Path) -> None:
    out = small_disk / "runs"
    args = [*HARMONIC, "--temperatures", "300", "--replicas", "1", "--time", "0.3ps",
            "--stride", "1", "--out", str(out)]
    proc = launch(*args, timeout=240)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "the disk is full" in line]
    assert len(lines) == 1 and "run the same command again to resume" in lines[0]
    path = _h5(out, 0)
    meta = h5md.read_meta(path)
    assert meta["status"] == "failed" and meta["failure"]["kind"] == "disk_full"
    frames = h5md.read_frames(path)
    n = meta["n_frames"]
    assert 0 < n < 601
    assert all(len(v) == n for v in frames.values())  # no dataset claims more frames
    np.testing.assert_array_equal(frames["step"], np.arange(n))  # no step-0 padding
    assert np.all(np.abs(frames["positions"]).sum(axis=(1, 2)) > 1.0)  # no zero frames
    assert meta["failure"]["step"] == n - 1
    assert meta["run_spec"]["omp_threads"] == config.default_threads(1)  # all cores, 1 run
    _mount("-o", "remount,size=30M", str(small_disk))  # space freed
    again = launch(*args, timeout=240)
    assert again.returncode == 0, again.stdout + again.stderr
    meta = h5md.read_meta(path)
    assert meta["status"] == "completed"
    np.testing.assert_array_equal(meta["steps"], np.arange(601))
    assert [s["outcome"] for s in meta["provenance"]["segments"]] == ["failed", "completed"]


def test_append_that_cannot_fit_writes_nothing(tmp_path: Path) -> None:
    from ase.io import read

    from harness.challenges import load

    atoms = read(load(CHALLENGE).start_for_replica(0))
    path = tmp_path / "t.h5"
    h5md.create(path, atoms.numbers, atoms.get_masses(), False, "{}", {}, atoms.positions,
                np.zeros((3, 3)))
    frame = {"step": 0, "time": 0.0, "positions": atoms.positions, "velocities": atoms.positions,
             "forces": atoms.positions, "potential": 1.0, "kinetic": 1.0, "conserved": 1.0,
             "temperature": 300.0}
    before = path.read_bytes()
    with pytest.raises(OSError, match="No space left"):
        h5md.append(path, [frame], reserve_bytes=1 << 60)
    assert path.read_bytes() == before
    h5md.append(path, [frame], reserve_bytes=1)
    assert h5md.read_meta(path)["n_frames"] == 1


# ------------------------------------------------------------------------ unwritable folder

def test_unwritable_out_folder_is_one_line_and_exit_2(read_only_folder: Path) -> None:
    for out in (read_only_folder / "runs",):
        proc = launch(*HARMONIC, "--temperatures", "300", "--replicas", "1", "--time", "0.1ps",
                      "--out", str(out))
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
        assert f"--out {out}: cannot write there (Read-only file system)" in proc.stderr
        assert "plan:" not in proc.stdout  # before any run starts


# ------------------------------------------------------------------------------- stalls

def test_model_hanging_after_its_first_frames_is_caught_by_stall_timeout(out_dir: Path) -> None:
    before = socket_dirs()
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "harness.launch", "--quiet", "--model",
         "ase:breaking_models:faulty", "--model-option", "fault=hang", "--model-option",
         "after=30", "--temperatures", "300", "--replicas", "1", "--time", "2ps",
         "--stall-timeout", "5s", "--out", str(out_dir)],
        capture_output=True, text=True, timeout=200, env=_env(str(TESTS)))
    took = time.monotonic() - started
    assert proc.returncode == 1, proc.stdout + proc.stderr
    meta = h5md.read_meta(_h5(out_dir, 0, "ase-breaking_models-faulty"))
    assert meta["status"] == "failed" and meta["failure"]["kind"] == "stalled"
    assert meta["n_frames"] == 2  # steps 0 and 20 came; the 31st force call hangs
    assert took < 60, f"took {took:.0f} s: the start-up grace (300 s) applied"
    assert not processes_matching(str(out_dir))
    assert socket_dirs() <= before


# ------------------------------------------------------------------------ damaged file

def test_damaged_file_among_good_ones_is_left_out_and_named(out_dir: Path,
                                                            tmp_path: Path) -> None:
    launch(*HARMONIC, "--temperatures", "300", "--replicas", "2", "--time", "0.1ps",
           "--out", str(out_dir), check=True)
    good = _h5(out_dir, 1)
    bad = _h5(out_dir, 2)
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # a copy cut short
    env = _env()
    proc = subprocess.run([sys.executable, "-m", "analysis.cli", "stability", str(out_dir),
                           "--report-dir", str(tmp_path / "rep")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(bad) in warnings[0] and "truncated" in warnings[0]
    summary = json.loads((tmp_path / "rep" / "stability.json").read_text())
    assert len(summary["runs"]) == 2
    info = subprocess.run([sys.executable, "-m", "analysis.cli", "info", str(bad)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert info.returncode == 2 and "truncated" in info.stderr
    from analysis import report_layout, trajectories

    files, unreadable = trajectories.scan([out_dir])
    assert files == [_h5(out_dir, 0), good] and [u.path for u in unreadable] == [bad]
    from analysis.progress import Progress
    from analysis.report import build

    built = build([out_dir], None, Progress(2, enabled=False), use=[])
    assert len(built.runs) == 2 and [u.path for u in built.unreadable] == [bad]
    if built.scratch:
        shutil.rmtree(built.scratch, ignore_errors=True)
    alert = report_layout.blocks(built)[2]  # under the introduction
    assert f"`{bad}`: unreadable, truncated" in alert.markdown
    bad.write_bytes(b"")  # only damaged files: an error naming one
    good.unlink()
    _h5(out_dir, 0).unlink()
    with pytest.raises(UserError, match="no readable trajectory"):
        trajectories.find([out_dir])


# ------------------------------------------------------------------------------- habits

def test_every_duration_takes_units() -> None:
    assert parse_time_step_fs("0.5fs") == 0.5
    assert parse_time_step_fs("0.0005ps") == pytest.approx(0.5)
    assert parse_time_step_fs("0.5") == 0.5 and parse_time_step_fs(1) == 1.0
    assert parse_wall_s("20s", "--stall-timeout") == 20.0
    assert parse_wall_s("2min", "--stall-timeout") == 120.0
    assert parse_wall_s("90", "--stall-timeout") == 90.0
    with pytest.raises(UserError, match="--dt '0.5 parsec' is not a time step"):
        parse_time_step_fs("0.5 parsec")
    with pytest.raises(UserError, match="--stall-timeout '5 fortnights' is not a duration"):
        parse_wall_s("5 fortnights", "--stall-timeout")


def test_dt_with_unit_and_bad_duration_on_the_command_line(out_dir: Path, capsys) -> None:
    from harness.launch import main

    assert main([*HARMONIC, "--dt", "0.25fs", "--time", "10fs", "--stall-timeout", "2min",
                 "--startup-timeout", "90", "--after-event", "5fs", "--out", str(out_dir),
                 "--dry-run"]) == 0
    assert "dt 0.25 fs, 40 steps" in capsys.readouterr().out
    assert main([*HARMONIC, "--dt", "half", "--out", str(out_dir), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--dt 'half' is not a time step: write e.g. 0.5fs" in err


def test_threads_default_and_demo_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.launch import is_demo

    cores = len(os.sched_getaffinity(0))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert config.default_threads(1) == cores
    assert config.default_threads(cores) == 1
    assert config.default_threads(4 * cores) == 1
    for unusable in ("", "0", "two", "-1"):  # not a thread count: the cores decide
        monkeypatch.setenv("OMP_NUM_THREADS", unusable)
        assert config.default_threads(1) == cores
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the job script's word wins over the cores
    assert config.default_threads(1) == 3 and config.default_threads(4 * cores) == 3
    args = config.build_parser().parse_args(["--model", "harmonic"])
    assert is_demo(config.resolve_settings(args))
    args = config.build_parser().parse_args(["--model", "harmonic", "--time", "20ps"])
    assert not is_demo(config.resolve_settings(args))


def test_ipi_waits_for_a_force_answer_longer_than_the_stall_watchdog(tmp_path: Path) -> None:
    """i-PI drops a silent client (and, exiting on disconnect, ends the run without a
    checkpoint) after its socket timeout: that must come after the harness's own stall
    watchdog, in a fresh run and in every resumed segment alike."""
    import xml.etree.ElementTree as ET

    from harness.engines import ipi_input

    def timeout(xml: str) -> float:
        return float(ET.fromstring(xml).find("ffsocket/timeout").text)

    default = plan(tmp_path, *HARMONIC, "--replicas", "1", "--temperatures", "300")[0]
    slow = plan(tmp_path, *HARMONIC, "--replicas", "1", "--temperatures", "300",
                "--stall-timeout", "3600")[0]
    assert timeout(ipi_input.make_input(default, "x/sock", Path(default.start_file))) == \
        max(600.0, default.stall_timeout_s + 60)
    fresh = ipi_input.make_input(slow, "x/sock", Path(slow.start_file))
    assert timeout(fresh) == 3660.0
    # a checkpoint written under the old 600 s resumes with this segment's timeout
    old = fresh.replace("3660.0", "600")
    assert timeout(old) == 600.0
    assert timeout(ipi_input.make_restart_input(old, "y/sock", slow)) == 3660.0
