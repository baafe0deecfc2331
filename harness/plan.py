"""The run plan: one RunSpec per (challenge, model, temperature, replica)."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunSpec:
    """Everything one MD run needs; stored verbatim in its trajectory file.

    Seeds and starting structures depend only on (challenge, temperature, replica, base seed),
    never on the model, so every model starts from identical positions and velocities and
    feels the same thermostat noise sequence.
    """

    challenge: str
    model: str
    model_label: str
    model_file: str | None
    temperature_K: float
    replica: int
    start_file: str
    seed: int
    dt_fs: float
    n_steps: int
    stride: int
    thermostat: str
    thermostat_tau_fs: float
    periodic: bool
    out_file: str
    model_options: dict[str, Any] = field(default_factory=dict)
    watchdog: dict[str, Any] = field(default_factory=dict)
    stall_timeout_s: float = 60.0
    startup_timeout_s: float = 300.0
    flush_every_frames: int = 100
    flush_every_s: float = 60.0
    omp_threads: int = 1
    engine: str = "ipi"
    lammps_exe: str | None = None
    mpi_ranks: int = 1
    mpi_launcher: str = "auto"
    #: ``nvt`` (the challenge's thermostat) or ``nve`` (no thermostat: constant-energy check)
    ensemble: str = "nvt"
    #: the run protocol that made the file (``md``; ``remd``: the frames of one temperature
    #: of a replica-exchange ladder, :mod:`harness.protocols.remd`) and its settings
    protocol: str = "md"
    protocol_options: dict[str, Any] = field(default_factory=dict)
    #: the interpreter the model's force client runs under (``--model-python``; None: the
    #: harness's own)
    model_python: str | None = None
    #: the vacuum box a periodic-only model gets around a gas-phase molecule
    #: (:func:`harness.models.vacuum_box`: ``edge_angstrom``, ``molecule_extent_angstrom``,
    #: ``cutoff_angstrom``, ``margin_angstrom``); empty when the model sees no box
    vacuum_box: dict[str, float] = field(default_factory=dict)

    @property
    def length_ps(self) -> float:
        """Simulated length in ps."""
        return self.n_steps * self.dt_fs * 1e-3

    @property
    def highest_temperature_K(self) -> float:
        """The highest thermostat temperature of the run (a heating ramp's end, else
        ``temperature_K``): what a temperature criterion compares against."""
        return float(self.protocol_options.get("end_K", self.temperature_K))

    @property
    def n_frames(self) -> int:
        """Frames the finished run holds (step 0 included)."""
        return self.n_steps // self.stride + 1

    @property
    def name(self) -> str:
        """A short human-readable name of the run."""
        temp = f"{self.temperature_K:g}K"
        return f"{self.challenge}/{self.model_label}/{temp}/replica-{self.replica:02d}"

    def to_json(self) -> str:
        """The spec as JSON (sorted keys)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        """Rebuild a spec from :meth:`to_json`."""
        return cls(**json.loads(text))


def derive_seed(base_seed: int, challenge: str, temperature_K: float, replica: int) -> int:
    """A seed from (base seed, challenge, temperature, replica) only: identical for every model."""
    key = f"{base_seed}|{challenge}|{temperature_K:g}|{replica}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "little") % (2**31 - 1) + 1


def output_path(out_dir: Path, challenge: str, model_label: str, temperature_K: float,
                replica: int) -> Path:
    """``OUT/<challenge>/<model>/<T>K/replica-NN.h5``."""
    return out_dir / challenge / model_label / f"{temperature_K:g}K" / f"replica-{replica:02d}.h5"


def n_steps_for(length_ps: float, dt_fs: float) -> int:
    """Number of MD steps for a length, rounded to the nearest step."""
    return max(1, int(math.floor(length_ps * 1000.0 / dt_fs + 0.5)))
