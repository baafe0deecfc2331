"""``analysis ramachandran OUT/``: peptide backbone densities, clusters and transitions.

Writes ``ramachandran.json``, ``ramachandran.md`` and, per challenge,
``ramachandran-<challenge>.png`` (densities with clusters, models side by side) and
``transitions-<challenge>.png`` (transition graphs) into ``--report-dir``
(default ``OUT/reports``). The dihedral pairs are the challenge's ``[ramachandran.pairs]``;
the reference is its shipped ``reference/`` trajectories or ``--reference DIR``.
Computing: :mod:`.compute` (one group), :mod:`.study` (a challenge), plots: :mod:`.plots`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from analysis.observables import base
from analysis.sections import Figure, Section
from analysis.settings import DEFAULT, AnalysisSettings

_OVERRIDES = ("eps_deg", "min_samples", "min_fraction", "merge_transitions", "max_points",
              "bins", "js_tolerance", "pair_by_start")
CAPTIONS = ("Backbone dihedral densities on the torus (log grey scale) with DBSCAN clusters and "
            "their populations in percent; grey number: percent of frames in any cluster. "
            "Where a verdict was paired by start, the last column shows the reference as it was "
            "compared: its runs from the models' starts, each cut to its model run's length.",
            "Transitions between clusters: arrows labelled with the number of jumps.")


class Ramachandran(base.Observable):
    """Densities, clusters, populations and transitions of backbone dihedral pairs."""

    name = "ramachandran"
    title = "Ramachandran analysis"
    help = ("Ramachandran densities, DBSCAN clusters, populations and transitions of peptide "
            "runs, against the reference")

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--eps", type=float, dest="eps_deg", metavar="DEG",
                            help="DBSCAN radius in degrees on the torus (default 15, or the "
                            "challenge's)")
        parser.add_argument("--min-samples", type=int, help="DBSCAN min_samples (default: "
                            "min-fraction of the clustered points, at least 5)")
        parser.add_argument("--min-fraction", type=float, help="min_samples as a fraction of "
                            "the clustered points when --min-samples is not given "
                            "(default 0.005)")
        parser.add_argument("--merge-threshold", type=int, dest="merge_transitions",
                            metavar="N", help="merge two clusters exchanging at least N "
                            "transitions (default 100)")
        parser.add_argument("--max-points", type=int, help="cluster at most this many points "
                            "per group and pair; the rest are assigned to the nearest core "
                            "point (default 10000)")
        parser.add_argument("--bins", type=int, help="density grid bins per angle (default "
                            "72: 5 deg)")
        parser.add_argument("--js-tolerance", type=float, metavar="BITS",
                            help="largest Jensen-Shannon divergence vs the reference that "
                            "counts as agreement (default 0.15)")
        parser.add_argument("--unpaired", dest="pair_by_start", action="store_const",
                            const=False, help="compare with the reference unpaired even where "
                            "the runs come from its starts (default: paired by start there, "
                            "a statement about those starts over that time; unpaired, about "
                            "the distribution, judged against the reference's split-half)")
        parser.add_argument("--export-angles", metavar="FILE.csv",
                            help="write per-frame angles: file,frame,time_ps,pair,phi_deg,"
                            "psi_deg")

    def applies_to(self, challenge) -> bool:
        return super().applies_to(challenge) and bool(
            challenge.raw.get("ramachandran", {}).get("pairs"))

    def command(self, args: argparse.Namespace) -> int:
        from analysis.observables.ramachandran import study as study_mod

        overrides = {k: getattr(args, k) for k in _OVERRIDES}
        overrides.update(stride=args.every, skip_ps=args.skip)
        paths = [Path(p) for p in args.paths]
        studies = study_mod.run_study(paths, overrides, args.reference)
        if args.challenge:
            studies = [s for s in studies if s.challenge == Path(args.challenge).name]
        report_dir = base.report_dir(args.report_dir, args.paths)
        markdown = ["# Ramachandran analysis", ""]
        written = []
        for study in studies:
            figures = study_mod.write_figures(study, report_dir)
            written += figures
            markdown.append(study_mod.to_markdown(study, figures))
        (report_dir / "ramachandran.json").write_text(
            json.dumps(study_mod.to_json(studies), indent=1, default=str))
        (report_dir / "ramachandran.md").write_text("\n".join(markdown))
        print("\n".join(markdown).split("\n![")[0].rstrip())
        if args.export_angles:
            rows = study_mod.export_angles(studies, Path(args.export_angles))
            print(f"\nwrote {rows} rows of per-frame angles to {args.export_angles}")
        names = ["ramachandran.md", "ramachandran.json"] + [f.name for f in written]
        print(f"\nreport in {report_dir}: {', '.join(names)}")
        return 0

    def sections(self, challenge, files: list[Path], workdir: Path,
                 settings: AnalysisSettings = DEFAULT) -> list[Section]:
        from analysis.observables.ramachandran import study as study_mod

        workdir.mkdir(parents=True, exist_ok=True)
        out = []
        for study in study_mod.run_study(files, reference=settings.reference,
                                         bootstrap=settings.bootstrap):
            figures = study_mod.write_figures(study, workdir)
            out.append(Section(
                challenge=study.challenge, title=f"Ramachandran analysis: {study.title}",
                markdown=study_mod.to_markdown(study),
                figures=[Figure(p, c) for p, c in zip(figures, CAPTIONS, strict=True)],
                verdicts=study_mod.verdicts(study),
                data=study_mod.to_json([study])["challenges"][0]))
        return out


OBSERVABLE = Ramachandran()
register = OBSERVABLE.register
report_sections = OBSERVABLE.report_sections
