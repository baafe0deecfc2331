"""Trajectories grouped by (challenge, model, temperature), read in blocks of frames.

Shared by the MAPbI3 observables (orientation, spectrum, rdf): they stream frames block by
block so that a 1 ns run with a frame every 5 fs (200k frames) never sits in memory whole.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from analysis import trajectories
from analysis.trajectories import RunRecord
from harness import h5md
from harness.errors import UserError

#: Frame arrays stored under /particles/all/<name>/value (internal units, factor 1).
DATASETS = {"positions": "position", "velocities": "velocity"}


@dataclass(frozen=True)
class TrajectoryInfo:
    """What an observable needs to know about one trajectory before reading frames."""

    path: Path
    numbers: np.ndarray
    masses: np.ndarray
    n_frames: int
    frame_dt_ps: float
    cell: np.ndarray | None
    start_positions: np.ndarray


def groups(paths: list[Path], challenge: str | None = None,
           ) -> dict[tuple[str, str, float], list[RunRecord]]:
    """Trajectories under ``paths`` by (challenge, model, temperature), sorted.

    Raises
    ------
    UserError
        When no trajectory of ``challenge`` is found.
    """
    found: dict[tuple[str, str, float], list[RunRecord]] = defaultdict(list)
    for path in trajectories.find(paths):
        record = trajectories.read_record(path)
        if challenge is None or record.challenge == challenge:
            found[record.group].append(record)
    if not found:
        what = f"{challenge} trajectories" if challenge else "trajectories"
        raise UserError(f"no {what} under {', '.join(map(str, paths))}: run python -m "
                        f"harness.launch --challenge {challenge or 'NAME'} first")
    return {key: sorted(found[key], key=lambda r: r.replica) for key in sorted(found)}


def info(path: Path) -> TrajectoryInfo:
    """Species, masses, frame count and spacing, cell and start of a trajectory."""
    with h5md.open_file(path) as f:
        part = f[h5md.PARTICLES]
        times = part["position/time"][:]
        cell = None
        if "edges" in part["box"] and part["box/edges/value"].shape[0]:
            cell = part["box/edges/value"][0]
        dt = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
        if len(times) > 2 and not np.allclose(np.diff(times), dt, rtol=1e-6, atol=1e-9):
            raise UserError(f"{path}: frames are not evenly spaced in time; the observables "
                            "need a constant stride")
        start = f[f"{h5md.PARAMS}/start_positions"][:]
        return TrajectoryInfo(path, part["species"][:], part["mass"][:], len(times), dt, cell,
                              start)


def blocks(path: Path, key: str, block_frames: int, every: int = 1,
           atoms: np.ndarray | None = None, start: int = 0,
           stop: int | None = None) -> Iterator[np.ndarray]:
    """Consecutive blocks of ``block_frames`` frames of positions or velocities.

    Parameters
    ----------
    path
        The trajectory.
    key
        ``positions`` (A) or ``velocities`` (A/ps).
    block_frames
        Frames per block (the last block may be shorter).
    every
        Use every n-th frame, counted from ``start``.
    atoms
        Atom indices to read (all when None).
    start, stop
        Frame range read (``stop`` None: to the end).
    """
    with h5md.open_file(path) as f:
        data = f[f"{h5md.PARTICLES}/{DATASETS[key]}/value"]
        n = data.shape[0] if stop is None else min(stop, data.shape[0])
        span = block_frames * every
        for first in range(start, n, span):
            block = data[first:min(first + span, n):every]
            yield block if atoms is None else block[:, atoms]


@dataclass(frozen=True)
class FrameSelection:
    """Which frames of a trajectory an observable uses: ``--skip`` and ``--every``, once.

    The first ``skip_ps`` of every run are dropped (equilibration), then every ``every``-th
    frame is used, up to ``stop_ps`` when it is set. Time blocks (for block bootstrap
    intervals when a group has few runs) are contiguous ranges of the selected frames.
    """

    skip_ps: float = 0.0
    every: int = 1
    #: Frames later than this (ps from the run's first frame) are not used (None: all). The
    #: controls of the verdicts read a run's opening this way.
    stop_ps: float | None = None

    def last_frame(self, n_frames: int, frame_dt_ps: float) -> int:
        """One past the last frame index used (``n_frames`` unless ``stop_ps`` cuts)."""
        if self.stop_ps is None or frame_dt_ps <= 0:
            return n_frames
        return min(n_frames, int(np.floor(self.stop_ps / frame_dt_ps + 1e-9)) + 1)

    def first_frame(self, frame_dt_ps: float) -> int:
        """Index of the first frame used in a trajectory with this frame spacing."""
        if self.skip_ps <= 0 or frame_dt_ps <= 0:
            return 0
        return int(np.ceil(self.skip_ps / frame_dt_ps - 1e-9))

    def ranges(self, n_frames: int, frame_dt_ps: float, n_blocks: int = 1
               ) -> list[tuple[int, int]]:
        """(start, stop) frame ranges of ``n_blocks`` contiguous time blocks.

        Each start lies on the ``every`` grid counted from the first frame used, so the
        blocks together hold exactly the selected frames. Blocks may be empty.
        """
        n_frames = self.last_frame(n_frames, frame_dt_ps)
        first = min(self.first_frame(frame_dt_ps), n_frames)
        n_used = len(range(first, n_frames, self.every))
        bounds = np.linspace(0, n_used, n_blocks + 1).round().astype(int)
        return [(first + int(a) * self.every, first + int(b) * self.every)
                if b > a else (first, first) for a, b in zip(bounds[:-1], bounds[1:],
                                                             strict=True)]

    def blocks(self, path: Path, key: str, block_frames: int, info_: TrajectoryInfo,
               atoms: np.ndarray | None = None, n_blocks: int = 1
               ) -> Iterator[tuple[int, np.ndarray]]:
        """(time block index, frames) chunks of the selected frames of one trajectory."""
        for k, (start, stop) in enumerate(self.ranges(info_.n_frames, info_.frame_dt_ps,
                                                      n_blocks)):
            if stop <= start:
                continue
            for block in blocks(path, key, block_frames, self.every, atoms, start, stop):
                yield k, block


def cell_frame(cell: np.ndarray) -> np.ndarray:
    """Rotation taking Cartesian vectors into the lattice frame of a cell.

    x along a, y in the a-b plane, z along a x b (for an orthorhombic cell whose vectors
    lie along x, y, z this is the identity).
    """
    a, b = np.asarray(cell[0], float), np.asarray(cell[1], float)
    x = a / np.linalg.norm(a)
    z = np.cross(a, b)
    z /= np.linalg.norm(z)
    y = np.cross(z, x)
    return np.array([x, y, z])


def minimum_image(vectors: np.ndarray, cell: np.ndarray | None) -> np.ndarray:
    """Minimum-image convention for difference vectors (..., 3) in a cell (rows)."""
    if cell is None:
        return vectors
    frac = vectors @ np.linalg.inv(cell)
    frac -= np.round(frac)
    return frac @ cell
