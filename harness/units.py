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


def parse_time_step_fs(text: str | float, flag: str = "--dt") -> float:
    """A time step in fs: ``0.5fs``, ``0.0005ps`` or a bare number (read as fs)."""
    if isinstance(text, int | float) or _NUMBER_RE.match(str(text)):
        value = float(text)
        if not value > 0:
            raise UserError(f"{flag} must be positive, got {text!r}")
        return value
    signed = _SIGNED_TIME_RE.match(str(text))
    if signed and not float(signed.group(1)) > 0:  # 0fs, -0.5fs: a time step, not positive
        raise UserError(f"{flag} must be positive, got {text!r}")
    try:
        return parse_time_ps(str(text), flag) * 1000.0
    except UserError:
        raise UserError(f"{flag} {text!r} is not a time step: write e.g. 0.5fs (a bare number "
                        "is read as fs)") from None


_WALL_UNITS_S = {"s": 1.0, "sec": 1.0, "min": 60.0, "h": 3600.0}
_WALL_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(s|sec|min|h)?\s*$")
_SIGNED_TIME_RE = re.compile(
    r"^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(fs|ps|ns|us)\s*$")
_NUMBER_RE = re.compile(r"^\s*[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?\s*$")


def parse_wall_s(text: str | float, flag: str) -> float:
    """A wall-clock duration in seconds: ``20s``, ``2min``, ``1h`` or a bare number (s)."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = _WALL_RE.match(str(text))
        if not match:
            raise UserError(f"{flag} {text!r} is not a duration: write e.g. 20s, 5min, 1h "
                            "(a bare number is read as seconds)")
        value = float(match.group(1)) * _WALL_UNITS_S[match.group(2) or "s"]
    if not value > 0:
        raise UserError(f"{flag} must be positive, got {text!r}")
    return value


def format_time_ps(time_ps: float) -> str:
    """Format a duration in ps the way a person would write it (``1ns``, ``2ps``, ``500fs``)."""
    if time_ps >= 1000 and abs(time_ps / 1000 - round(time_ps / 1000)) < 1e-9:
        return f"{time_ps / 1000:g}ns"
    if time_ps >= 1:
        return f"{time_ps:g}ps"
    return f"{time_ps * 1000:g}fs"


def ipi_atomic_units() -> tuple[float, float, float]:
    """i-PI's conversions between the harness's units and its atomic units, made consistent.

    Returns
    -------
    tuple of float
        ``(bohr_to_ang, ev_to_ha, evang_to_au)``: Angstrom per Bohr and Hartree per eV as
        i-PI defines them (``ipi.utils.units``), and Hartree/Bohr per eV/Angstrom as
        ``ev_to_ha * bohr_to_ang``.

    Notes
    -----
    i-PI's own table gives the force unit ``ev/ang`` as 0.019446904 Hartree/Bohr, which is
    not the ratio of its ``electronvolt`` (0.036749326) and ``angstrom`` (1.8897261) entries:
    the table's eight digits differ from that ratio by -1.07e-7 relative. Forces converted with
    it are then not the gradient of the energy converted with the others, and the conserved
    quantity i-PI reports carries a bounded error of that relative size of the potential
    energy (1.5e-8 of the total energy in the harmonic well of tests/test_dt_sweep.py). With
    the product, the model's forces are the exact gradient of its energy in i-PI's units.
    """
    from ipi.utils.units import unit_to_internal, unit_to_user

    bohr_to_ang = unit_to_user("length", "angstrom", 1.0)
    ev_to_ha = unit_to_internal("energy", "electronvolt", 1.0)
    return bohr_to_ang, ev_to_ha, ev_to_ha * bohr_to_ang


def ipi_force_output_factor() -> float:
    """Multiplies forces that i-PI writes in ``ev/ang`` to give the model's forces in eV/A.

    i-PI converts its internal forces to ``ev/ang`` with its table's 0.019446904; the force
    clients convert into i-PI's units with :func:`ipi_atomic_units` (the consistent product),
    so this factor (1 - 1.07e-7) makes the round trip exact.
    """
    from ipi.utils.units import unit_to_internal

    return unit_to_internal("force", "ev/ang", 1.0) / ipi_atomic_units()[2]
