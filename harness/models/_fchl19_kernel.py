"""FCHL19 kernel force fields: the ``.npz`` model format, fitting and prediction.

The model (the "operator" form of Christensen et al., J. Chem. Phys. 152, 044107, 2020)
places one Gaussian kernel function on every atom ``J`` of the training structures::

    E(x) = sum_i e0[Z_i] + sum_i sum_{J: Z_J = Z_i} alpha_J exp(-|q_i(x) - q_J|^2 / (2 sigma^2))

where ``q_i`` is the FCHL19 representation of atom ``i`` (qmllib's ``generate_fchl19``).
Forces are the exact negative gradient, ``F = -dE/dx``, through qmllib's analytic
representation gradients, so energy is conserved. ``alpha`` is fitted by ridge regression
to energies and forces together.

File format (``numpy.savez``; no pickled objects, so loading a model runs no code)
-----------------------------------------------------------------------------------
``format``            str, ``"tea-harness-fchl19"``
``format_version``    int, 1
``basis_numbers``     (n_basis,) int: atomic number of each basis atom
``basis_reps``        (n_basis, n_rep) float: their FCHL19 vectors
``alpha``             (n_basis,) float: weights, eV
``sigma``             float: kernel width (representation units)
``elements``          (n_el,) int: the elements the representation was built for
``e0``                (n_el,) float: energy per atom of each element, eV
``rep_params``        str: JSON of the ``generate_fchl19`` keyword arguments
``metadata``          str: JSON of the training settings, data set and errors
Units: Angstrom, eV, eV/Angstrom.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "tea-harness-fchl19"
FORMAT_VERSION = 1
#: The published FCHL19 hyperparameters (qmllib's defaults).
DEFAULT_REP_PARAMS: dict[str, Any] = {
    "nRs2": 24, "nRs3": 20, "nFourier": 1, "eta2": 0.32, "eta3": 2.7, "zeta": float(np.pi),
    "rcut": 8.0, "acut": 8.0, "two_body_decay": 1.8, "three_body_decay": 0.57,
    "three_body_weight": 13.4,
}


def representation(numbers: np.ndarray, positions: np.ndarray, elements: list[int],
                   rep_params: dict[str, Any], gradients: bool = False):
    """FCHL19 vectors (n_atoms, n_rep) and, with ``gradients``, d q / d x (n, n_rep, n, 3)."""
    from qmllib.representations import generate_fchl19

    return generate_fchl19(np.asarray(numbers), np.asarray(positions, dtype=np.float64),
                           elements=list(elements), gradients=gradients, **rep_params)


@dataclass
class FCHL19Model:
    """A fitted FCHL19 model; see the module docstring for the meaning of each field."""

    basis_numbers: np.ndarray
    basis_reps: np.ndarray
    alpha: np.ndarray
    sigma: float
    elements: list[int]
    e0: np.ndarray
    rep_params: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ I/O
    def save(self, path: Path) -> None:
        """Write the model as ``.npz`` (see the module docstring)."""
        with open(path, "wb") as handle:
            np.savez(handle, format=np.str_(FORMAT), format_version=np.int64(FORMAT_VERSION),
                     basis_numbers=self.basis_numbers.astype(np.int64),
                     basis_reps=self.basis_reps, alpha=self.alpha,
                     sigma=np.float64(self.sigma),
                     elements=np.asarray(self.elements, dtype=np.int64), e0=self.e0,
                     rep_params=np.str_(json.dumps(self.rep_params)),
                     metadata=np.str_(json.dumps(self.metadata)))

    @classmethod
    def load(cls, path: Path) -> FCHL19Model:
        """Read a model written by :meth:`save`; ValueError when the file is not one."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["format"]) != FORMAT:
                    raise ValueError(f"format is {str(data['format'])!r}, not {FORMAT!r}")
                if int(data["format_version"]) > FORMAT_VERSION:
                    raise ValueError(f"format version {int(data['format_version'])} is newer "
                                     f"than this tea-harness reads ({FORMAT_VERSION})")
                return cls(basis_numbers=data["basis_numbers"], basis_reps=data["basis_reps"],
                           alpha=data["alpha"], sigma=float(data["sigma"]),
                           elements=[int(z) for z in data["elements"]], e0=data["e0"],
                           rep_params=json.loads(str(data["rep_params"])),
                           metadata=json.loads(str(data["metadata"])))
        except (KeyError, OSError, EOFError, ValueError) as exc:
            raise ValueError(f"{path} is not a tea-harness FCHL19 model ({exc})") from None

    # ----------------------------------------------------------- prediction
    def _kernel(self, reps: np.ndarray, numbers: np.ndarray) -> np.ndarray:
        """k[i, J] between the atoms and the basis atoms (zero across elements)."""
        sq = (np.sum(reps**2, axis=1)[:, None] + np.sum(self.basis_reps**2, axis=1)[None, :]
              - 2.0 * reps @ self.basis_reps.T)
        k = np.exp(-np.maximum(sq, 0.0) / (2.0 * self.sigma**2))
        k[numbers[:, None] != self.basis_numbers[None, :]] = 0.0
        return k

    def baseline(self, numbers: np.ndarray) -> float:
        """Sum of the per-element energies e0 of the atoms, eV."""
        lookup = dict(zip(self.elements, self.e0, strict=True))
        return float(sum(lookup[int(z)] for z in numbers))

    def energy_forces(self, numbers: np.ndarray, positions: np.ndarray
                      ) -> tuple[float, np.ndarray]:
        """Energy (eV) and forces (eV/Angstrom) of one structure.

        dE/dq_i = -sum_J alpha_J k_iJ (q_i - q_J) / sigma^2, chained with dq_i/dx.
        """
        numbers = np.asarray(numbers)
        reps, grads = representation(numbers, positions, self.elements, self.rep_params, True)
        k = self._kernel(reps, numbers) * self.alpha[None, :]
        energy = self.baseline(numbers) + float(k.sum())
        # w_i = -dE/dq_i
        w = (k.sum(axis=1)[:, None] * reps - k @ self.basis_reps) / self.sigma**2
        forces = np.einsum("ir,irac->ac", w, grads)
        return energy, forces


