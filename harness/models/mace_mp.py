"""``mace-mp``: MACE's Materials Project foundation models through mace-torch's ``mace_mp``.

``--model mace-mp`` runs MACE-MPA-0 medium (mace-torch's own default since 0.3.10);
``--model-option mace-mp:model=medium`` MACE-MP-0 medium, and so on (the names are
mace-torch's). The weights are published for download, not shipped in the wheel: the harness
fetches the file once into its cache, checks its SHA-256 and records URL and hash in the
provenance (:mod:`harness.models.weights`); then ``mace_mp(model=<cached file>)`` loads it.
Other options are mace-torch's (``device``, ``default_dtype``: float64 by default here, ``head``).
``--model-file`` takes any MACE-MP checkpoint instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.models import MPTRJ_ELEMENTS, Download, ModelFamily, Pretrained, mace

RELEASES = "https://github.com/ACEsuit/mace-mp/releases/download"
#: Where the recorded hashes come from: none could be recomputed here (no network).
ONE_RECORD = ("a public third-party table of MACE releases (PHYDRA's MACE source-fidelity "
              "campaign); not recomputed here")
TWO_RECORDS = ("two independent public third-party records agree; not recomputed here")


def _release(name: str, path: str, sha256: str, licence: str, source: str = ONE_RECORD,
             elements: frozenset[str] = MPTRJ_ELEMENTS) -> Pretrained:
    return Pretrained(name=name, elements=elements, licence=licence,
                      weights=Download(url=f"{RELEASES}/{path}", sha256=sha256,
                                       filename=path.rsplit("/", 1)[1], sha256_source=source))


PRETRAINED = (
    _release("medium-mpa-0", "mace_mpa_0/mace-mpa-0-medium.model",
             "75428afe3a1d7d8062e19bcaabd5c433623cabf308242ec9fb493e38604fb638", "MIT",
             TWO_RECORDS),
    _release("medium", "mace_mp_0/2023-12-03-mace-128-L1_epoch-199.model",
             "01bfe22100139f424713cf921144e5509cbe353d67aa9fa1be9c6e1e0ed35845", "MIT",
             "a public third-party model registry; not recomputed here"),
    _release("small-0b", "mace_mp_0b/mace_agnesi_small.model",
             "7e3a0abcaf41e03a80e69f778e1b11b29de1cca704783dc25917a736392f8cf0", "MIT"),
    _release("medium-0b", "mace_mp_0b/mace_agnesi_medium.model",
             "ab8baff639a8f295f3eccad3d3ccf574efb6fb63220bd52cd88664211569e521", "MIT"),
    _release("small-0b2", "mace_mp_0b2/mace-small-density-agnesi-stress.model",
             "d5773bf9440e96d6eb8c598f84bd0e6369fcfa432f626a87f890e07da3c651c9", "MIT"),
    _release("medium-0b2", "mace_mp_0b2/mace-medium-density-agnesi-stress.model",
             "a90be07c8aa6623c390fcc4653d3e319c4a356f8b4a53d323f96b2012d375caf", "MIT"),
    _release("large-0b2", "mace_mp_0b2/mace-large-density-agnesi-stress.model",
             "348390e758e1c90011c7675e864850f8e9c5b3e7c217f79a2b4bad1baaa657ad", "MIT"),
    _release("medium-0b3", "mace_mp_0b3/mace-mp-0b3-medium.model",
             "2f2be696351ac9e94fbe01cdfb6f017679acdbd2db7645209ef55fec9826b012", "MIT"),
    _release("small-omat-0", "mace_omat_0/mace-omat-0-small.model",
             "0abfde07862cf1e93b8b4d03cb702f29ce9c344ff2fc4de2ec0d7166d6c113a5",
             "ASL (academic, no commercial use)"),
    _release("medium-omat-0", "mace_omat_0/mace-omat-0-medium.model",
             "d4b14be9afa294eebdbe31a0280b26a0fa29715771e978cbfd3ca24e0d90307a",
             "ASL (academic, no commercial use)"),
)
OPTIONS = ("model", "device", "default_dtype", "head", "enable_cueq")


def mace_settings(options: dict[str, Any]) -> dict[str, Any]:
    """The options meant for mace-torch (the pretrained name is the harness's)."""
    settings = {"device": "cpu", "default_dtype": "float64"}
    settings.update({k: v for k, v in options.items() if k != "model"})
    return settings


def foundation_family(name: str, loader: str, description: str,
                      pretrained: tuple[Pretrained, ...], default: str) -> ModelFamily:
    """A family of mace-torch foundation models loaded by ``mace.calculators.<loader>``
    (``mace_mp``, ``mace_off``): everything else is shared with the ``mace`` family."""

    def calculator(model_file: Path | None, options: dict[str, Any]):
        assert model_file is not None  # the cached weights or the user's file
        mace.allow_pickled_model()
        with mace.quiet():
            import mace.calculators as loaders

            return getattr(loaders, loader)(model=str(model_file), **mace_settings(options))

    def batch_evaluator(model_file: Path | None, options: dict[str, Any]):
        return mace.batch_evaluator(model_file, mace_settings(options))

    return ModelFamily(name=name, description=description, ase_calculator=calculator,
                       packages=("mace-torch", "torch", "e3nn"), requires=("mace", "torch"),
                       install_hint=mace.INSTALL, model_elements=mace.elements,
                       model_metadata=mace.metadata, options=OPTIONS,
                       batch_evaluator=batch_evaluator, pretrained=pretrained,
                       default_pretrained=default)


FAMILY = foundation_family(
    "mace-mp", "mace_mp",
    "MACE-MP foundation models (mace-torch mace_mp; weights fetched once, hash checked; "
    "default medium-mpa-0)", PRETRAINED, "medium-mpa-0")
