"""Run protocols: what kind of run a launch makes, one entry each (as model families are).

``md`` is the TEA protocol (one i-PI or LAMMPS run per temperature and replica, planned by
:func:`harness.config.build_plan`); ``remd`` is replica exchange over a temperature ladder
(:mod:`harness.protocols.remd`). A protocol names the settings that only it accepts, so that
an option given without its protocol is one clear error instead of being ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import UserError


@dataclass(frozen=True)
class Protocol:
    """One kind of run: its name, what it is, and the settings only it takes."""

    name: str
    description: str
    #: settings keys (flag names with _) that belong to this protocol alone
    own_settings: tuple[str, ...] = ()


PROTOCOLS: dict[str, Protocol] = {
    "md": Protocol("md", "the TEA runs: one MD run per temperature and replica"),
    "remd": Protocol("remd", "replica exchange over a temperature ladder (one i-PI "
                     "simulation, one system per temperature)",
                     ("ladder", "exchange_stride", "ladder_id")),
}


def flag(key: str) -> str:
    """The command-line flag of a settings key."""
    return "--" + key.replace("_", "-")


def protocol_of(settings: dict[str, Any]) -> Protocol:
    """The protocol of the settings, checked: known, and no other protocol's option given."""
    name = str(settings.get("protocol") or "md").lower()
    if name not in PROTOCOLS:
        raise UserError(f"--protocol {settings.get('protocol')!r}: choose one of "
                        + ", ".join(PROTOCOLS))
    chosen = PROTOCOLS[name]
    for other in PROTOCOLS.values():
        if other is chosen:
            continue
        for key in other.own_settings:
            if settings.get(key) is not None and key not in chosen.own_settings:
                raise UserError(f"{flag(key)} belongs to --protocol {other.name}; add "
                                f"--protocol {other.name} or drop {flag(key)}")
    return chosen
