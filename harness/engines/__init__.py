"""MD engines: how a RunSpec becomes a running simulation, one registry entry each.

``ipi`` (default): i-PI integrates (the same integrator and thermostat for every model); the
force client is the harness's python driver serving an ASE calculator, or LAMMPS serving a
pair style. ``lammps``: LAMMPS integrates by itself (pair-style models, large systems, MPI
domain decomposition); its runs are labelled ``MODEL-lammps`` because its thermostat is not
the challenge's. :mod:`harness.runner` asks :func:`get_engine` which supervisor runs a spec;
run protocols (NVT/NVE runs, replica exchange) live in :mod:`harness.protocols`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.errors import UserError

if TYPE_CHECKING:
    from harness.plan import RunSpec


@dataclass(frozen=True)
class Engine:
    """One engine: its name, what it is, the label suffix of its runs, and its supervisor."""

    name: str
    description: str
    #: appended to a model's label: runs integrated by another engine are other conditions
    label_suffix: str
    #: ``supervisor(spec)`` -> the supervisor class that runs ``spec``
    supervisor: Callable[[RunSpec], type]


def _ipi_supervisor(spec: RunSpec) -> type:
    from harness.engines.ipi_run import IpiSupervisor
    from harness.engines.lammps_run import LammpsClientSupervisor, uses_lammps

    return LammpsClientSupervisor if uses_lammps(spec) else IpiSupervisor


def _lammps_supervisor(spec: RunSpec) -> type:
    from harness.engines.lammps_run import NativeSupervisor

    return NativeSupervisor


ENGINES: dict[str, Engine] = {
    "ipi": Engine("ipi", "i-PI integrates; forces from a python client (ASE calculator) or "
                  "from LAMMPS (pair style)", "", _ipi_supervisor),
    "lammps": Engine("lammps", "LAMMPS integrates by itself (pair-style models; MPI domain "
                     "decomposition)", "-lammps", _lammps_supervisor),
}


def get_engine(name: str) -> Engine:
    """The engine called ``name``; an unknown one is a :class:`UserError` naming the choices."""
    engine = ENGINES.get(str(name or "ipi"))
    if engine is None:
        raise UserError(f"--engine {name!r}: choose ipi (i-PI integrates; default) or lammps "
                        "(LAMMPS integrates)")
    return engine
