"""Replica exchange over temperature (parallel tempering): one i-PI simulation, one system
per temperature of a ladder, exchanges between neighbouring temperatures.

Layout of one replica-exchange run (``FOLDER`` = ``OUT/<challenge>/<label>``)::

    FOLDER/remd/plan.json           the run (:class:`RemdPlan`), checked on resume
    FOLDER/remd/seg-NNN/            one i-PI segment (a start or a resume): input.xml, the
                                    systems' outputs w<k>.*, i-PI checkpoints, the exchange
                                    log (harness.protocols.exchange), logs
    FOLDER/<T>K/replica-00.h5       the frames at temperature T, whichever walker held T
                                    (H5MD, the runs' layout, so ``analysis`` reads them)
    FOLDER/exchange.h5              the exchange record: attempts and acceptances per
                                    neighbouring pair, each walker's temperature index over
                                    time, round trips

i-PI swaps temperatures, not configurations: each system (walker) keeps its trajectory and
changes thermostat temperature at accepted exchanges; its ``ensemble_temperature`` property
says which temperature each written frame belongs to. Segments are never appended to: a
resume starts a new segment from the newest i-PI checkpoint (which keeps the walkers, their
temperatures and i-PI's random state), and :func:`collect` joins the segments, each one cut
where the next took over, so no frame or exchange is counted twice or lost.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from harness import h5md, procs, provenance, runlock, sockets
from harness.engines import ipi_input
from harness.engines.ipi_stream import bin_title_length, parse_bin_frames
from harness.errors import UserError
from harness.model_python import CLIENT_PROTOCOL, client_command, client_env
from harness.plan import RunSpec
from harness.protocols import exchange
from harness.structures import read_structure
from harness.units import ipi_force_output_factor

PROPERTY_COLUMNS = ("step", "time", "potential", "kinetic", "conserved", "temperature",
                    "ensemble_temperature")
PROPERTIES = ("[ step, time{picosecond}, potential{electronvolt}, kinetic_md{electronvolt}, "
              "conserved{electronvolt}, temperature{kelvin}, ensemble_temperature{kelvin} ]")
#: (i-PI trajectory key, units, frame key, factor to the harness's units)
TRAJECTORIES = (("positions", "angstrom", "positions", 1.0),
                ("velocities", "m/s", "velocities", 0.01),  # m/s -> Angstrom/ps
                ("forces", "ev/ang", "forces", 1.0))  # x ipi_force_output_factor()
EXCHANGE_LOG = "exchanges.log"
RECORD = "exchange.h5"
PROGRESS_INTERVAL_S = 5.0
#: While a run goes, its frames are collected into the H5MD files this often (status running),
#: so a long ladder's results can be looked at (and shipped) before it ends.
COLLECT_INTERVAL_S = 600.0
#: How long a batched client waits for the other walkers' positions once one arrived (s).
#: i-PI (3.x, consolidated messaging) dispatches the requests queued at one poll of its
#: socket thread, then waits for all of their forces before it dispatches more: walker 0's
#: positions often go alone, the others only once its forces are back. Waiting for a full
#: batch cannot help then; positions dispatched together arrive within 0.1 ms. Measured on
#: the double-well ladder (3 walkers, 1500 steps, beside other work): 20 ms: 68.7 s and 1.65
#: model calls per step; 2 ms: 37.2 s and 1.70 calls per step.
GATHER_TIMEOUT_S = 0.002
#: i-PI's socket poll interval under a batched client (s; i-PI's default 1e-4): longer, so
#: that more of the walkers' requests are queued by the time the poll thread dispatches.
#: Measured as above with a 2 ms gather: 1e-4: 1.70 calls per step, 37.2 s; 2e-3: 1.43,
#: 32.7 s; 5e-3: 1.22, 32.5 s. It adds at most this much to a force round, small beside a
#: model worth batching.
BATCH_POLL_LATENCY_S = 0.002
#: A temperature is matched to the ladder within this (K): i-PI prints 16 digits.
TEMPERATURE_MATCH_K = 1e-6


@dataclass
class RemdPlan:
    """One replica-exchange run: a ladder, its walkers' starts, and the MD settings."""

    challenge: str
    model: str
    model_label: str
    model_file: str | None
    temperatures_K: list[float]
    start_files: list[str]
    seed: int
    dt_fs: float
    n_steps: int
    stride: int
    exchange_stride: int
    thermostat_tau_fs: float
    periodic: bool
    folder: str
    ladder: int = 1
    model_options: dict[str, Any] = field(default_factory=dict)
    clients: int = 1
    omp_threads: int = 1
    stall_timeout_s: float = 600.0
    startup_timeout_s: float = 300.0
    checkpoint_steps: int = 2000
    #: Walkers per batched force client (``--batch N``; 0: one-structure clients, ``clients``
    #: of them): each batched client holds N connections to the i-PI socket and evaluates the
    #: structures that arrive together in one model call (:mod:`harness.batch_driver`).
    batch: int = 0
    #: The model's own interpreter (``--model-python``), None for this one.
    model_python: str | None = None
    #: The vacuum box a periodic-only model sees a gas-phase molecule in (empty: none).
    vacuum_box: dict[str, float] = field(default_factory=dict)

    @property
    def work(self) -> Path:
        """The folder of the segments and the plan."""
        return Path(self.folder) / "remd"

    @property
    def name(self) -> str:
        """A short readable name of the run."""
        temps = self.temperatures_K
        return (f"{self.challenge}/{self.model_label} replica exchange {temps[0]:g}-"
                f"{temps[-1]:g} K x {len(temps)}")

    def trajectory_fields(self) -> dict[str, Any]:
        """What decides the trajectories (a resume with other values is refused)."""
        skip = ("clients", "omp_threads", "stall_timeout_s", "startup_timeout_s", "n_steps",
                "folder", "batch", "model_python")
        return {k: v for k, v in asdict(self).items() if k not in skip}

    def to_json(self) -> str:
        """The plan as JSON (sorted keys)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RemdPlan:
        """Rebuild a plan from :meth:`to_json`."""
        return cls(**json.loads(text))

    def batch_sizes(self) -> list[int]:
        """Walkers per batched client (``--batch``): the ladder split as evenly as it goes;
        empty without batching."""
        n = len(self.temperatures_K)
        if self.batch <= 1:
            return []
        groups = math.ceil(n / self.batch)
        return [n // groups + (1 if g < n % groups else 0) for g in range(groups)]

    def spec_at(self, index: int) -> RunSpec:
        """The run spec stored in the file of the ``index``-th temperature (and given to the
        force client): the model, the MD settings, the walker that started there."""
        temp = self.temperatures_K[index]
        return RunSpec(
            challenge=self.challenge, model=self.model, model_label=self.model_label,
            model_file=self.model_file, temperature_K=float(temp), replica=0,
            start_file=self.start_files[index], seed=self.seed, dt_fs=self.dt_fs,
            n_steps=self.n_steps, stride=self.stride, thermostat="langevin",
            thermostat_tau_fs=self.thermostat_tau_fs, periodic=self.periodic,
            out_file=str(temperature_file(Path(self.folder), temp)),
            model_options=dict(self.model_options), stall_timeout_s=self.stall_timeout_s,
            startup_timeout_s=self.startup_timeout_s, omp_threads=self.omp_threads,
            protocol="remd", model_python=self.model_python,
            vacuum_box=dict(self.vacuum_box),
            protocol_options={"ladder_K": list(self.temperatures_K), "ladder": self.ladder,
                              "exchange_stride": self.exchange_stride,
                              "walkers_start_files": list(self.start_files)})


def temperature_file(folder: Path, temperature_K: float) -> Path:
    """The H5MD file of one temperature of a ladder (the runs' layout, replica 0)."""
    return folder / f"{temperature_K:g}K" / "replica-00.h5"


# ------------------------------------------------------------------ ladders
def geometric_ladder(low_K: float, high_K: float, count: int) -> list[float]:
    """``count`` temperatures from ``low_K`` to ``high_K`` in a geometric progression (equal
    ratios give about equal acceptance when the heat capacity is constant), rounded to 0.1 K."""
    if count == 1:
        return [float(low_K)]
    ratio = (high_K / low_K) ** (1.0 / (count - 1))
    return [round(low_K * ratio**k, 1) for k in range(count)]


def parse_ladder(text: str) -> list[float]:
    """``LOW:HIGH:N`` (e.g. ``500K:900K:8``) as a geometric ladder; errors name the fix."""
    parts = str(text).split(":")
    hint = "give --ladder LOW:HIGH:N, e.g. 500K:900K:8"
    if len(parts) != 3:
        raise UserError(f"--ladder {text!r}: {hint}")
    try:
        low, high = (float(p.strip().upper().removesuffix("K")) for p in parts[:2])
        count = int(parts[2])
    except ValueError:
        raise UserError(f"--ladder {text!r}: {hint}") from None
    check_ladder([low, high] if count > 1 else [low], "--ladder")
    if count < 2:
        raise UserError(f"--ladder {text!r}: replica exchange needs at least 2 temperatures")
    return geometric_ladder(low, high, count)


def check_ladder(temperatures: list[float], flag: str = "--temperatures") -> list[float]:
    """A ladder must have at least 2 temperatures, all > 0 K, strictly increasing."""
    temps = [float(t) for t in temperatures]
    if len(temps) < 2:
        raise UserError(f"{flag}: replica exchange needs at least 2 temperatures, got "
                        f"{len(temps)}")
    if min(temps) <= 0:
        raise UserError(f"{flag}: temperatures must be > 0 K")
    if any(b <= a for a, b in zip(temps, temps[1:], strict=False)):
        raise UserError(f"{flag} {', '.join(f'{t:g}' for t in temps)}: a ladder must be "
                        "strictly increasing; list the temperatures from low to high")
    return temps


def suggest_ladder(low_K: float, high_K: float, heat_capacity_kB: float,
                   acceptance: float = 0.25) -> list[float]:
    """Temperatures from ``low_K`` to ``high_K`` for a target neighbour acceptance.

    For a potential-energy distribution that is Gaussian with variance kB T^2 C_V (C_V the
    potential part of the heat capacity, in kB), two neighbours T and T(1+x) swap with
    probability about erfc(x sqrt(C_V) / 2) (Kofke, J. Chem. Phys. 117, 6911, 2002, small x):
    the ratio x is fixed by the target and C_V, measured from a pilot's energy fluctuations.
    """
    from scipy.special import erfcinv

    x = 2.0 * float(erfcinv(acceptance)) / math.sqrt(heat_capacity_kB)
    count = max(2, math.ceil(math.log(high_K / low_K) / math.log1p(x)) + 1)
    return geometric_ladder(low_K, high_K, count)


# ------------------------------------------------------------------ i-PI input
def make_input(plan: RemdPlan, address: str, socket_timeout_s: float) -> str:
    """The i-PI input of a fresh replica-exchange run: one system per temperature (prefix
    ``w<k>``), walker k starting from ``start_files[k]`` with thermal velocities at its
    temperature, one force field for all, neighbour exchanges every ``exchange_stride``."""
    root = ET.parse(ipi_input.TEMPLATE).getroot()
    root.set("safe_stride", str(plan.stride))
    output = root.find("output")
    assert output is not None
    for node in list(output):
        output.remove(node)
    ET.SubElement(output, "properties", filename="properties", stride=str(plan.stride),
                  flush="1").text = f" {PROPERTIES} "
    for key, units, _, _ in TRAJECTORIES:
        ET.SubElement(output, "trajectory", filename=key[:3], stride=str(plan.stride),
                      format="bin", cell_units="angstrom", flush="1").text = f" {key}{{{units}}} "
    ET.SubElement(output, "checkpoint", filename="chk", stride=str(plan.checkpoint_steps),
                  overwrite="false")
    _text(root, "total_steps", str(plan.n_steps))
    _text(root, "prng/seed", str(plan.seed))
    _text(root, "ffsocket/address", address)
    _text(root, "ffsocket/timeout", f"{socket_timeout_s!r}")
    _text(root, "ffsocket/latency", f"{poll_latency(plan)!r}")
    ffsocket = root.find("ffsocket")
    assert ffsocket is not None
    ffsocket.set("pbc", "true" if plan.periodic else "false")
    template = root.find("system")
    assert template is not None
    root.remove(template)
    for k, temp in enumerate(plan.temperatures_K):
        system = ET.fromstring(ET.tostring(template))
        system.set("prefix", f"w{k}")
        _text(system, "initialize/file", str(plan.start_files[k]))
        _text(system, "initialize/velocities", f"{float(temp)!r}")
        _text(system, "ensemble/temperature", f"{float(temp)!r}")
        _text(system, "motion/dynamics/timestep", f"{plan.dt_fs!r}")
        _text(system, "motion/dynamics/thermostat/tau", f"{plan.thermostat_tau_fs!r}")
        _text(system, "initialize/cell", _cell_text(plan.start_files[k], plan.periodic))
        root.append(system)
    smotion = ET.SubElement(root, "smotion", mode="remd")
    remd = ET.SubElement(smotion, "remd")
    ET.SubElement(remd, "stride").text = f" {plan.exchange_stride} "
    return ET.tostring(root, encoding="unicode")


def poll_latency(plan: RemdPlan) -> float:
    """i-PI's socket poll interval for this ladder: :data:`BATCH_POLL_LATENCY_S` under
    batched clients, i-PI's default otherwise."""
    return BATCH_POLL_LATENCY_S if plan.batch_sizes() else 1e-4


def _text(root: ET.Element, path: str, value: str) -> None:
    node = root.find(path)
    if node is None:
        raise UserError(f"i-PI template {ipi_input.TEMPLATE} lacks <{path}>; restore it "
                        "from git")
    node.text = f" {value} "


def _cell_text(start_file: str, periodic: bool) -> str:
    if not periodic:
        box = ipi_input.GAS_PHASE_BOX_ANGSTROM
        return f"[ {box}, {box}, {box} ]"
    lengths = read_structure(start_file).cell.cellpar()
    if abs(lengths[3:] - 90).max() > 1e-6:
        raise UserError(f"{start_file}: only orthorhombic cells are supported for now")
    return "[ " + ", ".join(repr(float(x)) for x in lengths[:3]) + " ]"


# ------------------------------------------------------------------ segments
def segments(work: Path) -> list[Path]:
    """The segment folders of a run, oldest first (one killed before it recorded its start
    step holds nothing and is left out)."""
    return sorted(p for p in work.glob("seg-[0-9][0-9][0-9]")
                  if p.is_dir() and (p / "start_step").is_file())


def segment_start(seg: Path) -> int:
    """The step a segment started from (0, or its checkpoint's)."""
    return int((seg / "start_step").read_text().strip())


def newest_checkpoint(work: Path) -> tuple[int, Path] | None:
    """The newest complete i-PI checkpoint of any segment."""
    from harness.engines.ipi_run import checkpoints

    found = [c for seg in segments(work) for c in checkpoints(seg)]
    return max(found, key=lambda c: c[0]) if found else None


# ------------------------------------------------------------------ running
class RemdRun:
    """Runs (or resumes) one replica-exchange plan to its end; see the module docstring."""

    def __init__(self, plan: RemdPlan, progress: bool = True):
        self.plan = plan
        self.progress = progress
        self.stop_requested: str | None = None
        self.ipi: Any = None
        self.clients: list[Any] = []
        self.socket_dir: Path | None = None

    def run(self) -> dict[str, Any]:
        """Run under the lock of the exchange record; returns the outcome (a dict)."""
        folder = Path(self.plan.folder)
        folder.mkdir(parents=True, exist_ok=True)
        lock = runlock.RunLock(folder / RECORD)
        try:
            lock.acquire()
        except runlock.Busy as exc:
            return {"status": "skipped", "note": f"running elsewhere: {exc}"}
        old = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            return self._run()
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)
            lock.release()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stop_requested = self.stop_requested or "interrupted"

    def _run(self) -> dict[str, Any]:
        work = self.plan.work
        self._check_plan(work)
        record = Path(self.plan.folder) / RECORD
        if record.exists() and read_record(record).get("status") == "completed":
            done = read_record(record)
            if done.get("n_steps", 0) >= self.plan.n_steps:
                return {"status": "skipped", "note": "already completed"}
        started = time.monotonic()
        seg, first = self._new_segment(work)
        status, note = "interrupted", ""
        try:
            status, note = self._supervise(seg, first)
        finally:
            self._teardown()
        collected = collect(self.plan, final_status=status, note=note)
        collected.update(wall_s=round(time.monotonic() - started, 1))
        return collected

    def _check_plan(self, work: Path) -> None:
        work.mkdir(parents=True, exist_ok=True)
        path = work / "plan.json"
        if path.exists():
            before = RemdPlan.from_json(path.read_text())
            if before.trajectory_fields() != self.plan.trajectory_fields():
                diff = sorted(k for k, v in self.plan.trajectory_fields().items()
                              if before.trajectory_fields().get(k) != v)
                raise UserError(f"{self.plan.folder} holds a replica-exchange run with other "
                                f"settings ({', '.join(diff)}); give another --out or the "
                                "same settings")
        path.write_text(self.plan.to_json())

    def _new_segment(self, work: Path) -> tuple[Path, int]:
        """A fresh segment folder: from the newest checkpoint, or from the start when there is
        none (earlier segments without one are set aside under ``remd/set-aside-<time>/``,
        never deleted: they hold frames that no checkpoint can continue)."""
        found = segments(work)
        chk = newest_checkpoint(work) if found else None
        if found and chk is None:
            aside = work / f"set-aside-{int(time.time())}"
            aside.mkdir()
            for old in found:
                old.rename(aside / old.name)
            print(f"{self.plan.name}: no checkpoint to resume from; earlier segments kept in "
                  f"{aside}, starting over", file=sys.stderr, flush=True)
            found = []
        seg = work / f"seg-{len(found):03d}"
        seg.mkdir(exist_ok=True)  # an empty one left by a kill before start_step was written
        self.socket_dir, address = sockets.make_private_folder()
        timeout = max(ipi_input.IPI_SOCKET_TIMEOUT_S, self.plan.stall_timeout_s + 60.0)
        if chk is not None:
            first, path = chk
            xml = ipi_input.make_restart_input(path.read_text(), address)
            root = ET.fromstring(xml)
            _text(root, "total_steps", str(self.plan.n_steps))
            _text(root, "ffsocket/timeout", f"{timeout!r}")
            ffsocket = root.find("ffsocket")
            assert ffsocket is not None  # make_restart_input put the address there
            latency = ffsocket.find("latency")  # a checkpoint leaves i-PI's defaults out
            if latency is None:
                latency = ET.SubElement(ffsocket, "latency")
            latency.text = f" {poll_latency(self.plan)!r} "
            xml = ET.tostring(root, encoding="unicode")
        else:
            first = 0
            xml = make_input(self.plan, address, timeout)
        (seg / "start_step").write_text(str(first))
        (seg / "input.xml").write_text(xml)
        (seg / "spec.json").write_text(self.plan.spec_at(0).to_json())
        return seg, first

    def _start(self, seg: Path) -> None:
        env = dict(os.environ, OMP_NUM_THREADS=str(self.plan.omp_threads), PYTHONUNBUFFERED="1")
        self.ipi = procs.start([sys.executable, "-m", "harness.engines.ipi_server",
                                "--exchange-log", EXCHANGE_LOG, "input.xml"],
                               seg / "ipi.log", cwd=seg, env=env)
        address = (seg / "input.xml").read_text()
        address = sockets.full_path(ET.fromstring(address).find("ffsocket/address").text.strip())
        if self.plan.model_python:  # the model's own interpreter (--model-python)
            env = client_env(env, seg)
        if self.plan.batch > 1:
            self._start_batched(seg, address, env)
            return
        for k in range(self.plan.clients):
            self.clients.append(procs.start(
                client_command(self.plan.model_python, "harness.driver")
                + ["--spec", str(seg / "spec.json"), "--address", address, "--no-watchdog",
                   "--connect-timeout", str(self.plan.startup_timeout_s),
                   "--protocol", str(CLIENT_PROTOCOL)],
                seg / f"driver-{k}.log", cwd=seg, env=env))

    def _start_batched(self, seg: Path, address: str, env: dict[str, str]) -> None:
        """One batched client per group of walkers (``--batch``), each joining its i-PI
        socket once per walker it serves: i-PI hands every connection one system's
        positions, and the client evaluates those that arrive together in one model call."""
        from harness.batch_driver import JOIN, LEAVE, LEFT

        env = dict(env)
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as for --batch of straight runs
        for g, size in enumerate(self.plan.batch_sizes()):
            group = seg / f"batch-{g}"
            for sub in (JOIN, LEFT, LEAVE):
                (group / sub).mkdir(parents=True, exist_ok=True)
            for m in range(size):
                slot = group / f"connection-{m:02d}"  # its log and model clock
                slot.mkdir(exist_ok=True)
                request = {"address": address, "spec": str(seg / "spec.json"),
                           "work": str(slot), "first_step": 0, "no_watchdog": True,
                           "protocol": CLIENT_PROTOCOL}
                (group / JOIN / f"{m:02d}.json").write_text(json.dumps(request))
            self.clients.append(procs.start(
                client_command(self.plan.model_python, "harness.batch_driver")
                + ["--group", str(group), "--protocol", str(CLIENT_PROTOCOL),
                   "--idle-timeout", str(self.plan.startup_timeout_s),
                   "--gather-timeout", str(GATHER_TIMEOUT_S)],
                group / "client.log", cwd=seg, env=env))

    def _supervise(self, seg: Path, first: int) -> tuple[str, str]:
        """Watch i-PI and its clients until the run ends; returns (status, note)."""
        self._start(seg)
        probe = seg / "w0_properties"
        last_step, last_change = first, time.monotonic()
        limit = self.plan.startup_timeout_s
        last_print = 0.0
        t0 = last_collect = time.monotonic()
        while True:
            time.sleep(0.5)
            step = _last_step(probe)
            now = time.monotonic()
            if now - last_collect >= COLLECT_INTERVAL_S:
                try:
                    collect(self.plan, final_status="running")
                except Exception as exc:  # noqa: BLE001 - the simulation must go on
                    # the files are only a view of the segments, rebuilt at the end: a failed
                    # refresh (a full disk, a file held open elsewhere, code changed under a
                    # running ladder) must not stop hours of MD
                    print(f"\n{self.plan.name}: refreshing the per-temperature files failed "
                          f"({type(exc).__name__}: {exc}); the run goes on and rebuilds them "
                          "at its end", file=sys.stderr, flush=True)
                last_collect = time.monotonic()
            if step is not None and step > last_step:
                last_step, last_change = step, now
                limit = self.plan.stall_timeout_s
            if self.progress and now - last_print >= PROGRESS_INTERVAL_S:
                last_print = now
                done = last_step / max(1, self.plan.n_steps)
                rate = (last_step - first) / max(now - t0, 1e-9)
                eta = (self.plan.n_steps - last_step) / rate if rate > 0 else float("nan")
                print(f"\r{self.plan.name}: step {last_step}/{self.plan.n_steps} "
                      f"({100 * done:.1f}%), {rate:.2f} steps/s, ~{eta / 60:.0f} min left ",
                      end="", file=sys.stderr, flush=True)
            code = self.ipi.poll()
            if code is not None:
                last_step = max(last_step, _last_step(probe) or 0)
                if self.progress:
                    print(file=sys.stderr)
                if self.stop_requested:
                    return "interrupted", self.stop_requested
                if last_step >= self.plan.n_steps:
                    return "completed", ""
                return "failed", (f"i-PI stopped at step {last_step} "
                                  f"({procs.describe_exit(code)}): {procs.tail(seg / 'ipi.log')}")
            if self.stop_requested:
                procs.stop(self.ipi, signal.SIGTERM, grace_s=30.0)  # soft exit: RESTART file
                continue
            dead = [c for c in self.clients if c.poll() is not None]
            if dead and len(dead) == len(self.clients):
                try:  # i-PI said EXIT to the clients at the end: it is about to exit too
                    self.ipi.wait(timeout=30.0)
                    continue
                except subprocess.TimeoutExpired:
                    log = (seg / "batch-0" / "client.log" if self.plan.batch
                           else seg / "driver-0.log")
                    return "failed", ("the force client stopped at step "
                                      f"{last_step}: {procs.tail(log)}")
            if now - last_change > limit:
                return "failed", f"no new frame for {limit:g} s (stalled at step {last_step})"

    def _teardown(self) -> None:
        procs.stop(self.ipi, signal.SIGTERM, grace_s=30.0)
        for client in self.clients:
            procs.stop(client, signal.SIGTERM, grace_s=10.0)
        self.clients = []
        if self.socket_dir is not None:
            sockets.remove_stale(self.socket_dir)
            self.socket_dir = None


