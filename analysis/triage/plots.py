"""Figures of the triage and of the per-element errors (axes in, axes out; saving is separate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

CLASS_COLORS = {"model artefact": "tab:red", "physical": "tab:blue", "unclear": "tab:gray"}


def plot_error_growth(entries: list[dict[str, Any]], axes=None):
    """Error growth before the event: one line per failed run, coloured by class.

    Panels: force MAE on the two atoms of the broken bond (all atoms for other failures), the
    model-minus-reference energy relative to the start, and the force along the bond (model
    solid, reference dashed). x: time before the event (fs). Returns the axes.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for e in entries:
        s = e["series"]
        mask = np.array([src == "pre_failure" for src in s["source"]])
        if not mask.any():
            mask[:] = True
        t_event = e["event_time_ps"] if e["event_time_ps"] is not None else s["time_ps"][-1]
        t_fs = (np.array(s["time_ps"])[mask] - t_event) * 1000.0
        color = CLASS_COLORS[e["classification"]]
        mae = s.get("force_mae_bond_atoms") or s["force_mae"]
        axes[0].plot(t_fs, np.array(mae)[mask], color=color, alpha=0.7)
        axes[1].plot(t_fs, np.array(s["energy_error_eV"])[mask], color=color, alpha=0.7)
        if "bond_force_model" in s:
            axes[2].plot(t_fs, np.array(s["bond_force_model"])[mask], color=color, alpha=0.7)
            axes[2].plot(t_fs, np.array(s["bond_force_reference"])[mask], color=color,
                         ls="--", alpha=0.7)
    axes[0].set_ylabel("force MAE, bond atoms (eV/A)")
    axes[1].set_ylabel("energy error - error at start (eV)")
    axes[2].set_ylabel("force along bond (eV/A, + apart)")
    axes[2].axhline(0.0, color="k", lw=0.6)
    for ax in axes:
        ax.set_xlabel("time before the event (fs)")
        ax.grid(alpha=0.3)
    for name, color in CLASS_COLORS.items():
        axes[0].plot([], [], color=color, label=name)
    axes[2].plot([], [], color="k", label="model")
    axes[2].plot([], [], color="k", ls="--", label="reference")
    axes[0].legend(fontsize=8)
    axes[2].legend(fontsize=8)
    return axes


def plot_element_errors(model_rows: list[dict[str, Any]], per_atom: dict[str, Any], axes=None):
    """One model: force MAE per element and temperature (bars), per-atom force MAE (points).

    ``model_rows`` are the errors rows of one model (one per temperature); ``per_atom`` maps
    ``"T K"`` to ``{"mae": [...], "symbols": [...]}``. Returns the axes.
    """
    import matplotlib.pyplot as plt

    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    elements = sorted({el for r in model_rows for el in r["force_mae_by_element"]})
    width = 0.8 / max(1, len(model_rows))
    for k, row in enumerate(model_rows):
        values = [row["force_mae_by_element"].get(el, np.nan) for el in elements]
        axes[0].bar(np.arange(len(elements)) + k * width, values, width,
                    label=f"{row['temperature_K']:g} K")
    axes[0].set_xticks(np.arange(len(elements)) + width * (len(model_rows) - 1) / 2, elements)
    axes[0].set_ylabel("force MAE (eV/A)")
    axes[0].legend(fontsize=8)
    for label, data in per_atom.items():
        axes[1].plot(np.arange(len(data["mae"])), data["mae"], "o", ms=3, label=label)
    axes[1].set_xlabel("atom index")
    axes[1].set_ylabel("per-atom force MAE (eV/A)")
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    return axes


def save(fig, path: Path) -> Path:
    """Save and close a figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
