"""A two-atom Morse bond that dissociates when heated: the toy of the heating-ramp tests.

``make_challenge(root)`` writes a challenge folder (two carbon atoms at the Morse minimum,
1 fs steps, a tight Langevin thermostat of 10 fs so that the atoms follow a fast ramp, the
bond counted broken beyond 3 A); the model is ASE's own Morse calculator,
``--model ase:ase.calculators.morse:MorsePotential --model-option epsilon=0.5``.
"""

from __future__ import annotations

from pathlib import Path

MODEL = ("--model", "ase:ase.calculators.morse:MorsePotential", "--model-option",
         "epsilon=0.5", "--criteria", "bond_break")


def make_challenge(root: Path, starts: int = 3) -> Path:
    """The challenge folder ``root/morse`` with ``starts`` identical starting structures."""
    folder = root / "morse"
    (folder / "starts").mkdir(parents=True)
    (folder / "challenge.toml").write_text(
        'title = "Two carbon atoms in a Morse bond"\nelements = ["C"]\nn_atoms = 2\n'
        "periodic = false\n\n[protocol]\ntemperatures_K = [300]\nreplicas = 3\n"
        'length_ps = 1.0\ndt_fs = 1.0\nstride = 5\nthermostat = "langevin"\n'
        "thermostat_tau_fs = 10.0\n\n[demo]\ntemperatures_K = [300]\nreplicas = 3\n"
        "length_ps = 0.5\n\n[stability]\nbond_break_angstrom = 3.0\n\n[observables]\n"
        "names = []\n")
    for k in range(starts):
        (folder / "starts" / f"start-{k:02d}.xyz").write_text(
            "2\nProperties=species:S:1:pos:R:3\nC 0 0 0\nC 1.0 0 0\n")
    return folder


KB_EV_PER_K = 8.617333262e-5


class ArrheniusEscape:
    """Breaking temperatures with a known distribution: escape over a barrier under a ramp.

    A run breaks at the rate ``nu exp(-E / kB T)`` (per ps) while its temperature rises as
    ``T = start + rate t`` (K/ps): the Morse bond of :func:`make_challenge` escapes over its
    well depth ``E`` so, with ``nu`` its attempt frequency. The survival to temperature ``T``
    is ``exp(-H(T))`` with the cumulative hazard, in closed form (``E1``: exponential integral),

        H(T) = (nu / rate) [F(T) - F(start)],   F(T) = T exp(-a / T) - a E1(a / T),  a = E / kB,

    so the true median breaking temperature solves ``H(T) = ln 2`` (:attr:`median_K`) and a
    sample is ``H^-1(-ln u)`` for uniform ``u`` (:meth:`sample`, by interpolation on a fine
    grid of the monotone ``H``). Runs still intact at ``end_K`` are censored there.
    """

    def __init__(self, barrier_eV: float, nu_per_ps: float, start_K: float, end_K: float,
                 rate_K_per_ps: float):
        import numpy as np
        from scipy.optimize import brentq

        self.start_K, self.end_K = float(start_K), float(end_K)
        self.a = barrier_eV / KB_EV_PER_K
        self.scale = nu_per_ps / rate_K_per_ps
        top = 20.0 * self.end_K
        self.grid = np.linspace(self.start_K, top, 200_001)
        self.hazard = self.cumulative_hazard(self.grid)
        self.median_K = float(brentq(lambda t: self.cumulative_hazard(t) - np.log(2.0),
                                     self.start_K, top))

    def _f(self, temp):
        import numpy as np
        from scipy.special import exp1

        x = self.a / np.asarray(temp, dtype=float)
        return np.asarray(temp) * np.exp(-x) - self.a * exp1(x)

    def cumulative_hazard(self, temp):
        """H(T): the expected number of escapes of one run by temperature T."""
        return self.scale * (self._f(temp) - self._f(self.start_K))

    def survival(self, temp) -> float:
        """Exact fraction of runs intact at temperature T."""
        import numpy as np

        return np.exp(-self.cumulative_hazard(temp))

    def sample(self, rng, n: int):
        """``(temperatures, failed)`` of n runs, censored at the end temperature."""
        import numpy as np

        target = -np.log(rng.uniform(size=n))
        temps = np.interp(target, self.hazard, self.grid)
        failed = temps < self.end_K
        return np.minimum(temps, self.end_K), failed
