"""The commented ``challenge.toml`` of a new challenge (written as text: comments matter here).

The keys are those of the shipped challenges (:mod:`harness.challenges` reads them); every
key gets a comment that says what it means and why it has its value.
"""

from __future__ import annotations

import json
import textwrap
from typing import Any

from harness.challenges.defaults import Protocol


def value(item: Any) -> str:
    """A TOML literal of a string, number, bool, list or flat inline table."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, (int, float)):
        return f"{item:g}" if isinstance(item, int) else repr(float(item))
    if isinstance(item, str):
        return json.dumps(item)  # a TOML basic string is JSON-escaped text
    if isinstance(item, (list, tuple)):
        return "[" + ", ".join(value(v) for v in item) + "]"
    if isinstance(item, dict):
        return "{ " + ", ".join(f"{k} = {value(v)}" for k, v in item.items()) + " }"
    raise TypeError(f"no TOML literal for {type(item).__name__}")


def comment(text: str) -> list[str]:
    """``# `` lines wrapped at 96 columns."""
    return ["# " + line for line in textwrap.wrap(text, 94)]


def key(name: str, item: Any, why: str = "") -> list[str]:
    """A commented ``name = value`` line."""
    return (comment(why) if why else []) + [f"{name} = {value(item)}"]


def _header(request, atoms, how: dict[str, Any]) -> list[str]:
    periodic = bool(atoms.pbc.any())
    formula = atoms.get_chemical_formula()
    title = request.title or (f"{formula} from {request.structure.name}"
                              + (", periodic" if periodic else ", gas phase"))
    elements = sorted(set(atoms.get_chemical_symbols()))
    lines = comment(f"A crash-test challenge made by `python -m harness.challenges new` from "
                    f"{request.structure.name} (copied to input/). The command is in "
                    "make_starts.sh; docs/own-system.md explains every step. Edit freely: "
                    "python -m harness.launch --challenge THIS_FOLDER reads this file.")
    lines += [""]
    lines += key("title", title, "Shown in reports.")
    lines += key("elements", elements, "Elements of the system: a model must cover all of "
                 "them (the launcher checks).")
    lines += key("n_atoms", len(atoms))
    lines += key("charge", request.charge, "Total charge (--charge). The start files carry it "
                 "as the initial charge of their first atom, so calculators that read "
                 "Atoms.get_initial_charges() (tblite's GFN2-xTB) see it, as for the shipped "
                 "charged peptide.")
    lines += key("multiplicity", request.multiplicity, "Spin multiplicity (--multiplicity): "
                 "multiplicity - 1 unpaired electrons, stored as the initial magnetic moment "
                 "of the first atom in the start files.")
    lines += key("periodic", periodic, "Periodic in all three directions with the cell of the "
                 "start files." if periodic else "A molecule in vacuum (no cell).")
    lines += comment("No reference data ships with a new challenge: bring your own (see "
                     "docs/own-system.md, 'Your own reference') and name its method here as "
                     'reference_method = "..." to have it in the report.')
    source = ("starts picked from " + how["file"] if how["source"] == "file" else
              f"starts from a {how['time_ps']:g} ps {how['temperature_K']:g} K MD with "
              f"--starts-model {how['model']}")
    lines += key("structure_source", f"{request.structure.name}; {source}",
                 "Where the structure and the starts came from (information only).")
    return lines


def _protocol(protocol: Protocol) -> list[str]:
    lines = ["", "[protocol]"]
    lines += comment("The MD settings every model gets (identical conditions). `--preset "
                     "tea2023` runs exactly these; flags of python -m harness.launch override "
                     "single values.")
    for name in ("temperatures_K", "replicas", "length_ps", "dt_fs", "stride", "thermostat"):
        choice = getattr(protocol, name)
        lines += key(name, choice.value, choice.why)
    lines += key("thermostat_tau_fs", protocol.thermostat_tau_fs.value)
    lines += ["", "[demo]"]
    lines += comment("What the default `--preset demo` runs: a short taste of the protocol "
                     "(keys not given here come from [protocol]).")
    for name, item in protocol.demo.items():
        lines += key(name, item)
    return lines


def _stability(bond_default: float, pair_thresholds: dict[str, float]) -> list[str]:
    lines = ["", "[stability]"]
    lines += key("bond_break_angstrom", bond_default,
                 "A bond of the starting structure (atoms closer than 1.2 x the sum of their "
                 "covalent radii) counts as broken when longer than this: TEA 2023's 2 A rule "
                 "for organic bonds.")
    lines += key("min_distance_angstrom", 0.5, "Two atoms closer than this have collapsed.")
    if pair_thresholds:
        lines += ["", "[stability.pair_thresholds]"]
        lines += comment("Bonds between heavier elements break at 1.5 x the sum of their "
                         "covalent radii, rounded up to 0.1 A (this rule gives TEA's 4.3 A "
                         "for Pb-I, which TEA took from the Pb-I radial distribution).")
        lines += [f"{value(pair)} = {value(d)}" for pair, d in pair_thresholds.items()]
    return lines


def _observables(names: list[str], atoms, quads: dict[str, list[int]]) -> list[str]:
    from harness.challenges import defaults

    lines = ["", "[observables]"]
    lines += key("names", names, "What the analysis computes for this challenge (python -m "
                 "harness.challenges new --observables chose them): stability = survival of "
                 "the runs; ramachandran = backbone dihedral maps; rdf = radial distribution "
                 "functions of [groups] rdf_pairs; spectrum = vibrational spectrum from the "
                 "velocity autocorrelation.")
    if "ramachandran" in names:
        lines += ["", "[ramachandran]"]
        lines += comment("Backbone dihedral pairs found from the bond graph "
                         "(harness/challenges/backbone.py): phi_i = C(i-1)-N(i)-CA(i)-C(i), "
                         "psi_i = N(i)-CA(i)-C(i)-N(i+1), 0-based atom indices of the start "
                         "files. Clustering settings as the shipped peptides.")
        for label, pair in defaults.ramachandran_pairs(quads).items():
            lines.append(f"pairs.{label} = {value(pair)}")
        lines += ["eps_deg = 15.0", "min_fraction = 0.005", "merge_transitions = 100",
                  "bins = 72"]
    if "rdf" in names:
        elements = sorted(set(atoms.get_chemical_symbols()))
        lines += ["", "[groups]"]
        lines += key("rdf_pairs", defaults.rdf_pairs(elements),
                     "Element pairs of the radial distribution functions: every pair of the "
                     "system's elements; remove the ones you do not need.")
    return lines


def render(*, request, atoms, protocol: Protocol, observables: list[str], bond_default: float,
           pair_thresholds: dict[str, float], quads: dict[str, list[int]], n_starts: int,
           how: dict[str, Any]) -> str:
    """The whole ``challenge.toml`` text."""
    lines = _header(request, atoms, how)
    lines += [""] + comment(f"{n_starts} starting structures in starts/ (replicas cycle "
                            "through them); starts/selection.json says how they were picked.")
    lines += _protocol(protocol)
    lines += _stability(bond_default, pair_thresholds)
    lines += _observables(observables, atoms, quads)
    return "\n".join(lines) + "\n"
