"""``analysis ramachandran OUT/``: peptide backbone densities, clusters and transitions.

Writes ``ramachandran.json``, ``ramachandran.md`` and, per challenge,
``ramachandran-<challenge>.png`` (densities with clusters, models side by side) and
``transitions-<challenge>.png`` (transition graphs) into ``--report-dir``
(default ``OUT/reports``). Also provides :func:`report_sections` for ``analysis report``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from analysis.sections import Figure, Section, Verdict


def register(subparsers) -> None:
    """Add the ``ramachandran`` subcommand."""
    p = subparsers.add_parser(
        "ramachandran", help="Ramachandran densities, DBSCAN clusters, populations and "
        "transitions of peptide runs, against the reference")
    p.add_argument("paths", nargs="+", metavar="OUT", help="output folders or .h5 files")
    p.add_argument("--report-dir", help="where to write the outputs (default: OUT/reports)")
    p.add_argument("--eps", type=float, dest="eps_deg", metavar="DEG",
                   help="DBSCAN radius in degrees on the torus (default 15, or the challenge's)")
    p.add_argument("--min-samples", type=int, help="DBSCAN min_samples (default: "
                   "min-fraction of the clustered points, at least 5)")
    p.add_argument("--min-fraction", type=float, help="min_samples as a fraction of the "
                   "clustered points when --min-samples is not given (default 0.005)")
    p.add_argument("--merge-threshold", type=int, dest="merge_transitions", metavar="N",
                   help="merge two clusters exchanging at least N transitions (default 100)")
    p.add_argument("--stride", type=int, help="use every N-th frame (default 1)")
    p.add_argument("--max-points", type=int, help="cluster at most this many points per "
                   "group and pair; the rest are assigned to the nearest core point "
                   "(default 10000)")
    p.add_argument("--bins", type=int, help="density grid bins per angle (default 72: 5 deg)")
    p.add_argument("--js-tolerance", type=float, metavar="BITS", help="largest Jensen-Shannon "
                   "divergence vs the reference that counts as agreement (default 0.15)")
    p.add_argument("--reference", action="append", metavar="PATH",
                   help="reference trajectories (files or folders) instead of the "
                   "challenge's shipped ones; 'none' for no reference")
    p.add_argument("--export-angles", metavar="FILE.csv",
                   help="write per-frame angles: file,frame,time_ps,pair,phi_deg,psi_deg")
    p.set_defaults(func=_run)


_OVERRIDES = ("eps_deg", "min_samples", "min_fraction", "merge_transitions", "stride",
              "max_points", "bins", "js_tolerance")


def _reference(items: list[str] | None) -> list[Path] | None:
    if not items:
        return None
    if [i.lower() for i in items] == ["none"]:
        return []
    return [Path(i) for i in items]


def _run(args: argparse.Namespace) -> int:
    from analysis import ramachandran_study as study_mod

    overrides = {k: getattr(args, k) for k in _OVERRIDES}
    studies = study_mod.run_study([Path(p) for p in args.paths], overrides,
                                  _reference(args.reference))
    first = Path(args.paths[0])
    report_dir = Path(args.report_dir) if args.report_dir else \
        (first if first.is_dir() else first.parent) / "reports"
    report_dir.mkdir(parents=True, exist_ok=True)
    markdown = ["# Ramachandran analysis", ""]
    written = []
    for study in studies:
        figures = study_mod.write_figures(study, report_dir)
        written += figures
        markdown.append(study_mod.to_markdown(study, figures))
    (report_dir / "ramachandran.json").write_text(
        json.dumps(study_mod.to_json(studies), indent=1))
    (report_dir / "ramachandran.md").write_text("\n".join(markdown))
    print("\n".join(markdown).split("\n![")[0].rstrip())
    if args.export_angles:
        rows = study_mod.export_angles(studies, Path(args.export_angles))
        print(f"\nwrote {rows} rows of per-frame angles to {args.export_angles}")
    names = ["ramachandran.md", "ramachandran.json"] + [f.name for f in written]
    print(f"\nreport in {report_dir}: {', '.join(names)}")
    return 0


def _fingerprint(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        stat = path.stat()
        digest.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def report_sections(files: list[Path], workdir: Path) -> list[Section]:
    """One section per peptide challenge among ``files`` (see :mod:`analysis.sections`).

    Cached in ``workdir/ramachandran-sections.json``, keyed on the files' paths, sizes and
    modification times.
    """
    from analysis import ramachandran_study as study_mod
    from harness.errors import UserError

    files = [Path(f) for f in files]
    workdir.mkdir(parents=True, exist_ok=True)
    cache = workdir / "ramachandran-sections.json"
    key = _fingerprint(files)
    if cache.is_file():
        stored = json.loads(cache.read_text())
        if stored.get("key") == key and all(Path(f["path"]).is_file()
                                            for s in stored["sections"] for f in s["figures"]):
            return [_section_from_json(s) for s in stored["sections"]]
    try:
        studies = study_mod.run_study(files)
    except UserError:
        return []
    sections = []
    for study in studies:
        figures = study_mod.write_figures(study, workdir)
        captions = ["Backbone dihedral densities on the torus (log grey scale) with DBSCAN "
                    "clusters and their populations in percent; grey number: percent of frames "
                    "in any cluster.",
                    "Transitions between clusters: arrows labelled with the number of jumps."]
        sections.append(Section(
            challenge=study.challenge, title=f"Ramachandran analysis: {study.title}",
            markdown=study_mod.to_markdown(study),
            figures=[Figure(p, c) for p, c in zip(figures, captions, strict=True)],
            verdicts=study_mod.verdicts(study),
            data=study_mod.to_json([study])["challenges"][0]))
    cache.write_text(json.dumps({"key": key, "sections": [_section_to_json(s)
                                                          for s in sections]}, default=str))
    return sections


def _section_to_json(section: Section) -> dict:
    return {"challenge": section.challenge, "title": section.title,
            "markdown": section.markdown,
            "figures": [{"path": str(f.path), "caption": f.caption} for f in section.figures],
            "verdicts": [vars(v) for v in section.verdicts], "data": section.data}


def _section_from_json(item: dict) -> Section:
    return Section(challenge=item["challenge"], title=item["title"], markdown=item["markdown"],
                   figures=[Figure(Path(f["path"]), f["caption"]) for f in item["figures"]],
                   verdicts=[Verdict(**v) for v in item["verdicts"]], data=item["data"])
