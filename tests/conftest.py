"""Shared helpers: run the real commands as a user would, in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness import sockets

REPO = Path(__file__).resolve().parent.parent


def launch(*args: str, timeout: float = 300, cwd: Path | None = None,
           check: bool = False) -> subprocess.CompletedProcess:
    """Run ``python -m harness.launch ARGS`` and capture its output."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "harness.launch", "--quiet", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"launch failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def analysis(*args: str, timeout: float = 300, env: dict[str, str] | None = None,
             cwd: Path | None = REPO) -> subprocess.CompletedProcess:
    """Run ``python -m analysis.cli ARGS`` as a user would and capture its output.

    The checkout and ``tests/`` lead PYTHONPATH (tests/ holds the ``ase:`` test models and
    report plug-ins); ``env`` adds variables.
    """
    path = [str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
    full = dict(os.environ, OMP_NUM_THREADS="1",
                PYTHONPATH=os.pathsep.join(p for p in path if p), **(env or {}))
    return subprocess.run([sys.executable, "-m", "analysis.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=full, cwd=cwd)


def plan(out: Path, *argv: str, **settings_overrides):
    """The run plan of ``harness.launch ARGV --out OUT`` (settings overridable by keyword)."""
    from harness import config

    args = config.build_parser().parse_args(["--out", str(out), *argv])
    settings = config.resolve_settings(args)
    settings.update(out=str(out), **settings_overrides)
    return config.build_plan(settings)


# One OpenMP thread per run in every run the tests start (the harness takes its default
# --threads from OMP_NUM_THREADS). Two pytest workers share two cores; a run that took both
# for its OpenMP threads spun them against the other worker: GFN2-xTB, 40 steps, beside one
# busy core, took 41 s at 2 threads and 7 s at 1 (alone on the idle machine 2 threads gain
# ~15% on Challenge I for ~45% more CPU). The suite's CPU fell from ~945 to ~750 s.
os.environ["OMP_NUM_THREADS"] = "1"

# Runs started by this test session put this tag in their socket folders' names, so the leak
# checks below see only this session's folders, not those of other work on the same machine.
SOCKET_TAG = f"tests{os.getpid()}x"
os.environ[sockets.SOCKET_TAG_ENV] = SOCKET_TAG


def socket_dirs() -> set[str]:
    """Private i-PI socket directories of this test session currently in /tmp."""
    return sockets.tagged_folders(SOCKET_TAG)


def processes_matching(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (read from /proc; nothing is signalled)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            pids.append(int(entry.name))
    return pids


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """A fresh output folder."""
    return tmp_path / "runs"


#: The harmonic well pulls every atom to the origin, so the molecule collapses by design:
#: plumbing tests watch only for non-finite numbers.
HARMONIC = ("--model", "harmonic", "--criteria", "non_finite")


# --- scheduling across workers -------------------------------------------------------------
# Whole files go to one worker each (``--dist loadfile``: module fixtures run once). The files
# that take longest start first, so that no long file begins near the end while the other
# workers sit idle (longest-processing-time first). Seconds of each file alone on one idle
# core, 2026-11-27 (``/usr/bin/time pytest -n 0 FILE``); a file not listed counts as 0 and
# goes last. Only the order depends on these numbers, never a result. Measured on 2 cores:
# no clear gain over the collection order (591 s vs 621-696 s, one run each way), kept
# because it cannot hurt and matters more as files are added.
FILE_SECONDS = {
    "test_report": 162, "test_slurm": 143, "test_run_ipi": 100, "test_batch": 81,
    "test_families": 80, "test_observables": 62, "test_ramachandran": 54, "test_faults": 47,
    "test_remd": 130, "test_ramp": 60, "test_triage": 46, "test_stability": 39,
    "test_perovskite": 38, "test_dt_sweep": 30,
    "test_reference_import": 31, "test_lammps": 23, "test_own_system": 19, "test_models": 17,
    "test_surface_scan": 14, "test_cli_errors": 13, "test_drift": 11, "test_analysis_info": 11,
    "test_surface_analysis": 11,
    # on the machine beside other work, 2026-12-07: ~215 s at load ~4, ~600 s at load ~14;
    # SevenNet-0 under the second environment is most of it
    "test_model_python": 215,
    # not listed before, so it started last and ran alone at the end of the suite: two CHGNet
    # launches, CHGNet and mace-torch loaded in the worker (estimate from the 2026-12-07
    # suite logs: none of its tests among the 25 slowest, ~15 launches of 2-5 s)
    "test_pretrained": 60,
}


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker more than the cores this process may use.

    A third of the suite's worker time is waiting, not computing (runs starting up, Slurm
    scheduling and requeue delays, i-PI round trips). On 2 cores, 2026-11-28, the same main:
    ``-n 2`` 494 s wall for 748 CPU-s, ``-n 3`` 463 s for 755 CPU-s: the extra worker fills the
    waits without costing CPU. (Before the tests pinned OpenMP to one thread the suite was
    CPU-bound, ~945 CPU-s, and a third worker gained nothing: 625 s both ways.)
    """
    return len(os.sched_getaffinity(0)) + 1


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Order the files slowest first (a stable sort: the tests of a file keep their order)."""
    items.sort(key=lambda item: -FILE_SECONDS.get(Path(str(item.fspath)).stem, 0))
