"""Time-step sweep (``--protocol dt-sweep --dts 0.25fs,0.5fs,1fs,2fs``).

The runs of an ordinary launch, repeated at each time step: the same starts, seeds,
thermostat and simulated time (``--time``); frames are written at the same times (the stride
in steps scales with 1/dt, from the challenge's frame interval). With ``--ensemble nve`` the
thermostat is off and the conserved quantity is the total energy. Runs are labelled
``MODEL-dtDTfs`` (``MODEL-nve-dtDTfs``) so that they never mix with TEA runs; they are
ordinary supervised runs (local, ``--batch``, Slurm, resume). The analysis
(:mod:`analysis.commands.dt_sweep`) gives per model and time step the failure rate, the
conserved-energy drift and the RMS fluctuation of the conserved quantity.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.plan import RunSpec, output_path
from harness.units import parse_time_step_fs

EXAMPLE = "0.25fs,0.5fs,1fs,2fs"


def parse_dts(items: list[str] | str, flag: str = "--dts") -> list[float]:
    """Time steps in fs, ascending and distinct: each > 0 and at most 10 fs."""
    items = items if isinstance(items, list) else [s for s in str(items).split(",") if s.strip()]
    if not items:
        raise UserError(f"{flag}: give time steps, e.g. {flag} {EXAMPLE}")
    dts = []
    for item in items:
        text = str(item).strip()
        if text.startswith("-") or (text[:1].isdigit() or text[:1] == ".") and float(
                "0" + "".join(c for c in text if c.isdigit() or c == ".")) == 0:
            raise UserError(f"{flag} {text}: a time step must be above 0 fs, e.g. {flag} "
                            f"{EXAMPLE}")
        dts.append(parse_time_step_fs(text, flag))
    for dt in dts:
        if not dt <= 10:
            raise UserError(f"{flag} {dt:g}fs: give time steps between 0 and 10 fs")
    if len(set(dts)) != len(dts):
        raise UserError(f"{flag} {','.join(items)}: a time step is given twice")
    return sorted(dts)


def label_for(model_label: str, dt_fs: float) -> str:
    """``gap-dt0.5fs``."""
    return f"{model_label}-dt{dt_fs:g}fs"


def build_plan(settings: dict[str, Any]) -> list[RunSpec]:
    """One plan per time step, merged: identical but for ``dt_fs``, ``n_steps``, ``stride``."""
    from harness import config

    if not settings.get("dts"):
        raise UserError(f"--protocol dt-sweep needs --dts, e.g. --dts {EXAMPLE}")
    if settings.get("dt") is not None:
        raise UserError("--dt does not apply to --protocol dt-sweep (the time steps are "
                        "--dts); drop it")
    dts = parse_dts(settings["dts"])
    reference = config.build_plan(dict(settings, dt=None))
    frame_fs = reference[0].stride * reference[0].dt_fs  # the challenge's frame interval
    out_dir = Path(settings["out"]).expanduser().resolve()
    plan = []
    for dt in dts:
        stride = settings["stride"] or max(1, round(frame_fs / dt))
        for spec in config.build_plan(dict(settings, dt=dt, stride=stride)):
            label = label_for(spec.model_label, dt)
            plan.append(dataclasses.replace(
                spec, model_label=label,
                out_file=str(output_path(out_dir, spec.challenge, label, spec.temperature_K,
                                         spec.replica)),
                protocol="dt-sweep", protocol_options={"dts_fs": dts}))
    return plan
