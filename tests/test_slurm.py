"""Slurm templates on a real private one-node Slurm (Debian's slurmctld/slurmd), not mocked.

The session fixture starts the cluster (tests/slurm_cluster.py) in a temp folder on free
loopback ports and stops it at the end; without the Slurm binaries the Slurm tests skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from slurm_cluster import Cluster, missing_binaries

from analysis import trajectories
from conftest import HARMONIC, REPO, processes_matching
from harness import h5md, slurm
from harness.errors import UserError

CHALLENGE = "alanine-tetrapeptide"
TINY = ("--time", "20fs")  # 40 steps, frames at 0, 20, 40
#: Runs to preempt: 3000 steps, a save every 200 (10 frames of 20 steps), so a signal after
#: the first save leaves ~2800 steps (seconds) for it to arrive before the run would end on
#: its own. (A smaller stride would save sooner but make every step cost more: i-PI writes
#: every frame.)
SHORT = ("--time", "1.5ps", "--stride", "20", "--flush-every", "10")
SHORT_STEPS = np.arange(0, 3001, 20)
FIRST_SAVE = 200


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """A private one-node Slurm for the whole session."""
    missing = missing_binaries()
    if missing:
        pytest.skip(f"Slurm not installed ({', '.join(missing)} missing): "
                    "apt-get install slurmctld slurmd slurm-client")
    if os.geteuid() != 0:
        pytest.skip("the private test cluster runs slurmd, which must run as root to start jobs")
    root = tmp_path_factory.mktemp("slurm")
    with Cluster(root, cpus=2) as running:
        yield running


def _env(cluster: Cluster, **extra: str) -> dict[str, str]:
    # one-node cluster: PyPI mpich's UCX on shared memory only (see slurm/site.sh)
    env = dict(cluster.env, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), UCX_TLS="self,sm",
               **extra)
    env.pop("TEA_SITE", None)
    return env


def _submit(cluster: Cluster, *args: str, cwd: Path, env: dict[str, str] | None = None
            ) -> tuple[str, str | None]:
    """``python -m harness.launch ARGS --submit``; returns (analysis job, runs job)."""
    proc = subprocess.run([sys.executable, "-m", "harness.launch", *args, "--submit"],
                          capture_output=True, text=True, timeout=120, cwd=cwd,
                          env=env or _env(cluster))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return _job_ids(proc.stdout)


def _job_ids(text: str) -> tuple[str, str | None]:
    """(analysis job, runs job) from the "submitted ..." line of --submit."""
    line = next(x for x in text.splitlines() if x.startswith("submitted"))
    words = line.replace(";", " ").split()
    runs = words[words.index("array") + 1] if "array" in words else (
        words[words.index("farm") + 1] if "farm" in words else None)
    return words[words.index("analysis") + 2], runs


def _completed(out: Path) -> dict[str, dict]:
    """{relative path: meta} of the trajectories under ``out``."""
    return {str(p.relative_to(out)): h5md.read_meta(p) for p in trajectories.find([out])}


def _logs(out: Path) -> str:
    return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')}"
                     for p in sorted((out / slurm.LOG_FOLDER).glob("*")))


# ----------------------------------------------------------------------------- no Slurm
def test_task_arguments_environment_and_precedence(tmp_path: Path) -> None:
    assert slurm.task_arguments([], {}) == ["--model", "gap"]
    env = {"MODEL": "xtb", "TEMPERATURES": "300,400", "LENGTH": "1ps", "OUT": "/o u t"}
    got = slurm.task_arguments(["--temperatures", "350"], env)
    assert got == ["--model", "xtb", "--time", "1ps", "--out", "/o u t", "--temperatures", "350"]
    assert slurm.task_arguments(got, env) == got  # idempotent: tasks re-resolve safely
    config = tmp_path / "c.toml"
    config.write_text('model = "harmonic"\nthreads = 2\n')
    got = slurm.task_arguments(["--config", str(config)], {"SLURM_CPUS_PER_TASK": "4"})
    assert got == ["--config", str(config)]  # model and threads from the config file
    got = slurm.task_arguments(["--model", "xtb"], {"SLURM_CPUS_PER_TASK": "4"})
    assert got == ["--model", "xtb", "--threads", "4"]
    assert slurm.strip_submit_flags(["--model", "x", "--submit", "--farm", "2",
                                     "--sbatch-option=--ntasks=3", "--slurm-template", "f.sh"]
                                    ) == ["--model", "x"]


def test_array_ranges() -> None:
    assert slurm.array_ranges([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert slurm.array_ranges([4]) == "4"
    assert slurm.array_ranges([3, 1, 2, 2]) == "1-3"
    assert slurm.slurm_filename(Path("/a%b c"), "%x-%j.out") == "/a%%b c/%x-%j.out"


def test_site_file_is_read_by_bash(tmp_path: Path) -> None:
    default = slurm.read_site(REPO / "slurm" / "site.sh")
    assert default.sbatch_options == [] and default.cpus_per_task == 1
    assert default.mpi_launch == ["srun", "--mpi=pmi2", "--kill-on-bad-exit=1"]
    site = tmp_path / "site.sh"
    site.write_text(REPO.joinpath("slurm", "site.sh").read_text()
                    + 'SITE_SBATCH_OPTIONS=(--partition=p1 "--comment=a b;c")\n'
                    + "SITE_CPUS_PER_TASK=3\nSITE_ARRAY_THROTTLE=2\n")
    custom = slurm.read_site(site)
    assert custom.sbatch_options == ["--partition=p1", "--comment=a b;c"]
    assert (custom.cpus_per_task, custom.array_throttle) == (3, 2)
    assert (default.group_sbatch_options, default.group_cpus_per_task) == ([], 0)
    site.write_text('SITE_GROUP_SBATCH_OPTIONS=(--gres=gpu:1 "--comment=x y")\n'
                    "SITE_GROUP_CPUS_PER_TASK=8\n")
    group = slurm.read_site(site)
    assert group.group_sbatch_options == ["--gres=gpu:1", "--comment=x y"]
    assert (group.group_cpus_per_task, group.sbatch_options) == (8, [])
    site.write_text("SITE_CPUS_PER_TASK=many\n")
    with pytest.raises(UserError, match="must be integers"):
        slurm.read_site(site)
    with pytest.raises(UserError, match="no such file"):
        slurm.read_site(tmp_path / "absent.sh")


def test_submit_without_sbatch_says_what_to_do(tmp_path: Path) -> None:
    env = dict(os.environ, PATH="/nonexistent", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "harness.launch", *HARMONIC, "--replicas",
                           "1", "--out", str(tmp_path), "--submit"], capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 2
    assert "sbatch not found" in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------- real Slurm
@pytest.mark.slow
def test_default_template_runs_demo_gap_array_and_analysis(cluster: Cluster,
                                                           tmp_path: Path) -> None:
    """`sbatch slurm/run_challenge.sh` with its defaults (only shorter and elsewhere)."""
    out = tmp_path / "runs"
    env = _env(cluster, LENGTH="20fs", OUT=str(out))
    res = cluster.run("sbatch", "--parsable", "--output", str(tmp_path / "planner-%j.out"),
                      "slurm/run_challenge.sh", env=env, cwd=REPO)
    planner = res.stdout.strip()
    cluster.wait([planner], 120)
    text = (tmp_path / f"planner-{planner}.out").read_text()
    assert "12 runs, 12 to do" in text, text  # demo: 500 K x 12 replicas
    analysis_job, array_job = _job_ids(text)
    states = cluster.wait([array_job, analysis_job], 600)
    assert set(states.values()) == {"COMPLETED"}, (states, _logs(out))
    assert len([k for k in states if k.startswith(f"{array_job}_")]) == 12
    runs = _completed(out)
    assert sorted(runs) == [f"{CHALLENGE}/gap/500K/replica-{r:02d}.h5" for r in range(12)]
    for meta in runs.values():
        assert meta["status"] == "completed"
        np.testing.assert_array_equal(meta["steps"], [0, 20, 40])
        assert meta["run_spec"]["model"] == "gap"
    report = (out / "reports" / "stability.md").read_text()
    assert "gap" in report and (out / "reports" / "survival.png").stat().st_size > 1000
    import json

    summary = json.loads((out / "reports" / "stability.json").read_text())
    assert len(summary["runs"]) == 12 and all(r["survived"] for r in summary["runs"])
    assert not processes_matching(str(out))


def test_preempted_task_requeues_and_resumes_without_duplicates(cluster: Cluster,
                                                                tmp_path: Path) -> None:
    """USR1 to the batch shell (what --signal=B:USR1@T sends before the time limit)."""
    out = tmp_path / "runs"
    analysis_job, array_job = _submit(cluster, *HARMONIC, "--temperatures", "300",
                                      "--replicas", "1", *SHORT, "--out", str(out),
                                      cwd=tmp_path)
    path = out / CHALLENGE / "harmonic" / "300K" / "replica-00.h5"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if path.exists() and (h5md.last_step(path) or 0) >= FIRST_SAVE:
                break
        except OSError:
            pass
        time.sleep(0.3)
    else:
        pytest.fail("the run never got going:\n" + _logs(out))
    signalled_at = h5md.last_step(path)
    cluster.run("scancel", "--signal=USR1", "--batch", f"{array_job}_0")
    states = cluster.wait([array_job, analysis_job], 400)
    assert set(states.values()) == {"COMPLETED"}, (states, _logs(out))
    log = _logs(out)
    assert "requeueing" in log and "restart 1" in log, log
    shown = cluster.run("scontrol", "show", "job", f"{array_job}_0").stdout
    assert "Restarts=1" in shown
    meta = h5md.read_meta(path)
    assert meta["status"] == "completed"
    steps = meta["steps"]
    np.testing.assert_array_equal(steps, SHORT_STEPS)  # complete, no duplicate
    assert np.all(np.diff(steps) > 0)
    segments = meta["provenance"]["segments"]
    assert [s["outcome"] for s in segments] == ["interrupted", "completed"]
    assert signalled_at <= segments[0]["to_step"] < SHORT_STEPS[-1]
    frames = h5md.read_frames(path)
    assert np.all(np.diff(frames["time"]) > 0) and np.isfinite(frames["positions"]).all()
    # the analysis waited for the requeued task's end, not for its first stop
    summary = (out / "reports" / "stability.json").read_text()
    assert '"completed"' in summary and '"interrupted"' not in summary
    assert not processes_matching(str(out))


def test_submit_batch_gives_one_array_task_per_group_that_resumes(cluster: Cluster,
                                                                  tmp_path: Path) -> None:
    """``--submit --batch 3``: one array task serves a group of 3 runs with one force client
    and the site's group request (here a comment standing in for --gres=gpu:1: the test node
    has no GPU); USR1 before the time limit requeues the task and every member resumes."""
    site = tmp_path / "site.sh"
    site.write_text((REPO / "slurm" / "site.sh").read_text()
                    + 'SITE_GROUP_SBATCH_OPTIONS=("--comment=gpu please")\n'
                    + "SITE_GROUP_CPUS_PER_TASK=2\n")
    env = dict(_env(cluster), TEA_SITE=str(site))
    out = tmp_path / "runs"
    proc = subprocess.run([sys.executable, "-m", "harness.launch", *HARMONIC, "--temperatures",
                           "300", "--replicas", "3", *SHORT, "--batch", "3", "--out",
                           str(out), "--submit"], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "(3 runs in groups of up to 3, one task per group, --array=0)" in proc.stdout
    analysis_job, array_job = _job_ids(proc.stdout)
    shown = cluster.run("scontrol", "show", "job", array_job).stdout
    assert "Comment=gpu please" in shown and "NumCPUs=2" in shown, shown
    paths = [out / CHALLENGE / "harmonic" / "300K" / f"replica-0{r}.h5" for r in range(3)]

    def step(path: Path) -> int:
        try:
            return (h5md.last_step(path) or 0) if path.exists() else 0
        except OSError:
            return 0

    deadline = time.monotonic() + 240
    while min(step(p) for p in paths) < FIRST_SAVE:
        if time.monotonic() > deadline:
            pytest.fail("the group never got going:\n" + _logs(out))
        time.sleep(0.3)
    cluster.run("scancel", "--signal=USR1", "--batch", f"{array_job}_0")
    states = cluster.wait([array_job, analysis_job], 600)
    assert set(states.values()) == {"COMPLETED"}, (states, _logs(out))
    assert len(states) == 2  # one array task (the group) + the analysis
    log = _logs(out)
    assert "requeueing" in log and "restart 1" in log, log
    for path in paths:
        meta = h5md.read_meta(path)
        assert meta["status"] == "completed", (path, meta["failure"], log)
        np.testing.assert_array_equal(meta["steps"], SHORT_STEPS)
        segments = meta["provenance"]["segments"]
        assert [s["outcome"] for s in segments] == ["interrupted", "completed"], segments
        assert {s["batch"]["batch_size"] for s in segments} == {3}
        assert {s["batch"]["runs_in_plan_group"] for s in segments} == {3}
    groups = {s["batch"]["group"] for p in paths
              for s in h5md.read_meta(p)["provenance"]["segments"]}
    assert len(groups) == 2  # one shared client per start, not one per run
    assert (out / "reports" / "stability.md").is_file()
    assert not processes_matching(str(out))


def test_mpi_task_farm_with_two_ranks_writes_the_same_files_as_the_array(
        cluster: Cluster, tmp_path: Path) -> None:
    common = (*HARMONIC, "--temperatures", "300", "--replicas", "3", *TINY)
    jobs = []
    for name, extra in (("array", ()), ("farm", ("--farm", "2"))):
        jobs += [j for j in _submit(cluster, *common, "--out", str(tmp_path / name), *extra,
                                    cwd=tmp_path) if j]
    states = cluster.wait(jobs, 600)
    assert set(states.values()) == {"COMPLETED"}, (states, _logs(tmp_path / "farm"))
    farm_log = next((tmp_path / "farm" / slurm.LOG_FOLDER).glob("tea-farm-*.out")).read_text()
    assert "3 runs to do on 2 ranks" in farm_log and "3 of 3 runs ended normally" in farm_log
    array, farm = _completed(tmp_path / "array"), _completed(tmp_path / "farm")
    assert sorted(array) == sorted(farm) and len(array) == 3
    for rel in array:
        a = h5md.read_frames(tmp_path / "array" / rel)
        f = h5md.read_frames(tmp_path / "farm" / rel)
        assert sorted(a) == sorted(f)
        for key in a:
            np.testing.assert_array_equal(a[key], f[key], err_msg=f"{rel}: {key}")
        spec_a, spec_f = array[rel]["run_spec"], farm[rel]["run_spec"]
        assert {k: v for k, v in spec_a.items() if k != "out_file"} == \
               {k: v for k, v in spec_f.items() if k != "out_file"}
    assert (tmp_path / "farm" / "reports" / "stability.md").is_file()


@pytest.mark.slow
def test_time_limit_signal_requeues_until_the_run_is_complete(cluster: Cluster,
                                                              tmp_path: Path) -> None:
    """A real time limit: 1 min per start, USR1 from Slurm (--signal) 40 s before it."""
    out = tmp_path / "runs"
    analysis_job, array_job = _submit(
        cluster, *HARMONIC, "--temperatures", "300", "--replicas", "1", "--time", "50ps",
        "--out", str(out), "--sbatch-option=--time=1", "--sbatch-option=--signal=B:USR1@40",
        cwd=tmp_path)
    states = cluster.wait([array_job, analysis_job], 1200)
    assert set(states.values()) == {"COMPLETED"}, (states, _logs(out))
    path = out / CHALLENGE / "harmonic" / "300K" / "replica-00.h5"
    meta = h5md.read_meta(path)
    assert meta["status"] == "completed"
    np.testing.assert_array_equal(meta["steps"], np.arange(0, 100001, 20))
    outcomes = [s["outcome"] for s in meta["provenance"]["segments"]]
    assert len(outcomes) >= 2 and outcomes[-1] == "completed"
    assert set(outcomes[:-1]) == {"interrupted"}
    restarts = cluster.run("scontrol", "show", "job", f"{array_job}_0").stdout
    assert f"Restarts={len(outcomes) - 1}" in restarts


@pytest.mark.slow
def test_scancel_stops_softly_without_requeue_and_a_resubmission_resumes(
        cluster: Cluster, tmp_path: Path) -> None:
    """scancel's SIGTERM reaches every process of the task: the run must end interrupted
    (not failed), the task must stay cancelled, and --submit again must finish the run."""
    out = tmp_path / "runs"
    args = (*HARMONIC, "--temperatures", "300", "--replicas", "1", "--time", "30ps",
            "--out", str(out))
    analysis_job, array_job = _submit(cluster, *args, cwd=tmp_path)
    path = out / CHALLENGE / "harmonic" / "300K" / "replica-00.h5"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if path.exists() and (h5md.last_step(path) or 0) >= 2000:
                break
        except OSError:
            pass
        time.sleep(0.3)
    cluster.run("scancel", f"{array_job}_0")
    states = cluster.wait([array_job, analysis_job], 300)
    assert states[f"{array_job}_0"] == "CANCELLED" and states[analysis_job] == "COMPLETED"
    meta = h5md.read_meta(path)
    assert meta["status"] == "interrupted", meta["failure"]
    assert "Restarts=0" in cluster.run("scontrol", "show", "job", f"{array_job}_0").stdout
    states = cluster.wait([j for j in _submit(cluster, *args, cwd=tmp_path) if j], 600)
    assert set(states.values()) == {"COMPLETED"}, (states, _logs(out))
    meta = h5md.read_meta(path)
    assert meta["status"] == "completed"
    np.testing.assert_array_equal(meta["steps"], np.arange(0, 60001, 20))
    assert [s["outcome"] for s in meta["provenance"]["segments"]] == ["interrupted",
                                                                      "completed"]


@pytest.mark.slow
def test_preempted_task_farm_requeues_and_finishes_every_run(cluster: Cluster,
                                                            tmp_path: Path) -> None:
    """USR1 to a 2-rank farm: both running runs stop softly, the farm requeues and finishes."""
    out = tmp_path / "runs"
    analysis_job, farm_job = _submit(cluster, *HARMONIC, "--temperatures", "300",
                                     "--replicas", "3", "--time", "4ps", "--out", str(out),
                                     "--farm", "2", cwd=tmp_path)
    paths = [out / CHALLENGE / "harmonic" / "300K" / f"replica-0{r}.h5" for r in range(3)]

    def started(path: Path) -> bool:
        try:
            return path.exists() and (h5md.last_step(path) or 0) >= 2000
        except OSError:
            return False

    deadline = time.monotonic() + 180
    while not any(started(p) for p in paths) and time.monotonic() < deadline:
        time.sleep(0.3)
    cluster.run("scancel", "--signal=USR1", "--batch", farm_job)
    states = cluster.wait([farm_job, analysis_job], 600)
    assert set(states.values()) == {"COMPLETED"}, (states, _logs(out))
    assert "Restarts=1" in cluster.run("scontrol", "show", "job", farm_job).stdout
    interrupted = 0
    for path in paths:
        meta = h5md.read_meta(path)
        assert meta["status"] == "completed"
        np.testing.assert_array_equal(meta["steps"], np.arange(0, 8001, 20))
        outcomes = [s["outcome"] for s in meta["provenance"]["segments"]]
        assert outcomes[-1] == "completed" and set(outcomes[:-1]) <= {"interrupted"}
        interrupted += len(outcomes) - 1
    assert interrupted >= 1


EVIL = "a b;touch PWNED_1 $(touch PWNED_2) `touch PWNED_3` 'q\" %x&|>x"


def test_names_with_shell_metacharacters_cannot_inject_commands(cluster: Cluster,
                                                                tmp_path: Path) -> None:
    """Odd names in flags (--submit) and in the environment (plain sbatch) stay data."""
    base = tmp_path / EVIL
    challenge = base / f"chal {EVIL}"
    shutil.copytree(REPO / "harness" / "challenges" / CHALLENGE, challenge)
    config = base / f"cfg {EVIL}.toml"
    config.write_text('criteria = ["non_finite"]\nreplicas = 1\ntemperatures = [300]\n')
    cwd = base / "cwd"
    cwd.mkdir()
    out_flag, out_env = base / f"out1 {EVIL}", base / f"out2 {EVIL}"
    analysis, runs = _submit(cluster, "--model", "harmonic", "--challenge", str(challenge),
                             "--config", str(config), *TINY, "--out", str(out_flag), cwd=cwd)
    env = _env(cluster, MODEL="harmonic", CHALLENGE=str(challenge), TEA_CONFIG=str(config),
               LENGTH="20fs", OUT=str(out_env))
    planner = cluster.run("sbatch", "--parsable", "--output", str(tmp_path / "planner.out"),
                          str(REPO / "slurm" / "run_challenge.sh"), env=env,
                          cwd=cwd).stdout.strip()
    cluster.wait([planner], 120)
    text = (tmp_path / "planner.out").read_text()
    jobs = [runs, analysis, *_job_ids(text)]
    states = cluster.wait(jobs, 400)
    assert set(states.values()) == {"COMPLETED"}, (states, text, _logs(out_flag))
    for out in (out_flag, out_env):
        found = _completed(out)
        assert len(found) == 1, _logs(out)
        (meta,) = found.values()
        assert meta["status"] == "completed" and meta["run_spec"]["challenge"] == challenge.name
    pwned = [p for p in [*tmp_path.rglob("PWNED*"), *REPO.rglob("PWNED*"),
                         *Path(cluster.root).rglob("PWNED*"), *Path("/tmp").glob("PWNED*")]]
    assert pwned == []


def test_array_larger_than_the_site_allows_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    site = tmp_path / "site.sh"
    site.write_text((REPO / "slurm" / "site.sh").read_text() + "SITE_MAX_ARRAY_TASKS=3\n")
    env = dict(_env(cluster), TEA_SITE=str(site))
    proc = subprocess.run([sys.executable, "-m", "harness.launch", *HARMONIC, "--replicas", "2",
                           "--temperatures", "300,500", "--out", str(tmp_path / "o"),
                           "--submit"], capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 2
    assert "SITE_MAX_ARRAY_TASKS" in proc.stderr and "--farm" in proc.stderr


def test_pair_style_template(cluster: Cluster, tmp_path: Path) -> None:
    """i-PI + multi-rank LAMMPS client per task; says clearly when the LAMMPS route is absent."""
    out = tmp_path / "runs"
    help_text = subprocess.run([sys.executable, "-m", "harness.launch", "--help"],
                               capture_output=True, text=True, env=_env(cluster)).stdout
    res = cluster.run("sbatch", "--parsable", "--array=0", "--ntasks=2", "--output",
                      str(tmp_path / "pair-%A_%a.out"), "slurm/run_pair_style.sh", "--model",
                      "snap", "--criteria", "non_finite", "--temperatures", "300",
                      "--replicas", "1", *TINY, "--out",
                      str(out), env=_env(cluster), cwd=REPO)
    job = res.stdout.strip()
    states = cluster.wait([job], 300)
    log = "".join(p.read_text() for p in tmp_path.glob("pair-*.out"))
    if "--mpi-launcher" not in help_text:
        assert list(states.values()) == ["FAILED"]
        assert "needs the LAMMPS route" in log and "Traceback" not in log
        return
    assert list(states.values()) == ["COMPLETED"], log
    (meta,) = _completed(out).values()
    assert meta["status"] == "completed"
    np.testing.assert_array_equal(meta["steps"], [0, 20, 40])


def test_a_challenge_of_ones_own_runs_through_submit(cluster: Cluster, tmp_path: Path) -> None:
    """`python -m harness.challenges new` (starts from the user's frames, no MD), then
    `--submit --challenge NAME` relative to the submission folder: every task finds it."""
    from ase.io import read, write

    frames = sorted((REPO / "harness" / "challenges" / CHALLENGE / "starts").glob("*.xyz"))
    write(tmp_path / "frames.extxyz", [read(p) for p in frames])
    made = subprocess.run([sys.executable, "-m", "harness.challenges", "new", "mine", "--from",
                           str(frames[0]), "--starts", str(tmp_path / "frames.extxyz"),
                           "--n-starts", "2", "--dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, env=_env(cluster))
    assert made.returncode == 0, made.stderr
    out = tmp_path / "runs"
    analysis, runs = _submit(cluster, *HARMONIC, "--challenge", "mine", "--temperatures", "300",
                             "--replicas", "2", *TINY, "--out", str(out), cwd=tmp_path)
    states = cluster.wait([runs, analysis], 400)
    assert set(states.values()) == {"COMPLETED"}, (states, _logs(out))
    found = _completed(out)
    assert sorted(found) == [f"mine/harmonic/300K/replica-0{r}.h5" for r in (0, 1)]
    for name, meta in found.items():
        replica = int(name[-4])
        assert meta["status"] == "completed" and meta["run_spec"]["challenge"] == "mine"
        assert meta["run_spec"]["start_file"] == str(tmp_path / "mine" / "starts"
                                                     / f"start-0{replica}.xyz")


def test_replica_exchange_requeues_and_resumes_as_one_task(cluster: Cluster,
                                                            tmp_path: Path) -> None:
    """``--protocol remd --submit``: the ladder is one array task; USR1 before the time limit
    stops it softly, it requeues and the ladder completes with every frame and exchange once."""
    from test_remd import make_challenge

    from harness.protocols import remd

    challenge = make_challenge(tmp_path)
    out = tmp_path / "runs"
    args = ("--model", "doublewell", "--challenge", str(challenge), "--protocol", "remd",
            "--ladder", "300K:600K:3", "--exchange-stride", "10", "--time", "12ps",
            "--stride", "5", "--flush-every", "20", "--jobs", "1", "--out", str(out))
    analysis_job, array_job = _submit(cluster, *args, cwd=tmp_path)
    folder = out / "doublewell" / "doublewell-remd-ladder1"
    seg = folder / "remd" / "seg-000"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and len(list(seg.glob("chk_*"))) < 2:
        time.sleep(0.3)
    if len(list(seg.glob("chk_*"))) < 2:
        pytest.fail("the ladder never got going:\n" + _logs(out))
    cluster.run("scancel", "--signal=USR1", "--batch", f"{array_job}_0")
    states = cluster.wait([array_job, analysis_job], 400)
    assert set(states.values()) == {"COMPLETED"}, (states, _logs(out))
    assert "restart 1" in _logs(out)
    assert len(remd.segments(folder / "remd")) == 2
    summary = remd.read_record(folder / remd.RECORD)
    assert summary["status"] == "completed" and summary["attempted"] == [150, 150]
    for temp in (300, 424.3, 600):
        steps = h5md.read_meta(remd.temperature_file(folder, temp))["steps"]
        np.testing.assert_array_equal(steps, np.arange(0, 3001, 5))
    assert not processes_matching(str(out))


def test_submit_batch_with_model_python_runs_the_client_in_that_environment(
        cluster: Cluster, tmp_path: Path) -> None:
    """``--submit --batch 2 --model-python``: the array task plans again on the node, checks
    the interpreter there and starts the group's client under it; the provenance names it."""
    python = REPO / ".venv-models" / "sevenn" / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no second environment {python.parent.parent}: run "
                    "tests/install-model-envs.sh")
    out = tmp_path / "runs"
    analysis_job, array_job = _submit(cluster, *HARMONIC, "--temperatures", "300",
                                      "--replicas", "2", *TINY, "--batch", "2",
                                      "--model-python", f"harmonic={python}", "--out", str(out),
                                      cwd=tmp_path)
    states = cluster.wait([array_job, analysis_job], 600)
    assert set(states.values()) == {"COMPLETED"}, (states, _logs(out))
    runs = _completed(out)
    assert len(runs) == 2
    for meta in runs.values():
        assert meta["status"] == "completed"
        np.testing.assert_array_equal(meta["steps"], [0, 20, 40])
        assert meta["run_spec"]["model_python"] == str(python)
        assert meta["provenance"]["model_python"]["prefix"] == str(python.parent.parent)
        assert meta["provenance"]["segments"][-1]["batch"]["batch_size"] == 2


