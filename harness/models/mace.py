"""``mace``: MACE models (mace-torch ``.model`` files) through mace-torch's ASE calculator.

Options: ``device`` (``cpu`` default, ``cuda``), ``default_dtype`` (``float64`` default: MD
wants exact forces; ``float32`` is faster), ``head`` (multi-head models),
``enable_cueq`` (cuEquivariance kernels on GPUs). Elements and the model's architecture
(r_max, channels, interactions, ...) are read from the file into the provenance.

A ``.model`` file is a pickled torch module: loading it runs code from the file. Under
torch >= 2.6 that needs ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (e3nn 0.4.4 also needs it to
import); this entry sets it only when it loads a file the user named with ``--model-file``.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from ase.data import chemical_symbols

from harness.errors import UserError
from harness.models import ModelFamily, json_safe, lammps_pairs

INSTALL = ("pip install 'tea-harness[mace]' (CPU clusters: pip install torch==2.13.0 first, "
           "or pip fetches several GB of CUDA wheels)")


def allow_pickled_model() -> None:
    """The user named this file: let torch.load unpickle it (and e3nn import)."""
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"


@contextmanager
def quiet():
    """Hide the import-time chatter of e3nn/mace (a weights_only warning per import and a
    cuequivariance notice on stdout) that would otherwise precede every plan and run."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield


@lru_cache(maxsize=4)
def _load(model_file: Path, mtime: float):
    """The torch module in a .model file (cached per file and modification time)."""
    allow_pickled_model()
    import torch

    try:
        with quiet():
            return torch.load(str(model_file), map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise UserError(f"model file {model_file} is not a readable MACE model "
                        f"({type(exc).__name__}: {exc}); give a .model file written by "
                        "mace-torch") from None


def _module(model_file: Path):
    model = _load(model_file, model_file.stat().st_mtime)
    if not hasattr(model, "atomic_numbers") or not hasattr(model, "r_max"):
        raise UserError(f"model file {model_file} holds a {type(model).__name__}, not a MACE "
                        "model; give a .model file written by mace-torch")
    return model


def elements(model_file: Path | None) -> set[str] | None:
    if model_file is None:
        return None
    return {chemical_symbols[int(z)] for z in _module(model_file).atomic_numbers}


def metadata(model_file: Path | None) -> dict[str, Any]:
    """The architecture and training constants the file carries (mace-torch's own reader)."""
    if model_file is None:
        return {}
    model = _module(model_file)
    meta: dict[str, Any] = {"class": type(model).__name__}
    try:
        with quiet():
            from mace.tools.scripts_utils import extract_config_mace_model

            config = extract_config_mace_model(model)
        if "error" not in config:
            meta.update(config)
    except Exception as exc:  # noqa: BLE001 - metadata must never stop a run
        meta["config_error"] = f"{type(exc).__name__}: {exc}"
    meta["atomic_numbers"] = [int(z) for z in model.atomic_numbers]
    meta["r_max"] = float(model.r_max)
    meta["n_parameters"] = int(sum(p.numel() for p in model.parameters()))
    for extra in ("heads", "training_args", "metadata"):  # present in some versions
        if hasattr(model, extra):
            meta[extra] = getattr(model, extra)
    return json_safe(meta)


def calculator(model_file: Path | None, options: dict[str, Any]):
    assert model_file is not None
    allow_pickled_model()
    with quiet():
        from mace.calculators import MACECalculator

        settings = {"device": "cpu", "default_dtype": "float64"}
        settings.update(options)
        return MACECalculator(model_paths=str(model_file), **settings)


def batch_evaluator(model_file: Path | None, options: dict[str, Any]):
    """Evaluate many structures as one batched graph (one model call for a whole group).

    Uses the calculator's own settings (element table, cutoff, heads, dtype, device, units);
    falls back to one call per structure for committees and compiled models, whose outputs
    the calculator post-processes itself.
    """
    calc = calculator(model_file, options)
    if len(calc.models) != 1 or getattr(calc, "use_compile", False):
        def one_by_one(structures: list) -> list[tuple[float, Any]]:
            out = []
            for atoms in structures:
                calc.calculate(atoms, ["energy", "forces"])
                out.append((float(calc.results["energy"]), calc.results["forces"].copy()))
            return out
        return one_by_one

    import numpy as np
    import torch
    from mace import data as mace_data
    from mace.tools import torch_geometric, torch_tools

    model = calc.models[0]
    model_dtype = next(model.parameters()).dtype
    keyspec = mace_data.KeySpecification(info_keys=dict(calc.info_keys),
                                         arrays_keys={**calc.arrays_keys,
                                                      calc.charges_key: "charges"})
    energy_to_ev = calc.energy_units_to_eV
    force_to_ev_ang = calc.energy_units_to_eV / calc.length_units_to_A

    def evaluate(structures: list) -> list[tuple[float, Any]]:
        with torch_tools.default_dtype(calc.default_dtype):
            graphs = [mace_data.AtomicData.from_config(
                mace_data.config_from_atoms(atoms, key_specification=keyspec,
                                            head_name=calc.head),
                z_table=calc.z_table, cutoff=calc.r_max, heads=calc.available_heads)
                for atoms in structures]
        batch = torch_geometric.Batch.from_data_list(graphs).to(calc.device)
        batch_dict = {key: (value.to(dtype=model_dtype)
                            if torch.is_tensor(value) and torch.is_floating_point(value)
                            else value) for key, value in batch.to_dict().items()}
        out = model(batch_dict, compute_stress=False, training=False)
        energies = out["energy"].detach().cpu().numpy() * energy_to_ev
        forces = out["forces"].detach().cpu().numpy() * force_to_ev_ang
        ptr = batch_dict["ptr"].cpu().numpy()
        return [(float(energies[k]), np.array(forces[ptr[k]:ptr[k + 1]], dtype=np.float64))
                for k in range(len(structures))]

    return evaluate


FAMILY = ModelFamily(
    name="mace",
    description="MACE (mace-torch .model files; options device, default_dtype)",
    ase_calculator=calculator,
    packages=("mace-torch", "torch", "e3nn"),
    requires=("mace", "torch"),
    install_hint=INSTALL,
    needs_model_file=True,
    model_elements=elements,
    model_metadata=metadata,
    options=("device", "default_dtype", "head", "enable_cueq"),
    # --engine lammps: a MACE model exported for LAMMPS (mace_create_lammps_model, *.pt) served
    # by `pair_style mliap unified`, which needs a LAMMPS built with ML-IAP and PYTHON
    lammps_pair=lammps_pairs.mliap_unified,
    lammps_requirement=lammps_pairs.MLIAP_UNIFIED,
    batch_evaluator=batch_evaluator,
)
