"""Private unix-socket folders for i-PI and its force clients: the one naming convention.

Every run talks to its force client over a unix socket ``/tmp/ipi_<token>/sock``: LAMMPS
``fix ipi`` and ASE's socket client hard-code the ``/tmp/ipi_`` prefix (i-PI and its python
driver take it as ``sockets_prefix`` / ``-S``), so the harness puts a private folder (mode
0700) right after that prefix and gives i-PI the address ``<token>/sock``. This module is the
only place that knows the prefix.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

SOCKET_PREFIX = "/tmp/ipi_"  # LAMMPS fix ipi and ASE hard-code it; keep one convention
#: Optional tag put in front of the random socket-folder name (letters and digits, up to 16), so
#: that one test session can tell its own socket folders from other people's on a shared machine.
SOCKET_TAG_ENV = "TEA_HARNESS_SOCKET_TAG"
SOCKET_NAME = "sock"


def socket_token() -> str:
    """A fresh name for a private socket folder: the optional tag, then 96 random bits."""
    tag = "".join(c for c in os.environ.get(SOCKET_TAG_ENV, "") if c.isalnum())[:16]
    return tag + secrets.token_hex(12)


def folder_of(token: str) -> Path:
    """The private folder of a token (``/tmp/ipi_<token>``)."""
    return Path(f"{SOCKET_PREFIX}{token}")


def address_of(token: str, name: str = SOCKET_NAME) -> str:
    """The address i-PI and LAMMPS are given: relative to the prefix (``<token>/sock``)."""
    return f"{token}/{name}"


def full_path(address: str) -> str:
    """The socket file of an address (prefix + address): what a python client connects to."""
    return f"{SOCKET_PREFIX}{address}"


def make_private_folder(name: str = SOCKET_NAME) -> tuple[Path, str]:
    """Create a fresh private socket folder (mode 0700); returns (folder, address of the
    socket ``name`` in it)."""
    token = socket_token()
    folder = folder_of(token)
    folder.mkdir(mode=0o700)
    return folder, address_of(token, name)


def is_private_folder(path: Path) -> bool:
    """Whether ``path`` is one of these socket folders (safe to remove when stale)."""
    return str(path).startswith(SOCKET_PREFIX) and Path(path).parent == Path(SOCKET_PREFIX).parent


def remove_stale(path: Path) -> None:
    """Remove a socket folder left by a killed process (nothing else is ever removed)."""
    if is_private_folder(path):
        shutil.rmtree(path, ignore_errors=True)


def tagged_folders(tag: str) -> set[str]:
    """Names of the existing socket folders whose token starts with ``tag`` (leak checks)."""
    first = folder_of(tag)
    return {p.name for p in first.parent.glob(f"{first.name}*") if p.is_dir()}
