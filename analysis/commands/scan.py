"""``analysis scan --challenge naphthyridine-graphene --model M``: interaction energy vs height.

Each model's scan is written to ``OUT/scan-<model>.json``; the plot and table cover every scan
in that folder (plus the shipped xTB reference scan when the folder has none), so models
scanned one after another end up in one figure.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harness.errors import UserError

#: Where a challenge keeps its reference scan (made by ``analysis scan --model xtb``).
REFERENCE_SCAN = Path("reference") / "scan-xtb.json"
EV_TO_KCAL_PER_MOL = 23.060547830619


def register(subparsers) -> None:
    """Add the ``scan`` subcommand."""
    p = subparsers.add_parser("scan", help="molecule-surface interaction energy along the "
                              "surface normal, per model (TEA Fig. 3b)")
    p.add_argument("--challenge", default="naphthyridine-graphene",
                   help="challenge with surface/molecule groups (default naphthyridine-graphene)")
    p.add_argument("--model", action="append", required=True,
                   help="model family (repeatable or comma separated), e.g. xtb, ase:MOD:FACTORY")
    p.add_argument("--model-file", help="trained model file (with one --model)")
    p.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                   help="option for the model's calculator, repeatable")
    p.add_argument("--start", help="structure to relax and scan (default: the challenge's "
                   "reference/relaxed-xtb.xyz)")
    p.add_argument("--d-min", type=float, default=2.5, help="first height, A (default 2.5)")
    p.add_argument("--d-max", type=float, default=10.0, help="last height, A (default 10)")
    p.add_argument("--step", type=float, default=0.1, help="step, A (default 0.1)")
    p.add_argument("--fmax", type=float, default=0.05, help="relaxation threshold, eV/A")
    p.add_argument("--max-relax-steps", type=int, default=200,
                   help="BFGS steps before the scan (0: scan the start as it is)")
    p.add_argument("--out", default="reports/scan", help="output folder (default reports/scan)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from ase.io import read

    from analysis import scan
    from analysis.surface_geometry import SurfaceGroups
    from harness import challenges, config, models

    challenge = challenges.load(args.challenge)
    start = Path(args.start) if args.start else challenge.path / "reference" / "relaxed-xtb.xyz"
    if not start.is_file():
        raise UserError(f"--start {start}: no such file; give an extxyz of the complex")
    atoms = read(start)
    groups = SurfaceGroups.from_table(challenge.groups, atoms.numbers)
    names = [n.strip() for item in args.model for n in item.split(",") if n.strip()]
    if args.model_file and len(names) > 1:
        raise UserError("--model-file applies to one model; scan one --model at a time with it")
    distances = scan.grid(args.d_min, args.d_max, args.step)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    user_options = config.model_options(args.model_option, names)
    for name in names:
        options = dict(user_options[name])
        reference = challenge.raw.get("reference", {})
        if name == reference.get("model") and not options:
            options = dict(reference.get("options", {}))
        # the checks of a launch (installed, model file, elements, has a calculator); the first
        # calculator serves the scan, fresh ones the separated molecule and surface
        first, model_file = config.model_calculator(name, args.model_file, options, challenge)
        family = models.get_family(name)
        made = [first]
        label = name.replace(":", "-") + (f"-{Path(model_file).stem}" if args.model_file else "")
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
    scans = _collect(out, challenge.path)
    markdown = write_outputs(scans, out)
    print(markdown)
    print(f"\nwrote {out / 'scan.png'}, {out / 'scan.md'} and scan-<model>.json")
    return 0


def _collect(folder: Path, challenge_dir: Path):
    from analysis import scan

    scans = scan.load_scans(folder)
    shipped = challenge_dir / REFERENCE_SCAN
    if shipped.is_file() and not any(s.model == "xtb" for s in scans):
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


def write_outputs(scans, out: Path) -> str:
    """scan.png, scan.md and scan-summary.json in ``out``; returns the Markdown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis import scan as scan_mod

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    scan_mod.plot(scans, ax, reference="xtb")
    fig.tight_layout()
    fig.savefig(out / "scan.png", dpi=120)
    plt.close(fig)
    markdown = ("Interaction energy along the surface normal, zero at each model's minimum "
                "between 3 and 4 A; dU(inf) = E(sheet) + E(molecule) - that minimum.\n\n"
                + table(scans) + "\n")
    (out / "scan.md").write_text(markdown)
    (out / "scan-summary.json").write_text(json.dumps([s.summary() for s in scans], indent=1))
    return markdown


def report_sections(files: list[Path], workdir: Path) -> list:
    """The reference scan of every surface challenge found among ``files`` (see sections.py).

    The scan is a property of a model, not of a trajectory: the section shows the shipped xTB
    reference scan and any scans of other models already in ``workdir/scan`` (made with
    ``analysis scan --out WORKDIR/scan``), with the 8 A and infinite-separation values.
    """
    from analysis import trajectories
    from analysis.sections import Figure, Section, Verdict
    from harness import challenges

    names = sorted({trajectories.read_record(f).challenge for f in files})
    sections = []
    for name in names:
        try:
            challenge = challenges.load(name)
        except UserError:
            continue
        if "scan" not in challenge.observables:
            continue
        folder = workdir / "scan"
        folder.mkdir(parents=True, exist_ok=True)
        scans = _collect(folder, challenge.path)
        if not scans:
            continue
        markdown = write_outputs(scans, folder)
        ref = next((s for s in scans if s.model == "xtb"), None)
        verdicts = []
        for s in scans:
            if ref is None or s is ref:
                continue
            diff = s.summary()["dU_infinite_eV"] - ref.summary()["dU_infinite_eV"]
            verdicts.append(Verdict("adsorption energy (scan)", s.model, None,
                                    abs(diff) <= 0.05,
                                    f"dU(inf) differs from xTB by {diff:+.3f} eV "
                                    f"(tolerance 0.05 eV, about 1.2 kcal/mol)"))
        sections.append(Section(challenge=name, title="Interaction energy along the normal",
                                markdown=markdown,
                                figures=[Figure(folder / "scan.png",
                                                "Delta U(D) per model; dashed: infinite "
                                                "separation; numbers: model - xTB at 8 A (eV)")],
                                verdicts=verdicts,
                                data={"scans": [s.summary() for s in scans]}))
    return sections
