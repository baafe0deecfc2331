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
