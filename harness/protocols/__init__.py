"""Run protocols: what kind of run a launch makes, one entry each (as model families are).

``md`` is the TEA protocol (one i-PI or LAMMPS run per temperature and replica, planned by
:func:`harness.config.build_plan`); ``remd`` is replica exchange over a temperature ladder
(:mod:`harness.protocols.remd`); ``ramp`` heats every replica at a constant rate
(:mod:`harness.protocols.ramp`); ``dt-sweep`` repeats the runs at several time steps
(:mod:`harness.protocols.dt_sweep`). A protocol names the settings that only it accepts, so
that an option given without its protocol is one clear error instead of being ignored.

A protocol whose runs are ordinary supervised runs (one RunSpec per run, run by the local,
batch, Slurm and task-farm launchers, resumed like any run) gives ``plan(settings)``; one that
runs as a whole (``remd``) has its own launch and no ``plan``. ``edit_ipi_input(root, spec,
start_step)`` changes the i-PI input of a fresh run of its specs (e.g. the ramp's thermostat
motion); i-PI's checkpoints carry the change on resume.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import UserError

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

    from harness.plan import RunSpec


@dataclass(frozen=True)
class Protocol:
    """One kind of run: its name, what it is, and the settings only it takes."""

    name: str
    description: str
    #: settings keys (flag names with _) that belong to this protocol alone
    own_settings: tuple[str, ...] = ()
    #: ``plan(settings)`` -> the RunSpecs of ordinary supervised runs (None: own launch)
    plan: Callable[[dict[str, Any]], list[RunSpec]] | None = None
    #: ``edit_ipi_input(root, spec, start_step)``: change a fresh run's i-PI input in place
    edit_ipi_input: Callable[[ET.Element, RunSpec, int], None] | None = None
    #: ``launch(settings) -> exit code``: a protocol that runs as a whole (no ``plan``)
    launch: Callable[[dict[str, Any]], int] | None = None
    #: ``submit(task_args, settings, args) -> exit code``: its ``--submit`` (Slurm)
    submit: Callable[[list[str], dict[str, Any], Any], int] | None = None
    #: the ``analysis report`` section provider that owns this protocol's runs (None: they are
    #: fixed-temperature runs, judged by stability and every observable like the TEA runs)
    report_section: str | None = None


def _md_plan(settings: dict[str, Any]) -> list[RunSpec]:
    from harness import config

    return config.build_plan(settings)


def _ramp_plan(settings: dict[str, Any]) -> list[RunSpec]:
    from harness.protocols import ramp

    return ramp.build_plan(settings)


def _ramp_input(root: ET.Element, spec: RunSpec, start_step: int) -> None:
    from harness.protocols import ramp

    ramp.edit_ipi_input(root, spec, start_step)


def _remd_launch(settings: dict[str, Any]) -> int:
    from harness.protocols import remd

    return remd.launch(settings)


def _remd_submit(task_args: list[str], settings: dict[str, Any], args: Any) -> int:
    from harness.protocols import remd

    return remd.submit(task_args, settings, args)


def _sweep_plan(settings: dict[str, Any]) -> list[RunSpec]:
    from harness.protocols import dt_sweep

    return dt_sweep.build_plan(settings)


PROTOCOLS: dict[str, Protocol] = {
    "md": Protocol("md", "the TEA runs: one MD run per temperature and replica",
                   plan=_md_plan),
    "remd": Protocol("remd", "replica exchange over a temperature ladder (one i-PI "
                     "simulation, one system per temperature)",
                     ("ladder", "exchange_stride", "ladder_id"), launch=_remd_launch,
                     submit=_remd_submit),
    "ramp": Protocol("ramp", "heating ramp: every replica heated from START to END at RATE "
                     "(--ramp 300K:3000K:500K/ps); its breaking temperature is the "
                     "thermostat's at its first failure", ("ramp",), plan=_ramp_plan,
                     edit_ipi_input=_ramp_input, report_section="ramp"),
    "dt-sweep": Protocol("dt-sweep", "time-step sweep: the same runs (starts, seeds, "
                         "thermostat, simulated time) at each time step of --dts",
                         ("dts",), plan=_sweep_plan, report_section="dt_sweep"),
}


def flag(key: str) -> str:
    """The command-line flag of a settings key."""
    return "--" + key.replace("_", "-")


def get_protocol(name: str | None) -> Protocol:
    """The protocol called ``name`` (``md`` when None); an unknown one is a UserError."""
    key = str(name or "md").lower()
    if key not in PROTOCOLS:
        raise UserError(f"--protocol {name!r}: choose one of " + ", ".join(PROTOCOLS))
    return PROTOCOLS[key]


def report_owner(protocol: str | None) -> str | None:
    """The report section provider that owns the runs of ``protocol`` (a run spec's
    ``protocol``), or None for fixed-temperature runs (``md``, ``remd``, none recorded, or a
    protocol this version does not know)."""
    known = PROTOCOLS.get(str(protocol or "md").lower())
    return known.report_section if known is not None else None


def protocol_of(settings: dict[str, Any]) -> Protocol:
    """The protocol of the settings, checked: known, and no other protocol's option given."""
    chosen = get_protocol(settings.get("protocol"))
    for other in PROTOCOLS.values():
        if other is chosen:
            continue
        for key in other.own_settings:
            if settings.get(key) is not None and key not in chosen.own_settings:
                raise UserError(f"{flag(key)} belongs to --protocol {other.name}; add "
                                f"--protocol {other.name} or drop {flag(key)}")
    return chosen
