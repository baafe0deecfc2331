"""Output folders: writable before anything starts, and telling a full disk from other errors."""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

from harness.errors import UserError

#: Free space a run keeps in hand: an append that would leave less stops the run as
#: ``disk_full`` before writing (room for i-PI's checkpoint and the final status).
RESERVE_BYTES = 1 << 20
#: Below this many free bytes, a file system counts as full when a write failed.
FULL_BELOW_BYTES = 1 << 20
_FULL_TEXTS = ("No space left", "Disk quota exceeded", "errno = 28", "errno = 122",
               "[Errno 28]", "[Errno 122]", "ENOSPC", "EDQUOT")


def check_writable(folder: Path, flag: str = "--out") -> None:
    """Raise :class:`UserError` unless files can be created in ``folder`` (made if missing)."""
    probe = folder / f".write-test.{secrets.token_hex(6)}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
    except OSError as exc:
        raise UserError(f"{flag} {folder}: cannot write there ({exc.strerror or exc}); give a "
                        f"folder you can write to with {flag}") from None
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass


def free_bytes(folder: Path) -> int | None:
    """Bytes an unprivileged user may still write under ``folder`` (None if unknown)."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return None
    return stat.f_bavail * stat.f_frsize


def is_full(folder: Path, evidence: BaseException | str | None = None) -> bool:
    """Whether a failed write under ``folder`` was a full disk (or an exceeded quota).

    ``evidence`` is the exception or the log text of the failure: its errno or message says
    so directly; otherwise the free space of the file system decides.
    """
    if isinstance(evidence, OSError) and evidence.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if evidence is not None and any(t in str(evidence) for t in _FULL_TEXTS):
        return True
    free = free_bytes(folder)
    return free is not None and free < FULL_BELOW_BYTES
