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
