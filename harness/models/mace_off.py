"""``mace-off``: the MACE-OFF23 organic force fields through mace-torch's ``mace_off``.

``--model mace-off`` runs MACE-OFF23 medium; ``--model-option mace-off:model=small|large``
the others. Ten elements (H, C, N, O, F, P, S, Cl, Br, I): a challenge with any other is
refused before anything runs. Weights are fetched once into the harness's cache, hash checked
(:mod:`harness.models.weights`). Licence: ASL (academic use, no commercial use).
"""

from __future__ import annotations

from harness.models import Download, Pretrained
from harness.models.mace_mp import ONE_RECORD, foundation_family

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


FAMILY = foundation_family(
    "mace-off", "mace_off",
    "MACE-OFF23 organic foundation models (mace-torch mace_off; weights fetched once, hash "
    "checked; default medium)", PRETRAINED, "medium")
