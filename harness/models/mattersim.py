"""``mattersim``: Microsoft's MatterSim v1 force fields through mattersim's own loader.

``--model mattersim`` runs MatterSim-v1.0.0-1M (``mattersim-1m``); ``--model-option
mattersim:model=5m`` the 5M one. The weights are published for download, not shipped in the
wheel: the harness fetches the file once into its cache (:mod:`harness.models.weights`; no
hash of these files is published, so the first download's is kept and every later use checked
against it), then ``Potential.from_checkpoint`` loads it and ``MatterSimCalculator`` serves it
(energy and forces; stress off). ``--model-file`` takes any MatterSim checkpoint (a
fine-tuned one: the file carries its own architecture). Option ``device`` (cpu).

MatterSim pulls pymatgen, torch_geometric and more; install it in its own environment
(``--model-python mattersim=PATH/bin/python``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.models import Download, ModelFamily, Pretrained, element_range

FOLDER = "https://raw.githubusercontent.com/microsoft/mattersim/main/pretrained_models"
#: The atom embedding of MatterSim v1 (M3GNet, ``max_z`` 94) covers H-Pu.
ELEMENTS = element_range(1, 94)
LICENCE = "MIT (mattersim: code and weights)"
INSTALL = ("pip install mattersim in an environment of its own (CPU clusters: pip install "
           "torch==2.13.0 first), then --model-python mattersim=PATH/bin/python")


def _release(name: str) -> Pretrained:
    filename = f"mattersim-v1.0.0-{name.upper()}.pth"
    return Pretrained(name=name, elements=ELEMENTS, licence=LICENCE,
                      weights=Download(url=f"{FOLDER}/{filename}", sha256="",
                                       filename=filename))


PRETRAINED = (_release("1m"), _release("5m"))


def _calculator(model_file: Path | None, options: dict[str, Any]):
    from mattersim.forcefield import MatterSimCalculator, Potential

    assert model_file is not None  # the cached weights or the user's file
    device = str(options.get("device", "cpu"))
    potential = Potential.from_checkpoint(load_path=str(model_file), device=device,
                                          load_training_state=False)
    return MatterSimCalculator(potential=potential, compute_stress=False, device=device)


FAMILY = ModelFamily(
    name="mattersim",
    description="MatterSim v1 pretrained models (mattersim; default 1m, weights fetched once, "
                "checked against the first download's hash)",
    ase_calculator=_calculator,
    packages=("mattersim", "torch"),
    requires=("mattersim", "torch"),
    install_hint=INSTALL,
    options=("model", "device"),
    pretrained=PRETRAINED,
    default_pretrained="1m",
)