def test_ramp_array_requeues_resumes_the_ramp_and_the_analysis_reports_it(
        cluster: Cluster, tmp_path: Path) -> None:
    """``--protocol ramp --submit``: one array task per run; USR1 (a preemption) stops the
    double-well run softly, it requeues and heats on from its step (i-PI's ramp counter ends
    at N, frames once each); the analysis job writes the report's breaking temperatures (not
    ``analysis stability``, which leaves ramp runs to the ramp section)."""
    import json
    import xml.etree.ElementTree as ET

    from ramp_toy import make_challenge

    from harness import config, protocols

    morse = "ase:ase.calculators.morse:MorsePotential"
    challenge = make_challenge(tmp_path, starts=1)
    out = tmp_path / "runs"
    args = ("--model", f"{morse},doublewell", "--model-option", f"{morse}:epsilon=0.5",
            "--criteria", "bond_break", "--challenge", str(challenge), "--replicas", "1",
            "--protocol", "ramp", "--ramp", "100K:5000K:2500K/ps", "--flush-every", "20",
            "--out", str(out))
    settings = config.resolve_settings(config.build_parser().parse_args(list(args)))
    # 1960 steps of 1 fs, a frame every 5, a save every 100: the signal comes long before the end
    specs = protocols.protocol_of(settings).plan(settings)
    well = next(i for i, s in enumerate(specs) if s.model_label.startswith("doublewell"))
    analysis_job, array_job = _submit(cluster, *args, cwd=tmp_path)
    path = Path(specs[well].out_file)
    deadline = time.monotonic() + 400  # i-PI, the client and a model to start, two runs
    while time.monotonic() < deadline:
        try:
            if path.exists() and (h5md.last_step(path) or 0) >= 100:
                break
        except OSError:
            pass
        time.sleep(0.3)
    else:
        pytest.fail("the double-well ramp never got going:\n" + _logs(out))
    cluster.run("scancel", "--signal=USR1", "--batch", f"{array_job}_{well}")
    states = cluster.wait([array_job, analysis_job], 500)
    assert set(states.values()) == {"COMPLETED"}, (states, _logs(out))
    assert "restart 1" in _logs(out)
    meta = h5md.read_meta(path)
    assert meta["status"] == "completed"
    np.testing.assert_array_equal(meta["steps"], np.arange(0, 1961, 5))
    assert [s["outcome"] for s in meta["provenance"]["segments"]] == ["interrupted",
                                                                       "completed"]
    counter = ET.fromstring(h5md.read_final_checkpoint(path)).find(".//t_ramp/current_step")
    assert int(counter.text) == 1960  # the resumed run heated on, not from the start
    report = json.loads((out / "reports" / "report.json").read_text())
    (chal,) = report["challenges"]
    rows = {r["model"]: r for r in chal["tables"]["breaking_temperature"]}
    assert set(rows) == {"doublewell", morse.replace(":", "-")}
    assert rows["doublewell"]["breaking_temperatures_K"] == [5000.0]  # censored at the end
    assert not [v for v in chal["verdicts"] if v["observable"] == "stability"]
    assert not processes_matching(str(out))
