"""i-PI input files for a run: filled from the ``ipi_xml/`` template by parsing the XML."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from harness import REPO_DIR, protocols
from harness.errors import UserError
from harness.plan import RunSpec
from harness.structures import read_structure

TEMPLATE = REPO_DIR / "ipi_xml" / "nvt.xml"
#: Frame stream files i-PI writes (trajectory name -> file i-PI opens for bead 0).
STREAMS = {"positions": "pos_0.bin", "velocities": "vel_0.bin", "forces": "frc_0.bin"}
PROPERTIES_FILE = "properties"
CHECKPOINT_PREFIX = "chk"
#: Vacuum padding around a gas-phase molecule; i-PI needs a cell even with pbc off.
GAS_PHASE_BOX_ANGSTROM = 200.0


def _set(root: ET.Element, path: str, value: str) -> None:
    node = root.find(path)
    if node is None:
        raise UserError(f"i-PI template {TEMPLATE} lacks <{path}>; restore it from git")
    node.text = f" {value} "


def _set_strides(root: ET.Element, stride: int, checkpoint_stride: int) -> None:
    output = root.find("output")
    assert output is not None
    for node in output:
        if node.tag in ("properties", "trajectory"):
            node.set("stride", str(stride))
        elif node.tag == "checkpoint":
            node.set("stride", str(checkpoint_stride))


def checkpoint_stride(spec: RunSpec) -> int:
    """Steps between i-PI checkpoints: the frames of one H5MD flush (a multiple of the stride)."""
    return spec.stride * spec.flush_every_frames


#: i-PI's own wait for a force answer (the template's value) when the harness waits less.
IPI_SOCKET_TIMEOUT_S = 600.0


def socket_timeout_s(spec: RunSpec) -> float:
    """How long i-PI waits for one force answer before it drops the client and exits.

    Never shorter than the harness's stall watchdog plus a minute: the supervisor, not i-PI,
    decides that a model hangs (and records ``stalled``). With i-PI's 600 s under a longer
    ``--stall-timeout``, a slow or paused model made i-PI quit first, and the run ended
    ``server_exited`` without a checkpoint to resume from.
    """
    return max(IPI_SOCKET_TIMEOUT_S, float(spec.stall_timeout_s) + 60.0)


def make_input(spec: RunSpec, socket_address: str, start_xyz: Path,
               start_step: int = 0) -> str:
    """The i-PI input XML for a fresh run, as text.

    Parameters
    ----------
    spec
        The run.
    socket_address
        Unix socket path (i-PI is started with an empty socket prefix).
    start_xyz
        The starting structure (extxyz) as seen from the run's working folder.
    start_step
        The step the run starts at (0; a run going on from a stored frame: that frame's),
        for protocols whose input depends on it (the heating ramp's counter).
    """
    root = ET.parse(TEMPLATE).getroot()
    _set(root, "total_steps", str(spec.n_steps))
    _set(root, "prng/seed", str(spec.seed))
    _set(root, "ffsocket/address", socket_address)
    _set(root, "ffsocket/timeout", f"{socket_timeout_s(spec)!r}")
    _set(root, "system/initialize/file", str(start_xyz))
    _set(root, "system/initialize/velocities", f"{spec.temperature_K!r}")
    _set(root, "system/ensemble/temperature", f"{spec.temperature_K!r}")
    _set(root, "system/motion/dynamics/timestep", f"{spec.dt_fs!r}")
    _set_ensemble(root, spec)
    atoms = read_structure(spec.start_file)
    ffsocket = root.find("ffsocket")
    assert ffsocket is not None
    if spec.periodic:
        lengths = atoms.cell.cellpar()
        if abs(lengths[3:] - 90).max() > 1e-6:
            raise UserError(f"{spec.start_file}: only orthorhombic cells are supported for now")
        edges = ", ".join(repr(float(x)) for x in lengths[:3])  # numpy 2 reprs name the type
        _set(root, "system/initialize/cell", f"[ {edges} ]")
        ffsocket.set("pbc", "true")
    else:
        box = GAS_PHASE_BOX_ANGSTROM
        _set(root, "system/initialize/cell", f"[ {box}, {box}, {box} ]")
        ffsocket.set("pbc", "false")
    _set_strides(root, spec.stride, checkpoint_stride(spec))
    edit = protocols.get_protocol(spec.protocol).edit_ipi_input
    if edit is not None:  # e.g. the heating ramp's thermostat motion
        edit(root, spec, start_step)
    return ET.tostring(root, encoding="unicode")


def _set_ensemble(root: ET.Element, spec: RunSpec) -> None:
    """NVT: the challenge's Langevin thermostat. NVE: dynamics mode nve, no thermostat (the
    velocities still start thermal at the run's temperature)."""
    if spec.ensemble == "nve":
        dynamics = root.find("system/motion/dynamics")
        assert dynamics is not None
        dynamics.set("mode", "nve")
        for thermostat in dynamics.findall("thermostat"):
            dynamics.remove(thermostat)
        _set(root, "system/motion/fixcom", "false")
        return
    if spec.thermostat != "langevin":
        raise UserError(f"thermostat {spec.thermostat!r} is not supported; use langevin")
    _set(root, "system/motion/dynamics/thermostat/tau", f"{spec.thermostat_tau_fs!r}")


def make_restart_input(checkpoint_xml: str, socket_address: str,
                       spec: RunSpec | None = None) -> str:
    """Turn an i-PI checkpoint into the input of the next segment (new socket address; with
    ``spec``, the socket timeout of this segment's stall watchdog)."""
    root = ET.fromstring(checkpoint_xml)
    _set(root, "ffsocket/address", socket_address)
    if spec is not None:
        _set(root, "ffsocket/timeout", f"{socket_timeout_s(spec)!r}")
        # a longer --time extends the run; i-PI leaves the tag out of a checkpoint when it
        # holds its default (1000 steps), so it may have to be added
        if root.find("total_steps") is None:
            ET.SubElement(root, "total_steps")
        _set(root, "total_steps", str(spec.n_steps))
    return ET.tostring(root, encoding="unicode")


def make_last_frame_input(spec: RunSpec, structure: Path, velocities: list[float], step: int,
                          ethermo_ev: float, seed: int) -> str:
    """An i-PI input that goes on from a stored frame, for a run without a checkpoint to extend.

    Positions come from ``structure`` (extxyz), velocities (Angstrom/ps, flat) are given
    explicitly, the step counter and the simulation time start at ``step``, and the
    thermostat's accumulated energy at ``ethermo_ev`` (conserved - potential - kinetic of that
    frame), so the conserved energy goes on without a jump. Only the thermostat's random
    numbers start afresh, from ``seed``.
    """
    from ipi.utils.units import unit_to_internal  # i-PI's own constants: times line up

    root = ET.fromstring(make_input(spec, "placeholder", structure, start_step=step))
    node = root.find("system/initialize/velocities")
    assert node is not None
    node.set("mode", "manual")
    node.set("units", "atomic_unit")  # i-PI applies no unit conversion to manual vectors
    node.text = " [ " + ", ".join(repr(unit_to_internal("velocity", "m/s", 100.0 * float(v)))
                                  for v in velocities) + " ] "  # Angstrom/ps = 100 m/s
    _set(root, "prng/seed", str(seed))
    ET.SubElement(root, "step").text = f" {step} "
    ensemble = root.find("system/ensemble")
    assert ensemble is not None
    start = unit_to_internal("time", "femtosecond", step * spec.dt_fs)
    ET.SubElement(ensemble, "time").text = f" {start!r} "
    thermostat = root.find("system/motion//dynamics/thermostat")  # also inside mode multi
    if thermostat is not None:
        ethermo = unit_to_internal("energy", "electronvolt", ethermo_ev)
        ET.SubElement(thermostat, "ethermo").text = f" {ethermo!r} "
    return ET.tostring(root, encoding="unicode")


def checkpoint_step(checkpoint_xml: str) -> int:
    """The step an i-PI checkpoint was written at (0 when the tag is absent)."""
    match = re.search(r"<step>\s*(\d+)\s*</step>", checkpoint_xml)
    return int(match.group(1)) if match else 0
