"""The batched force client: one process, one model, many i-PI servers (``--batch N``).

Every run of a group keeps its own i-PI server, thermostat, seed, trajectory, watchdog and
resume point; only the force client is shared. Runs join through a group folder (see
:mod:`harness.batch`): a run's supervisor writes ``join/<token>.json`` (socket address, spec,
work folder, first step) and this client connects. Each step it waits for the positions of
every connected run (at most ``--gather-timeout`` seconds after the first arrived), evaluates
them in one model call (the family's ``batch_evaluator``, else a loop over one calculator per
run), and answers each run's GETFORCE. A run leaves when its i-PI says EXIT or closes the
socket, when its watchdog fires (the event is saved in its work folder first, exactly as the
one-run driver does), when its supervisor asks (``leave/<token>``), or when its own model
call raises; the others go on. Each departure is written to ``left/<token>.json``. The client
exits when no run remains and the launcher wrote ``done`` (or after ``--idle-timeout``).

Run as ``python -m harness.batch_driver --group DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harness import ipi_wire
from harness.driver import MODEL_CLOCK_FILE, ModelClock, ModelServer, step_monitor
from harness.model_python import CLIENT_PROTOCOL, check_protocol, parse_client_args

JOIN, LEFT, LEAVE, DONE = "join", "left", "leave", "done"
CLIENT_PID, GROUP_FILE, STATS_FILE = "client.pid", "group.json", "client_stats.json"
SOCKET_TIMEOUT_S = 60.0  # one message from a live i-PI never takes this long
CONNECT_TIMEOUT_S = 120.0
SCAN_INTERVAL_S = 0.2


@dataclass
class Member:
    """One run of the group, as the client sees it."""

    token: str
    work: Path
    server: ModelServer
    sock: socket.socket | None = None
    address: str = ""
    connect_deadline: float = 0.0
    initialised: bool = False
    posdata: bool = False  # positions received, forces not computed yet
    have_data: bool = False  # forces computed, GETFORCE not yet answered
    lagging: bool = False  # missed a gather: not waited for until it sends positions
    owed: list[bytes] = field(default_factory=list)  # STATUS/GETFORCE asked while computing
    energy: float = 0.0
    forces: np.ndarray = field(default_factory=lambda: np.zeros(0))


class GroupClient:
    """Serves every run that joins ``group`` with one model; see the module docstring."""

    def __init__(self, group: Path, gather_timeout_s: float = 1.0, idle_timeout_s: float = 600.0):
        self.group = group
        self.gather_timeout_s = gather_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.members: dict[str, Member] = {}
        self.seen: set[str] = set()
        self.family = self.model_file = self.options = None
        self.batch_evaluate = None
        self.stats = {"model_calls": 0, "structures": 0, "model_s": 0.0, "max_batch": 0}
        self.stop = False
        for sub in (JOIN, LEFT, LEAVE):
            (group / sub).mkdir(parents=True, exist_ok=True)

    # ----------------------------------------------------------------- joining
    def _load_model(self, spec) -> None:
        from harness import models

        self.family = models.get_family(spec.model)
        self.model_file = Path(spec.model_file) if spec.model_file else None
        self.options = dict(spec.model_options)
        self.model_key = (spec.model, spec.model_file, json.dumps(self.options, sort_keys=True))
        if self.family.batch_evaluator is not None:
            self.batch_evaluate = self.family.batch_evaluator(self.model_file, self.options)

    def _scan(self) -> None:
        """Take new join requests and leave requests from the group folder."""
        for path in sorted((self.group / JOIN).glob("*.json")):
            token = path.stem
            if token not in self.seen:
                self.seen.add(token)
                try:
                    self._add(token, json.loads(path.read_text()))
                except Exception as exc:  # noqa: BLE001 - a bad member must not stop the group
                    self._record_left(token, None, "error", 1, f"{type(exc).__name__}: {exc}")
        for path in (self.group / LEAVE).iterdir():
            member = self.members.get(path.name)
            if member is not None:
                self._leave(member, "asked", 0)

    def _add(self, token: str, request: dict[str, Any]) -> None:
        from ase.io import read

        from harness.plan import RunSpec

        check_protocol(request.get("protocol", CLIENT_PROTOCOL))
        spec = RunSpec.from_json(Path(request["spec"]).read_text())
        if self.family is None:
            self._load_model(spec)
        key = (spec.model, spec.model_file, json.dumps(dict(spec.model_options), sort_keys=True))
        if key != self.model_key:
            raise ValueError(f"run {spec.name} uses another model than this group")
        start = read(spec.start_file)
        monitor = None if request.get("no_watchdog") else step_monitor(
            spec, start, int(request.get("first_step", 0)))
        calculator = None
        if self.batch_evaluate is None:  # loop fallback: one calculator per run, as alone
            calculator = self.family.ase_calculator(self.model_file, dict(self.options))
        work = Path(request["work"])
        server = ModelServer(calculator, start.get_chemical_symbols(), spec.periodic, monitor,
                             ModelClock(work / MODEL_CLOCK_FILE), spec.vacuum_box)
        server.atoms.set_initial_charges(start.get_initial_charges())
        self.members[token] = Member(token=token, work=work, server=server,
                                     address=request["address"],
                                     connect_deadline=time.monotonic() + CONNECT_TIMEOUT_S)

    def _connect_pending(self) -> None:
        for member in list(self.members.values()):
            if member.sock is not None:
                continue
            member.sock = ipi_wire.try_connect(member.address)
            if member.sock is not None:
                member.sock.settimeout(SOCKET_TIMEOUT_S)
            elif time.monotonic() > member.connect_deadline:
                self._leave(member, "error", 1, f"no i-PI server on {member.address} "
                            f"after {CONNECT_TIMEOUT_S:.0f} s")

    # ----------------------------------------------------------------- leaving
    def _leave(self, member: Member, reason: str, code: int, message: str = "") -> None:
        if member.token not in self.members:  # already gone (one departure, one record)
            return
        if member.sock is not None:
            member.sock.close()
        if member.server.clock is not None:
            member.server.clock.close()
        self.members.pop(member.token, None)
        self._record_left(member.token, member, reason, code, message)

    def _record_left(self, token: str, member: Member | None, reason: str, code: int,
                     message: str) -> None:
        calls = member.server.calls if member is not None else 0
        line = {"driver": reason, "force_calls": calls, "group": self.group.name}
        if message:
            line["message"] = message
        if member is not None:
            try:
                with open(member.work / "driver.log", "a") as log:
                    if message:
                        log.write(message.rstrip() + "\n")
                    log.write(json.dumps(line) + "\n")
            except OSError:
                pass
        tmp = self.group / LEFT / f"{token}.json.tmp"
        tmp.write_text(json.dumps({"reason": reason, "code": code, **line}))
        tmp.replace(self.group / LEFT / f"{token}.json")

    # ------------------------------------------------------------- messages
    def _handle(self, member: Member) -> None:
        """Read and answer one message of this member's i-PI."""
        head = ipi_wire.recv_header(member.sock)
        if head == ipi_wire.STATUS:
            if member.posdata:  # busy, as a one-run client computing: answer when done
                member.owed.append(ipi_wire.STATUS)
            else:
                member.sock.sendall(ipi_wire.status_answer(member.initialised, member.have_data))
        elif head == ipi_wire.INIT:
            ipi_wire.recv_init(member.sock)
            member.initialised = True
        elif head == ipi_wire.POSDATA:
            member.server.set_structure(*ipi_wire.recv_posdata(member.sock))
            member.posdata, member.lagging = True, False
        elif head == ipi_wire.GETFORCE:
            if member.posdata:  # i-PI 3.3 sends POSDATA+GETFORCE at once: answer when done
                member.owed.append(ipi_wire.GETFORCE)
            else:
                self._answer_getforce(member)
        elif head == ipi_wire.EXIT:
            self._leave(member, "exit", 0)
        else:
            raise RuntimeError(f"unexpected message from i-PI: {head!r}")

    def _answer_getforce(self, member: Member) -> None:
        """Send the forces; after a watchdog event, save it and let the run go."""
        ipi_wire.send_forces(member.sock, member.energy, member.forces)
        member.have_data = False
        monitor = member.server.monitor
        if monitor is not None and monitor.done:
            monitor.save(member.work)  # before the socket closes: i-PI exits then
            self._leave(member, "event", 0)

    def _evaluate(self, ready: list[Member]) -> None:
        """One model call for every member whose positions arrived; isolate a failing one."""
        started = time.perf_counter()
        results: dict[str, tuple[float, np.ndarray]] = {}
        if self.batch_evaluate is not None:
            try:
                out = self.batch_evaluate([m.server.atoms for m in ready])
                results = {m.token: r for m, r in zip(ready, out, strict=True)}
            except Exception:  # noqa: BLE001 - find the member that fails, below
                results = {}
        for member in ready:
            if member.token in results:
                continue
            try:
                if self.batch_evaluate is not None:
                    results[member.token] = self.batch_evaluate([member.server.atoms])[0]
                else:
                    results[member.token] = member.server.evaluate()
            except Exception:  # noqa: BLE001 - the model's failure ends this run only
                self._leave(member, "error", 1, traceback.format_exc())
        self.stats["model_calls"] += 1
        self.stats["structures"] += len(results)
        self.stats["max_batch"] = max(self.stats["max_batch"], len(results))
        elapsed = time.perf_counter() - started
        self.stats["model_s"] += elapsed
        for member in ready:
            if member.token in results:
                # the group's call, shared equally by the runs it served
                member.server.record_model_time(elapsed / len(results))
                member.energy, member.forces = member.server.finish(*results[member.token])
                member.posdata, member.have_data = False, True
                try:  # the answers i-PI waits for, in the order it asked
                    while member.owed and member.token in self.members:
                        if member.owed.pop(0) == ipi_wire.GETFORCE:
                            self._answer_getforce(member)
                        else:
                            member.sock.sendall(ipi_wire.status_answer(member.initialised,
                                                                       member.have_data))
                except OSError:
                    self._leave(member, "closed", 0)

    # ------------------------------------------------------------------ loop
    def _connected(self) -> list[Member]:
        return [m for m in self.members.values() if m.sock is not None]

    def _read_messages(self, timeout_s: float) -> None:
        connected = self._connected()
        if not connected:
            time.sleep(min(timeout_s, SCAN_INTERVAL_S))
            return
        readable, _, _ = select.select([m.sock for m in connected], [], [], timeout_s)
        by_sock = {m.sock: m for m in connected}
        for sock in readable:
            member = by_sock[sock]
            try:
                self._handle(member)
            except (ipi_wire.SocketClosed, ConnectionError, OSError):
                self._leave(member, "closed", 0)
            except RuntimeError as exc:
                self._leave(member, "error", 1, str(exc))

    def run(self) -> None:
        """Serve until no member remains and the launcher says ``done`` (or idle timeout)."""
        last_scan = 0.0
        idle_since = time.monotonic()
        gather_start: float | None = None
        while not self.stop:
            now = time.monotonic()
            if now - last_scan >= SCAN_INTERVAL_S:
                last_scan = now
                self._scan()
                self._connect_pending()
                if self.members:
                    idle_since = now
                elif (self.group / DONE).exists() or now - idle_since > self.idle_timeout_s:
                    return
            waiting = [m for m in self._connected() if m.posdata]
            if waiting and gather_start is None:
                gather_start = now
            expected = [m for m in self._connected() if m.initialised and not m.lagging]
            gathered = waiting and all(m.posdata for m in expected)
            if waiting and (gathered or now - gather_start >= self.gather_timeout_s):
                for member in expected:
                    member.lagging = not member.posdata
                self._evaluate(waiting)
                gather_start = None
                continue
            wait_s = SCAN_INTERVAL_S if gather_start is None else max(
                0.0, min(SCAN_INTERVAL_S, gather_start + self.gather_timeout_s - now))
            self._read_messages(wait_s)

    def close(self) -> None:
        """Close every socket (the runs' i-PI servers then exit) and write the statistics."""
        for member in list(self.members.values()):
            self._leave(member, "closed", 1, "group force client stopped")
        (self.group / STATS_FILE).write_text(json.dumps(self.stats))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the group client process."""
    parser = argparse.ArgumentParser(prog="python -m harness.batch_driver")
    parser.add_argument("--group", required=True, help="the group folder")
    parser.add_argument("--gather-timeout", type=float, default=1.0,
                        help="seconds to wait for the other runs' positions once one arrived")
    parser.add_argument("--idle-timeout", type=float, default=600.0,
                        help="exit after this many seconds without any run")
    args = parse_client_args(parser, argv)
    if args is None:
        return 2
    group = Path(args.group)
    pid_file = group / CLIENT_PID
    if not pid_file.exists():
        pid_file.write_text(str(os.getpid()))
    client = GroupClient(group, args.gather_timeout, args.idle_timeout)

    def _on_term(signum: int, frame: Any) -> None:
        client.stop = True

    signal.signal(signal.SIGTERM, _on_term)
    try:
        client.run()
    finally:
        client.close()
    print(json.dumps({"group": group.name, **client.stats}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
