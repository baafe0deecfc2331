"""Draw docs/surface-angles.png: the molecule frame and the tilt and slant rotations.

The drawing is made with the same code that measures the angles: the challenge's relaxed
1,8-naphthyridine is placed with :func:`analysis.surface_geometry.orient_molecule` and the
printed angles are measured back with :func:`analysis.surface_geometry.analyse`.

Run::

    python docs/make_surface_figure.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    """Write the figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from ase.io import read

    from analysis.observables.surface.geometry import SurfaceGroups, analyse, orient_molecule
    from harness import challenges

    challenge = challenges.load("naphthyridine-graphene")
    atoms = read(challenge.path / "reference" / "relaxed-xtb.xyz")
    groups = SurfaceGroups.from_table(challenge.groups, atoms.numbers)
    cell = np.asarray(atoms.cell)
    centre = cell.sum(axis=0) / 2
    cases = [("flat: tilt 0, slant 0", 0.0, 0.0, "x", "z"),
             ("tilt 30° (about the short axis e_s)", np.radians(30), 0.0, "y", "z"),
             ("slant -30° (N side down)", 0.0, np.radians(-30), "x", "z"),
             ("slant +30° (N side up)", 0.0, np.radians(30), "x", "z")]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    colours = {1: "lightgrey", 6: "dimgrey", 7: "royalblue"}
    for ax, (title, tilt, slant, horizontal, _) in zip(axes, cases, strict=True):
        pos = orient_molecule(atoms.positions, atoms.numbers, groups, tilt, slant, 0.0, 3.4,
                              centre, cell)
        got = analyse(pos, atoms.numbers, groups, cell)
        h = 0 if horizontal == "x" else 1
        sheet_z = pos[groups.surface, 2].mean()
        ax.axhline(0.0, color="black", lw=2)
        ax.text(-4.8, -0.6, "averaged graphene plane (AGP)",
                fontsize=7)
        for i in groups.molecule:
            ax.scatter(pos[i, h] - centre[h], pos[i, 2] - sheet_z,
                       s=90 if atoms.numbers[i] > 1 else 35, c=colours[atoms.numbers[i]],
                       edgecolors="black", zorder=3)
        com = pos[groups.molecule].mean(axis=0)
        ax.annotate("", (com[h] - centre[h], got["D"][0]), (com[h] - centre[h], 0.0),
                    arrowprops={"arrowstyle": "<->", "color": "darkred"})
        ax.text(com[h] - centre[h] + 0.15, 1.5, "D", color="darkred")
        ax.set_title(f"{title}\nmeasured: incline {np.degrees(got['incline'][0]):.0f}°, "
                     f"tilt {np.degrees(got['tilt'][0]):.0f}°, "
                     f"slant {np.degrees(got['slant'][0]):.0f}°", fontsize=8)
        ax.set_xlabel("e_s direction: N side to the right (Å)" if h == 0
                      else "e_l direction, the long axis (Å)", fontsize=8)
        ax.set_ylim(-1.0, 6.5)
        ax.set_xlim(-5.0, 5.0)
        ax.set_aspect("equal")
    axes[0].set_ylabel("height above the plane (Å)")
    axes[0].text(2.0, 5.6, "blue: N, dark: C, light: H", fontsize=7)
    fig.tight_layout()
    fig.savefig(HERE / "surface-angles.png", dpi=110)
    print(f"wrote {HERE / 'surface-angles.png'}")


if __name__ == "__main__":
    main()
