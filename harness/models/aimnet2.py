"""``aimnet2``: AIMNet2 molecular force fields through aimnet's own calculator.

``--model aimnet2`` runs AIMNet2 wB97M-D3 (ensemble member 0, aimnet's ``aimnet2``);
``--model-option aimnet2:model=b973c-d3`` the B97-3c one. The weights are published for
download, not shipped in the wheel: the harness fetches the file once into its cache, checks
the SHA-256 that aimnet's own model registry records (:mod:`harness.models.weights`), and
``AIMNet2Calculator(model=<file>)`` loads it; ``AIMNet2ASE`` serves it. ``--model-file``
takes any AIMNet2 model file aimnet loads (a v2 ``.pt``). Options: ``device`` (cpu),
``charge`` (0) and ``mult`` (spin multiplicity, 1) of the molecule.

Install aimnet in its own environment (``--model-python aimnet2=PATH/bin/python``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.models import Download, ModelFamily, Pretrained

BUCKET = "https://storage.googleapis.com/aimnetcentral/aimnet2v2/AIMNet2"
#: The 14 elements of AIMNet2 (Anstine, Zubatyuk, Isayev, Chem. Sci. 2025); a model file's
#: own ``implemented_species`` is the authority, and aimnet checks it at every call.
ELEMENTS = frozenset({"H", "B", "C", "N", "O", "F", "Si", "P", "S", "Cl", "As", "Se", "Br",
                      "I"})
SOURCE = "aimnet 0.2.6's own model registry (aimnet/calculators/model_registry.yaml)"
LICENCE = "MIT (aimnet package; see its model cards for the weights)"
INSTALL = ("pip install aimnet in an environment of its own (CPU clusters: pip install "
           "torch==2.13.0 first), then --model-python aimnet2=PATH/bin/python")


def _release(name: str, filename: str, sha256: str) -> Pretrained:
    return Pretrained(name=name, elements=ELEMENTS, licence=LICENCE,
                      weights=Download(url=f"{BUCKET}/{filename}", sha256=sha256,
                                       filename=filename, sha256_source=SOURCE))


PRETRAINED = (
    _release("wb97m-d3", "aimnet2_wb97m_d3_0.pt",
             "f0f7c054539ad3261bd36f9b11c56d12f87cb723e25bea7521755bbd3ec24e28"),
    _release("b973c-d3", "aimnet2_b973c_d3_0.pt",
             "7ec7a3db67bd3a393ad59647d4020398deeb041c07dba1c9cf212d226268e549"),
)


def _calculator(model_file: Path | None, options: dict[str, Any]):
    from aimnet.calculators import AIMNet2ASE, AIMNet2Calculator

    assert model_file is not None  # the cached weights or the user's file
    base = AIMNet2Calculator(model=str(model_file), device=str(options.get("device", "cpu")))
    return AIMNet2ASE(base, charge=int(options.get("charge", 0)),
                      mult=int(options.get("mult", 1)))


FAMILY = ModelFamily(
    name="aimnet2",
    description="AIMNet2 molecular models (aimnet; default wb97m-d3, weights fetched once, "
                "sha256 from aimnet's registry)",
    ase_calculator=_calculator,
    packages=("aimnet", "torch"),
    requires=("aimnet", "torch"),
    install_hint=INSTALL,
    options=("model", "device", "charge", "mult"),
    pretrained=PRETRAINED,
    default_pretrained="wb97m-d3",
)
