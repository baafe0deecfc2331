"""The stability section of ``analysis report``, written against :mod:`analysis.sections`.

This is the worked example of the report contract: a module in ``analysis/commands/`` that
defines ``report_sections(files, workdir)``. (Its command, ``analysis stability``, is built
into ``cli.py``, so this module has no ``register``.) Computing lives in
:mod:`analysis.stability`; here it is only selected, plotted and judged.

Verdict: a (model, temperature) group passes when at least :data:`MIN_INTACT_FRACTION` of
its runs reached their planned length without a failure event. TEA 2023 counted every
broken trajectory against a model, so the default tolerance is "no run failed".
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.sections import Figure, Section, Verdict

if TYPE_CHECKING:  # imported when used: `analysis --help` imports every command module
    from analysis.trajectories import RunRecord

#: A group is judged stable when this fraction of its runs (or more) stayed intact.
MIN_INTACT_FRACTION = 1.0
#: Bumped when the section's content changes in a way the code hash would not show.
REPORT_VERSION = "1"


def report_sections(files: list[Path], workdir: Path) -> list[Section]:
    """One stability section per challenge found in ``files``."""
    from analysis.trajectories import read_record

    by_challenge: dict[str, list[RunRecord]] = defaultdict(list)
    for path in files:
        record = read_record(path)
        by_challenge[record.challenge].append(record)
    return [_section(challenge, records, workdir)
            for challenge, records in sorted(by_challenge.items())]


def _section(challenge: str, records: list[RunRecord], workdir: Path) -> Section:
    from analysis import stability

    summary = stability.summarize(records)
    figure = workdir / f"survival-{challenge}.png"
    plot_survival_by_temperature(summary, figure)
    verdicts = [_verdict(g) for g in summary["groups"]]
    criteria = _criteria(records)
    text = [
        "Runs that reached their planned length without a failure event of the watchdog "
        f"(criteria: {criteria}), per model and temperature. A failed run keeps its frames "
        "up to the event; the survival curves count runs still intact over time "
        "(Kaplan-Meier; unfinished runs are censored at the time they reached).",
        "",
        _groups_table(summary),
        "",
        f"**Tolerance**: a model is judged stable at a temperature when at least "
        f"{MIN_INTACT_FRACTION:.0%} of its runs stayed intact.",
    ]
    failed = [r for r in summary["runs"] if r["status"] == "failed"]
    if summary["broken_bonds"]:
        text += ["", "**First broken bond of each failed run** (by element pair):", "",
                 _bonds_table(summary)]
    if failed:
        text += ["", "**Failed runs**:", ""]
        text += [_failure_line(r) for r in failed]
    caption = ("Fraction of runs still intact versus simulated time, one panel per "
               "temperature; the legend gives intact/total runs per model.")
    return Section(challenge=challenge, title="Stability", markdown="\n".join(text),
                   figures=[Figure(figure, caption)], verdicts=verdicts,
                   data={"observable": "stability", "summary": summary})


def _failure_line(run: dict[str, Any]) -> str:
    what = run["failure_kind"]
    if run["broken"] and run["broken"] != what:
        what += f" {run['broken']}"
    return (f"- {run['model']}, {run['temperature_K']:g} K, replica {run['replica']}: {what} "
            f"at {run['reached_ps']:.4g} ps")


def _criteria(records: list[RunRecord]) -> str:
    from harness import h5md

    names: set[str] = set()
    for record in records[:50]:
        watchdog = h5md.read_meta(record.path)["run_spec"].get("watchdog") or {}
        names.update(watchdog.get("criteria") or [])
    return ", ".join(sorted(names)) or "not recorded"


def _verdict(group: dict[str, Any]) -> Verdict:
    runs, intact, failed = group["runs"], group["stable"], group["failed"]
    fraction = intact / runs if runs else 0.0
    tolerance = f"tolerance: >= {MIN_INTACT_FRACTION:.0%} of runs intact"
    if failed:
        kinds = ", ".join(f"{k} x{n}" for k, n in sorted(group["failure_kinds"].items()))
        detail = (f"{failed} of {runs} runs failed ({kinds}; median time to failure "
                  f"{group['median_time_to_failure_ps']:.3g} ps); {tolerance}")
    else:
        detail = f"{intact} of {runs} runs intact"
        if group["unfinished"]:
            detail += f", {group['unfinished']} unfinished"
        detail += f"; {tolerance}"
    agrees: bool | None = fraction >= MIN_INTACT_FRACTION - 1e-12
    if not agrees and not failed:  # only unfinished runs short of the mark: no verdict yet
        agrees = None
    return Verdict(observable="stability", model=group["model"],
                   temperature_K=group["temperature_K"], agrees=agrees, detail=detail)


def _groups_table(summary: dict[str, Any]) -> str:
    rows = ["| model | T (K) | intact / runs | failed | unfinished | median time to "
            "failure (ps) | failure kinds |", "|---|---:|---:|---:|---:|---:|---|"]
    for g in summary["groups"]:
        mttf = "-" if g["median_time_to_failure_ps"] is None \
            else f"{g['median_time_to_failure_ps']:.3g}"
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(g["failure_kinds"].items())) or "-"
        rows.append(f"| {g['model']} | {g['temperature_K']:g} | {g['stable']} / {g['runs']} | "
                    f"{g['failed']} | {g['unfinished']} | {mttf} | {kinds} |")
    return "\n".join(rows)


def _bonds_table(summary: dict[str, Any]) -> str:
    columns = sorted({c for counts in summary["broken_bonds"].values() for c in counts})
    rows = ["| bond | " + " | ".join(columns) + " |", "|---" + "|---:" * len(columns) + "|"]
    for pair, counts in summary["broken_bonds"].items():
        rows.append(f"| {pair} | " + " | ".join(str(counts.get(c, 0)) for c in columns) + " |")
    return "\n".join(rows)


def plot_survival_by_temperature(summary: dict[str, Any], path: Path) -> Path:
    """Kaplan-Meier curves, one panel per temperature, one line per model; saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    temps = sorted({g["temperature_K"] for g in summary["groups"]})
    models = sorted({g["model"] for g in summary["groups"]})
    colors = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(models)}
    # overlapping curves (every model intact) stay visible: thinner, dashed lines on top
    styles = {m: (("-", "--", ":", "-.")[i % 4], 3.2 - 2.2 * i / max(1, len(models) - 1))
              for i, m in enumerate(models)}
    fig, axes = plt.subplots(1, len(temps), figsize=(3.6 * len(temps) + 1.0, 3.6),
                             sharey=True, squeeze=False)
    for ax, temp in zip(axes[0], temps, strict=True):
        for g in summary["groups"]:
            if g["temperature_K"] != temp:
                continue
            s = g["survival"]
            style, width = styles[g["model"]]
            ax.step(s["time_ps"], s["fraction"], where="post", lw=width, ls=style,
                    color=colors[g["model"]], label=f"{g['model']} ({g['stable']}/{g['runs']})")
        ax.set_title(f"{temp:g} K")
        ax.set_xlabel("time (ps)")
        ax.set_ylim(-0.03, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower left")
    axes[0][0].set_ylabel("fraction of runs intact")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