def _last_step(properties: Path) -> int | None:
    """The step of the last complete line of an i-PI properties file."""
    try:
        with open(properties, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096))
            tail = handle.read().decode(errors="replace")
    except OSError:
        return None
    lines = [ln for ln in tail.split("\n")[:-1] if ln.strip() and not ln.startswith("#")]
    if not lines:
        return None
    try:
        return int(float(lines[-1].split()[0]))
    except (ValueError, IndexError):
        return None


# ------------------------------------------------------------------ collecting
def _read_properties(path: Path) -> list[dict[str, float]]:
    rows = []
    if not path.exists():
        return rows
    text = path.read_text(errors="replace")
    for line in text.split("\n")[:-1]:  # the last piece may be cut short
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        values = line.split()
        if len(values) != len(PROPERTY_COLUMNS):
            continue
        rows.append(dict(zip(PROPERTY_COLUMNS, map(float, values), strict=True)))
    return rows


def _read_walker(seg: Path, k: int) -> dict[int, dict[str, Any]]:
    """The complete frames of walker ``k`` in one segment, by step."""
    frames: dict[int, dict[str, Any]] = {}
    for row in _read_properties(seg / f"w{k}_properties"):
        frames[int(round(row["step"]))] = {"props": row}
    for key, units, frame_key, factor in TRAJECTORIES:
        path = seg / f"w{k}_{key[:3]}_0.bin"
        if not path.exists():
            continue
        if frame_key == "forces":  # the model's forces exactly (see harness.units)
            factor = factor * ipi_force_output_factor()
        parsed, _ = parse_bin_frames(path.read_bytes(), bin_title_length(key, units,
                                                                         "angstrom"),
                                     factor, path.name)
        for step, cell, values in parsed:
            if step in frames:
                frames[step][frame_key] = values
                frames[step]["box"] = cell
    need = {"props", "box"} | {t[2] for t in TRAJECTORIES}
    return {s: f for s, f in frames.items() if need <= f.keys()}


