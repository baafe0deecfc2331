"""Vibrational spectrum: power spectrum of the velocity autocorrelation function (VACF).

For a set of trajectories with frames every ``dt``, the VACF

    C(tau) = sum_i w_i <v_i(t) . v_i(t + tau)>_t / sum_i w_i        (w_i = m_i or 1)

is accumulated exactly over all time origins for lags 0..M (M = ``max_lag_ps`` / dt): the
frames are cut into blocks of M, and block k contributes the correlation of its frames with
those of blocks k and k+1, so every pair (t, t + tau) is counted once with FFTs of length
2M only (cost O(T log M) instead of O(T log T), memory O(M)). The block FFTs are summed over
atoms, Cartesian components, blocks and trajectories before a single inverse FFT.
C(tau) is divided by the number of origins T - tau (unbiased), multiplied by the right half
of a window (Hann by default), zero-padded and cosine-transformed:

    I(nu) = dt * [C(0) w(0) + 2 sum_{tau>0} C(tau) w(tau) cos(2 pi nu tau dt)]

Frequencies in cm^-1 (nu / c). With ``mass_weighted`` the spectrum is the kinetic-energy
weighted vibrational density of states; ``elements`` restricts it to some elements.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import fft as sfft
from scipy.signal import find_peaks

from analysis import framesets
from analysis.framesets import FrameSelection
from harness.errors import UserError

#: Speed of light in cm/ps: nu [1/ps] / C_CM_PER_PS = wavenumber [cm^-1].
C_CM_PER_PS = 2.99792458e-2
WINDOWS = ("hann", "blackman", "bartlett", "none")


@dataclass
class VACFAccumulator:
    """Sums of lagged velocity products over blocks, atoms and trajectories.

    Parameters
    ----------
    max_lag : int
        Largest lag in frames (M).
    """

    max_lag: int
    spectrum_sum: np.ndarray = field(init=False)
    origins: np.ndarray = field(init=False)
    weight: float = 0.0
    frame_dt_ps: float | None = None
    n_trajectories: int = 0

    def __post_init__(self) -> None:
        if self.max_lag < 1:
            raise UserError("--max-lag must span at least one frame")
        self.spectrum_sum = np.zeros(self.max_lag + 1, dtype=complex)
        self.origins = np.zeros(self.max_lag + 1)

    def add_blocks(self, blocks, weights: np.ndarray, frame_dt_ps: float) -> None:
        """Add one trajectory given as an iterator of velocity blocks (frames, atoms, 3).

        Blocks may have any length; they are re-cut into blocks of M frames here.
        """
        if self.frame_dt_ps is None:
            self.frame_dt_ps = frame_dt_ps
        elif not np.isclose(self.frame_dt_ps, frame_dt_ps, rtol=1e-6):
            raise UserError(f"trajectories have different frame spacings ({self.frame_dt_ps} "
                            f"and {frame_dt_ps} ps): analyse them separately")
        m = self.max_lag
        n_fft = 2 * m
        sign = (-1.0) ** np.arange(m + 1)  # shift by M in a length-2M FFT
        w = np.sqrt(np.asarray(weights, float))[None, :, None]
        cross = np.zeros(m + 1, dtype=complex)
        previous = None
        n_frames = 0
        pending = np.zeros((0, len(weights), 3))
        for raw in blocks:
            pending = np.concatenate([pending, raw]) if len(pending) else raw
            while len(pending) >= m:
                chunk, pending = pending[:m], pending[m:]
                spec = sfft.rfft((chunk * w).reshape(m, -1), n=n_fft, axis=0)
                n_frames += m
                if previous is not None:
                    cross += self._pair(previous, spec, sign)
                previous = spec
        if len(pending):
            spec = sfft.rfft((pending * w).reshape(len(pending), -1), n=n_fft, axis=0)
            n_frames += len(pending)
            if previous is not None:
                cross += self._pair(previous, spec, sign)
            previous = spec
        if previous is not None:
            cross += np.einsum("kc,kc->k", previous.conj(), previous)
        if n_frames <= m:
            raise UserError(f"a trajectory has {n_frames} frames, not more than the maximum "
                            f"lag of {m} frames: use a shorter --max-lag or longer runs")
        self.spectrum_sum += cross
        lags = np.arange(m + 1)
        self.origins += n_frames - lags
        self.weight += float(np.sum(weights))
        self.n_trajectories += 1

    @staticmethod
    def _pair(a: np.ndarray, b: np.ndarray, sign: np.ndarray) -> np.ndarray:
        """Block a with itself plus block a with the next block b (shifted by M)."""
        return np.einsum("kc,kc->k", a.conj(), a + sign[:, None] * b)

    def vacf(self) -> tuple[np.ndarray, np.ndarray]:
        """Lag times (ps) and C(tau) in A^2/ps^2 (x amu when mass weighted), per atom."""
        if self.n_trajectories == 0 or self.frame_dt_ps is None:
            raise UserError("no velocities were added")
        corr = sfft.irfft(self.spectrum_sum, n=2 * self.max_lag)[: self.max_lag + 1]
        per_atom = corr / self.origins / (self.weight / self.n_trajectories)
        return np.arange(self.max_lag + 1) * self.frame_dt_ps, per_atom


@functools.lru_cache(maxsize=16)
def window(name: str, n_lags: int) -> np.ndarray:
    """Right half of a symmetric window of 2 n_lags - 1 points (1 at lag 0)."""
    full = {"hann": np.hanning, "blackman": np.blackman, "bartlett": np.bartlett,
            "none": np.ones}[name](2 * n_lags - 1)
    return full[n_lags - 1:]


def power_spectrum(vacf: np.ndarray, frame_dt_ps: float, window_name: str = "hann",
                   pad_factor: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Windowed cosine transform of a VACF: wavenumbers (cm^-1) and intensity.

    The intensity is normalised to unit area over the returned wavenumbers (cm).
    """
    if window_name not in WINDOWS:
        raise UserError(f"--window {window_name!r}: choose one of {', '.join(WINDOWS)}")
    tapered = vacf * window(window_name, len(vacf))
    padded = np.concatenate([tapered, np.zeros((pad_factor - 1) * len(vacf))])
    intensity = sfft.hfft(padded) * frame_dt_ps  # even extension, real transform
    n = len(intensity)
    nu_per_ps = np.arange(n // 2 + 1) / (n * frame_dt_ps)
    wavenumber = nu_per_ps / C_CM_PER_PS
    intensity = intensity[: n // 2 + 1]
    area = np.trapezoid(intensity, wavenumber)
    return wavenumber, intensity / area if area > 0 else intensity


def peaks(wavenumber: np.ndarray, intensity: np.ndarray, prominence: float = 0.05,
          min_cm: float = 20.0) -> list[float]:
    """Peak positions (cm^-1, parabolic interpolation) with prominence >= a fraction of max."""
    keep = wavenumber >= min_cm
    idx, _ = find_peaks(np.where(keep, intensity, 0.0), prominence=prominence * intensity.max())
    out = []
    for i in idx:
        if 0 < i < len(intensity) - 1:
            y0, y1, y2 = intensity[i - 1: i + 2]
            denom = y0 - 2 * y1 + y2
            shift = 0.5 * (y0 - y2) / denom if denom != 0 else 0.0
            out.append(float(wavenumber[i] + shift * (wavenumber[1] - wavenumber[0])))
    return out


@dataclass
class Spectrum:
    """The spectrum of one group of trajectories."""

    wavenumber_cm: np.ndarray
    intensity: np.ndarray
    lag_ps: np.ndarray
    vacf: np.ndarray
    peaks_cm: list[float]
    n_trajectories: int
    frame_dt_ps: float


def contributions(path: Path, max_lag_ps: float = 1.0, mass_weighted: bool = True,
                  elements: list[str] | None = None,
                  selection: FrameSelection | None = None, n_blocks: int = 1) -> np.ndarray:
    """Summable VACF sums of one run, one row per time block.

    A row holds the lagged velocity products summed over origins (M + 1 lags), the number of
    origins per lag (M + 1), the summed weights, 1 (a trajectory count) and the frame spacing
    in ps; :func:`from_total` makes the spectrum of a sum of rows. Fewer rows than
    ``n_blocks`` come back when blocks would be shorter than the maximum lag.
    """
    selection = selection or FrameSelection()
    meta = framesets.info(path)
    if meta.frame_dt_ps <= 0:
        raise UserError(f"{path}: fewer than two frames, no spectrum")
    symbols = np.array([_symbol(z) for z in meta.numbers])
    atoms = np.arange(len(symbols)) if not elements else np.nonzero(
        np.isin(symbols, elements))[0]
    if len(atoms) == 0:
        raise UserError(f"--elements {','.join(elements or [])}: none in {path}")
    frame_dt_ps = meta.frame_dt_ps * selection.every
    max_lag = int(round(max_lag_ps / frame_dt_ps))
    weights = meta.masses[atoms] if mass_weighted else np.ones(len(atoms))
    first = selection.first_frame(meta.frame_dt_ps)
    n_used = len(range(first, meta.n_frames, selection.every))
    n_blocks = max(1, min(n_blocks, n_used // (max_lag + 1)))
    rows = []
    chunks = selection.blocks(path, "velocities", 4096, meta, atoms, n_blocks)
    for _, block_chunks in itertools.groupby(chunks, key=lambda item: item[0]):
        acc = VACFAccumulator(max_lag)
        acc.add_blocks((chunk for _, chunk in block_chunks), weights, frame_dt_ps)
        corr = sfft.irfft(acc.spectrum_sum, n=2 * max_lag)[: max_lag + 1]
        rows.append(np.concatenate([corr, acc.origins, [acc.weight, 1.0, frame_dt_ps]]))
    if not rows:
        raise UserError(f"{path}: no frames left after --skip")
    return np.array(rows)


def vacf_of_total(total: np.ndarray) -> tuple[np.ndarray, float]:
    """C(tau) per atom and the frame spacing (ps) of summed :func:`contributions` rows."""
    m1 = (len(total) - 3) // 2
    weight, count, dt_sum = total[-3:]
    return total[:m1] / total[m1:2 * m1] / (weight / count), float(dt_sum / count)


def from_total(total: np.ndarray, window_name: str = "hann") -> Spectrum:
    """The spectrum of summed :func:`contributions` rows."""
    vacf, frame_dt_ps = vacf_of_total(total)
    wn, inten = power_spectrum(vacf, frame_dt_ps, window_name)
    return Spectrum(wn, inten, np.arange(len(vacf)) * frame_dt_ps, vacf, peaks(wn, inten),
                    int(round(total[-2])), frame_dt_ps)


def from_files(paths: list[Path], max_lag_ps: float = 1.0, mass_weighted: bool = True,
               elements: list[str] | None = None, window_name: str = "hann",
               selection: FrameSelection | None = None) -> Spectrum:
    """The averaged spectrum of trajectories (read block by block)."""
    rows = [contributions(p, max_lag_ps, mass_weighted, elements, selection)
            for p in paths if framesets.info(p).frame_dt_ps > 0]
    if not rows:
        raise UserError("no trajectory with at least two frames")
    dts = {round(float(r[0, -1]), 9) for r in rows}
    if len(dts) > 1:
        raise UserError(f"trajectories have different frame spacings ({sorted(dts)} ps): "
                        "analyse them separately")
    return from_total(np.concatenate(rows).sum(axis=0), window_name)


def _symbol(z: int) -> str:
    from ase.data import chemical_symbols

    return chemical_symbols[int(z)]


def plot(spectra: dict[str, Spectrum], ax=None, phonons: dict[str, np.ndarray] | None = None,
         xlim: tuple[float, float] | None = None):
    """Spectra of several models on one axes (offset vertically), phonons as bars."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    offset = 0.0
    for k, (label, spec) in enumerate(spectra.items()):
        sel = slice(None)
        if xlim:
            sel = (spec.wavenumber_cm >= xlim[0]) & (spec.wavenumber_cm <= xlim[1])
        y = spec.intensity[sel] / spec.intensity[sel].max()
        color = colors[k % len(colors)]
        ax.plot(spec.wavenumber_cm[sel], y + offset, color=color, label=label, lw=1.2)
        if phonons and label in phonons:
            freqs = np.asarray(phonons[label])
            if xlim:
                freqs = freqs[(freqs >= xlim[0]) & (freqs <= xlim[1])]
            ax.vlines(freqs, offset, offset + 0.3, color=color, lw=0.8, alpha=0.8)
        offset += 1.1
    ax.set_xlabel("wavenumber (cm$^{-1}$)")
    ax.set_ylabel("VACF power spectrum (normalised, offset)")
    ax.set_yticks([])
    if xlim:
        ax.set_xlim(*xlim)
    ax.legend(frameon=False, fontsize=8)
    return ax
