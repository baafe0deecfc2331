"""``gap``: SOAP/GAP models from QUIP/quippy (``gap_fit`` xml files).

``--model-file`` is the GAP xml; the ``sparseX`` files that ``gap_fit`` writes must sit beside
it. Without ``--model-file`` a demo GAP trained on GFN2-xTB frames ships for the
alanine tetrapeptide (see ``harness/models/demo/make_demo_gap.py`` and its ``metadata.json``).
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ase.data import chemical_symbols

from harness.errors import UserError
from harness.models import DEMO_DIR, ModelFamily, lammps_pairs

_DEMO = {"alanine-tetrapeptide": DEMO_DIR / "gap-alanine-tetrapeptide" / "gap.xml"}


@contextmanager
def _working_directory(path: Path):
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _parse(model_file: Path) -> ET.Element:
    """Parse a GAP xml (gap_fit writes two top-level elements, so wrap them)."""
    try:
        text = model_file.read_text(errors="strict")
        return ET.fromstring(f"<gap_file>{re.sub(r'<[?]xml[^>]*[?]>', '', text)}</gap_file>")
    except (ET.ParseError, UnicodeDecodeError) as exc:
        raise UserError(f"model file {model_file} is not a readable GAP xml ({exc}); "
                        "give the .xml that gap_fit wrote") from None


def _elements(model_file: Path | None) -> set[str] | None:
    if model_file is None:
        return None
    root = _parse(model_file)
    e0 = [e for e in root.iter("e0") if e.get("Z") is not None]
    if not e0:
        raise UserError(f"model file {model_file} has no GAP_data/e0 entries: it is not a "
                        "GAP model written by gap_fit")
    # The descriptors name the species they were trained on (Z=, Z1=, Z2=, species_Z={..});
    # 0 is a wildcard. gap_fit writes an e0 for every element, so e0 alone cannot tell.
    numbers: set[int] = set()
    for desc in root.iter("descriptor"):
        text = desc.text or ""
        numbers.update(int(z) for z in re.findall(r"\bZ[12]?=(\d+)", text))
        for group in re.findall(r"species_Z=\{+([\d\s]+)\}+", text):
            numbers.update(int(z) for z in group.split())
    numbers.discard(0)
    if not numbers:  # descriptors for any species: trust the non-zero e0 values
        numbers = {int(e.get("Z")) for e in e0 if float(e.get("value", "0")) != 0.0}
    for coords in root.iter("gpCoordinates"):
        sparse = coords.get("sparseX_filename")
        if sparse and not (model_file.parent / sparse).is_file():
            raise UserError(f"GAP model {model_file} needs {sparse} beside it; copy the "
                            "sparseX files gap_fit wrote into the same folder")
    return {chemical_symbols[z] for z in numbers}


def _files(model_file: Path) -> list[Path]:
    """The xml and the sparseX files it names."""
    root = _parse(model_file)
    sparse = sorted({c.get("sparseX_filename") for c in root.iter("gpCoordinates")
                     if c.get("sparseX_filename")})
    return [model_file] + [model_file.parent / name for name in sparse]


def _metadata(model_file: Path | None) -> dict[str, Any]:
    if model_file is None:
        return {}
    meta: dict[str, Any] = {}
    side = model_file.parent / "metadata.json"
    if side.is_file():
        meta.update(json.loads(side.read_text()))
    root = _parse(model_file)
    command = root.find(".//command_line")
    if command is not None and command.text:
        meta.setdefault("gap_fit_command_line", " ".join(command.text.split()))
    return meta


def _calculator(model_file: Path | None, options: dict[str, Any]):
    from quippy.potential import Potential

    assert model_file is not None
    with _working_directory(model_file.parent):
        return Potential(param_filename=str(model_file), **options)


FAMILY = ModelFamily(
    name="gap",
    description="SOAP/GAP (quippy); demo GAP for Challenge I ships",
    ase_calculator=_calculator,
    packages=("quippy-ase", "ase"),
    requires=("quippy",),
    install_hint="pip install quippy-ase",
    needs_model_file=True,
    default_model_file=lambda challenge: _DEMO.get(challenge),
    model_elements=_elements,
    model_metadata=_metadata,
    model_files=_files,
    lammps_pair=lammps_pairs.quip,
    lammps_requirement=lammps_pairs.QUIP,
)
