"""Fit the demo SNAP model for Challenge I (Ac-Ala3-NHMe) on the shipped GFN2-xTB frames.

Reproducible recipe (deterministic: no random numbers anywhere):

1. **Frames.** The GFN2-xTB frames that the demo GAP was fitted on:
   ``harness/challenges/alanine-tetrapeptide/reference/xtb-frames.extxyz`` (468 frames of
   36 Langevin trajectories, 300/500/700 K) and ``xtb-al-frames.extxyz`` (144 active-learning
   frames). See ``make_demo_gap.py`` for how they were made.
2. **Split.** The demo GAP's rule: whole held-out trajectories are the test set
   (``start % 5 == temperature index``: 104 frames); everything else, the active-learning
   frames included, is training data.
3. **Descriptors.** LAMMPS ``compute snap`` (bispectrum components per atom type, summed
   for the energy row, their derivatives for the 3N force rows), with exactly the settings
   written into ``snap.snapparam``.
4. **Fit.** A ZBL screened-nuclear-repulsion core (``pair_style zbl``, switched off between
   0.6 and 0.9 A: it acts only on contacts shorter than 0.9 A, found in a few
   active-learning frames) keeps atoms from collapsing, as usual for SNAP. The SNAP
   coefficients are fitted to the rest by weighted linear least squares with a ridge term
   (smoother, more stable models at almost no cost in accuracy): energies (per atom) and
   forces; one intercept, split evenly over the atoms (every frame has the same
   composition, so per-element constants cannot be told apart: energies of other
   molecules are not meaningful, forces are).
5. **Checks.** The fitted ``pair_style snap`` is evaluated by LAMMPS on the test frames (its
   forces must equal the linear model's to 1e-8 eV/A: the descriptor and pair settings
   agree); test-set energy and force errors; cost per call; a 1 ps Langevin run at 500 K
   (the demo preset's hottest) from each of the 12 starts in native LAMMPS, recording the
   longest covalent bond reached (TEA's criterion: 2 A). Everything goes into ``metadata.json``.

Run: ``python harness/models/demo/make_demo_snap.py`` (a few minutes on one core).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from ase.io import read

from harness import REPO_DIR
from harness.engines import lammps_data, lammps_env

CHALLENGE = REPO_DIR / "harness" / "challenges" / "alanine-tetrapeptide"
FRAMES = [CHALLENGE / "reference" / "xtb-frames.extxyz",
          CHALLENGE / "reference" / "xtb-al-frames.extxyz"]
OUT_DIR = Path(__file__).resolve().parent / "snap-alanine-tetrapeptide"
ELEMENTS = ["C", "H", "N", "O"]
TEMPERATURES_K = (300, 500, 700)


@dataclass(frozen=True)
class SnapSettings:
    """Descriptor settings (shared by ``compute snap`` and ``pair_style snap``)."""

    twojmax: int = 8
    rcutfac: float = 1.0
    rfac0: float = 0.99363
    rmin0: float = 0.0
    radius: tuple[float, ...] = (1.7, 1.4, 1.7, 1.7)   # C H N O: pair cutoff R_i + R_j (A)
    weight: tuple[float, ...] = (1.0, 0.35, 1.25, 1.5)
    energy_weight: float = 30.0   # per-atom energy rows vs force rows
    ridge: float = 1e-3           # on coefficients scaled to unit column norm
    zbl_inner_A: float = 0.6      # ZBL core, switched off between inner and outer
    zbl_outer_A: float = 0.9

    def reference_potential(self) -> dict:
        """The ZBL core as ``metadata.json`` names it (read by ``harness.models.snap``)."""
        return {"style": "zbl", "inner_A": self.zbl_inner_A, "outer_A": self.zbl_outer_A}

    def zbl_lines(self) -> list[str]:
        """The ZBL core as the reference potential of ``compute snap`` (``zero`` only makes
        the pair cutoff as long as the descriptors' cutoff, which compute snap requires)."""
        lines = [f"pair_style hybrid/overlay zbl {self.zbl_inner_A:g} {self.zbl_outer_A:g} "
                 "zero 8.0", "pair_coeff * * zero"]
        for i, a in enumerate(ELEMENTS):
            for j in range(i, len(ELEMENTS)):
                lines.append(f"pair_coeff {i + 1} {j + 1} zbl {atomic_numbers[a]}.0 "
                             f"{atomic_numbers[ELEMENTS[j]]}.0")
        return lines

    def compute_args(self) -> str:
        """Arguments of ``compute snap`` after the style name."""
        radii = " ".join(f"{r:g}" for r in self.radius)
        weights = " ".join(f"{w:g}" for w in self.weight)
        return (f"{self.rcutfac:g} {self.rfac0:g} {self.twojmax} {radii} {weights} "
                f"rmin0 {self.rmin0:g} bzeroflag 1 quadraticflag 0 switchflag 1")

    def param_text(self) -> str:
        """The ``.snapparam`` file."""
        return (f"# SNAP settings of the tea-harness demo model (see make_demo_snap.py)\n"
                f"rcutfac {self.rcutfac:g}\ntwojmax {self.twojmax}\nrfac0 {self.rfac0:g}\n"
                f"rmin0 {self.rmin0:g}\nbzeroflag 1\nquadraticflag 0\nswitchflag 1\n")


def is_test_trajectory(start: int, temp_index: int) -> bool:
    """The demo GAP's split: whole held-out trajectories (``start % 5 == T index``)."""
    return start % 5 == temp_index


def load_frames() -> tuple[list[Atoms], np.ndarray]:
    """All reference frames and a boolean test mask."""
    frames: list[Atoms] = []
    for path in FRAMES:
        frames += read(path, ":")
    test = np.array([fr.info.get("config_type") != "al" and is_test_trajectory(
        int(fr.info["start"]), TEMPERATURES_K.index(int(fr.info["temperature_K"])))
        for fr in frames])
    return frames, test


class Descriptors:
    """``compute snap`` on a fixed molecule, frame after frame (positions scattered in)."""

    def __init__(self, template: Atoms, settings: SnapSettings, work: Path):
        from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_ARRAY

        self._style = (LMP_STYLE_GLOBAL, LMP_TYPE_ARRAY)
        data = work / "fit.data"
        lammps_data.write_data(data, template, ELEMENTS, periodic=False)
        self.lmp = lammps_env.library()
        for line in ("units metal", "atom_style atomic", "boundary p p p",
                     "atom_modify map array sort 0 0.0", f"read_data {data}",
                     *settings.zbl_lines(),
                     f"compute snap all snap {settings.compute_args()}",
                     "thermo_style custom step pe", "run 0"):
            self.lmp.command(line)

    def __call__(self, positions: np.ndarray) -> np.ndarray:
        """The global snap array: energy row, 3N force rows, 6 virial rows."""
        import ctypes

        flat = np.ascontiguousarray(positions, dtype=np.float64).ravel()
        self.lmp.scatter_atoms("x", 1, 3, flat.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
        # compute snap re-creates its pressure compute at every run (LAMMPS 2025.7)
        self.lmp.command("uncompute snap_press")
        self.lmp.command("run 0 post no")
        return self.lmp.numpy.extract_compute("snap", *self._style).copy()


def design(frames: list[Atoms], settings: SnapSettings, work: Path):
    """Energy rows (per atom), force rows, their targets (reference minus ZBL), and the ZBL
    energies and forces."""
    desc = Descriptors(frames[0], settings, work)
    n = len(frames[0])
    e_rows, e_t, f_rows, f_t, z_e, z_f = [], [], [], [], [], []
    for fr in frames:
        a = desc(fr.positions)  # last column: the reference (ZBL) energy and forces
        e_rows.append(np.append(a[0, :-1], 1.0) / n)
        e_t.append((fr.get_potential_energy() - a[0, -1]) / n)
        f_rows.append(np.hstack([a[1:1 + 3 * n, :-1], np.zeros((3 * n, 1))]))
        f_t.append(fr.get_forces().ravel() - a[1:1 + 3 * n, -1])
        z_e.append(a[0, -1])
        z_f.append(a[1:1 + 3 * n, -1])
    return (np.array(e_rows), np.array(e_t), np.array(f_rows), np.array(f_t), np.array(z_e),
            np.array(z_f))


def fit(e_rows, e_t, f_rows, f_t, train: np.ndarray, settings: SnapSettings) -> np.ndarray:
    """Ridge-regularised weighted least squares; returns coefficients (last = intercept)."""
    a = np.vstack([settings.energy_weight * e_rows[train],
                   f_rows[train].reshape(-1, e_rows.shape[1])])
    b = np.concatenate([settings.energy_weight * e_t[train], f_t[train].ravel()])
    scale = np.sqrt((a * a).sum(axis=0)) + 1e-30
    a_s = a / scale
    n_par = a.shape[1]
    reg = np.sqrt(settings.ridge) * np.eye(n_par)
    reg[-1, -1] = 0.0  # no penalty on the intercept
    coef, *_ = np.linalg.lstsq(np.vstack([a_s, reg]), np.concatenate([b, np.zeros(n_par)]),
                               rcond=None)
    return coef / scale


def write_model(coef: np.ndarray, settings: SnapSettings, n_atoms: int, out: Path) -> None:
    """``snap.snapcoeff`` + ``snap.snapparam`` for ``pair_style snap``."""
    ncoeff = (len(coef) - 1) // len(ELEMENTS)
    beta0 = float(coef[-1]) / n_atoms
    lines = ["# SNAP coefficients of the tea-harness demo model (make_demo_snap.py)", "",
             f"{len(ELEMENTS)} {ncoeff + 1}"]
    for k, el in enumerate(ELEMENTS):
        lines.append(f"{el} {settings.radius[k]:g} {settings.weight[k]:g}")
        lines.append(f"{beta0!r}")
        lines += [f"{float(c)!r}" for c in coef[k * ncoeff:(k + 1) * ncoeff]]
    out.mkdir(parents=True, exist_ok=True)
    (out / "snap.snapcoeff").write_text("\n".join(lines) + "\n")
    (out / "snap.snapparam").write_text(settings.param_text())


def errors(pred_e, ref_e, pred_f, ref_f, n_atoms: int) -> dict[str, float]:
    """Energy and force error statistics (eV, eV/A)."""
    de = pred_e - ref_e
    df = (pred_f - ref_f).ravel()
    return {"n_frames": int(len(ref_e)),
            "energy_rmse_eV": round(float(np.sqrt(np.mean((de - de.mean()) ** 2))), 5),
            "energy_mae_meV_per_atom": round(float(np.mean(np.abs(de - de.mean()))) * 1e3
                                             / n_atoms, 3),
            "energy_mean_signed_error_eV": round(float(de.mean()), 5),
            "force_mae_eV_A": round(float(np.mean(np.abs(df))), 4),
            "force_rmse_eV_A": round(float(np.sqrt(np.mean(df ** 2))), 4),
            "force_max_abs_eV_A": round(float(np.max(np.abs(df))), 4),
            "reference_force_rms_eV_A": round(float(np.sqrt(np.mean(ref_f ** 2))), 4)}


def pair_evaluation(frames: list[Atoms], model_dir: Path, work: Path):
    """Energies, forces and ms per call of the fitted ``pair_style snap`` in LAMMPS."""
    import ctypes

    from harness.models.snap import pair_lines

    data = work / "eval.data"
    lammps_data.write_data(data, frames[0], ELEMENTS, periodic=False)
    lmp = lammps_env.library()
    for line in ("units metal", "atom_style atomic", "boundary p p p",
                 "atom_modify map array sort 0 0.0", f"read_data {data}",
                 *pair_lines(model_dir / "snap.snapcoeff", ELEMENTS), "run 0"):
        lmp.command(line)
    energies, forces = [], []
    start = time.perf_counter()
    for fr in frames:
        flat = np.ascontiguousarray(fr.positions, dtype=np.float64).ravel()
        lmp.scatter_atoms("x", 1, 3, flat.ctypes.data_as(ctypes.POINTER(ctypes.c_double)))
        lmp.command("run 0 post no")
        energies.append(lmp.get_thermo("pe"))
        forces.append(np.array(lmp.gather_atoms("f", 1, 3)[:]).reshape(-1, 3))
    ms = (time.perf_counter() - start) / len(frames) * 1e3
    return np.array(energies), np.array(forces), ms


def stability_check(model_dir: Path, work: Path, temperature_K: float = 500.0,
                    steps: int = 2000) -> dict:
    """1 ps Langevin MD in LAMMPS from each start: the longest covalent bond reached."""
    from harness.models.snap import pair_lines
    from harness.stability.criteria import Geometry, bond_topology

    starts = sorted((CHALLENGE / "starts").glob("*.xyz"))
    worst = []
    for k, start in enumerate(starts):
        atoms = read(start)
        bonds = bond_topology(Geometry(atoms.numbers, None), atoms.positions)
        data = work / f"start{k}.data"
        lammps_data.write_data(data, atoms, ELEMENTS, periodic=False)
        lmp = lammps_env.library()
        for line in ("units metal", "atom_style atomic", "boundary p p p",
                     "atom_modify map array sort 0 0.0", f"read_data {data}",
                     *pair_lines(model_dir / "snap.snapcoeff", ELEMENTS), "timestep 0.0005",
                     f"velocity all create {temperature_K} {1000 + k} mom yes rot yes",
                     "fix 1 all nve",
                     f"fix 2 all langevin {temperature_K} {temperature_K} 0.1 {2000 + k} zero yes",
                     "thermo 0"):
            lmp.command(line)
        longest = 0.0
        for _ in range(steps // 100):
            lmp.command("run 100 pre no post no")
            pos = np.array(lmp.gather_atoms("x", 1, 3)[:]).reshape(-1, 3)
            d = np.linalg.norm(pos[bonds[:, 0]] - pos[bonds[:, 1]], axis=1)
            longest = max(longest, float(d.max()))
        worst.append(round(longest, 3))
        lmp.close()
    return {"temperature_K": temperature_K, "steps": steps, "dt_fs": 0.5,
            "engine": "native LAMMPS, fix nve + fix langevin (damp 0.1 ps)",
            "longest_bond_per_start_A": worst, "stable": bool(max(worst) < 2.0)}


def main(argv: list[str] | None = None) -> int:
    """Fit, check and write the demo SNAP model."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    parser.add_argument("--twojmax", type=int, default=SnapSettings.twojmax)
    parser.add_argument("--no-md", action="store_true", help="skip the stability runs")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    settings = SnapSettings(twojmax=args.twojmax)
    work = args.out / ".work"
    work.mkdir(parents=True, exist_ok=True)
    frames, test = load_frames()
    n = len(frames[0])
    e_rows, e_t, f_rows, f_t, z_e, z_f = design(frames, settings, work)
    coef = fit(e_rows, e_t, f_rows, f_t, ~test, settings)
    write_model(coef, settings, n, args.out)
    (args.out / "metadata.json").write_text(json.dumps(
        {"reference_potential": settings.reference_potential()}))  # read by pair_lines
    z_f = z_f.reshape(len(frames), n, 3)
    lin_e = e_rows @ coef * n + z_e
    lin_f = (f_rows @ coef).reshape(len(frames), n, 3) + z_f
    ref_e = e_t * n + z_e
    ref_f = f_t.reshape(len(frames), n, 3) + z_f
    tested = [fr for fr, t in zip(frames, test, strict=True) if t]
    pair_e, pair_f, ms = pair_evaluation(tested, args.out, work)
    agreement = float(np.max(np.abs(pair_f - lin_f[test])))
    if agreement > 1e-8:
        raise SystemExit(f"pair_style snap disagrees with the fitted linear model by "
                         f"{agreement:.2e} eV/A: descriptor and pair settings differ")
    meta = {
        "name": "snap-alanine-tetrapeptide (demo)",
        "description": "linear SNAP demo model for TEA Challenge 2023 Challenge I "
                       "(Ac-Ala3-NHMe, gas phase), fitted on GFN2-xTB frames, not on the TEA "
                       "PBE+MBD data; for plumbing and speed tests, not for science",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "script": "harness/models/demo/make_demo_snap.py",
        "elements": ELEMENTS,
        "pair_style": "snap (LAMMPS ML-SNAP)",
        "reference_data": [str(p.relative_to(REPO_DIR)) for p in FRAMES],
        "settings": asdict(settings),
        "reference_potential": settings.reference_potential(),
        "zbl_active_in_training_frames": bool(np.any(z_f != 0.0)),
        "n_coefficients": int(len(coef)),
        "split": {"rule": "test = whole held-out xTB MD trajectories (start % 5 == "
                          "temperature index), as for the demo GAP; active-learning frames "
                          "are training data",
                  "n_train": int((~test).sum()), "n_test": int(test.sum())},
        "test_errors": errors(pair_e, ref_e[test], pair_f, ref_f[test], n),
        "train_errors": errors(lin_e[~test], ref_e[~test], lin_f[~test], ref_f[~test], n),
        "pair_vs_linear_max_force_difference_eV_A": agreement,
        "energy_note": "the energy zero is arbitrary (one intercept spread over the atoms); "
                       "energy errors are given after removing the mean signed error",
        "eval_ms_per_call": round(ms, 3),
        "versions": {"lammps": lammps_env.library().version()},
    }
    if not args.no_md:
        meta["stability_check"] = stability_check(args.out, work)
    meta["total_script_wall_s"] = round(time.perf_counter() - started, 1)
    (args.out / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    for stale in work.iterdir():
        stale.unlink()
    work.rmdir()
    print(json.dumps({k: meta[k] for k in ("test_errors", "eval_ms_per_call")}, indent=1))
    if "stability_check" in meta:
        print(json.dumps(meta["stability_check"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
