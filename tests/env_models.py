"""Random-weight checkpoints and reference forces, made inside a model's own environment.

Run by that environment's interpreter (it needs only the model's package, numpy and ASE; no
harness, no pytest):

    PYTHON tests/env_models.py checkpoint FAMILY OUT
    PYTHON tests/env_models.py forces FAMILY CHECKPOINT FRAMES.npz OUT.npy

``checkpoint`` builds the architecture of the family's default pretrained model with the
package's own constructor and random weights (seeded), and writes it as the package's loader
reads it: a stand-in for published weights that no test may download. ``forces`` evaluates
the package's own ASE calculator, loaded from that file by the package's own loader, on the
frames of a run (positions, and the cell where ``boxes`` is given) and saves the forces.
"""

from __future__ import annotations

import sys

import numpy as np

SEED = 29


def orb_checkpoint(out: str) -> None:
    """ORB-v3 conservative (the architecture of orb-v3-conservative-inf-omat), random."""
    import torch
    from orb_models.forcefield import pretrained

    torch.manual_seed(SEED)
    torch.save(pretrained.orb_v3_conservative_architecture(device="cpu").state_dict(), out)


def orb_calculator(path: str):
    from orb_models.forcefield import pretrained
    from orb_models.forcefield.calculator import ORBCalculator

    model = pretrained.orb_v3_conservative_inf_omat(weights_path=path, device="cpu",
                                                    compile=False)
    return ORBCalculator(model, device="cpu")


def mattersim_checkpoint(out: str) -> None:
    """A small MatterSim v1 (M3GNet: 2 blocks of 16 units), random, saved by mattersim's own
    ``Potential.save`` (the file carries its architecture, as a fine-tuned model's does)."""
    import torch
    from mattersim.forcefield.m3gnet.m3gnet import M3Gnet
    from mattersim.forcefield.potential import Potential

    torch.manual_seed(SEED)
    Potential(M3Gnet(num_blocks=2, units=16, device="cpu"), device="cpu").save(out)


def mattersim_calculator(path: str):
    from mattersim.forcefield import MatterSimCalculator

    return MatterSimCalculator(load_path=path, device="cpu")


def aimnet2_checkpoint(out: str) -> None:
    """AIMNet2 as aimnet's own ``aimnet2.yaml`` builds it (less its long-range Coulomb
    output), random, in aimnet's v2 file format (model YAML + state dict + metadata)."""
    import importlib.resources

    import torch
    import yaml
    from aimnet.config import build_module

    config = yaml.safe_load((importlib.resources.files("aimnet.models") / "aimnet2.yaml")
                            .read_text())
    config["kwargs"]["outputs"].pop("lrcoulomb", None)
    text = yaml.safe_dump(config, sort_keys=False)
    torch.manual_seed(SEED)
    model = build_module(yaml.safe_load(text))
    torch.save({"format_version": 2, "model_yaml": text, "state_dict": model.state_dict(),
                "cutoff": 5.0, "needs_coulomb": False, "needs_dispersion": False,
                "coulomb_mode": "none", "has_embedded_lr": False,
                "implemented_species": [1, 6, 7, 8]}, out)


def aimnet2_calculator(path: str):
    from aimnet.calculators import AIMNet2ASE, AIMNet2Calculator

    return AIMNet2ASE(AIMNet2Calculator(model=path, device="cpu"), charge=0, mult=1)


def forces(family: str, checkpoint: str, frames: str, out: str) -> None:
    """The package's own calculator's forces on every frame (eV/A)."""
    from ase import Atoms

    calc = globals()[f"{family}_calculator"](checkpoint)
    data = np.load(frames)
    boxes = data["boxes"] if "boxes" in data.files else [None] * len(data["positions"])
    result = []
    for positions, box in zip(data["positions"], boxes, strict=True):
        atoms = Atoms(numbers=data["numbers"], positions=positions)
        if box is not None:
            atoms.cell = box
            atoms.pbc = True
        calc.calculate(atoms, ["energy", "forces"], ["positions", "numbers", "cell", "pbc"])
        result.append(np.asarray(calc.results["forces"], dtype=np.float64))
    np.save(out, np.array(result))


def main(argv: list[str]) -> int:
    """Dispatch ``checkpoint`` and ``forces``."""
    import torch

    torch.set_num_threads(1)
    if argv[0] == "checkpoint":
        globals()[f"{argv[1]}_checkpoint"](argv[2])
    elif argv[0] == "forces":
        forces(*argv[1:5])
    else:
        raise SystemExit(f"unknown command {argv[0]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
