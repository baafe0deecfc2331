"""``analysis remd FOLDER``: the health of a replica-exchange run (``--protocol remd``).

Per neighbouring pair of temperatures: exchanges attempted and accepted (a pair below 10% is
flagged: the walkers hardly cross it), the acceptance the energy distributions predict;
round trips of the walkers (lowest -> highest -> lowest temperature) and their mean time; a
figure of each walker's temperature over time; and the ladder the measured energy
fluctuations suggest for 20-30% acceptance; for a challenge with Ramachandran pairs, whether
the walkers agree on each pair's left-handed share (split-R-hat of the walkers' own
trajectories: walkers that disagree have not mixed that coordinate, however well they
exchange). The report shows the same as its "Replica
exchange" section. Definitions: docs/replica-exchange.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from analysis.sections import Figure, Section
from analysis.stats import RHAT_FLAG
from harness import jsonutil
from harness.errors import UserError
from harness.units import KB_EV_PER_K

TITLE = "Replica exchange"
#: Below this acceptance a neighbouring pair is flagged.
LOW_ACCEPTANCE = 0.10


def register(subparsers: Any) -> None:
    """Add the ``remd`` subcommand."""
    parser = subparsers.add_parser(
        "remd", help="replica exchange health: acceptance per pair, round trips, walkers, "
        "a ladder suggestion",
        description="Health of replica-exchange runs (python -m harness.launch --protocol "
        "remd): acceptance per neighbouring pair (flagged below 10%%), round trips, each "
        "walker's temperature over time, and the ladder for 20-30%% acceptance from the "
        "measured energy fluctuations.")
    parser.add_argument("paths", nargs="+", metavar="FOLDER",
                        help="output folders (searched for exchange records) or ladder folders")
    parser.add_argument("--json", action="store_true", help="the numbers as JSON")
    parser.add_argument("--plot", type=Path, metavar="PNG",
                        help="also write the walkers' temperatures over time here")
    parser.set_defaults(func=run)


def ladders_under(paths: list[Path]) -> list[Path]:
    """Ladder folders (holding ``exchange.h5`` and ``remd/plan.json``) under the paths."""
    from harness.protocols import remd

    found = set()
    for path in paths:
        if path.is_file() and path.name == remd.RECORD:
            found.add(path.parent)
        elif path.is_dir():
            found.update(p.parent for p in path.rglob(remd.RECORD)
                         if (p.parent / "remd" / "plan.json").exists())
    return sorted(found)


def health(folder: Path) -> dict[str, Any]:
    """The numbers of one ladder (see the module docstring)."""
    from harness import h5md
    from harness.protocols import remd

    plan = remd.RemdPlan.from_json((folder / "remd" / "plan.json").read_text())
    summary = remd.read_record(folder / remd.RECORD)
    temps = plan.temperatures_K
    energies = []
    for temp in temps:
        path = remd.temperature_file(folder, temp)
        energies.append(h5md.read_observables(path, ("potential_energy",))["potential_energy"]
                        if path.exists() else np.zeros(0))
    predicted = [predicted_acceptance(energies[k], energies[k + 1], temps[k], temps[k + 1])
                 for k in range(len(temps) - 1)]
    heat = [float(np.var(u[len(u) // 5:]) / (KB_EV_PER_K * t) ** 2) if len(u) > 10 else None
            for u, t in zip(energies, temps, strict=True)]
    known = [h for h in heat if h]
    suggestion = remd.suggest_ladder(temps[0], temps[-1], max(known), 0.25) if known else None
    trips = summary["round_trip_ps"]
    mixing = walker_mixing(folder, plan) if summary.get("frames_per_temperature", 0) >= 10 \
        else None
    return {"folder": str(folder), "model": plan.model_label, "challenge": plan.challenge,
            "status": summary["status"], "temperatures_K": temps,
            "ps_per_temperature": summary["n_steps"] * plan.dt_fs * 1e-3,
            "pairs": summary["pairs"], "attempted": summary["attempted"],
            "accepted": summary["accepted"], "acceptance": summary["acceptance"],
            "predicted_acceptance": predicted,
            "low": [a is not None and a < LOW_ACCEPTANCE for a in summary["acceptance"]],
            "round_trips": summary["round_trips"],
            "mean_round_trip_ps": float(np.mean(trips)) if trips else None,
            "heat_capacity_kB": heat, "suggested_ladder_K": suggestion, "mixing": mixing}


def walker_mixing(folder: Path, plan: Any) -> dict[str, Any] | None:
    """For a challenge with Ramachandran pairs: each pair's left-handed region along each
    walker's own trajectory (shares, entries, split-R-hat; see
    :func:`harness.challenges.reference_remd.walker_visits`); None for other challenges."""
    from harness.challenges import reference_remd

    try:
        challenge = reference_remd.challenge_of(plan)
    except UserError:
        return None
    if not challenge.raw.get("ramachandran", {}).get("pairs"):
        return None
    return reference_remd.walker_visits(folder, plan, challenge)


def predicted_acceptance(u_low: np.ndarray, u_high: np.ndarray, t_low: float,
                         t_high: float, max_frames: int = 2000) -> float | None:
    """Mean Metropolis acceptance of swapping independent frames of the two temperatures."""
    if len(u_low) < 2 or len(u_high) < 2:
        return None
    a = u_low[:: max(1, len(u_low) // max_frames)]
    b = u_high[:: max(1, len(u_high) // max_frames)]
    d_beta = 1.0 / (KB_EV_PER_K * t_low) - 1.0 / (KB_EV_PER_K * t_high)
    return float(np.minimum(1.0, np.exp(np.clip(d_beta * (a[:, None] - b[None, :]),
                                                None, 50.0))).mean())


def markdown(rows: list[dict[str, Any]]) -> str:
    """The health tables in Markdown."""
    out = []
    for h in rows:
        out.append(f"**{h['model']}** on {h['challenge']} ({h['status']}, "
                   f"{h['ps_per_temperature']:.2f} ps per temperature)\n")
        out.append("| pair | attempted | accepted | acceptance | predicted from energies |")
        out.append("| --- | --- | --- | --- | --- |")
        for k, pair in enumerate(h["pairs"]):
            acc = h["acceptance"][k]
            pred = h["predicted_acceptance"][k]
            flag = " ⚠ below 10%: add a temperature" if h["low"][k] else ""
            out.append(f"| {pair} | {h['attempted'][k]} | {h['accepted'][k]} | "
                       f"{'-' if acc is None else f'{100 * acc:.0f}%'}{flag} | "
                       f"{'-' if pred is None else f'{100 * pred:.0f}%'} |")
        mean = h["mean_round_trip_ps"]
        out.append(f"\nRound trips (lowest to highest temperature and back) per walker: "
                   f"{', '.join(map(str, h['round_trips']))}"
                   + (f"; mean {mean:.2f} ps." if mean is not None else
                      " (none yet: the run is short, or a pair blocks the way)."))
        for name, m in (h.get("mixing") or {}).items():
            shares = ", ".join(f"{w['share']:.2f}" for w in m["walkers"])
            flag = "" if m["mixed"] else (
                f" ⚠ above {RHAT_FLAG:g}: the walkers disagree, this ladder has not mixed "
                f"pair {name}; run it longer")
            out.append(f"Pair {name}, left-handed share along each walker: {shares} "
                       f"({m['entries']} entries); split-R-hat {m['split_rhat']:.2f}{flag}.")
        if h["suggested_ladder_K"]:
            out.append("Ladder for about 25% acceptance from the measured energy fluctuations "
                       "(largest heat capacity "
                       f"{max(c for c in h['heat_capacity_kB'] if c):.0f} kB): "
                       + ", ".join(f"{t:g}" for t in h["suggested_ladder_K"]) + " K.")
        out.append("")
    return "\n".join(out)


def walkers_figure(folder: Path, title: str = ""):
    """One thin panel per walker: its thermostat temperature over time (a step plot)."""
    import h5py
    import matplotlib.pyplot as plt

    from harness.protocols import remd

    with h5py.File(folder / remd.RECORD, "r") as f:
        times = f["exchange_time_ps"][:]
        index = f["walker_temperature_index"][:]
        temps = f["temperatures_K"][:]
    n = index.shape[1]
    fig, axes = plt.subplots(n, 1, figsize=(8, 0.55 * n + 1.0), sharex=True, squeeze=False)
    for w, ax in enumerate(axes[:, 0]):
        ax.step(times, index[:, w], where="post", lw=0.8, color=f"C{w % 10}")
        ax.set_ylim(-0.5, len(temps) - 0.5)
        ax.set_yticks([0, len(temps) - 1], [f"{temps[0]:g}", f"{temps[-1]:g}"], fontsize=6)
        ax.set_ylabel(f"w{w}", rotation=0, ha="right", va="center", fontsize=7)
    axes[-1, 0].set_xlabel("time (ps)")
    fig.suptitle(title or f"{folder.name}: each walker's temperature (K)", fontsize=9)
    fig.tight_layout(h_pad=0.1)
    return fig


def run(args: argparse.Namespace) -> int:
    """Entry point of ``analysis remd``."""
    folders = ladders_under([Path(p) for p in args.paths])
    if not folders:
        raise UserError(f"no replica-exchange run under {', '.join(args.paths)}; give the "
                        "--out folder of a launch with --protocol remd")
    rows = [health(f) for f in folders]
    print(jsonutil.dumps(rows, indent=1) if args.json else markdown(rows))
    if args.plot:
        import matplotlib.pyplot as plt

        for k, folder in enumerate(folders):
            target = args.plot if len(folders) == 1 else args.plot.with_name(
                f"{args.plot.stem}-{k + 1}{args.plot.suffix}")
            fig = walkers_figure(folder)
            fig.savefig(target, dpi=120)
            plt.close(fig)
            print(f"figure: {target}")
    return 0


def report_sections(files: list[Path], workdir: Path) -> list[Section]:
    """"Replica exchange", per challenge with replica-exchange runs among the files."""
    import matplotlib.pyplot as plt

    from harness import h5md

    folders = sorted({f.parent.parent for f in files
                      if h5md.read_meta(f)["run_spec"].get("protocol") == "remd"})
    folders = [f for f in folders if (f / "exchange.h5").exists()]
    sections = []
    for folder in folders:
        h = health(folder)
        fig = walkers_figure(folder, f"{h['model']}: each walker's temperature (K)")
        png = workdir / f"remd-{h['challenge']}-{h['model']}.png"
        fig.savefig(png, dpi=110)
        plt.close(fig)
        sections.append(Section(h["challenge"], TITLE, markdown([h]), [Figure(
            png, "Each walker's thermostat temperature over time; walkers that travel the "
            "whole ladder carry conformations between the low and high temperatures.")], [],
            {"observable": "remd", "health": h}))
    return sections
