"""``so3krates``: SO3krates models (the ``mlff`` package, JAX) from a checkpoint folder.

SO3krates is not on PyPI, so tea-harness cannot install it; it uses your own install::

    pip install "jax[cuda12]"        # or plain "jax" on CPU (see the JAX install guide)
    pip install git+https://github.com/sirmarcel/glp.git
    pip install git+https://github.com/thorben-frank/mlff.git

(as mlff's README says; not tested here, where the packages cannot be installed).
``--model-file`` is the checkpoint folder that mlff's training wrote (it holds
``hyperparameters.json``); its files are hashed into the provenance and its
hyperparameters stored as the model's metadata.

Options: ``api`` (``sparse``: ``mlff.md.calculator_sparse.mlffCalculatorSparse``, mlff >= 1.0,
the default; ``dense``: ``mlff.md.calculator.mlffCalculator``, the 2023 code),
``dtype`` (``float32`` default as in mlff; ``float64`` also switches JAX to 64 bit),
``energy_unit`` of the model (``eV`` default, ``kcal/mol``, ``Ha``, ``kJ/mol``),
``lr_cutoff`` and ``capacity_multiplier`` (sparse API).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ase import units

from harness.errors import UserError
from harness.models import ModelFamily, files_in, json_safe

INSTALL = ("SO3krates is not on PyPI: install JAX, then "
           "pip install git+https://github.com/sirmarcel/glp.git "
           "git+https://github.com/thorben-frank/mlff.git (see docs/model-families.md)")
ENERGY_UNITS_EV = {"ev": 1.0, "kcal/mol": units.kcal / units.mol, "ha": units.Hartree,
                   "kj/mol": units.kJ / units.mol}
APIS = {"sparse": ("mlff.md.calculator_sparse", "mlffCalculatorSparse"),
        "dense": ("mlff.md.calculator", "mlffCalculator")}


def calculator_settings(options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Check the options; return the API name and the keyword arguments of
    ``create_from_ckpt_dir`` (``dtype`` as a string, converted by the caller)."""
    unknown = sorted(set(options) - {"api", "dtype", "energy_unit", "lr_cutoff",
                                     "capacity_multiplier"})
    if unknown:
        raise UserError(f"--model-option {unknown[0]}: so3krates takes api, dtype, "
                        "energy_unit, lr_cutoff, capacity_multiplier")
    api = str(options.get("api", "sparse"))
    if api not in APIS:
        raise UserError(f"--model-option api={api}: choose sparse (mlff >= 1.0) or dense")
    dtype = str(options.get("dtype", "float32"))
    if dtype not in ("float32", "float64"):
        raise UserError(f"--model-option dtype={dtype}: choose float32 or float64")
    unit = str(options.get("energy_unit", "eV"))
    if unit.lower() not in ENERGY_UNITS_EV:
        raise UserError(f"--model-option energy_unit={unit}: choose one of "
                        + ", ".join(ENERGY_UNITS_EV))
    to_ev = ENERGY_UNITS_EV[unit.lower()]
    kwargs: dict[str, Any] = {"E_to_eV": to_ev, "F_to_eV_Ang": to_ev, "dtype": dtype}
    if api == "sparse":
        for key in ("lr_cutoff", "capacity_multiplier"):
            if key in options:
                kwargs[key] = float(options[key])
    elif "lr_cutoff" in options or "capacity_multiplier" in options:
        raise UserError("--model-option lr_cutoff/capacity_multiplier: only with api=sparse")
    return api, kwargs


def _check_folder(model_file: Path) -> None:
    if not (model_file / "hyperparameters.json").is_file():
        raise UserError(f"--model-file {model_file}: no hyperparameters.json in it; give the "
                        "checkpoint folder that mlff's training wrote")


def _metadata(model_file: Path | None) -> dict[str, Any]:
    if model_file is None:
        return {}
    _check_folder(model_file)
    meta: dict[str, Any] = {}
    for name in ("hyperparameters.json", "scales.json"):
        path = model_file / name
        if path.is_file():
            try:
                meta[path.stem] = json.loads(path.read_text())
            except json.JSONDecodeError as exc:
                meta[path.stem] = f"unreadable: {exc}"
    return json_safe(meta)


def _elements(model_file: Path | None) -> set[str] | None:
    if model_file is not None:
        _check_folder(model_file)
    return None  # the checkpoint does not list its elements in a fixed place


def _calculator(model_file: Path | None, options: dict[str, Any]):
    import importlib

    import numpy as np

    assert model_file is not None
    api, kwargs = calculator_settings(options)
    if kwargs["dtype"] == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)
    kwargs["dtype"] = np.dtype(kwargs["dtype"]).type
    module_name, class_name = APIS[api]
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise UserError(f"so3krates api={api} needs {module_name}.{class_name} ({exc}); "
                        f"{INSTALL}") from None
    return cls.create_from_ckpt_dir(ckpt_dir=str(model_file), **kwargs)


FAMILY = ModelFamily(
    name="so3krates",
    description="SO3krates (your own mlff install; --model-file CHECKPOINT_FOLDER)",
    ase_calculator=_calculator,
    packages=("mlff", "jax", "glp"),
    requires=("mlff", "jax"),
    install_hint=INSTALL,
    needs_model_file=True,
    model_is_directory=True,
    model_elements=_elements,
    model_metadata=_metadata,
    model_files=files_in,
    options=("api", "dtype", "energy_unit", "lr_cutoff", "capacity_multiplier"),
)
