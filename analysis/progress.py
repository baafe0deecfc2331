"""A progress bar on stderr for analyses that take a while.

On a terminal it redraws one line (``[#####-----]  50%  3/6  ramachandran: alanine-tetrapeptide
12 s``) and keeps the clock moving while a long step runs; elsewhere (a log file, a Slurm
job) it prints one line per finished step instead, so logs stay readable.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

_WIDTH = 24


class Progress:
    """Steps done out of ``total``, with a note on the current step."""

    def __init__(self, total: int, stream: TextIO | None = None, enabled: bool = True,
                 tick_s: float = 0.5) -> None:
        self.total = max(1, total)
        self.done = 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.live = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.note = ""
        self.fraction_of_step = 0.0
        self._start = time.perf_counter()
        self._step_start = self._start
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if self.live:
            self._ticker = threading.Thread(target=self._tick, args=(tick_s,), daemon=True)
            self._ticker.start()

    def start(self, note: str) -> None:
        """A new step begins."""
        with self._lock:
            self.note = note
            self.fraction_of_step = 0.0
            self._step_start = time.perf_counter()
            self._draw()

    def partial(self, fraction: float) -> None:
        """How far the current step is (0..1), when it can tell."""
        with self._lock:
            self.fraction_of_step = min(max(fraction, 0.0), 1.0)
            self._draw()

    def finish(self, result: str = "") -> None:
        """The current step is done; ``result`` says how (e.g. "cached", "3.2 s")."""
        with self._lock:
            self.done = min(self.done + 1, self.total)
            self.fraction_of_step = 0.0
            if self.enabled and not self.live:
                elapsed = time.perf_counter() - self._step_start
                print(f"report: {self.note}: {result or f'{elapsed:.1f} s'}",
                      file=self.stream, flush=True)
            self._draw()

    def close(self) -> None:
        """Stop the clock and end the line."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join(timeout=2)
        if self.live:
            with self._lock:
                self.stream.write("\n")
                self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tick(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            with self._lock:
                self._draw()

    def _draw(self) -> None:
        if not self.live:
            return
        fraction = (self.done + self.fraction_of_step) / self.total
        filled = int(round(fraction * _WIDTH))
        elapsed = time.perf_counter() - self._start
        line = (f"[{'#' * filled}{'-' * (_WIDTH - filled)}] {fraction:4.0%}  "
                f"{self.done}/{self.total}  {self.note}  {elapsed:.0f} s")
        self.stream.write("\r" + line[:119].ljust(119))
        self.stream.flush()
