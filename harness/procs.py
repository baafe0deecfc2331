"""Child processes that never outlive their parent and are always reaped."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int) -> None:
    """In the child, before exec: receive ``sig`` when the parent thread exits (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def own_package_env(cmd: Sequence[str], env: dict[str, str] | None) -> dict[str, str] | None:
    """The environment for a child ``python -m harness.X``: this harness's folder leads PYTHONPATH.

    A child started in a run's work folder would otherwise import whichever ``harness`` its
    interpreter finds first (an installed copy, another checkout's editable install), not the
    code of the supervisor that started it. Other commands get ``env`` unchanged, and so does a
    child under another interpreter (``--model-python``): it gets a folder holding only a link to
    this harness (:mod:`harness.model_python`), and this package's parent folder (site-packages
    where the harness is installed) would put the main environment's packages before its own.
    """
    cmd = list(cmd)
    if len(cmd) < 3 or cmd[1] != "-m" or not cmd[2].startswith("harness.") \
            or cmd[0] != sys.executable:
        return env
    root = str(Path(__file__).resolve().parent.parent)
    base = dict(os.environ if env is None else env)
    rest = [p for p in base.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    base["PYTHONPATH"] = os.pathsep.join([root, *rest])
    return base


def start(cmd: Sequence[str], log: Path, cwd: Path | None = None,
          env: dict[str, str] | None = None, death_signal: int = signal.SIGKILL,
          new_session: bool = False, stdout_pipe: bool = False) -> subprocess.Popen:
    """Start a child that is killed with ``death_signal`` if this process dies.

    Output goes to ``log`` (stderr always; stdout too unless ``stdout_pipe``). A ``python -m
    harness.X`` child runs this process's harness (:func:`own_package_env`).
    """
    env = own_package_env(cmd, env)
    handle = open(log, "ab")  # noqa: SIM115 - owned by the child, closed below
    try:
        return subprocess.Popen(
            list(cmd), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else handle, stderr=handle,
            preexec_fn=lambda: _die_with_parent(death_signal), start_new_session=new_session,
        )
    finally:
        handle.close()


def stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, grace_s: float = 10.0) -> None:
    """Send ``sig``, wait up to ``grace_s``, then SIGKILL; always reaps the child."""
    if proc is None or proc.poll() is not None:
        if proc is not None:
            proc.wait()
        return
    try:
        proc.send_signal(sig)
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    except ProcessLookupError:
        proc.wait()


def describe_exit(code: int | None) -> str:
    """'exit code 1' or 'killed by SIGKILL'."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def tail(path: Path, lines: int = 5) -> str:
    """The last lines of a log file, joined with ' | ' (for one-line failure reasons)."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text[-lines:] if line.strip())
