"""``sgdml``: sGDML models (``.npz`` files written by ``sgdml all``/``GDMLTrain``).

sGDML is a global model of one molecule: it knows the atoms in one fixed order, so the
launcher checks that every starting structure has exactly that order. Units come from the
model file (``e_unit``, ``r_unit``; sGDML's convention is kcal/mol and Angstrom); the option
``energy_unit`` (``kcal/mol``, ``eV``, ``Ha``, ``kJ/mol``) overrides a model that lacks them.
Options ``use_torch`` (default false) evaluates with PyTorch; ``processes`` (default 1)
worker processes of sGDML's predictor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ase import units
from ase.data import chemical_symbols

from harness.errors import UserError
from harness.models import ModelFamily, json_safe

ENERGY_UNITS_EV = {"kcal/mol": units.kcal / units.mol, "ev": 1.0, "ha": units.Hartree,
                   "hartree": units.Hartree, "kj/mol": units.kJ / units.mol}
LENGTH_UNITS_ANG = {"ang": 1.0, "angstrom": 1.0, "a": 1.0, "bohr": units.Bohr,
                    "au": units.Bohr}
_SCALARS = ("type", "code_version", "dataset_name", "dataset_theory", "solver_name", "sig",
            "lam", "n_test", "md5_train", "md5_valid", "md5_test", "use_E", "use_E_cstr",
            "r_unit", "e_unit", "c", "std")


def _read(model_file: Path) -> dict[str, Any]:
    """The arrays of an sGDML model; UserError for a file that is not one."""
    try:
        with np.load(model_file, allow_pickle=True) as data:
            model = {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError) as exc:
        raise UserError(f"model file {model_file} is not a readable sGDML .npz ({exc})") from None
    if "z" not in model or "R_desc" not in model or str(model.get("type")) != "m":
        raise UserError(f"model file {model_file} is not an sGDML model (type 'm' with z and "
                        "R_desc); give the .npz that sgdml wrote")
    return model


def _elements(model_file: Path | None) -> set[str] | None:
    if model_file is None:
        return None
    return {chemical_symbols[int(z)] for z in _read(model_file)["z"]}


def _check_structure(model_file: Path | None, atoms) -> None:
    if model_file is None:
        return
    z = _read(model_file)["z"]
    if len(z) != len(atoms) or np.any(np.asarray(z) != atoms.numbers):
        raise UserError(
            f"sGDML model {model_file} was trained on {len(z)} atoms "
            f"({''.join(chemical_symbols[int(n)] for n in z[:12])}...) but the start "
            f"{atoms.info.get('source', '')} has {len(atoms)} atoms "
            f"({''.join(atoms.get_chemical_symbols()[:12])}...) in another order: an sGDML "
            "model describes one molecule with its atoms in one fixed order")


def _metadata(model_file: Path | None) -> dict[str, Any]:
    if model_file is None:
        return {}
    model = _read(model_file)
    meta = {key: model[key][()] if model[key].shape == () else model[key]
            for key in _SCALARS if key in model}
    for key in ("e_err", "f_err"):
        if key in model:
            meta[key] = model[key][()]
    meta["n_train"] = int(len(model["idxs_train"])) if "idxs_train" in model else None
    meta["n_valid"] = int(len(model["idxs_valid"])) if "idxs_valid" in model else None
    meta["n_permutations"] = int(len(model["perms"])) if "perms" in model else None
    return json_safe(meta)


def _unit(model: dict[str, Any], key: str, table: dict[str, float], given: str | None,
          model_file: Path) -> float:
    name = given or (str(model[key]) if key in model else None)
    if name is None:
        return table["kcal/mol"] if key == "e_unit" else 1.0  # sGDML's own convention
    factor = table.get(name.strip().lower())
    if factor is None:
        raise UserError(f"sGDML model {model_file}: unknown {key} {name!r}; set "
                        f"--model-option energy_unit=one of {', '.join(ENERGY_UNITS_EV)}")
    return factor


def _calculator(model_file: Path | None, options: dict[str, Any]):
    """sGDML's predictor (the engine of ``sgdml.intf.ase_calc.SGDMLCalculator``) in eV, A.

    Built directly rather than through SGDMLCalculator, whose start-up benchmark forks a
    pool over every core (ignoring ``--threads``) and writes a cache into site-packages.
    """
    from ase.calculators.calculator import Calculator, all_changes
    from sgdml.predict import GDMLPredict

    assert model_file is not None
    model = _read(model_file)
    to_ev = _unit(model, "e_unit", ENERGY_UNITS_EV, options.get("energy_unit"), model_file)
    to_ang = _unit(model, "r_unit", LENGTH_UNITS_ANG, None, model_file)
    predictor = GDMLPredict(model, max_processes=int(options.get("processes", 1)),
                            use_torch=bool(options.get("use_torch", False)))

    class SGDMLModel(Calculator):
        """Energy and forces of an sGDML model, converted to eV and eV/A."""

        implemented_properties = ["energy", "forces"]

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            energy, forces = predictor.predict(self.atoms.positions.reshape(1, -1) / to_ang)
            self.results = {"energy": float(np.squeeze(energy)) * to_ev,
                            "forces": forces.reshape(-1, 3) * (to_ev / to_ang)}

    calc = SGDMLModel()
    calc.predictor = predictor  # keep the pool-free predictor alive with the calculator
    return calc


def _batch_evaluator(model_file: Path | None, options: dict[str, Any]):
    """sGDML's vectorised prediction: all structures of a group in one ``predict`` call."""
    calc = _calculator(model_file, options)
    model = _read(model_file)
    to_ev = _unit(model, "e_unit", ENERGY_UNITS_EV, options.get("energy_unit"), model_file)
    to_ang = _unit(model, "r_unit", LENGTH_UNITS_ANG, None, model_file)

    def evaluate(structures: list) -> list[tuple[float, np.ndarray]]:
        coords = np.stack([atoms.positions.reshape(-1) for atoms in structures]) / to_ang
        energies, forces = calc.predictor.predict(coords)
        energies = np.atleast_1d(np.squeeze(energies)) * to_ev
        forces = np.asarray(forces).reshape(len(structures), -1, 3) * (to_ev / to_ang)
        return [(float(energies[k]), forces[k]) for k in range(len(structures))]

    return evaluate


FAMILY = ModelFamily(
    name="sgdml",
    description="sGDML (.npz from sgdml; one molecule, fixed atom order)",
    ase_calculator=_calculator,
    packages=("sgdml",),
    requires=("sgdml",),
    install_hint="pip install 'tea-harness[sgdml]'",
    needs_model_file=True,
    model_elements=_elements,
    model_metadata=_metadata,
    options=("energy_unit", "use_torch", "processes"),
    check_structure=_check_structure,
    batch_evaluator=_batch_evaluator,
)