def gather(plan: RemdPlan) -> tuple[dict[int, list[dict[str, Any]]], list[tuple]]:
    """All frames per temperature index and all exchange attempts, segments joined.

    A segment that started from step c replaces whatever earlier segments hold after c.
    """
    temps = np.asarray(plan.temperatures_K, dtype=float)
    by_step: dict[int, dict[int, dict[str, Any]]] = {}  # step -> walker -> frame
    attempts: dict[int, list[tuple]] = {}  # step -> rows
    for seg in segments(plan.work):
        start = segment_start(seg)
        for step in [s for s in by_step if s > start]:
            del by_step[step]
        for step in [s for s in attempts if s > start]:
            del attempts[step]
        for k in range(len(temps)):
            for step, frame in _read_walker(seg, k).items():
                if step > start or (step == 0 and start == 0):
                    by_step.setdefault(step, {})[k] = frame
        for row in exchange.read_log(seg / EXCHANGE_LOG):
            if row[0] > start:
                attempts.setdefault(row[0], []).append(row)
    per_temp: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(temps))}
    for step in sorted(by_step):
        walkers = by_step[step]
        if len(walkers) != len(temps):
            break  # the last step is still being written for some walkers
        for k, frame in walkers.items():
            props = frame["props"]
            index = int(np.argmin(abs(temps - props["ensemble_temperature"])))
            if abs(temps[index] - props["ensemble_temperature"]) > TEMPERATURE_MATCH_K:
                raise RuntimeError(f"walker {k} at step {step} has thermostat temperature "
                                   f"{props['ensemble_temperature']} K, not on the ladder")
            per_temp[index].append(_h5md_frame(step, k, frame))
    last = per_temp[0][-1]["step"] if per_temp[0] else 0
    rows = [row for step in sorted(attempts) if step <= last for row in attempts[step]]
    return per_temp, rows


