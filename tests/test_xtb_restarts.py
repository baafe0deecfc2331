"""GFN2-xTB restarts each trajectory's SCC from its own previous step (``harness.models.xtb``).

A force client that serves several trajectories in turn (the walkers of a replica-exchange
ladder, the replicas of a batched client) must not start one walker's SCC from another's
wavefunction: slower, and not what a plain calculator on that trajectory computes.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tblite", reason="tblite (GFN2-xTB) is not installed")

from ase import Atoms  # noqa: E402
from ase.io import read  # noqa: E402
from tblite.ase import TBLite  # noqa: E402

from harness import challenges, models  # noqa: E402
from harness.models import xtb  # noqa: E402


def _trajectories(n_steps: int = 4) -> list[list[np.ndarray]]:
    """Two short pseudo-trajectories of Challenge I from different starts (0.01 A steps)."""
    starts = challenges.load("alanine-tetrapeptide").path / "starts"
    out = []
    for k, name in enumerate(("start-00.xyz", "start-05.xyz")):
        base = read(starts / name).positions
        step = np.random.default_rng(k).normal(scale=0.005, size=base.shape)
        out.append([base + i * step for i in range(n_steps)])
    return out


def _forces(calc, positions: np.ndarray, numbers: np.ndarray) -> np.ndarray:
    atoms = Atoms(numbers=numbers, positions=positions)
    atoms.calc = calc
    return atoms.get_forces()


def test_interleaved_trajectories_get_the_forces_of_their_own_calculators() -> None:
    numbers = read(challenges.load("alanine-tetrapeptide").path / "starts" / "start-00.xyz").numbers
    walkers = _trajectories()
    pooled = models.get_family("xtb").ase_calculator(None, {})
    own = [TBLite(method="GFN2-xTB", verbosity=0) for _ in walkers]
    shared = TBLite(method="GFN2-xTB", verbosity=0)
    worst_shared = 0.0
    for step in range(len(walkers[0])):
        for w, traj in enumerate(walkers):
            got = _forces(pooled, traj[step], numbers)
            # bit for bit what a calculator that only ever saw this trajectory computes
            np.testing.assert_array_equal(got, _forces(own[w], traj[step], numbers))
            worst_shared = max(worst_shared, float(np.abs(
                _forces(shared, traj[step], numbers) - got).max()))
    assert len(pooled.pool) == 2
    # one calculator shared by both restarts each SCC from the other walker's wavefunction:
    # the same forces to the SCC tolerance, not the same numbers
    assert 0.0 < worst_shared < 1e-2


def test_a_jump_starts_a_new_trajectory_and_the_pool_is_bounded() -> None:
    make = lambda: TBLite(method="GFN2-xTB", verbosity=0)  # noqa: E731
    pooled = xtb.restart_per_trajectory(make, limit=2)
    numbers = np.array([8, 1, 1])
    water = np.array([[0.0, 0.0, 0.0], [0.96, 0.0, 0.0], [-0.24, 0.93, 0.0]])
    for shift in (0.0, 0.01, 5.0, 10.0, 10.02):
        _forces(pooled, water + shift, numbers)
    # 0 and 0.01 continue each other, 5 is new, 10 is new (the oldest dropped), 10.02
    # continues 10: two kept
    assert len(pooled.pool) == 2
    np.testing.assert_allclose(pooled.pool[0][1], water + 10.02)
    np.testing.assert_allclose(pooled.pool[1][1], water + 5.0)


def test_minimum_image_continues_a_trajectory_across_the_cell_edge() -> None:
    cell = np.diag([10.0, 10.0, 10.0])
    a = np.array([[9.99, 5.0, 5.0], [1.0, 5.0, 5.0]])
    b = np.array([[0.01, 5.0, 5.0], [1.01, 5.0, 5.0]])  # atom 0 wrapped across x = 10
    assert xtb._largest_displacement(a, b, cell) == pytest.approx(0.02)
    assert xtb._largest_displacement(a, b, None) == pytest.approx(9.98)


def test_without_cache_api_every_reset_starts_from_scratch() -> None:
    """``analysis triage`` and ``errors`` set ``cache_api`` False and reset before each frame:
    each frame's numbers are then those of a fresh calculator, whatever came before."""
    numbers = read(challenges.load("alanine-tetrapeptide").path / "starts" / "start-00.xyz").numbers
    walkers = _trajectories(n_steps=3)
    pooled = models.get_family("xtb").ase_calculator(None, {})
    assert pooled.parameters["cache_api"] is True
    pooled.parameters["cache_api"] = False
    for traj in walkers:
        for positions in traj:
            pooled.reset()
            fresh = _forces(TBLite(method="GFN2-xTB", verbosity=0), positions, numbers)
            np.testing.assert_array_equal(_forces(pooled, positions, numbers), fresh)
