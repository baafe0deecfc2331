"""Protocol, thresholds and observables of a new challenge, chosen from its structure.

Each choice comes with the sentence that explains it; :mod:`harness.challenges.new` writes
both into the ``challenge.toml`` so a user sees why a value was taken and what to change.
The rules follow the shipped TEA challenges where they apply (their ``challenge.toml`` files
explain the TEA choices in full).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from harness.challenges import backbone
from harness.errors import UserError

#: Observables a new challenge may declare (the others need hand-made atom groups).
SUPPORTED = ("stability", "ramachandran", "rdf", "spectrum")
#: Elements whose bonds TEA's 2 A break rule was made for (organic bonds).
ORGANIC = frozenset({"H", "B", "C", "N", "O", "F"})
#: TEA 2023's bond-break length for organic bonds, in Angstrom.
TEA_BOND_BREAK_ANGSTROM = 2.0
#: Other bonds break at this multiple of the covalent-radius sum (TEA's Pb-I 4.3 A = 1.5 x 2.85).
BREAK_FACTOR = 1.5


@dataclass(frozen=True)
class Choice:
    """A value and why it was chosen (one or more comment lines)."""

    value: object
    why: str


@dataclass(frozen=True)
class Protocol:
    """The ``[protocol]`` and ``[demo]`` values of a new challenge, each with its reason."""

    temperatures_K: Choice
    replicas: Choice
    length_ps: Choice
    dt_fs: Choice
    stride: Choice
    thermostat: Choice
    thermostat_tau_fs: Choice
    demo: dict[str, object] = field(default_factory=dict)


def time_step_fs(masses: np.ndarray) -> Choice:
    """0.5 fs with H, 1 fs when the lightest atom is a first-row element, 2 fs otherwise."""
    lightest = float(np.min(masses))
    if lightest < 4.0:
        return Choice(0.5, "0.5 fs: the system has H, and X-H stretches (about 3000 cm^-1, a "
                      "11 fs period) need about 20 steps per period")
    if lightest < 20.0:
        return Choice(1.0, f"1 fs: the lightest atom has {lightest:.1f} u (no H); its fastest "
                      "stretches (C=O, C=C, up to about 2000 cm^-1, 17 fs) get >= 17 steps")
    return Choice(2.0, f"2 fs: the lightest atom has {lightest:.1f} u; vibrations of atoms "
                  "this heavy stay below about 1000 cm^-1 (33 fs), >= 16 steps per period")


def protocol(masses: np.ndarray, periodic: bool, observables: list[str]) -> Protocol:
    """The MD protocol of a new challenge (TEA 2023's where the paper states one)."""
    dt = time_step_fs(masses)
    spectrum = "spectrum" in observables
    frame_fs = 5.0 if spectrum else 10.0
    stride = max(1, int(round(frame_fs / float(dt.value))))
    temps = [300, 500] if periodic else [300, 500, 700]
    temps_why = ("300 and 500 K: TEA 2023's temperatures for its periodic systems (Challenges "
                 "III, IV)" if periodic else "300, 500 and 700 K: TEA 2023's temperatures for "
                 "molecules (Challenges I, II)")
    tau = 1000.0 if spectrum else 100.0
    tau_why = ("local Langevin thermostat, tau 1 ps: it broadens spectral lines by only "
               "1/(2 pi c tau) = 5.3 cm^-1 (the spectrum observable is declared)" if spectrum
               else "local Langevin thermostat, tau 100 fs, as the shipped challenges: it "
               "equilibrates within a picosecond yet barely perturbs the dynamics")
    stride_why = (f"a frame every {stride} steps ({stride * float(dt.value):g} fs): "
                  + ("the spectrum needs frames <= 5 fs apart (Nyquist limit 3336 cm^-1 "
                     "covers X-H stretches)" if spectrum else
                     "enough for structure and transitions on the ps time scale; for spectra "
                     "use --stride with frames <= 5 fs apart"))
    return Protocol(
        temperatures_K=Choice(temps, temps_why),
        replicas=Choice(12, "12 trajectories per temperature, as TEA 2023 (one per start)"),
        length_ps=Choice(1000.0, "1 ns per trajectory, as TEA 2023"),
        dt_fs=dt, stride=Choice(stride, stride_why),
        thermostat=Choice("langevin", tau_why), thermostat_tau_fs=Choice(tau, tau_why),
        demo={"temperatures_K": [temps[0]], "replicas": 2, "length_ps": 1.0},
    )


def bond_thresholds(symbols: list[str], bonds: np.ndarray) -> tuple[float, dict[str, float]]:
    """Break lengths: TEA's 2 A for organic bonds, 1.5 x the covalent-radius sum otherwise.

    Parameters
    ----------
    symbols
        Element of every atom.
    bonds
        Bonded pairs of the starting structure, shape (k, 2).

    Returns
    -------
    tuple
        The default threshold and ``{"A-B": threshold}`` for the bonded element pairs that
        are not organic, rounded up to 0.1 A.
    """
    from ase.data import atomic_numbers, covalent_radii

    pairs: dict[str, float] = {}
    for i, j in bonds:
        a, b = sorted((symbols[i], symbols[j]), key=lambda s: -atomic_numbers[s])  # Pb-I
        if a in ORGANIC and b in ORGANIC:
            continue
        radius_sum = covalent_radii[atomic_numbers[a]] + covalent_radii[atomic_numbers[b]]
        pairs[f"{a}-{b}"] = math.ceil(BREAK_FACTOR * radius_sum * 10.0 - 1e-9) / 10.0
    return TEA_BOND_BREAK_ANGSTROM, dict(sorted(pairs.items()))


def observables(requested: list[str] | None, has_backbone: bool, periodic: bool) -> list[str]:
    """The declared observables: the user's list, checked, or stability plus what fits.

    Raises
    ------
    UserError
        For an unknown name, ramachandran without a peptide backbone, or rdf without a cell.
    """
    if requested is None:
        chosen = ["stability"]
        chosen += ["ramachandran"] if has_backbone else []
        chosen += ["rdf"] if periodic else []
        return chosen
    for name in requested:
        if name not in SUPPORTED:
            raise UserError(f"--observables {name!r}: a new challenge can declare "
                            f"{', '.join(SUPPORTED)}; others need atom groups made by hand "
                            "(add them to challenge.toml afterwards)")
    if "ramachandran" in requested and not has_backbone:
        raise UserError("--observables ramachandran: the structure has no peptide backbone "
                        "(N-CA-C=O chain) to take phi/psi from; leave ramachandran out")
    if "rdf" in requested and not periodic:
        raise UserError("--observables rdf: radial distribution functions need a periodic cell "
                        "(a material or a solvated box); leave rdf out for a molecule in vacuum, "
                        "or give --periodic with a structure that has a cell")
    return list(dict.fromkeys(requested))


def ramachandran_pairs(quads: dict[str, list[int]]) -> dict[str, dict[str, object]]:
    """(phi_k, psi_k) pairs for the Ramachandran maps: all residues when <= 3, else first,
    middle and last, labelled A, B, C in chain order."""
    residues = sorted({int(name[3:]) for name in quads
                       if f"phi{name[3:]}" in quads and f"psi{name[3:]}" in quads})
    if len(residues) > 3:
        residues = [residues[0], residues[len(residues) // 2], residues[-1]]
    return {chr(ord("A") + n): {"label": f"phi{k}/psi{k}", "phi": quads[f"phi{k}"],
                                "psi": quads[f"psi{k}"]}
            for n, k in enumerate(residues)}


def rdf_pairs(elements: list[str]) -> list[str]:
    """Every element pair, each once (``C-C``, ``C-H``, ...), in the order of ``elements``."""
    return [f"{a}-{b}" for n, a in enumerate(elements) for b in elements[n:]]


def backbone_quadruples(symbols: list[str], positions: np.ndarray) -> dict[str, list[int]]:
    """The backbone dihedral quadruples of a peptide chain, or {} when there is none."""
    bonds = backbone.bonds_from_geometry(symbols, positions)
    try:
        return backbone.backbone_dihedrals(symbols, bonds)
    except ValueError:
        return {}
