"""``--model-python MODEL=PATH``: a model's force client under another Python interpreter.

Model packages pin their own stacks (mace-torch wants e3nn 0.4.4, sevenn e3nn >= 0.5), so one
environment cannot hold them all. With ``--model-python`` the model's force client
(:mod:`harness.driver`, or :mod:`harness.batch_driver` with ``--batch``) runs under the named
interpreter, while i-PI, the supervisor and the HDF5 writer stay in the harness's own.

That environment needs only the model's packages, numpy and ASE. The harness is not installed
there: the child gets a folder on ``PYTHONPATH`` that holds nothing but a link to this
``harness`` package (:func:`source_folder`), and the client's import chain touches only the
standard library, numpy, ASE and the model's packages (``tests/test_model_python.py`` checks
it). Nothing else of the harness's environment leaks in.

Both sides carry :data:`CLIENT_PROTOCOL`, the version of what the supervisor and the client
exchange (the run spec, the join requests of a group, the model clock, the watchdog's event
files, the client's command line). The launcher asks the interpreter before anything runs
(:func:`inspect`, which also finds the family's packages as that interpreter sees them); the
client checks the number it is given when it starts (:func:`check_protocol`).

Run as ``PATH -m harness.model_python`` (with the folder above on ``PYTHONPATH``): prints the
probe as one JSON line. Only the standard library is imported at module level.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import PACKAGE_DIR
from harness.errors import UserError

#: Version of the supervisor-client exchange; raise it when that exchange changes.
CLIENT_PROTOCOL = 1
#: Seconds the probe may take (a cold file system on a cluster node is slow).
PROBE_TIMEOUT_S = 120.0
#: What every force client imports besides the model's own packages.
BASE_MODULES = ("numpy", "ase")
#: The oldest Python the client code runs on.
MIN_PYTHON = (3, 10)


class ProtocolMismatch(Exception):
    """The client and the supervisor speak different versions of their exchange."""


def check_protocol(expected: int) -> None:
    """Raise :class:`ProtocolMismatch` unless ``expected`` (the supervisor's) is ours."""
    if int(expected) != CLIENT_PROTOCOL:
        raise ProtocolMismatch(
            f"protocol mismatch: the supervisor speaks client protocol {expected}, this force "
            f"client ({PACKAGE_DIR}) speaks {CLIENT_PROTOCOL}; run both from the same "
            "tea-harness source")


def parse_client_args(parser: argparse.ArgumentParser, argv: list[str] | None
                      ) -> argparse.Namespace | None:
    """A force client's command line, with ``--protocol`` (the launcher's version) added and
    checked: None after one ``error:`` line on stderr when the versions differ (the client
    then exits with code 2)."""
    parser.add_argument("--protocol", type=int, default=CLIENT_PROTOCOL,
                        help="the launcher's client protocol version (checked)")
    args = parser.parse_args(argv)
    try:
        check_protocol(args.protocol)
    except ProtocolMismatch as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return None
    return args


# ---------------------------------------------------------------- child side
def probe(modules: list[str], packages: list[str], everything: bool = False
          ) -> dict[str, Any]:
    """What this interpreter offers: its version, which modules it finds, package versions
    (with ``everything``, also every installed distribution: the model's whole stack)."""
    versions = {}
    for dist in packages:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return {
        "protocol": CLIENT_PROTOCOL,
        "executable": sys.executable,
        "python": platform.python_version(),
        "python_ok": sys.version_info[:2] >= MIN_PYTHON,
        "prefix": sys.prefix,
        "harness_source": str(PACKAGE_DIR),
        "found": {m: importlib.util.find_spec(m) is not None for m in modules},
        "versions": versions,
        "distributions": dict(sorted(
            (d.metadata["Name"], d.version) for d in importlib.metadata.distributions()
            if d.metadata["Name"])) if everything else None,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.model_python --modules a,b --packages c,d``: the probe as JSON."""
    parser = argparse.ArgumentParser(prog="python -m harness.model_python")
    parser.add_argument("--modules", default="", help="modules to look for, comma separated")
    parser.add_argument("--packages", default="", help="distributions whose versions to report")
    parser.add_argument("--all", action="store_true", help="also every installed distribution")
    args = parser.parse_args(argv)
    split = [s for s in args.modules.split(",") if s], [s for s in args.packages.split(",") if s]
    print(json.dumps(probe(*split, everything=args.all)), flush=True)
    return 0


# --------------------------------------------------------------- parent side
def source_folder(parent: Path) -> Path:
    """A folder under ``parent`` holding only a link to this ``harness`` package.

    Put on the child's ``PYTHONPATH`` it makes the harness importable without the rest of the
    folder the package lives in (an installed harness lives in the main environment's
    site-packages, whose packages must not shadow the model environment's).
    """
    folder = Path(parent) / "harness-src"
    link = folder / "harness"
    folder.mkdir(parents=True, exist_ok=True)
    if not (link.is_symlink() and link.resolve() == PACKAGE_DIR):
        link.unlink(missing_ok=True)
        link.symlink_to(PACKAGE_DIR, target_is_directory=True)
    return folder


def client_env(env: dict[str, str], parent: Path) -> dict[str, str]:
    """``env`` for a client under another interpreter: the harness source first on its path."""
    # the user's own PYTHONPATH stays after it (a calculator module of their own, say)
    path = [str(source_folder(parent)), *filter(None, env.get("PYTHONPATH", "").split(
        os.pathsep))]
    # a PYTHONHOME of the main environment would point the child at its standard library
    return {**{k: v for k, v in env.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")},
            "PYTHONPATH": os.pathsep.join(path)}


def client_command(python: str | None, module: str) -> list[str]:
    """The start of a force client's command line: its interpreter and module."""
    return [python or sys.executable, "-m", module]


def normalise(path: str) -> str:
    """An interpreter path made absolute, keeping links (a venv's python is a link whose
    target is the base interpreter, which would lose the venv)."""
    return os.path.abspath(os.path.expanduser(path))


def run_probe(python: str, modules: tuple[str, ...] = (),
              packages: tuple[str, ...] = (), everything: bool = False) -> dict[str, Any]:
    """Run the probe under ``python``; UserError when that is not a usable interpreter."""
    flag = "--model-python"
    if not os.path.exists(python):
        raise UserError(f"{flag} {python}: no such file; give the python of the model's "
                        "environment, e.g. /path/to/venv/bin/python")
    if os.path.isdir(python) or not os.access(python, os.X_OK):
        raise UserError(f"{flag} {python}: not an executable; give the python of the model's "
                        "environment, e.g. /path/to/venv/bin/python")
    with tempfile.TemporaryDirectory(prefix="tea-probe-") as tmp:
        env = client_env(dict(os.environ), Path(tmp))
        cmd = client_command(python, "harness.model_python") + [
            "--modules", ",".join(modules), "--packages", ",".join(packages)] + (
            ["--all"] if everything else [])
        try:
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                                  timeout=PROBE_TIMEOUT_S, cwd=tmp, check=False)
        except subprocess.TimeoutExpired:
            raise UserError(f"{flag} {python}: gave no answer in {PROBE_TIMEOUT_S:.0f} s") from None
        except OSError as exc:
            raise UserError(f"{flag} {python}: cannot run it ({exc.strerror})") from None
    try:
        answer = json.loads(proc.stdout.strip().splitlines()[-1])
        answer["protocol"]
    except (IndexError, ValueError, KeyError, TypeError):
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"{flag} {python}: not a Python {'.'.join(map(str, MIN_PYTHON))}+ "
                        f"interpreter that can run the force client ({last})") from None
    return answer


def inspect(python: str, model: str, requires: tuple[str, ...], packages: tuple[str, ...],
            install_hint: str) -> dict[str, Any]:
    """Check before anything runs that ``python`` can serve ``model``; its probe answer.

    Raises
    ------
    UserError
        When the interpreter is missing or not one, lacks numpy, ASE or the family's packages
        (as that interpreter finds them, not this one), or speaks another client protocol.
    """
    answer = run_probe(python, (*BASE_MODULES, *requires), tuple(dict.fromkeys(
        (*packages, *BASE_MODULES))))
    flag = f"--model-python {model}={python}"
    if not answer.get("python_ok", False):
        raise UserError(f"{flag}: Python {answer.get('python')} is too old; the force client "
                        f"needs Python {'.'.join(map(str, MIN_PYTHON))} or newer")
    if answer["protocol"] != CLIENT_PROTOCOL:
        raise UserError(f"{flag}: protocol mismatch, that interpreter's harness "
                        f"({answer.get('harness_source')}) speaks client protocol "
                        f"{answer['protocol']}, this one {CLIENT_PROTOCOL}; run both from the "
                        "same tea-harness source")
    found = answer.get("found", {})
    for module in BASE_MODULES:
        if not found.get(module):
            raise UserError(f"{flag}: that environment lacks {module}; install it there: "
                            f"{python} -m pip install numpy ase")
    for module in requires:
        if not found.get(module):
            hint = f" ({install_hint})" if install_hint else ""
            raise UserError(f"{flag}: that environment lacks the python package {module!r} "
                            f"that model {model!r} needs; install it into that environment"
                            f"{hint}")
    return answer


def provenance(python: str, packages: tuple[str, ...]) -> dict[str, Any]:
    """What the provenance records of a model interpreter: path, Python and package versions
    as that interpreter sees them (or the error, when it cannot be asked any more)."""
    try:
        answer = run_probe(python, (), tuple(dict.fromkeys((*packages, *BASE_MODULES))),
                           everything=True)
    except UserError as exc:
        return {"executable": python, "error": str(exc)}
    return {"executable": python, "resolved": answer["executable"], "prefix": answer["prefix"],
            "python": answer["python"], "versions": answer["versions"],
            "distributions": answer["distributions"], "client_protocol": answer["protocol"]}


if __name__ == "__main__":
    sys.exit(main())