def _h5md_frame(step: int, walker: int, frame: dict[str, Any]) -> dict[str, Any]:
    props = frame["props"]
    return {"step": step, "time": props["time"], "positions": frame["positions"],
            "velocities": frame["velocities"], "forces": frame["forces"], "box": frame["box"],
            "potential": props["potential"], "kinetic": props["kinetic"],
            "conserved": props["conserved"], "temperature": props["temperature"],
            "walker": walker}


def walker_history(n: int, rows: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """Each walker's temperature index after every exchange step: (steps, index[steps+1, n]).

    Walker k starts at temperature index k; accepted swaps exchange the indices of the two
    systems named in the log.
    """
    index = np.arange(n)
    steps = [0]
    history = [index.copy()]
    for step in sorted({r[0] for r in rows}):
        for row in (r for r in rows if r[0] == step):
            if row[4]:
                low, high = row[2], row[3]
                index[low], index[high] = index[high], index[low]
        steps.append(step)
        history.append(index.copy())
    return np.asarray(steps, dtype=np.int64), np.asarray(history, dtype=np.int64)


def round_trips(history: np.ndarray, steps: np.ndarray) -> tuple[list[int], list[float]]:
    """Round trips per walker (lowest -> highest -> lowest temperature) and their lengths in
    steps; a walker's count starts at its first visit to the lowest temperature."""
    top = history.shape[1] - 1
    counts, lengths = [], []
    for w in range(history.shape[1]):
        state, began, count = None, None, 0
        for step, t_index in zip(steps, history[:, w], strict=True):
            if t_index == 0:
                if state == "up":
                    count += 1
                    lengths.append(float(step - began))
                if state != "down":
                    began = step
                state = "down"
            elif t_index == top and state == "down":
                state = "up"
        counts.append(count)
    return counts, lengths


def exchange_summary(plan: RemdPlan, rows: list[tuple]) -> dict[str, Any]:
    """Attempts, acceptances and mean acceptance probability per neighbouring pair."""
    n = len(plan.temperatures_K)
    attempted = np.zeros(n - 1, dtype=int)
    accepted = np.zeros(n - 1, dtype=int)
    probability = np.zeros(n - 1)
    for row in rows:
        attempted[row[1]] += 1
        accepted[row[1]] += row[4]
        probability[row[1]] += row[5]
    steps, history = walker_history(n, rows)
    trips, lengths = round_trips(history, steps)
    dt_ps = plan.dt_fs * 1e-3
    return {"temperatures_K": list(plan.temperatures_K),
            "pairs": [f"{a:g}-{b:g} K" for a, b in zip(plan.temperatures_K,
                                                       plan.temperatures_K[1:], strict=False)],
            "attempted": attempted.tolist(), "accepted": accepted.tolist(),
            "acceptance": [a / t if t else None for a, t in zip(accepted, attempted,
                                                               strict=True)],
            "mean_probability": [p / t if t else None for p, t in zip(probability, attempted,
                                                                     strict=True)],
            "round_trips": trips, "round_trip_ps": [x * dt_ps for x in lengths],
            "exchange_stride": plan.exchange_stride}


def collect(plan: RemdPlan, final_status: str = "running", note: str = "") -> dict[str, Any]:
    """Write the frames of each temperature and the exchange record from the segments.

    Each file is written whole to a temporary name and moved into place, so a file holds
    exactly the frames collected (a reader never sees a half-written one).
    """
    per_temp, rows = gather(plan)
    folder = Path(plan.folder)
    n_frames = len(per_temp[0])
    last_step = per_temp[0][-1]["step"] if n_frames else 0
    status = final_status if final_status in h5md.STATUSES else "interrupted"
    failure = {"kind": "remd", "message": note} if status == "failed" else None
    for index in range(len(plan.temperatures_K)):
        spec = plan.spec_at(index)
        _write_temperature(spec, per_temp[index], status, failure)
    summary = exchange_summary(plan, rows)
    steps, history = walker_history(len(plan.temperatures_K), rows)
    _write_record(folder / RECORD, plan, summary, steps, history, per_temp,
                  {"status": status, "note": note, "n_steps": int(last_step),
                   "frames_per_temperature": n_frames})
    return {"status": status, "note": note, "frames_per_temperature": n_frames,
            "last_step": int(last_step), **summary}


def _write_temperature(spec: RunSpec, frames: list[dict[str, Any]], status: str,
                       failure: dict[str, Any] | None) -> None:
    out = Path(spec.out_file)
    atoms = read_structure(spec.start_file)
    tmp = out.with_name(out.stem + ".collect.h5")
    prov = provenance.collect(spec)
    prov["protocol"] = "remd"
    h5md.create(tmp, atoms.numbers, atoms.get_masses(), spec.periodic, spec.to_json(), prov,
                atoms.positions, np.asarray(atoms.cell))
    if frames:
        h5md.append(tmp, frames)
        with h5md.open_file(tmp, "a") as f:
            f[h5md.PARAMS].create_dataset("remd_walker", data=np.array(
                [fr["walker"] for fr in frames], dtype=np.int16))
    h5md.set_status(tmp, status, failure)
    tmp.replace(out)


def _write_record(path: Path, plan: RemdPlan, summary: dict[str, Any], steps: np.ndarray,
                  history: np.ndarray, per_temp: dict[int, list[dict[str, Any]]],
                  state: dict[str, Any]) -> None:
    tmp = path.with_name(path.stem + ".collect.h5")
    with h5py.File(tmp, "w") as f:
        f.attrs["plan"] = plan.to_json()
        f.attrs["summary"] = json.dumps({**summary, **state}, sort_keys=True)
        f.create_dataset("temperatures_K", data=np.asarray(plan.temperatures_K))
        f.create_dataset("exchange_step", data=steps)
        f.create_dataset("exchange_time_ps", data=steps * plan.dt_fs * 1e-3)
        f.create_dataset("walker_temperature_index", data=history.astype(np.int16))
        energies = np.array([[fr["potential"] for fr in per_temp[i]]
                             for i in range(len(plan.temperatures_K))])
        if energies.size:
            f.create_dataset("potential_energy_eV", data=energies)
    tmp.replace(path)


def walker_temperatures(folder: Path, plan: RemdPlan) -> np.ndarray:
    """Each walker's temperature index at every frame time: an array (walkers, frames).

    Read from the ``remd_walker`` label of each temperature file's frames (which walker, i.e.
    which i-PI system and so which continuous trajectory, the frame belongs to), so frame
    ``i`` of walker ``w`` is frame ``i`` of the file at temperature index ``[w, i]``. Only the
    frames present at every temperature are covered.
    """
    labels = []
    for temp in plan.temperatures_K:
        with h5md.open_file(temperature_file(folder, temp), "r") as f:
            group = f[h5md.PARAMS]
            labels.append(group["remd_walker"][:] if "remd_walker" in group
                          else np.zeros(0, dtype=np.int16))
    n = min(len(x) for x in labels)
    walker_at = np.array([x[:n] for x in labels], dtype=np.intp)  # (temperatures, frames)
    where = np.full(walker_at.shape, -1, dtype=np.intp)
    for t_index, row in enumerate(walker_at):
        where[row, np.arange(n)] = t_index
    if n and (where < 0).any():
        raise RuntimeError(f"{folder}: the frames' walker labels are not one walker per "
                           "temperature at every frame")
    return where


def along_walkers(where: np.ndarray, per_temperature: np.ndarray) -> np.ndarray:
    """Per-temperature frame values rearranged along the walkers.

    Parameters
    ----------
    where
        (walkers, frames) temperature indices, from :func:`walker_temperatures`.
    per_temperature
        (temperatures, frames, ...) a value of each temperature's frames (cut to ``frames``).

    Returns
    -------
    np.ndarray
        (walkers, frames, ...): the value along each walker's own trajectory.
    """
    frames = np.arange(where.shape[1])
    return np.asarray(per_temperature)[where, frames[None, :]]


def read_record(path: Path) -> dict[str, Any]:
    """The summary of an exchange record (status, counts, acceptance, round trips)."""
    with h5py.File(path, "r") as f:
        return json.loads(f.attrs["summary"])


# ------------------------------------------------------------------ launching
DEFAULT_EXCHANGE_STRIDE = 100


def walker_start(k: int, ladder_id: int, n_starts: int) -> int:
    """Which of the challenge's starts walker ``k`` of ladder ``ladder_id`` begins from.

    Ladder 1: start k (the lowest temperature gets start 0); ladder 2: the starts from the
    other end (start n-1 at the lowest temperature), so two ladders begin from different
    structures at each temperature; further ladders: shifted by ladder_id - 1.
    """
    if ladder_id == 1:
        return k % n_starts
    if ladder_id == 2:
        return (n_starts - 1 - k) % n_starts
    return (k + ladder_id - 1) % n_starts


def plan_from_settings(settings: dict[str, Any]) -> RemdPlan:
    """The replica-exchange plan of launch settings; bad input is a :class:`UserError`."""
    from harness import challenges, config, models
    from harness.plan import derive_seed, n_steps_for
    from harness.units import parse_time_ps

    challenge = challenges.load(settings["challenge"])
    if settings["ladder"] and settings["temperatures"]:
        raise UserError("--ladder and --temperatures both give the ladder: keep one")
    if settings["ladder"]:
        temps = parse_ladder(settings["ladder"])
    elif settings["temperatures"]:
        try:
            temps = check_ladder([float(t) for t in settings["temperatures"]])
        except ValueError:
            raise UserError(f"--temperatures {settings['temperatures']}: give numbers in K, "
                            "e.g. 500,560,630") from None
    else:
        raise UserError("--protocol remd needs a ladder: --ladder LOW:HIGH:N (e.g. "
                        "500K:900K:8) or --temperatures T1,T2,...")
    if settings.get("replicas") not in (None, 1):
        raise UserError("--replicas does not apply to --protocol remd (one walker per "
                        "temperature)")
    batch = settings.get("batch") or 0
    if batch > 1 and settings.get("jobs"):
        raise UserError("--batch and --jobs both set the force clients of --protocol remd: "
                        "--batch N gives one batched client per N temperatures; keep one")
    if settings["engine"] != "ipi" or str(settings.get("ensemble") or "nvt") != "nvt":
        raise UserError("--protocol remd runs in i-PI with the challenge's thermostat: drop "
                        "--engine lammps and --ensemble nve")
    names = list(dict.fromkeys(settings["model"] or []))
    if len(names) != 1:
        raise UserError("--protocol remd runs one model per launch: give one --model")
    name = names[0]
    family = models.get_family(name)
    if family.ase_calculator is None:
        raise UserError(f"model {name!r} is served by LAMMPS only; --protocol remd needs a "
                        "model with an ASE calculator (the python force client)")
    # installed here, or under the model's own interpreter (--model-python), asked there
    python = config.model_pythons(settings, names)[name]
    files = config.model_files(settings["model_file"], names)
    options = config.model_options(settings["model_option"], names)
    model_file = models.resolve_model_file(family, files[name], challenge.name, options[name])
    config.check_elements(family, model_file, challenge, options[name])
    ladder_id = settings["ladder_id"] if settings["ladder_id"] is not None else 1
    if ladder_id < 1:
        raise UserError(f"--ladder-id {ladder_id}: give 1, 2, ...")
    stride_x = (settings["exchange_stride"] if settings["exchange_stride"] is not None
                else DEFAULT_EXCHANGE_STRIDE)
    if stride_x < 1:
        raise UserError(f"--exchange-stride {stride_x}: give at least 1 step")
    base = challenge.demo if settings["preset"] == "demo" else challenge.protocol
    length_ps = parse_time_ps(settings["time"]) if settings["time"] else base.length_ps
    dt_fs = settings["dt"] if settings["dt"] is not None else base.dt_fs
    stride = settings["stride"] if settings["stride"] is not None else base.stride
    if stride < 1:
        raise UserError(f"--stride {stride}: give at least 1")
    n_steps = n_steps_for(length_ps, dt_fs)
    config.check_frame_interval(settings, n_steps, stride, dt_fs)
    label = config.resolve_labels(settings, names, files, options)[name]
    label = f"{label}-remd-ladder{ladder_id}"
    starts = [str(challenge.start_for_replica(walker_start(k, ladder_id,
                                                           len(challenge.starts))))
              for k in range(len(temps))]
    box = (models.vacuum_box(family, sorted(set(starts)))
           if family.periodic_only and not challenge.periodic else {})
    batch = min(batch, len(temps)) if batch > 1 else 0
    out = Path(settings["out"]).expanduser().resolve()
    return RemdPlan(
        challenge=challenge.name, model=name, model_label=label,
        model_file=str(model_file) if model_file else None, temperatures_K=temps,
        start_files=starts, seed=derive_seed(settings["seed"], challenge.name, temps[0],
                                             1000 * ladder_id),
        dt_fs=dt_fs, n_steps=n_steps, stride=stride, exchange_stride=stride_x,
        thermostat_tau_fs=base.thermostat_tau_fs, periodic=challenge.periodic,
        folder=str(out / challenge.name / label), ladder=ladder_id,
        model_options=options[name],
        clients=(math.ceil(len(temps) / batch) if batch else
                 max(1, settings["jobs"] or min(len(temps), config.default_jobs()))),
        batch=batch, model_python=python, vacuum_box=box,
        omp_threads=settings["threads"] or 1, stall_timeout_s=settings["stall_timeout"],
        startup_timeout_s=settings["startup_timeout"],
        checkpoint_steps=stride * settings["flush_every"])


def describe(plan: RemdPlan) -> str:
    """One line: what the launch will run."""
    temps = ", ".join(f"{t:g}" for t in plan.temperatures_K)
    return (f"plan: challenge {plan.challenge}, model {plan.model_label}, replica exchange "
            f"(ladder {plan.ladder}) at T = {temps} K, {plan.n_steps * plan.dt_fs * 1e-3:g} ps "
            f"per temperature (dt {plan.dt_fs:g} fs, frame every {plan.stride} steps, exchange "
            f"every {plan.exchange_stride} steps), {plan.clients} "
            + (f"batched force client(s) serving {'+'.join(map(str, plan.batch_sizes()))} "
               "walkers" if plan.batch else "force client(s)")
            + (f" under {plan.model_python}" if plan.model_python else "")
            + (f"; vacuum box {plan.vacuum_box['edge_angstrom']:g} A for the model"
               if plan.vacuum_box else ""))



def submit(task_args: list[str], settings: dict[str, Any], args: Any) -> int:
    """``--protocol remd --submit``: the whole ladder is one Slurm array task (it requeues
    on USR1 and resumes like any run). ``args``: the launch's parsed options (farm, template,
    extra sbatch options)."""
    from harness import slurm

    if args.farm:
        raise UserError("--farm does not apply to --protocol remd: one ladder is one task")
    plan = plan_from_settings(settings)
    print(describe(plan))
    out = Path(settings["out"]).expanduser().resolve()
    submission = slurm.submit(task_args, 1, [0], out, template=args.slurm_template,
                              sbatch_options=args.sbatch_option, n_runs=1)
    print(slurm.describe(submission, out))
    return 0


def launch(settings: dict[str, Any]) -> int:
    """``python -m harness.launch --protocol remd``: plan, run (or resume), summarise."""
    plan = plan_from_settings(settings)
    print(describe(plan), flush=True)
    if settings["dry_run"]:
        for k, (temp, start) in enumerate(zip(plan.temperatures_K, plan.start_files,
                                              strict=True)):
            print(f"  walker {k}: starts at {temp:g} K from {Path(start).name}  -> "
                  f"{temperature_file(Path(plan.folder), temp)}")
        return 0
    outcome = RemdRun(plan, progress=not settings["quiet"]).run()
    if outcome["status"] == "skipped":
        print(f"{plan.name}: skipped, {outcome['note']}")
        return 0
    print(f"{plan.name}: {outcome['status']} at step {outcome['last_step']} of {plan.n_steps}, "
          f"{outcome['frames_per_temperature']} frames per temperature"
          + (f" ({outcome['note']})" if outcome["note"] else ""))
    for pair, acc, tried in zip(outcome["pairs"], outcome["acceptance"], outcome["attempted"],
                                strict=True):
        flag_low = "  (low: below 10%, add a temperature here)" if acc is not None and \
            acc < 0.1 else ""
        shown = "-" if acc is None else f"{100 * acc:.0f}%"
        print(f"  exchange {pair}: {shown} of {tried} accepted{flag_low}")
    print(f"  round trips per walker: {outcome['round_trips']}")
    print(f"trajectories: {plan.folder}/<T>K/replica-00.h5; exchange record: "
          f"{plan.folder}/{RECORD}")
    if outcome["status"] == "interrupted":
        print("run the same command again to resume")
        return 3
    return 0 if outcome["status"] == "completed" else 1
