"""Deliberately broken force fields for the crash-detection tests (``--model ase:...``)."""

from __future__ import annotations

import numpy as np
from ase.calculators.calculator import Calculator, all_changes
from perovskite_models import IsotropicWell

from harness.stability.criteria import Geometry, bond_topology


class PulledBonds(Calculator):
    """Harmonic springs on every bond of the first structure, but one bond is pulled apart.

    E = sum_bonds k/2 (d - d0)^2 - F d_ij for the chosen pair (i, j): that bond, and only
    that one, stretches until it breaks. Everything else stays intact.
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, pull: str = "4-6", force: float = 8.0, k: float = 20.0):
        super().__init__()
        self.pull = tuple(int(x) for x in str(pull).split("-"))
        self.force, self.k = float(force), float(k)
        self.bonds: np.ndarray | None = None
        self.d0: np.ndarray | None = None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        pos = self.atoms.positions
        if self.bonds is None:
            self.bonds = bond_topology(Geometry(self.atoms.numbers), pos)
            keep = [tuple(sorted(b)) != tuple(sorted(self.pull)) for b in self.bonds]
            self.bonds = self.bonds[np.array(keep)]
            self.d0 = np.linalg.norm(pos[self.bonds[:, 1]] - pos[self.bonds[:, 0]], axis=1)
        vec = pos[self.bonds[:, 1]] - pos[self.bonds[:, 0]]
        d = np.linalg.norm(vec, axis=1)
        energy = 0.5 * self.k * np.sum((d - self.d0) ** 2)
        fpair = (-self.k * (d - self.d0) / d)[:, None] * vec  # force on atom j
        forces = np.zeros_like(pos)
        np.add.at(forces, self.bonds[:, 1], fpair)
        np.add.at(forces, self.bonds[:, 0], -fpair)
        i, j = self.pull
        rij = pos[j] - pos[i]
        dij = np.linalg.norm(rij)
        energy -= self.force * dij
        forces[j] += self.force * rij / dij
        forces[i] -= self.force * rij / dij
        self.results = {"energy": float(energy), "forces": forces}


def make(**options) -> PulledBonds:
    """Factory for ``--model ase:breaking_models:make``."""
    return PulledBonds(**options)


class Faulty(Calculator):
    """A harmonic well around the first structure that misbehaves after ``after`` calls.

    ``fault``: ``hang`` (sleeps for an hour: alive but silent), ``nan`` (non-finite forces),
    ``raise`` (a Python exception) or ``exit`` (the process exits with code 3). With a small
    ``after`` the first frames arrive and then the fault hits, which is how a model that
    breaks during a run looks to the harness.
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, fault: str = "hang", after: int = 30, k: float = 5.0):
        super().__init__()
        if fault not in ("hang", "nan", "raise", "exit"):
            raise ValueError(f"fault must be hang, nan, raise or exit, not {fault!r}")
        self.fault, self.after, self.k = fault, int(after), float(k)
        self.calls = 0
        self.x0: np.ndarray | None = None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.calls += 1
        if self.x0 is None:
            self.x0 = self.atoms.positions.copy()
        if self.calls > self.after:
            self._misbehave()
        disp = self.atoms.positions - self.x0
        forces = -self.k * disp
        if self.calls > self.after and self.fault == "nan":
            forces[0, 0] = np.nan
        self.results = {"energy": float(0.5 * self.k * np.sum(disp ** 2)), "forces": forces}

    def _misbehave(self) -> None:
        import os
        import time

        if self.fault == "hang":
            time.sleep(3600)
        elif self.fault == "raise":
            raise RuntimeError(f"Faulty model: deliberate error at call {self.calls}")
        elif self.fault == "exit":
            os._exit(3)


def faulty(**options) -> Faulty:
    """Factory for ``--model ase:breaking_models:faulty --model-option fault=hang``."""
    return Faulty(**options)


class BreaksWhenHot(Calculator):
    """Springs on every bond that hold at low temperature; once any bond has stretched by
    ``trigger`` Angstrom (thermal motion does that only when hot), its spring is replaced by
    a constant pull of ``force`` eV/A and the bond breaks.

    One model, one set of options: whether a run breaks depends only on its own trajectory,
    so in a ``--batch`` group the hot run breaks and the cold ones do not.
    """

    implemented_properties = ["energy", "forces"]

    def __init__(self, trigger: float = 0.3, force: float = 8.0, k: float = 20.0):
        super().__init__()
        self.trigger, self.force, self.k = float(trigger), float(force), float(k)
        self.bonds: np.ndarray | None = None
        self.d0: np.ndarray | None = None
        self.pulled: tuple[int, int] | None = None

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        pos = self.atoms.positions
        if self.bonds is None:
            self.bonds = bond_topology(Geometry(self.atoms.numbers), pos)
            self.d0 = np.linalg.norm(pos[self.bonds[:, 1]] - pos[self.bonds[:, 0]], axis=1)
        vec = pos[self.bonds[:, 1]] - pos[self.bonds[:, 0]]
        d = np.linalg.norm(vec, axis=1)
        if self.pulled is None:
            stretched = np.nonzero(d - self.d0 > self.trigger)[0]
            if len(stretched):
                k = int(stretched[0])
                self.pulled = (int(self.bonds[k, 0]), int(self.bonds[k, 1]))
                keep = np.arange(len(self.bonds)) != k
                self.bonds, self.d0, vec, d = self.bonds[keep], self.d0[keep], vec[keep], d[keep]
        energy = 0.5 * self.k * np.sum((d - self.d0) ** 2)
        fpair = (-self.k * (d - self.d0) / d)[:, None] * vec
        forces = np.zeros_like(pos)
        np.add.at(forces, self.bonds[:, 1], fpair)
        np.add.at(forces, self.bonds[:, 0], -fpair)
        if self.pulled is not None:
            i, j = self.pulled
            rij = pos[j] - pos[i]
            dij = np.linalg.norm(rij)
            energy -= self.force * dij
            forces[j] += self.force * rij / dij
            forces[i] -= self.force * rij / dij
        self.results = {"energy": float(energy), "forces": forces}


def make_hot_breaker(**options) -> BreaksWhenHot:
    """Factory for ``--model ase:breaking_models:make_hot_breaker``."""
    return BreaksWhenHot(**options)


class RotatingWell(IsotropicWell):
    """The isotropic well around the first positions plus a force that is not conservative.

    F_i = -k d_i + eps (z x d_i), d_i = r_i - r0_i: the added term circulates about the
    z axis through each atom's own centre. Its curl is 2 eps z, so it does work around every
    closed loop and pumps energy into the motion: the conserved energy must drift. The energy
    returned is the well's only (there is no potential for the rotation).
    """

    def __init__(self, k: float = 1.0, eps: float = 0.01):
        super().__init__(k)
        self.eps = float(eps)

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        d = self.atoms.positions - self.origin
        rotation = np.stack([-d[:, 1], d[:, 0], np.zeros(len(d))], axis=1)  # z x d
        self.results["forces"] = self.results["forces"] + self.eps * rotation


def rotating_well(**options) -> RotatingWell:
    """Factory for ``--model ase:breaking_models:rotating_well``."""
    return RotatingWell(**options)
