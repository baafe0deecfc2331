"""``fchl19``: FCHL19 kernel models through qmllib, in tea-harness's ``.npz`` format.

No standard file format exists for FCHL19 force fields, so this family defines one (see
:mod:`harness.models._fchl19_kernel` and docs/model-families.md) and ships the command that
trains such a model from an extxyz file with energies (eV) and forces (eV/A)::

    python -m harness.models.fchl19 train frames.extxyz --out model.npz [--sigma 2 ...]

Training settings, the data file's sha256 and validation errors are stored in the model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from ase.data import chemical_symbols

from harness.errors import UserError
from harness.models import ModelFamily, json_safe


def _load(model_file: Path):
    from harness.models._fchl19_kernel import FCHL19Model

    try:
        return FCHL19Model.load(model_file)
    except ValueError as exc:
        raise UserError(f"{exc}; train one with: python -m harness.models.fchl19 train "
                        "FRAMES.extxyz --out MODEL.npz") from None


def _elements(model_file: Path | None) -> set[str] | None:
    if model_file is None:
        return None
    return {chemical_symbols[z] for z in _load(model_file).elements}


def _metadata(model_file: Path | None) -> dict[str, Any]:
    if model_file is None:
        return {}
    model = _load(model_file)
    return json_safe({**model.metadata, "sigma": model.sigma, "rep_params": model.rep_params,
                      "n_basis": int(len(model.alpha)), "elements": model.elements})


def _calculator(model_file: Path | None, options: dict[str, Any]):
    from ase.calculators.calculator import Calculator, all_changes

    assert model_file is not None
    model = _load(model_file)

    class FCHL19Calculator(Calculator):
        """Energy and forces of a tea-harness FCHL19 model (eV, eV/A)."""

        implemented_properties = ["energy", "forces"]

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            energy, forces = model.energy_forces(self.atoms.numbers, self.atoms.positions)
            self.results = {"energy": energy, "forces": forces}

    calc = FCHL19Calculator()
    calc.model = model
    return calc


FAMILY = ModelFamily(
    name="fchl19",
    description="FCHL19 kernel model (qmllib; .npz from python -m harness.models.fchl19 train)",
    ase_calculator=_calculator,
    packages=("qmllib",),
    requires=("qmllib",),
    install_hint="pip install 'tea-harness[fchl19]'",
    needs_model_file=True,
    model_elements=_elements,
    model_metadata=_metadata,
    options=(),
)


# ------------------------------------------------------------------ training command
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_frames(path: Path) -> list:
    from ase.io import read

    if not path.is_file():
        raise UserError(f"{path}: no such file; give an extxyz file with energies and forces")
    try:
        frames = read(path, ":")
    except Exception as exc:  # noqa: BLE001 - ASE raises many kinds for a bad file
        raise UserError(f"{path}: cannot read it as extxyz ({exc})") from None
    for i, frame in enumerate(frames):
        try:
            frame.get_potential_energy()
            frame.get_forces()
        except Exception:  # noqa: BLE001 - no calculator / no results
            raise UserError(f"{path}: frame {i} has no energy or no forces; the file must carry "
                            "both (energy=... in the comment line, forces per atom)") from None
    return frames


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m harness.models.fchl19``."""
    from harness.models._fchl19_kernel import DEFAULT_REP_PARAMS

    parser = argparse.ArgumentParser(
        prog="python -m harness.models.fchl19",
        description="Train an FCHL19 force field (qmllib representation, Gaussian kernel, "
                    "ridge regression on energies and forces) into tea-harness's .npz format.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="fit a model to an extxyz file")
    train.add_argument("data", type=Path, help="extxyz with energies (eV) and forces (eV/A)")
    train.add_argument("--out", type=Path, required=True, help="model file to write (.npz)")
    train.add_argument("--n-train", type=int, default=None,
                       help="frames to fit (default: all but the validation frames)")
    train.add_argument("--n-valid", type=int, default=None,
                       help="frames held out for the errors stored in the model "
                            "(default: 10%% of the file)")
    train.add_argument("--seed", type=int, default=0, help="seed of the train/valid split")
    train.add_argument("--sigma", type=float, default=4.0,
                       help="kernel width (default 4: best of 1/2/4/8/16 with the default "
                            "representation on 20 peptide frames; scan it for your data)")
    train.add_argument("--lam", type=float, default=1e-6, help="ridge regularisation")
    train.add_argument("--energy-weight", type=float, default=1.0,
                       help="weight of energy rows against force rows (1/A)")
    for key, value in DEFAULT_REP_PARAMS.items():
        train.add_argument(f"--{key}", type=type(value), default=value,
                           help=f"generate_fchl19 {key} (default {value:g})")
    return parser


def train_command(args: argparse.Namespace) -> dict[str, Any]:
    """Fit, validate and write a model; returns its metadata."""
    from harness.models import _fchl19_kernel as kernel

    frames = _read_frames(args.data)
    n_valid = args.n_valid if args.n_valid is not None else len(frames) // 10
    n_train = args.n_train if args.n_train is not None else len(frames) - n_valid
    if n_train < 1 or n_valid < 0 or n_train + n_valid > len(frames):
        raise UserError(f"--n-train {n_train} + --n-valid {n_valid}: the file has "
                        f"{len(frames)} frames")
    order = np.random.default_rng(args.seed).permutation(len(frames))
    train_idx, valid_idx = sorted(order[:n_train]), sorted(order[n_train:n_train + n_valid])
    rep_params = {key: getattr(args, key) for key in kernel.DEFAULT_REP_PARAMS}
    started = time.monotonic()
    metadata = {
        "training_data": {"file": args.data.name, "sha256": _sha256(args.data),
                          "n_frames": len(frames), "train_indices": [int(i) for i in train_idx],
                          "valid_indices": [int(i) for i in valid_idx]},
        "command": " ".join(["python -m harness.models.fchl19", *sys.argv[1:]]),
        "seed": args.seed,
        "qmllib_version": _version("qmllib"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    model = kernel.fit([frames[i] for i in train_idx], args.sigma, args.lam, rep_params,
                       args.energy_weight, metadata)
    model.metadata["fit_seconds"] = round(time.monotonic() - started, 2)
    model.metadata["train_errors"] = kernel.errors(model, [frames[i] for i in train_idx])
    if valid_idx:
        model.metadata["valid_errors"] = kernel.errors(model, [frames[i] for i in valid_idx])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    return model.metadata


def _version(dist: str) -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit code 2 with a one-line message for bad input."""
    args = build_parser().parse_args(argv)
    try:
        FAMILY.check_installed()
        meta = train_command(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    summary = {k: meta[k] for k in ("train_errors", "valid_errors", "fit_seconds") if k in meta}
    print(f"wrote {args.out}: {meta['n_basis']} basis atoms; {json.dumps(summary)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
