"""Tiny but real models of each installable family, for tests (seconds to build).

All are for Challenge I's alanine tetrapeptide (C, H, N, O; 42 atoms in the order of the
shipped starts), so they run on the shipped challenge next to the demo GAP and xTB:

- MACE: a 2-layer, 8-channel ScaleShiftMACE with random weights (seeded), float64.
- sGDML and FCHL19: trained on 20 GFN2-xTB frames of the shipped reference set
  ``reference/xtb-frames.extxyz`` (tblite MD frames made by ``make_demo_gap.py``), FCHL19
  through the harness's own training command.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from ase.io import read, write

from harness.challenges import CHALLENGES_DIR

REFERENCE = CHALLENGES_DIR / "alanine-tetrapeptide" / "reference" / "xtb-frames.extxyz"
N_TRAIN = 20
#: A light FCHL19 (12 two-body, 8 three-body functions, 5 A cutoffs): ~30 ms per call.
FCHL19_FLAGS = ("--sigma", "2.0", "--nRs2", "12", "--nRs3", "8", "--rcut", "5", "--acut", "5")


def training_frames(n: int = N_TRAIN) -> list:
    """``n`` GFN2-xTB frames spread over the shipped reference trajectories."""
    frames = read(REFERENCE, ":")
    step = len(frames) // n
    return frames[::step][:n]


def make_mace(path: Path, seed: int = 0) -> Path:
    """A random-weight MACE for H, C, N, O written with torch.save (as mace-torch does)."""
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"  # e3nn under torch 2.13
    import torch
    from e3nn import o3
    from mace import modules

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(seed)
        block = modules.interaction_classes["RealAgnosticResidualInteractionBlock"]
        model = modules.ScaleShiftMACE(
            r_max=4.0, num_bessel=6, num_polynomial_cutoff=5, max_ell=2,
            interaction_cls=block, interaction_cls_first=block, num_interactions=2,
            num_elements=4, hidden_irreps=o3.Irreps("8x0e+8x1o"), MLP_irreps=o3.Irreps("8x0e"),
            atomic_energies=np.array([-13.6, -1029.0, -1485.0, -2041.0]),
            avg_num_neighbors=8.0, atomic_numbers=[1, 6, 7, 8], correlation=2,
            gate=torch.nn.functional.silu, atomic_inter_scale=1.0, atomic_inter_shift=0.0)
        torch.save(model, path)
    finally:
        torch.set_default_dtype(old)
    return path


def make_sgdml(path: Path, frames: list | None = None) -> Path:
    """An sGDML model (no symmetries, closed-form solver) trained with sgdml's own API."""
    from sgdml import __version__
    from sgdml.train import GDMLTrain
    from sgdml.utils import io

    frames = frames or training_frames()
    dataset = {
        "type": "d", "code_version": __version__, "name": np.array("tea-ala3-xtb"),
        "theory": np.array("GFN2-xTB (tblite)"), "z": frames[0].numbers,
        "R": np.array([f.positions for f in frames]),
        "E": np.array([f.get_potential_energy() for f in frames]),
        "F": np.array([f.get_forces() for f in frames]),
        "e_unit": np.array("eV"), "r_unit": np.array("Ang"),
    }
    dataset["md5"] = io.dataset_md5(dataset)
    trainer = GDMLTrain(max_processes=1)
    np.random.seed(0)
    # sgdml 1.0.3 samples training points with np.in1d, which numpy 2.4 removed; np.isin
    # is its documented replacement. Lent to numpy for the duration of training only.
    shim = not hasattr(np, "in1d")
    if shim:
        np.in1d = np.isin
    try:
        task = trainer.create_task(dataset, len(frames) - 2, dataset, 2, sig=10, lam=1e-10,
                                   use_sym=False)
        model = trainer.train(task)
    finally:
        if shim:
            del np.in1d
    np.savez_compressed(path, **model)
    return path


def make_fchl19(path: Path, workdir: Path, frames: list | None = None) -> Path:
    """An FCHL19 model made by ``python -m harness.models.fchl19 train`` (the shipped command)."""
    data = workdir / "fchl19-train.extxyz"
    write(data, frames or training_frames(), format="extxyz")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "harness.models.fchl19", "train", str(data),
                           "--out", str(path), "--n-valid", "0", *FCHL19_FLAGS],
                          capture_output=True, text=True, timeout=600, env=env)
    if proc.returncode != 0:
        raise AssertionError(f"FCHL19 training failed:\n{proc.stdout}\n{proc.stderr}")
    return path
