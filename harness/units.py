"""Unit helpers. Internal units: Angstrom, ps (fs for time steps), eV, K."""

import re

from harness.errors import UserError

#: Boltzmann constant in eV/K (CODATA 2018).
KB_EV_PER_K = 8.617333262e-5
#: eV -> kJ/mol.
EV_TO_KJ_PER_MOL = 96.48533212331002

_TIME_UNITS_PS = {"fs": 1e-3, "ps": 1.0, "ns": 1e3, "us": 1e6}
_TIME_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(fs|ps|ns|us)\s*$")


def parse_time_ps(text: str, flag: str = "--time") -> float:
    """Parse a duration such as ``2ps``, ``0.5 ns`` or ``250fs`` into picoseconds.

    Parameters
    ----------
    text
        The duration: a positive number followed by one of fs, ps, ns, us.
    flag
        The flag name used in the error message.

    Returns
    -------
    float
        The duration in ps.
    """
    match = _TIME_RE.match(str(text))
    if not match:
        raise UserError(
            f"{flag} {text!r} is not a duration: write a number with a unit, e.g. 2ps, 500fs, 1ns"
        )
    value = float(match.group(1)) * _TIME_UNITS_PS[match.group(2)]
    if value <= 0:
        raise UserError(f"{flag} must be positive, got {text!r}")
    return value


def format_time_ps(time_ps: float) -> str:
    """Format a duration in ps the way a person would write it (``1ns``, ``2ps``, ``500fs``)."""
    if time_ps >= 1000 and abs(time_ps / 1000 - round(time_ps / 1000)) < 1e-9:
        return f"{time_ps / 1000:g}ns"
    if time_ps >= 1:
        return f"{time_ps:g}ps"
    return f"{time_ps * 1000:g}fs"
