"""Figures of the Ramachandran analysis: densities with clusters, and transition graphs.

Each function draws into axes it is given (or new ones) and returns them; nothing here
computes observables (see :mod:`analysis.ramachandran`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis.observables.ramachandran.compute import GroupResult, PairResult

#: At most about this many points per scatter plot.
PLOT_POINTS = 5000

CLUSTER_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
                   "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")


def _frame_axes(ax, pair: PairResult) -> None:
    ax.set_xlim(-180, 180)
    ax.set_ylim(-180, 180)
    ax.set_xticks([-180, -90, 0, 90, 180])
    ax.set_yticks([-180, -90, 0, 90, 180])
    ax.set_aspect("equal")
    phi, psi = (pair.label.split("/") + ["psi"])[:2] if "/" in pair.label else ("phi", "psi")
    ax.set_xlabel(f"{phi} / deg")
    ax.set_ylabel(f"{psi} / deg")


def plot_density(pair: PairResult, points: np.ndarray | None = None, ax=None, title: str = ""):
    """Density on the torus (log colour scale), cluster members and populations, as Fig. 1c."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.2))
    dens = pair.density.T  # rows: psi (y), columns: phi (x)
    positive = dens[dens > 0]
    if positive.size:
        ax.imshow(dens, origin="lower", extent=(-180, 180, -180, 180), cmap="Greys",
                  norm=LogNorm(vmin=max(positive.min(), positive.max() * 1e-3),
                               vmax=positive.max()), interpolation="nearest")
    if points is not None and len(points):
        step = max(1, len(points) // PLOT_POINTS)
        sub, lab = points[::step], pair.labels[::step]
        for k in range(len(pair.clusters)):
            sel = lab == k
            ax.scatter(sub[sel, 0], sub[sel, 1], s=1.5, alpha=0.35, linewidths=0,
                       color=CLUSTER_COLOURS[k % len(CLUSTER_COLOURS)])
    for k, cluster in enumerate(pair.clusters):
        x, y = cluster["centre_deg"]
        ax.text(x, y, f"{cluster['population_percent']:.0f}", ha="center", va="center",
                fontsize=8, weight="bold", color=CLUSTER_COLOURS[k % len(CLUSTER_COLOURS)],
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.7, "lw": 0})
    ax.text(-172, -172, f"{pair.assigned_percent:.0f}", color="grey", fontsize=8)
    _frame_axes(ax, pair)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_transitions(pair: PairResult, ax=None, title: str = ""):
    """Transition graph, as Fig. 1d: nodes at cluster centres (area ~ population), arrows
    labelled with the number of transitions in each direction."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.2))
    centres = np.array([c["centre_deg"] for c in pair.clusters]).reshape(-1, 2)
    counts = np.array(pair.transitions).reshape(len(centres), len(centres))
    for i in range(len(centres)):
        for j in range(len(centres)):
            if i == j or counts[i, j] == 0:
                continue
            ax.annotate("", xy=centres[j], xytext=centres[i],
                        arrowprops={"arrowstyle": "-|>", "color": "0.3", "lw": 1.0,
                                    "shrinkA": 9, "shrinkB": 9,
                                    "connectionstyle": "arc3,rad=0.18"})
            mid = 0.5 * (centres[i] + centres[j])
            normal = np.array([centres[j][1] - centres[i][1], centres[i][0] - centres[j][0]])
            norm = np.linalg.norm(normal)
            offset = 0.12 * normal if norm > 0 else np.zeros(2)
            ax.text(*(mid - offset), str(counts[i, j]), fontsize=7, ha="center", va="center")
    for k, cluster in enumerate(pair.clusters):
        ax.scatter(*cluster["centre_deg"], s=60 + 8 * cluster["population_percent"],
                   color=CLUSTER_COLOURS[k % len(CLUSTER_COLOURS)], zorder=3,
                   edgecolors="black", linewidths=0.5)
        ax.text(*cluster["centre_deg"], f"{cluster['population_percent']:.0f}%", fontsize=6,
                ha="center", va="center", color="white", weight="bold", zorder=4)
    _frame_axes(ax, pair)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def group_title(group: GroupResult) -> str:
    """``model T K`` (``reference`` marked)."""
    name = f"{group.model} (reference)" if group.is_reference else group.model
    return f"{name} {group.temperature_K:g} K"


def plot_compared(pair: PairResult, points: np.ndarray, ax, title: str = ""):
    """The frames a verdict compared (e.g. the reference cut to the model runs' length, paired
    by start) as a density of their points on the same log grey scale, without clusters."""
    from matplotlib.colors import LogNorm

    dens, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=36,
                                range=[[-180, 180], [-180, 180]])
    positive = dens[dens > 0]
    if positive.size:
        ax.imshow(dens.T, origin="lower", extent=(-180, 180, -180, 180), cmap="Greys",
                  norm=LogNorm(vmin=max(positive.min(), positive.max() * 1e-3),
                               vmax=positive.max()), interpolation="nearest")
    ax.text(-172, -172, f"{len(points)} frames", color="grey", fontsize=8)
    _frame_axes(ax, pair)
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def figure_grid(groups: list[GroupResult], points: dict[str, np.ndarray], kind: str,
                path: Path, compared: tuple[str, dict[str, np.ndarray]] | None = None) -> Path:
    """One row per dihedral pair, one column per group; ``kind`` is density or transitions.

    ``compared`` = (title, points per pair name) adds a last density column with the frames
    a verdict actually compared when they are not a whole group (the reference cut as the
    paired comparison cut it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pair_names = list(groups[0].pairs)
    extra = compared is not None and kind == "density"
    n_cols = len(groups) + extra
    fig, axes = plt.subplots(len(pair_names), n_cols,
                             figsize=(3.0 * n_cols, 3.0 * len(pair_names)), squeeze=False)
    if extra:
        title, by_pair = compared
        for row, name in enumerate(pair_names):
            plot_compared(groups[0].pairs[name], by_pair[name], axes[row, -1],
                          f"{title}: {name}")
    for col, group in enumerate(groups):
        for row, name in enumerate(pair_names):
            pair = group.pairs[name]
            title = f"{group_title(group)}: {name} ({pair.label})"
            if kind == "density":
                plot_density(pair, points.get(f"{group.key}:{name}"), axes[row, col], title)
            else:
                plot_transitions(pair, axes[row, col], title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
