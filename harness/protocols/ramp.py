"""Heating ramp (``--protocol ramp --ramp 300K:3000K:500K/ps``): where a model breaks.

Every replica starts as the TEA run at the ramp's start temperature would (same start, same
seed, same Langevin thermostat and time step) and its thermostat is heated linearly to the end
temperature at the given rate; the run length follows from the three numbers. i-PI does the
heating: its ``t_ramp`` motion (``ipi/engine/motion/ramp.py``) sets the ensemble temperature
every step, ``start + k (end - start) / N`` at step ``k`` of ``N``, and the thermostat follows
it (i-PI pipes the ensemble temperature into the thermostat's). The ramp motion goes first in
a ``<motion mode='multi'>`` so that step ``k`` is integrated at the temperature of step ``k``;
its step counter lives in i-PI's checkpoints, so a resumed run heats on where it stopped.

A run's *breaking temperature* is the thermostat temperature at its first failure event
(:func:`temperature_at`); a run that reaches the end is censored at the end temperature.
The runs are ordinary supervised runs (local, ``--batch``, Slurm, task farm, resume), labelled
``MODEL-rampSTART-ENDK-RATEKps`` so that they never mix with TEA runs or other ramps.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.plan import RunSpec, n_steps_for, output_path

_NUMBER = r"([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
_TEMP_RE = re.compile(rf"^\s*([-+]?){_NUMBER}\s*K?\s*$", re.IGNORECASE)
_RATE_RE = re.compile(rf"^\s*([-+]?){_NUMBER}\s*(?:K\s*/\s*(fs|ps|ns))?\s*$", re.IGNORECASE)
_PER_PS = {"fs": 1e3, "ps": 1.0, "ns": 1e-3}
EXAMPLE = "300K:3000K:500K/ps"


@dataclass(frozen=True)
class Ramp:
    """A linear heating ramp: from ``start_K`` to ``end_K`` at ``rate_K_per_ps``."""

    start_K: float
    end_K: float
    rate_K_per_ps: float

    @property
    def length_ps(self) -> float:
        """Simulated time from start to end."""
        return (self.end_K - self.start_K) / self.rate_K_per_ps

    @property
    def label(self) -> str:
        """``ramp300-3000K-500Kps``: appended to the model's label."""
        return f"ramp{self.start_K:g}-{self.end_K:g}K-{self.rate_K_per_ps:g}Kps"

    @property
    def text(self) -> str:
        """``300-3000 K at 500 K/ps``."""
        return f"{self.start_K:g}-{self.end_K:g} K at {self.rate_K_per_ps:g} K/ps"

    def temperature_at(self, time_ps: float) -> float:
        """The thermostat temperature at ``time_ps`` (held at the end after the ramp)."""
        return min(self.end_K, self.start_K + self.rate_K_per_ps * max(0.0, time_ps))

    def temperature_at_step(self, step: int, n_steps: int) -> float:
        """The thermostat temperature i-PI integrates step ``step`` of ``n_steps`` at:
        ``start + (end - start) step / n_steps`` (its ``t_ramp`` motion, linear)."""
        return self.start_K + (self.end_K - self.start_K) * min(max(step, 0), n_steps) \
            / max(n_steps, 1)

    def as_options(self) -> dict[str, float]:
        """The RunSpec's ``protocol_options``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> Ramp:
        """Back from :meth:`as_options` (a run spec read from a trajectory)."""
        return cls(float(options["start_K"]), float(options["end_K"]),
                   float(options["rate_K_per_ps"]))


def parse_ramp(text: str, flag: str = "--ramp") -> Ramp:
    """``START:END:RATE`` (``300K:3000K:500K/ps``; K and K/ps may be left out; K/fs, K/ns).

    Raises
    ------
    UserError
        Not three parts, a temperature <= 0, a ramp that goes down or stays, a rate <= 0.
    """
    parts = str(text).split(":")
    temps = [_TEMP_RE.match(p) for p in parts[:2]]
    rate = _RATE_RE.match(parts[2]) if len(parts) == 3 else None
    if len(parts) != 3 or not all(temps) or rate is None:
        raise UserError(f"{flag} {text!r}: write START:END:RATE, e.g. {EXAMPLE}")
    start, end = (float(m.group(2)) * (-1 if m.group(1) == "-" else 1) for m in temps)
    per_ps = float(rate.group(2)) * (-1 if rate.group(1) == "-" else 1) \
        * _PER_PS[(rate.group(3) or "ps").lower()]
    if not start > 0:
        raise UserError(f"{flag} {text!r}: the start temperature must be above 0 K")
    if not end > start:
        raise UserError(f"{flag} {text!r}: the ramp must go up (end {end:g} K is not above "
                        f"start {start:g} K); heat from low to high, e.g. {EXAMPLE}")
    if not per_ps > 0:
        raise UserError(f"{flag} {text!r}: the rate must be above 0 K/ps, e.g. {EXAMPLE}")
    return Ramp(start, end, per_ps)


#: Launch settings a ramp decides itself, and why each is refused.
_NOT_WITH_RAMP = {
    "temperatures": "the ramp's start is the temperature",
    "time": "the length follows from the ramp: (end - start) / rate",
}


def build_plan(settings: dict[str, Any]) -> list[RunSpec]:
    """The ramp's runs: the TEA runs at the start temperature, heated to the end.

    Same starts, seeds, thermostat, time step and stride as ``--temperatures START``; the
    length and labels are the ramp's.
    """
    from harness import config

    if not settings.get("ramp"):
        raise UserError(f"--protocol ramp needs --ramp START:END:RATE, e.g. --ramp {EXAMPLE}")
    ramp = parse_ramp(settings["ramp"])
    for key, why in _NOT_WITH_RAMP.items():
        if settings.get(key):
            raise UserError(f"--{key} does not apply to --protocol ramp ({why}); drop it")
    if str(settings.get("ensemble") or "nvt").lower() != "nvt":
        raise UserError("--protocol ramp heats with the thermostat: drop --ensemble nve")
    if str(settings.get("engine") or "ipi") != "ipi":
        raise UserError("--protocol ramp needs --engine ipi (i-PI ramps the thermostat)")
    base = config.build_plan(dict(settings, temperatures=[f"{ramp.start_K!r}"], time=None))
    out_dir = Path(settings["out"]).expanduser().resolve()
    plan = []
    for spec in base:
        label = f"{spec.model_label}-{ramp.label}"
        plan.append(dataclasses.replace(
            spec, model_label=label, n_steps=n_steps_for(ramp.length_ps, spec.dt_fs),
            out_file=str(output_path(out_dir, spec.challenge, label, spec.temperature_K,
                                     spec.replica)),
            protocol="ramp", protocol_options=ramp.as_options()))
    return plan


def edit_ipi_input(root: ET.Element, spec: RunSpec, start_step: int = 0) -> None:
    """Wrap the run's dynamics in ``<motion mode='multi'>`` after a ``t_ramp`` motion.

    ``start_step``: the step the run starts from (a run continued from a stored frame), where
    the ramp's own counter must begin so that the temperature matches the step.
    """
    ramp = Ramp.from_options(spec.protocol_options)
    system = root.find("system")
    dynamics = root.find("system/motion")
    if system is None or dynamics is None or dynamics.get("mode") != "dynamics":
        raise UserError("--protocol ramp: the i-PI template lacks <system><motion "
                        "mode='dynamics'>; restore ipi_xml/nvt.xml from git")
    index = list(system).index(dynamics)
    system.remove(dynamics)
    multi = ET.Element("motion", mode="multi")
    heat = ET.SubElement(ET.SubElement(multi, "motion", mode="t_ramp"), "t_ramp")
    for tag, value, attrs in (("t_start", ramp.start_K, {"units": "kelvin"}),
                              ("t_end", ramp.end_K, {"units": "kelvin"}),
                              ("total_steps", spec.n_steps, {}),
                              ("current_step", int(start_step), {}),
                              ("logscale", "false", {})):
        ET.SubElement(heat, tag, attrs).text = f" {value!r} " if isinstance(value, float) \
            else f" {value} "
    multi.append(dynamics)
    system.insert(index, multi)
