"""``sevenn``: SevenNet pretrained models through sevenn's ASE calculator.

``--model sevenn`` runs SevenNet-0 (``7net-0``, the 11 July 2024 model);
``--model-option sevenn:model=7net-l3i5`` or ``7net-mf-0`` (multi-fidelity: ``modal=PBE``,
the default here, or ``R2SCAN``). Their weights ship inside sevenn's wheel, so they work
offline; ``--model-file`` takes any SevenNet checkpoint (``.pth``). Options: ``device``
(``cpu`` by default), ``modal``.

sevenn 0.13 needs e3nn >= 0.5 while mace-torch 0.3.16 pins e3nn 0.4.4: the two cannot share
one environment. Install sevenn in its own virtual environment and serve it from there
(``--model-python sevenn=PATH/bin/python``). The elements of each pretrained model are
declared here, so a challenge the model cannot describe is refused in the main environment,
before anything runs and without sevenn installed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.models import MPTRJ_ELEMENTS, ModelFamily, Pretrained

INSTALL = ("pip install sevenn in an environment of its own (it needs e3nn>=0.5; mace-torch "
           "pins 0.4.4): python -m venv ~/venvs/sevenn && ~/venvs/sevenn/bin/pip install "
           "torch==2.13.0 sevenn, then --model-python sevenn=~/venvs/sevenn/bin/python")

PRETRAINED = (
    Pretrained(name="7net-0", elements=MPTRJ_ELEMENTS, licence="GPL-3.0 (sevenn package)",
               aliases=("sevennet-0", "7net-0_11july2024", "sevennet-0_11july2024")),
    Pretrained(name="7net-l3i5", elements=MPTRJ_ELEMENTS, licence="GPL-3.0 (sevenn package)",
               aliases=("sevennet-l3i5",)),
    Pretrained(name="7net-mf-0", elements=MPTRJ_ELEMENTS, licence="GPL-3.0 (sevenn package)",
               aliases=("sevennet-mf-0",), modals=("PBE", "R2SCAN"), default_modal="PBE"),
)


def _calculator(model_file: Path | None, options: dict[str, Any]):
    from sevenn.calculator import SevenNetCalculator

    settings: dict[str, Any] = {"device": "cpu"}
    settings.update({k: v for k, v in options.items() if k not in ("model", "modal")})
    if model_file is not None:
        settings["model"] = str(model_file)
    else:
        settings["model"] = FAMILY.pretrained_model(options).package_name
    modal = FAMILY.modal(options) if model_file is None else options.get("modal")
    if modal is not None:
        settings["modal"] = modal
    return SevenNetCalculator(**settings)


FAMILY = ModelFamily(
    name="sevenn",
    description="SevenNet pretrained models (sevenn; 7net-0 by default, weights in the wheel)",
    ase_calculator=_calculator,
    packages=("sevenn", "torch", "e3nn"),
    requires=("sevenn", "torch"),
    install_hint=INSTALL,
    options=("model", "modal", "device"),
    pretrained=PRETRAINED,
    default_pretrained="7net-0",
)
