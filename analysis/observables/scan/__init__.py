"""``analysis scan --challenge naphthyridine-graphene --model M``: interaction energy vs height.

Each model's scan is written to ``OUT/scan-<model>.json``; the plot and table cover every scan
in that folder (plus the shipped xTB reference scan when the folder has none), so models
scanned one after another end up in one figure.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from analysis.observables import base
from analysis.settings import DEFAULT, AnalysisSettings
from harness.errors import UserError

EV_TO_KCAL_PER_MOL = 23.060547830619
#: dU(inf) of a model agrees with the reference model's within this (eV).
ENERGY_TOLERANCE_EV = 0.05


class Scan(base.Observable):
    """Interaction energy of molecule and surface versus height, per model (no trajectories)."""

    name = "scan"
    title = "Interaction energy along the normal"
    help = ("molecule-surface interaction energy along the surface normal, per model "
            "(TEA Fig. 3b)")
    shared = ("challenge", "model_file")
    takes_paths = False

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--model", action="append", required=True,
                            help="model family (repeatable or comma separated), e.g. xtb, "
                            "ase:MOD:FACTORY")
        parser.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                            help="option for the model's calculator, repeatable")
        parser.add_argument("--start", help="structure to relax and scan (default: the "
                            "challenge's reference/relaxed-<reference model>.xyz)")
        parser.add_argument("--d-min", type=float, default=2.5, help="first height, A "
                            "(default 2.5)")
        parser.add_argument("--d-max", type=float, default=10.0, help="last height, A "
                            "(default 10)")
        parser.add_argument("--step", type=float, default=0.1, help="step, A (default 0.1)")
        parser.add_argument("--fmax", type=float, default=0.05,
                            help="relaxation threshold, eV/A")
        parser.add_argument("--max-relax-steps", type=int, default=200,
                            help="BFGS steps before the scan (0: scan the start as it is)")
        parser.add_argument("--out", default="reports/scan",
                            help="output folder (default reports/scan)")

    def command(self, args: argparse.Namespace) -> int:
        return _run(args)

    def sections(self, challenge, files: list[Path], workdir: Path,
                 settings: AnalysisSettings = DEFAULT) -> list:
        return section(challenge, workdir)


def _run(args: argparse.Namespace) -> int:
    from ase.io import read

    from analysis.observables.scan import compute as scan
    from analysis.observables.surface.geometry import SurfaceGroups
    from harness import challenges, config, models

    challenge = challenges.load(args.challenge)
    ref_model = base.reference_model(challenge)
    start = Path(args.start) if args.start else \
        challenge.path / "reference" / f"relaxed-{ref_model}.xyz"
    if not start.is_file():
        raise UserError(f"--start {start}: no such file; give an extxyz of the complex")
    atoms = read(start)
    groups = SurfaceGroups.from_table(challenge.groups, atoms.numbers)
    names = [n.strip() for item in args.model for n in item.split(",") if n.strip()]
    files = args.model_file or []
    if files and len(files) != len(names):
        raise UserError(f"--model-file given {len(files)} times for {len(names)} models: give "
                        "one --model-file per --model, in the same order")
    distances = scan.grid(args.d_min, args.d_max, args.step)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    user_options = config.model_options(args.model_option, names)
    for i, name in enumerate(names):
        model_file_given = files[i] if files else None
        options = dict(user_options[name])
        reference = challenge.raw.get("reference", {})
        if name == reference.get("model") and not options:
            options = dict(reference.get("options", {}))
        # the checks of a launch (installed, model file, elements, has a calculator); the first
        # calculator serves the scan, fresh ones the separated molecule and surface
        first, model_file = config.model_calculator(name, model_file_given, options, challenge)
        family = models.get_family(name)
        made = [first]
        label = family.label(Path(model_file) if model_file_given else None, options)
        print(f"scanning {label}: {len(distances)} heights {distances[0]:g}-{distances[-1]:g} A",
              flush=True)
        result = scan.run_scan(atoms, groups,
                               lambda family=family, f=model_file, o=options, made=made:
                               made.pop() if made else family.ase_calculator(f, o),
                               label, distances, args.fmax, args.max_relax_steps, verbose=True)
        shown = start.resolve()
        if shown.is_relative_to(challenge.path):
            shown = Path(challenge.name) / shown.relative_to(challenge.path)
        result.settings.update({"start": str(shown), "model_file": str(model_file or ""),
                                "options": options, "challenge": challenge.name})
        (out / f"scan-{label}.json").write_text(result.to_json())
    scans = _collect(out, challenge)
    markdown = write_outputs(scans, out, ref_model)
    print(markdown)
    print(f"\nwrote {out / 'scan.png'}, {out / 'scan.md'} and scan-<model>.json")
    return 0


def _collect(folder: Path, challenge):
    """The scans in ``folder``, with the challenge's shipped reference scan
    (``reference/scan-<reference model>.json``) first when the folder has none of that model."""
    from analysis.observables.scan import compute as scan

    ref_model = base.reference_model(challenge)
    scans = scan.load_scans(folder)
    shipped = challenge.path / "reference" / f"scan-{ref_model}.json"
    if shipped.is_file() and not any(s.model == ref_model for s in scans):
        scans.insert(0, scan.ScanResult.from_json(shipped.read_text()))
    return scans


def table(scans) -> str:
    """Markdown table of the scan numbers (eV and kcal/mol)."""
    lines = ["| model | D of minimum (A) | dU(8 A) eV | dU(inf) eV | dU(inf) kcal/mol | "
             "relaxed D (A) |", "|---|---|---|---|---|---|"]
    for s in scans:
        row = s.summary()
        at8 = "n/a" if row["dU_8A_eV"] is None else f"{row['dU_8A_eV']:.4f}"
        lines.append(f"| {s.model} | {row['D_min_angstrom']:.2f} | {at8} | "
                     f"{row['dU_infinite_eV']:.4f} | "
                     f"{row['dU_infinite_eV'] * EV_TO_KCAL_PER_MOL:.2f} | "
                     f"{row['relaxed_D_angstrom']:.3f} |")
    return "\n".join(lines)


def write_outputs(scans, out: Path, reference: str | None) -> str:
    """scan.png, scan.md and scan-summary.json in ``out``; returns the Markdown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.observables.scan import compute as scan_mod

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    scan_mod.plot(scans, ax, reference=reference)
    fig.tight_layout()
    fig.savefig(out / "scan.png", dpi=120)
    plt.close(fig)
    markdown = ("Interaction energy along the surface normal, zero at each model's minimum "
                "between 3 and 4 A; dU(inf) = E(sheet) + E(molecule) - that minimum.\n\n"
                + table(scans) + "\n")
    (out / "scan.md").write_text(markdown)
    (out / "scan-summary.json").write_text(json.dumps([s.summary() for s in scans], indent=1))
    return markdown


