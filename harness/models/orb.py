"""``orb``: Orbital Materials' ORB force fields through orb-models' own loaders.

``--model orb`` runs ORB-v3 conservative, unlimited neighbours, trained on OMat24
(``orb-v3-conservative-inf-omat``); ``--model-option orb:model=v3-direct-20-mpa`` and so on
pick the others (the names are orb-models' without its ``orb-`` prefix, so the runs are called
``orb-v3-...``). The weights are published for download, not shipped in the wheel: the harness
fetches the file once into its cache and checks it (:mod:`harness.models.weights`), then the
package's loader for that name (``orb_models.forcefield.pretrained``) builds the architecture
and loads the file, and ``ORBCalculator`` serves it.

``--model-file`` takes any checkpoint (a state dict, as orb-models' fine-tuning writes) of the
architecture that ``model=`` names. Options: ``device`` (cpu), ``precision`` (orb-models'
``float32-high`` by default; ``float32-highest``, ``float64``), ``compile`` (off: torch.compile
wants a C compiler and minutes of warm-up), and for the OMol25 models ``charge`` (0) and
``spin`` (multiplicity, 1), which they take as input.

ORB handles molecules without a cell and periodic crystals alike. orb-models pins none of
the other model packages, but install it in its own environment
(``--model-python orb=PATH/bin/python``): its torch floor moves with its releases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.models import Download, ModelFamily, Pretrained, element_range

BUCKET = "https://orbitalmaterials-public-models.s3.us-west-1.amazonaws.com/forcefields"
LICENCE = "Apache-2.0 (orb-models: code and weights)"
#: The atom embedding of every ORB model covers Z 1-118; what its training set covers is
#: narrower, and not recorded by orb-models (so not checked here beyond the embedding).
EMBEDDING = element_range(1, 118)
#: OMol25 spans 83 elements, H to Bi.
OMOL25 = element_range(1, 83)
TWO_RECORDS = ("two independent public third-party records agree (one also gives the size, "
               "102,097,517 bytes); not recomputed here")
INSTALL = ("pip install orb-models in an environment of its own (CPU clusters: pip install "
           "torch==2.13.0 first), then --model-python orb=PATH/bin/python")


def _release(name: str, path: str, sha256: str = "", source: str = "",
             elements: frozenset[str] = EMBEDDING) -> Pretrained:
    return Pretrained(name=name, elements=elements, licence=LICENCE,
                      loader_name=f"orb-{name}",
                      weights=Download(url=f"{BUCKET}/{path}", sha256=sha256,
                                       filename=path.rsplit("/", 1)[-1], sha256_source=source))


PRETRAINED = (
    _release("v3-conservative-inf-omat", "orb-v3/orb-v3-conservative-inf-omat-20250404.ckpt",
             "0a41ef1132ad9c41ee0c7b9d855fccabfefb97abe04625c97ec0d07930b6c0f0", TWO_RECORDS),
    _release("v3-conservative-20-omat", "orb-v3/orb-v3-conservative-20-omat-20250404.ckpt"),
    _release("v3-direct-inf-omat", "orb-v3/orb-v3-direct-inf-omat-20250404.ckpt"),
    _release("v3-direct-20-omat", "orb-v3/orb-v3-direct-20-omat-20250404.ckpt"),
    _release("v3-conservative-inf-mpa", "orb-v3/orb-v3-conservative-inf-mpa-20250404.ckpt"),
    _release("v3-conservative-20-mpa", "orb-v3/orb-v3-conservative-20-mpa-20250404.ckpt"),
    _release("v3-direct-inf-mpa", "orb-v3/orb-v3-direct-inf-mpa-20250404.ckpt"),
    _release("v3-direct-20-mpa", "orb-v3/orb-v3-direct-20-mpa-20250404.ckpt"),
    _release("v3-conservative-omol", "orb-v3-conservative-omol-20250820.ckpt",
             elements=OMOL25),
    _release("v3-direct-omol", "orb-v3-direct-omol-20250820.ckpt", elements=OMOL25),
    _release("v2", "orb-v2-20241011.ckpt"),
)
OPTIONS = ("model", "device", "precision", "compile", "charge", "spin")


def load_model(model_file: Path | None, options: dict[str, Any]):
    """The ORB model: orb-models' loader for the named architecture on the local file."""
    from orb_models.forcefield.pretrained import ORB_PRETRAINED_MODELS

    assert model_file is not None  # the cached weights or the user's file
    loader = ORB_PRETRAINED_MODELS[FAMILY.pretrained_model(options).package_name]
    return loader(weights_path=str(model_file), device=str(options.get("device", "cpu")),
                  precision=str(options.get("precision", "float32-high")),
                  compile=str(options.get("compile", False)).lower() in ("1", "true", "yes"))


def _calculator(model_file: Path | None, options: dict[str, Any]):
    from orb_models.forcefield.calculator import ORBCalculator

    charge, spin = float(options.get("charge", 0)), float(options.get("spin", 1))

    class Molecular(ORBCalculator):
        """ORBCalculator given the total charge and spin multiplicity the OMol25 models take
        (from the options; the force client's structures carry none)."""

        def calculate(self, atoms=None, properties=None, system_changes=None) -> None:
            if self.expects_charge_and_spin:
                atoms.info.setdefault("charge", charge)
                atoms.info.setdefault("spin", spin)
            super().calculate(atoms, properties, system_changes)

    return Molecular(load_model(model_file, options), device=str(options.get("device", "cpu")))


FAMILY = ModelFamily(
    name="orb",
    description="ORB pretrained models (orb-models; default v3-conservative-inf-omat, weights "
                "fetched once, hash checked)",
    ase_calculator=_calculator,
    packages=("orb-models", "torch"),
    requires=("orb_models", "torch"),
    install_hint=INSTALL,
    options=OPTIONS,
    pretrained=PRETRAINED,
    default_pretrained="v3-conservative-inf-omat",
)
