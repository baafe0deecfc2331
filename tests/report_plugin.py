"""A test-only report section: radius of gyration of every model against the model 'reference'.

Plugged into ``analysis report`` as an entry point (group ``tea_harness.report_sections``) by
the tests. It really computes: Rg per frame from the stored positions, a histogram figure
per temperature, and a verdict per (model, T) with a stated tolerance. Environment switches
for the tests: ``TEA_TEST_PLUGIN_CALLS`` (a file: one line appended per call) and
``TEA_TEST_PLUGIN_FAIL`` (raise instead).
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path

import numpy as np

from analysis.sections import Figure, Section, Verdict
from analysis.trajectories import read_record
from harness import h5md

REFERENCE = "reference"
TOLERANCE_ANGSTROM = 0.02


def radius_of_gyration(positions: np.ndarray) -> np.ndarray:
    """Rg (Angstrom) of every frame of a (frames, atoms, 3) array, unweighted."""
    centred = positions - positions.mean(axis=1, keepdims=True)
    return np.sqrt((centred ** 2).sum(axis=2).mean(axis=1))


def report_sections(files: list[Path], workdir: Path) -> list[Section]:
    """One section per challenge: Rg distributions and verdicts against ``REFERENCE``."""
    if os.environ.get("TEA_TEST_PLUGIN_CALLS"):
        with open(os.environ["TEA_TEST_PLUGIN_CALLS"], "a") as handle:
            handle.write(f"{len(files)}\n")
    if os.environ.get("TEA_TEST_PLUGIN_FAIL"):
        raise RuntimeError("asked to fail by TEA_TEST_PLUGIN_FAIL")
    values: dict[tuple[str, str, float], list[np.ndarray]] = defaultdict(list)
    for path in files:
        rec = read_record(path)
        frames = h5md.read_frames(path)
        values[(rec.challenge, rec.model, rec.temperature_K)].append(
            radius_of_gyration(frames["positions"]))
    sections = []
    for challenge in sorted({k[0] for k in values}):
        rg = {(m, t): np.concatenate(v) for (c, m, t), v in values.items() if c == challenge}
        sections.append(_section(challenge, rg, workdir))
    return sections


def _section(challenge: str, rg: dict[tuple[str, float], np.ndarray], workdir: Path) -> Section:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    temps = sorted({t for _, t in rg})
    fig, axes = plt.subplots(1, len(temps), figsize=(4 * len(temps), 3.2), squeeze=False)
    lines = ["| model | T (K) | mean Rg (A) | std (A) |", "|---|---:|---:|---:|"]
    verdicts = []
    for ax, temp in zip(axes[0], temps, strict=True):
        for (model, t), data in sorted(rg.items()):
            if t != temp:
                continue
            ax.hist(data, bins=40, histtype="step", lw=2, label=model)
            lines.append(f"| {model} | {t:g} | {data.mean():.4f} | {data.std():.4f} |")
            ref = rg.get((REFERENCE, t))
            if model != REFERENCE:
                diff = None if ref is None else abs(data.mean() - ref.mean())
                verdicts.append(Verdict(
                    "radius of gyration", model, t,
                    None if diff is None else bool(diff <= TOLERANCE_ANGSTROM),
                    "no reference" if diff is None else
                    f"|mean Rg - reference| = {diff:.4f} A; tolerance {TOLERANCE_ANGSTROM} A"))
        ax.set_title(f"{temp:g} K")
        ax.set_xlabel("radius of gyration (A)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = workdir / f"rg-{challenge}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    markdown = ("Radius of gyration of the molecule per frame, all replicas pooled.\n\n"
                "# Means\n\n" + "\n".join(lines))
    return Section(challenge, "Radius of gyration (test plugin)", markdown,
                   [Figure(path, "Distribution of the radius of gyration per model.")],
                   verdicts, {"observable": "radius_of_gyration"})