def _design_rows(numbers: np.ndarray, positions: np.ndarray, basis_numbers: np.ndarray,
                 basis_reps: np.ndarray, sigma: float, elements: list[int],
                 rep_params: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the fit for one structure: energy row (n_basis,), force rows (3n, n_basis)."""
    reps, grads = representation(numbers, positions, elements, rep_params, True)
    probe = FCHL19Model(basis_numbers, basis_reps, np.ones(len(basis_numbers)), sigma,
                        elements, np.zeros(len(elements)), rep_params)
    k = probe._kernel(reps, np.asarray(numbers))
    # F_ac = sum_J alpha_J sum_i k_iJ (q_i - q_J) . dq_i/dx_ac / sigma^2
    n = len(numbers)
    flat = grads.reshape(n, grads.shape[1], n * 3)  # (i, r, ac)
    own = np.einsum("ir,irc->ic", reps, flat)  # q_i . dq_i/dx
    term_own = k.T @ own  # (J, ac)
    term_basis = np.zeros_like(term_own)  # sum_i k_iJ q_J . dq_i/dx
    for i in range(n):
        if np.any(k[i]):
            term_basis += k[i][:, None] * (basis_reps @ flat[i])
    return k.sum(axis=0), ((term_own - term_basis) / sigma**2).T


def fit(frames: list, sigma: float, lam: float, rep_params: dict[str, Any],
        energy_weight: float = 1.0, metadata: dict[str, Any] | None = None) -> FCHL19Model:
    """Fit a model to ASE Atoms with energies (eV) and forces (eV/A).

    Every atom of every frame becomes a basis function. Ridge regression on the stacked
    energy and force equations: minimise
    ``w^2 |K_E a - (E - E0)|^2 + |K_F a - F|^2 + lam |a|^2``.
    """
    numbers_all = np.concatenate([f.numbers for f in frames])
    elements = sorted({int(z) for z in numbers_all})
    energies = np.array([f.get_potential_energy() for f in frames])
    counts = np.array([[np.sum(f.numbers == z) for z in elements] for f in frames], float)
    # per-element energies: least squares (minimum norm when compositions do not vary)
    e0 = np.linalg.lstsq(counts, energies, rcond=None)[0]
    basis_reps = np.concatenate([representation(f.numbers, f.positions, elements, rep_params)
                                 for f in frames])
    rows, targets = [], []
    for frame, energy, count in zip(frames, energies, counts, strict=True):
        row_e, rows_f = _design_rows(frame.numbers, frame.positions, numbers_all, basis_reps,
                                     sigma, elements, rep_params)
        rows += [energy_weight * row_e[None, :], rows_f]
        targets += [[energy_weight * (energy - count @ e0)], frame.get_forces().ravel()]
    design = np.concatenate(rows + [np.sqrt(lam) * np.eye(len(numbers_all))])
    target = np.concatenate(targets + [np.zeros(len(numbers_all))])
    alpha = np.linalg.lstsq(design, target, rcond=None)[0]
    meta = dict(metadata or {})
    meta.update({"sigma": sigma, "lambda": lam, "energy_weight": energy_weight,
                 "n_train_frames": len(frames), "n_basis": int(len(numbers_all)),
                 "representation": "FCHL19 (qmllib generate_fchl19)",
                 "rep_params": rep_params})
    return FCHL19Model(numbers_all, basis_reps, alpha, sigma, elements, e0, rep_params, meta)


def errors(model: FCHL19Model, frames: list) -> dict[str, float]:
    """Energy MAE/RMSE (eV) and force MAE/RMSE (eV/A) of a model on frames."""
    de, df = [], []
    for frame in frames:
        energy, forces = model.energy_forces(frame.numbers, frame.positions)
        de.append(energy - frame.get_potential_energy())
        df.append((forces - frame.get_forces()).ravel())
    de_arr, df_arr = np.array(de), np.concatenate(df)
    return {"energy_mae_eV": float(np.mean(np.abs(de_arr))),
            "energy_rmse_eV": float(np.sqrt(np.mean(de_arr**2))),
            "force_mae_eV_per_A": float(np.mean(np.abs(df_arr))),
            "force_rmse_eV_per_A": float(np.sqrt(np.mean(df_arr**2)))}