def section(challenge, workdir: Path) -> list:
    """The challenge's reference scan and any scans of other models already in
    ``workdir/scan`` (made with ``analysis scan --out WORKDIR/scan``), with the 8 A and
    infinite-separation values; verdicts compare dU(inf) with the reference model's.

    The scan is a property of a model, not of a trajectory (one calculation each: no interval).
    """
    from analysis.sections import Figure, Section, Verdict

    folder = workdir / "scan"
    folder.mkdir(parents=True, exist_ok=True)
    scans = _collect(folder, challenge)
    if not scans:
        return []
    ref_model = base.reference_model(challenge)
    markdown = write_outputs(scans, folder, ref_model)
    ref = next((s for s in scans if s.model == ref_model), None)
    verdicts = []
    for s in scans:
        if ref is None or s is ref:
            continue
        diff = s.summary()["dU_infinite_eV"] - ref.summary()["dU_infinite_eV"]
        verdict = Verdict("adsorption energy (scan)", s.model, None, None, "",
                          decision="agrees" if abs(diff) <= ENERGY_TOLERANCE_EV else "differs",
                          value=abs(diff), tolerance=ENERGY_TOLERANCE_EV, n_runs=1, unit="eV",
                          method="single calculation",
                          scope={"kind": "single calculation", "label": "one scan per model"})
        verdict.detail = (f"dU(inf) differs from {ref_model} by {diff:+.3f} eV: "
                          f"{verdict.interval_text()} (about 1.2 kcal/mol; one scan each: no "
                          "interval)")
        verdicts.append(verdict)
    return [Section(challenge=challenge.name, title="Interaction energy along the normal",
                    markdown=markdown,
                    figures=[Figure(folder / "scan.png", "Delta U(D) per model; dashed: "
                                    f"infinite separation; numbers: model - {ref_model} at 8 A "
                                    "(eV)")],
                    verdicts=verdicts, data={"observable": "scan",
                                             "scans": [s.summary() for s in scans]})]


OBSERVABLE = Scan()
register = OBSERVABLE.register
report_sections = OBSERVABLE.report_sections
