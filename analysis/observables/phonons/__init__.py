"""``analysis phonons``: harmonic frequencies of any model on a challenge's structure."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from analysis.observables import base
from analysis.sections import Section, Verdict
from analysis.settings import DEFAULT, AnalysisSettings
from harness.errors import UserError

#: Frequency window of TEA 2023, Fig. 4b (cm^-1).
WINDOW_CM = (800.0, 1800.0)
#: Models agree when their sorted frequencies above 50 cm^-1 differ by this much on average.
MEAN_SHIFT_TOLERANCE_CM = 20.0


class Phonons(base.Observable):
    """Harmonic frequencies of a relaxed structure, for any model; no trajectories needed."""

    name = "phonons"
    title = "Harmonic frequencies"
    help = "relax with BFGS and compute harmonic frequencies by finite differences, for any model"
    shared = ("challenge", "model_file")
    takes_paths = False

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", required=True, help="model family (as for harness.launch)")
        parser.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                            help="passed to the model's calculator, repeatable")
        parser.add_argument("--start", type=int, default=0,
                            help="starting structure index (default 0)")
        parser.add_argument("--fmax", type=float, default=0.005,
                            help="BFGS convergence, max force component in eV/A (default 0.005)")
        parser.add_argument("--delta", type=float, default=0.01,
                            help="finite-difference displacement in A (default 0.01)")
        parser.add_argument("--max-steps", type=int, default=2000, help="BFGS step limit")
        parser.add_argument("--no-relax", action="store_true",
                            help="use the structure as it is (already relaxed with this model)")
        parser.add_argument("--out", default="runs", help="output folder; writes OUT/reports/"
                            "phonons-<challenge>-<model>.json (default runs)")

    def command(self, args: argparse.Namespace) -> int:
        for model_file in args.model_file or [None]:
            run(args, model_file)
        return 0

    def sections(self, challenge, files: list[Path], workdir: Path,
                 settings: AnalysisSettings = DEFAULT) -> list[Section]:
        return [s for s in report_sections_of(files) if s.challenge == challenge.name]


def build_atoms(challenge_name: str, start: int, model: str, model_file: str | None,
                options: dict):
    """The challenge's starting structure with the model's calculator attached."""
    from ase.io import read

    from harness import challenges
    from harness.config import model_calculator

    challenge = challenges.load(challenge_name)
    if not 0 <= start < len(challenge.starts):
        raise UserError(f"--start {start}: challenge {challenge.name!r} has starts 0.."
                        f"{len(challenge.starts) - 1}")
    calculator, resolved = model_calculator(model, model_file, options, challenge)
    atoms = read(challenge.starts[start])
    atoms.pbc = challenge.periodic
    atoms.calc = calculator
    from harness import models

    # the launch's name for the model (sevenn-7net-0, gap-my_gap, ase-pkg.mod-make)
    label = models.get_family(model).label(Path(resolved) if model_file else None, options)
    return atoms, challenge, label, resolved


def run(args: argparse.Namespace, model_file: str | None) -> int:
    """``analysis phonons`` for one model file (None: the model's default)."""
    from analysis.observables.phonons.compute import harmonic_frequencies
    from harness.config import model_options

    if args.fmax <= 0 or args.delta <= 0:
        raise UserError("--fmax and --delta must be positive")
    atoms, challenge, label, resolved = build_atoms(
        args.challenge, args.start, args.model, model_file,
        model_options(args.model_option, [args.model])[args.model])
    t0 = time.perf_counter()
    last = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - last[0] > 5 or done == total:
            last[0] = now
            print(f"\rdisplacements {done}/{total} ({now - t0:.0f} s)", end="",
                  file=sys.stderr, flush=True)

    action = "using" if args.no_relax else f"relaxing (to fmax {args.fmax} eV/A)"
    print(f"{action} {challenge.name} start {args.start} ({len(atoms)} atoms) with {label}",
          file=sys.stderr)
    result = harmonic_frequencies(atoms, args.fmax, args.delta, args.max_steps,
                                  do_relax=not args.no_relax, progress=progress)
    print(file=sys.stderr)
    if not args.no_relax and result.max_force_ev_per_angstrom > args.fmax:
        print(f"warning: BFGS stopped after {result.relax_steps} steps at max force "
              f"{result.max_force_ev_per_angstrom:.4g} eV/A > {args.fmax}", file=sys.stderr)
    out_dir = Path(args.out) / "reports"
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"phonons-{challenge.name}-{label}.json"
    freqs = result.frequencies_cm
    data = {"challenge": challenge.name, "model": args.model, "model_label": label,
            "model_file": str(resolved) if resolved else None, "start": args.start,
            "n_atoms": len(atoms), "relax_steps": result.relax_steps,
            "max_force_ev_per_angstrom": result.max_force_ev_per_angstrom,
            "energy_ev": result.relaxed_energy_ev, "settings": result.settings,
            "seconds": round(time.perf_counter() - t0, 2),
            "frequencies_cm": [round(float(f), 4) for f in freqs]}
    path.write_text(json.dumps(data, indent=1))
    inside = freqs[(freqs >= WINDOW_CM[0]) & (freqs <= WINDOW_CM[1])]
    print(f"{len(freqs)} modes ({int(np.sum(freqs < -1))} imaginary); "
          f"{len(inside)} in {WINDOW_CM[0]:g}-{WINDOW_CM[1]:g} cm^-1: "
          + ", ".join(f"{f:.0f}" for f in inside))
    print(f"frequencies: {path}  (draw them on the spectrum: analysis spectrum OUT "
          f"--phonons {path})")
    return 0


def report_sections_of(files: list[Path]) -> list[Section]:
    """Harmonic frequencies that ``analysis phonons`` wrote next to these runs."""
    roots = {f.parents[3] if len(f.parents) > 3 else f.parent for f in files}
    found = {}
    for root in sorted(roots):
        for json_file in sorted((root / "reports").glob("phonons-*.json")):
            data = json.loads(json_file.read_text())
            found[(data["challenge"], data["model_label"])] = data
    sections = []
    for challenge in sorted({c for c, _ in found}):
        rows = ["| model | modes | imaginary | in 800-1800 cm^-1 |", "|---|---|---|---|"]
        verdicts = []
        ref_model = base.reference_model(base.load_challenge(challenge))
        ref = found.get((challenge, ref_model))
        for (ch, model), data in sorted(found.items()):
            if ch != challenge:
                continue
            f = np.asarray(data["frequencies_cm"])
            inside = f[(f >= WINDOW_CM[0]) & (f <= WINDOW_CM[1])]
            rows.append(f"| {model} | {len(f)} | {int(np.sum(f < -1))} | "
                        + ", ".join(f"{x:.0f}" for x in inside) + " |")
            if model == ref_model:
                continue
            if ref is None or len(ref["frequencies_cm"]) != len(f):
                verdicts.append(Verdict("phonons", model, None, None,
                                        f"no {ref_model} phonons to compare with",
                                        decision="no_reference", n_runs=1))
                continue
            r = np.asarray(ref["frequencies_cm"])
            sel = r > 50
            shift = float(np.mean(np.abs(f[sel] - r[sel])))
            verdict = Verdict("phonons", model, None, None, "",
                              decision="agrees" if shift <= MEAN_SHIFT_TOLERANCE_CM
                              else "differs", value=shift, tolerance=MEAN_SHIFT_TOLERANCE_CM,
                              n_runs=1, unit="cm^-1", method="single calculation",
                              scope={"kind": "single calculation",
                                     "label": "one relaxed structure per model"})
            verdict.detail = (f"mean |shift| of modes above 50 cm^-1 vs {ref_model}: "
                              f"{verdict.interval_text()} (one relaxed structure each: no "
                              "interval)")
            verdicts.append(verdict)
        text = ("Harmonic frequencies after BFGS relaxation (fmax 0.005 eV/A), finite "
                "differences with 0.01 A displacements.\n\n" + "\n".join(rows))
        sections.append(Section(challenge, "Harmonic frequencies", text, [], verdicts,
                                {"models": sorted(m for c, m in found if c == challenge)}))
    return sections


OBSERVABLE = Phonons()
register = OBSERVABLE.register
report_sections = OBSERVABLE.report_sections
