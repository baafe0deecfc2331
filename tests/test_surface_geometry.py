"""Challenge III geometry on constructed frames with known answers, and F(D) on known samples."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from analysis.observables.surface import free_energy
from analysis.observables.surface.geometry import SurfaceGroups, analyse, orient_molecule
from harness.units import KB_EV_PER_K

SIDE = 1.40  # idealised aromatic C-C bond, Angstrom
CELL = np.diag([12.3, 12.78, 30.0])


def ideal_naphthyridine() -> tuple[list[str], np.ndarray]:
    """Two regular hexagons sharing the bond C4a-C8a along x, built by hand in the xy plane.

    C8a sits at +x; its ring neighbours (N1, N8) are at (+SIDE, +-h): the N side is +x, so the
    short axis e_s is +x, the long axis (through both ring centres) is y, the normal is z.
    """
    h = SIDE * np.sqrt(3) / 2
    heavy = {"C8a": (SIDE / 2, 0), "C4a": (-SIDE / 2, 0), "N1": (SIDE, h), "N8": (SIDE, -h),
             "C2": (SIDE / 2, 2 * h), "C7": (SIDE / 2, -2 * h), "C3": (-SIDE / 2, 2 * h),
             "C6": (-SIDE / 2, -2 * h), "C4": (-SIDE, h), "C5": (-SIDE, -h)}
    symbols, pos = [], []
    for name, (x, y) in heavy.items():
        symbols.append(name[0])
        pos.append((x, y, 0.0))
    for name in ("C2", "C7", "C3", "C6", "C4", "C5"):
        x, y = heavy[name]
        centre = np.array([0.0, np.sign(y) * h])
        out = (np.array([x, y]) - centre) / SIDE
        symbols.append("H")
        pos.append((*(np.array([x, y]) + 1.08 * out), 0.0))
    return symbols, np.array(pos)


def flat_sheet(z: float = 15.0) -> np.ndarray:
    """A rectangular grid of 60 points at height z (a stand-in sheet; only its plane matters)."""
    xs, ys = np.meshgrid(np.linspace(0, 12.3, 10, endpoint=False),
                         np.linspace(0, 12.78, 6, endpoint=False))
    return np.column_stack([xs.ravel(), ys.ravel(), np.full(xs.size, z)])


def rotvec(axis, angle: float) -> np.ndarray:
    """Rotation matrix from scipy (independent of the module's own helper)."""
    return Rotation.from_rotvec(angle * np.asarray(axis, float)).as_matrix()


def system(tilt: float, slant: float, spin: float = 0.3, height: float = 3.4,
           flip: bool = False):
    """Sheet + ideal molecule rotated by known angles (intrinsic: tilt about the short axis x,
    then -slant about the tilted long axis, then ``spin`` about the surface normal). ``flip``
    first turns the molecule by pi about its short axis: its C2 symmetry, same geometry with
    the atoms relabelled and the face reversed."""
    symbols, mol = ideal_naphthyridine()
    rot = rotvec([0, 0, 1], spin) @ rotvec([1, 0, 0], tilt) @ rotvec([0, 1, 0], -slant)
    if flip:
        rot = rot @ rotvec([1, 0, 0], np.pi)
    com_shift = np.array([6.0, 6.0, 15.0 + height])
    from ase.data import atomic_masses, atomic_numbers

    numbers = np.array([6] * 60 + [atomic_numbers[s] for s in symbols])
    masses = atomic_masses[numbers[60:]]
    mol = mol - masses @ mol / masses.sum()
    positions = np.vstack([flat_sheet(), (rot @ mol.T).T + com_shift])
    groups = SurfaceGroups.from_table(
        {"surface": list(range(60)), "molecule": list(range(60, 76)),
         "n_side": [60 + i for i, s in enumerate(symbols) if s == "N"]}, numbers)
    return positions, numbers, groups


ANGLES = [(0.0, 0.0), (0.3, 0.0), (0.0, 0.4), (0.0, -0.4), (0.5, -1.1), (1.2, 0.7),
          (np.pi / 2 - 1e-3, 0.2), (0.1, -np.pi / 2 + 1e-3), (0.9, 1.5)]


@pytest.mark.parametrize("tilt, slant", ANGLES)
def test_known_rotations_give_tilt_slant_incline(tilt: float, slant: float) -> None:
    positions, numbers, groups = system(tilt, slant)
    got = analyse(positions, numbers, groups, CELL)
    assert abs(got["tilt"][0] - tilt) < 1e-8
    assert abs(got["slant"][0] - slant) < 1e-8
    incline = np.arccos(np.cos(tilt) * np.cos(slant))
    assert abs(got["incline"][0] - incline) < 1e-8
    assert abs(got["D"][0] - 3.4) < 1e-10


def test_slant_sign_follows_the_n_side() -> None:
    """Negative slant exactly when the N atoms are nearer the sheet than the C-H edge atoms."""
    for slant in (-0.6, -0.2, 0.2, 0.6):
        positions, numbers, groups = system(0.2, slant)
        got = analyse(positions, numbers, groups, CELL)
        n_height = positions[groups.n_side, 2].mean()
        # C4 and C5 (the C-H edge opposite the N atoms) are heavy atoms 8 and 9
        ch_height = positions[[60 + 8, 60 + 9], 2].mean()
        assert np.sign(got["slant"][0]) == np.sign(n_height - ch_height) != 0


def test_geometry_is_periodic_and_frame_independent() -> None:
    """Wrapping atoms into the cell, a molecule across the c boundary, a sheet split across the
    c boundary, or a molecule below the sheet through the periodic image give the same answer;
    turning the molecule about its C2 axis (relabelled atoms, reversed face) changes nothing."""
    positions, numbers, groups = system(0.4, -0.3)
    ref = analyse(positions, numbers, groups, CELL)
    wrapped = positions.copy()
    frac = wrapped @ np.linalg.inv(CELL)
    wrapped = (frac % 1.0) @ CELL
    split = positions.copy()
    split[:, 2] -= 15.0  # sheet at z = 0: half its atoms go to z ~ 30 after wrapping
    split[:30, 2] += 30.0
    below = positions.copy()
    below[groups.molecule, 2] -= 30.0  # molecule sits at z ~ -11.6: 3.4 A above an image
    for variant in (wrapped, split, below):
        got = analyse(variant, numbers, groups, CELL)
        for key in ("D", "incline", "tilt", "slant"):
            assert abs(got[key][0] - ref[key][0]) < 1e-10, key
    flipped, *_ = system(0.4, -0.3, flip=True)
    assert not np.allclose(flipped, positions)
    got = analyse(flipped, numbers, groups, CELL)
    assert abs(got["tilt"][0] - 0.4) < 1e-8 and abs(got["slant"][0] + 0.3) < 1e-8


def test_orient_molecule_places_requested_geometry() -> None:
    """The placement used to build starting structures returns the angles it was given."""
    positions, numbers, groups = system(0.0, 0.0)
    for tilt, slant, azimuth, height in ((0.2, -0.3, 1.0, 3.2), (0.0, 0.5, 2.0, 5.0)):
        placed = orient_molecule(positions, numbers, groups, tilt, slant, azimuth, height,
                                 np.array([3.0, 4.0, 0.0]), CELL)
        got = analyse(placed, numbers, groups, CELL)
        assert abs(got["tilt"][0] - tilt) < 1e-8 and abs(got["slant"][0] - slant) < 1e-8
        assert abs(got["D"][0] - height) < 1e-10


def test_histogram_free_energy_of_harmonic_samples_returns_spring_constant() -> None:
    """D ~ Boltzmann of U = k/2 (D - D0)^2 at 300 K: the fitted k is within 2 %."""
    k, d0, temperature = 0.8, 3.5, 300.0
    sigma = np.sqrt(KB_EV_PER_K * temperature / k)
    samples = np.random.default_rng(7).normal(d0, sigma, 400_000)
    profile = free_energy.histogram_profile(samples, temperature,
                                            free_energy.bin_edges(2.5, 4.5, 0.02))
    k_fit, d0_fit = free_energy.spring_constant(profile)
    assert abs(k_fit / k - 1) < 0.02
    assert abs(d0_fit - d0) < 0.01
    depth, where = profile.depth()
    assert depth > 0 and where > 4.0


def test_mean_force_integration_of_harmonic_samples_returns_spring_constant() -> None:
    """Samples with the force -k (D - D0) + noise: integration gives the parabola back."""
    k, d0, temperature = 0.8, 3.5, 300.0
    rng = np.random.default_rng(11)
    sigma = np.sqrt(KB_EV_PER_K * temperature / k)
    samples = rng.normal(d0, sigma, 200_000)
    force = -k * (samples - d0) + rng.normal(0, 0.2, samples.size)
    profile = free_energy.mean_force_profile(samples, force, temperature,
                                             free_energy.bin_edges(2.5, 4.5, 0.02))
    k_fit, d0_fit = free_energy.spring_constant(profile)
    assert abs(k_fit / k - 1) < 0.02
    assert abs(d0_fit - d0) < 0.01


def test_conjugate_force_uses_relative_coordinate() -> None:
    """A force pair (+f on the molecule, -f on the sheet) gives f; a uniform field gives 0."""
    masses = np.array([12.0] * 4 + [14.0, 1.0])
    forces = np.zeros((2, 6, 3))
    forces[0, 4:, 2] = [0.3, 0.2]
    forces[0, :4, 2] = -0.5 / 4
    forces[1, :, 2] = masses * 0.01  # gravity-like: moves everything together, D unchanged
    normal = np.array([[0, 0, 1.0], [0, 0, 1.0]])
    got = free_energy.conjugate_force(forces, masses, np.array([4, 5]), np.arange(4), normal)
    assert got == pytest.approx([0.5, 0.0], abs=1e-12)
