"""Single-point commands (phonons, scans, error tables) give a periodic-only model the vacuum box
its runs use: CHGNet on the gas-phase Challenge I, through ``config.model_calculator``, equals
chgnet's own calculator on the same structure in that box, and without the box it cannot even
evaluate the molecule (``numpy.linalg.LinAlgError: Singular matrix``)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from harness import challenges, config, models
from harness.structures import read_structure

pytestmark = pytest.mark.skipif(importlib.util.find_spec("chgnet") is None,
                                reason="needs chgnet: pip install -e '.[test]'")


def test_chgnet_single_points_see_the_runs_vacuum_box() -> None:
    import torch
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator

    torch.set_num_threads(1)  # float32 sums: the same order on both sides
    challenge = challenges.load("alanine-tetrapeptide")
    calculator, _ = config.model_calculator("chgnet", None, {}, challenge)
    atoms = read_structure(challenge.starts[0])
    atoms.calc = calculator
    energy, forces = atoms.get_potential_energy(), atoms.get_forces()
    assert not atoms.pbc.any()  # the caller's structure stays gas-phase

    box = models.vacuum_box(models.get_family("chgnet"), [str(p) for p in challenge.starts])
    assert calculator.box == box and box["edge_angstrom"] >= 20.0
    own = CHGNetCalculator(model=CHGNet.load(model_name="0.3.0", verbose=False),
                           use_device="cpu")
    boxed = atoms.copy()
    boxed.cell[:] = np.eye(3) * box["edge_angstrom"]
    boxed.pbc = True
    boxed.calc = own
    assert energy == pytest.approx(boxed.get_potential_energy(), abs=1e-6)
    assert np.abs(forces - boxed.get_forces()).max() <= 1e-6

    bare = atoms.copy()
    bare.calc = own
    with pytest.raises(np.linalg.LinAlgError):
        bare.get_potential_energy()
