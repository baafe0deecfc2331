"""Start the i-PI server with its outputs going into named pipes.

Two things in i-PI assume its outputs are regular files: ``os.fsync`` after a flush (EINVAL
on a pipe) and numpy's ``tofile`` in the ``bin`` writer (needs a seekable file). This shim
makes fsync tolerate pipes and writes the very same bytes with ``write(array.tobytes())``,
then runs the installed ``i-pi`` script unchanged.

Run as ``python -m harness.engines.ipi_server input.xml``. With ``--exchange-log FILE``
before the input, i-PI's replica exchange tries neighbouring temperatures and logs every
attempt (:mod:`harness.protocols.exchange`).
"""

from __future__ import annotations

import errno
import os
import runpy
import shutil
import sys
from pathlib import Path


def _fsync_tolerating_pipes(fd) -> None:
    try:
        _real_fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise


_real_fsync = os.fsync


def _print_binary_to_stream(atoms, cell, filedesc=sys.stdout, title="", cell_conv=1.0,
                            atoms_conv=1.0) -> None:
    """i-PI's ``print_binary`` byte for byte, through ``write`` so that pipes work."""
    import numpy as np

    names = "|".join(atoms.names)
    filedesc = getattr(filedesc, "buffer", filedesc)  # i-PI opens the file in text mode
    filedesc.write((cell.h.flatten() * cell_conv).tobytes())
    filedesc.write(np.asarray([atoms.natoms]).tobytes())
    filedesc.write((atoms.q * atoms_conv).tobytes())
    filedesc.write(np.asarray([len(names)]).tobytes())
    filedesc.write(np.asarray([names]).tobytes())
    filedesc.write(np.asarray([title]).tobytes())


def ipi_script() -> str:
    """Path of the installed ``i-pi`` command."""
    script = Path(sys.executable).with_name("i-pi")
    if script.exists():
        return str(script)
    found = shutil.which("i-pi")
    if found is None:
        raise SystemExit("the i-pi command is not installed: pip install ipi")
    return found


def main() -> None:
    """Patch fsync, then hand over to i-PI's own main program."""
    from ipi.utils.io.backends import io_binary

    os.fsync = _fsync_tolerating_pipes
    io_binary.print_binary = _print_binary_to_stream
    args = sys.argv[1:]
    if args[:1] == ["--exchange-log"]:
        from harness.protocols import exchange

        exchange.install(Path(args[1]))
        args = args[2:]
    script = ipi_script()
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
