"""``so3lr``: the pretrained SO3LR force field (SO3krates with long-range terms) from your
own install of the ``so3lr`` package (not on PyPI; not tested here)::

    pip install "jax[cuda12]"        # or plain "jax" on CPU
    pip install git+https://github.com/general-molecular-simulations/so3lr.git

No model file: SO3LR's parameters ship inside the package; their files are hashed into the
provenance. Options go to ``so3lr.So3lrCalculator`` unchanged (e.g. ``lr_cutoff``,
``dispersion_energy_cutoff_lr_damping``, ``dtype``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.models import ModelFamily, files_in

INSTALL = ("SO3LR is not on PyPI: install JAX, then "
           "pip install git+https://github.com/general-molecular-simulations/so3lr.git")


def _params_folder(challenge: str) -> Path | None:
    """The parameter folder shipped inside the installed so3lr package, if any."""
    spec = importlib.util.find_spec("so3lr")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "params"
    return folder if folder.is_dir() else None


def _elements(model_file: Path | None) -> set[str] | None:
    """Plan-time check: SO3LR only runs with its own shipped parameters."""
    if model_file is not None and model_file != _params_folder(""):
        raise UserError(f"--model-file {model_file}: so3lr runs its shipped parameters only; "
                        "for your own SO3krates checkpoint use --model so3krates")
    return None  # SO3LR covers the elements of its training set (most of the periodic table)


def _calculator(model_file: Path | None, options: dict[str, Any]):
    from so3lr import So3lrCalculator

    return So3lrCalculator(**options)


FAMILY = ModelFamily(
    name="so3lr",
    description="SO3LR pretrained (your own so3lr install; no model file)",
    ase_calculator=_calculator,
    packages=("so3lr", "mlff", "jax"),
    requires=("so3lr", "jax"),
    install_hint=INSTALL,
    default_model_file=_params_folder,
    model_is_directory=True,
    model_files=files_in,
    model_elements=_elements,
    model_metadata=lambda folder: {"parameters": "shipped with the so3lr package",
                                   "folder": str(folder) if folder else None},
)
