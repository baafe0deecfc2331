"""``mace-off``: the MACE-OFF23 organic force fields through mace-torch's ``mace_off``.

``--model mace-off`` runs MACE-OFF23 medium; ``--model-option mace-off:model=small|large``
the others. Ten elements (H, C, N, O, F, P, S, Cl, Br, I): a challenge with any other is
refused before anything runs. Weights are fetched once into the harness's cache, hash checked
(:mod:`harness.models.weights`). Licence: ASL (academic use, no commercial use).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.models import Download, ModelFamily, Pretrained, mace
from harness.models.mace_mp import ONE_RECORD, OPTIONS, mace_settings

FOLDER = "https://raw.githubusercontent.com/ACEsuit/mace-off/main/mace_off23"
ELEMENTS = frozenset({"H", "C", "N", "O", "F", "P", "S", "Cl", "Br", "I"})
LICENCE = "ASL (academic, no commercial use)"


def _release(size: str, sha256: str) -> Pretrained:
    filename = f"MACE-OFF23_{size}.model"
    return Pretrained(name=size, elements=ELEMENTS, licence=LICENCE,
                      weights=Download(url=f"{FOLDER}/{filename}", sha256=sha256,
                                       filename=filename, sha256_source=ONE_RECORD))


PRETRAINED = (
    _release("medium", "4842c52ad210d6e1f84d6cf1ffa70fae25a7e0d755ed55cf223f43913f587db7"),
    _release("small", "165cce4cfec5a34b9c64d4ebf95de15d71106bb584b7291c8470f0749977c46f"),
    _release("large", "a29e397dbf3e7a24ac50a9b0dfc919bd5a62efa346f5895a6237b0950c1d76f4"),
)


def _calculator(model_file: Path | None, options: dict[str, Any]):
    assert model_file is not None
    mace.allow_pickled_model()
    with mace.quiet():
        from mace.calculators import mace_off

        return mace_off(model=str(model_file), **mace_settings(options))


def _batch_evaluator(model_file: Path | None, options: dict[str, Any]):
    return mace.batch_evaluator(model_file, mace_settings(options))


FAMILY = ModelFamily(
    name="mace-off",
    description="MACE-OFF23 organic foundation models (mace-torch mace_off; weights fetched "
                "once, hash checked; default medium)",
    ase_calculator=_calculator,
    packages=("mace-torch", "torch", "e3nn"),
    requires=("mace", "torch"),
    install_hint=mace.INSTALL,
    model_elements=mace.elements,
    model_metadata=mace.metadata,
    options=OPTIONS,
    batch_evaluator=_batch_evaluator,
    pretrained=PRETRAINED,
    default_pretrained="medium",
)
