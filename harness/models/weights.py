"""Published weights of pretrained models: fetched on first use into a cache, hash checked.

A family whose weights are not in its package's wheel lists a
:class:`~harness.models.Download` (URL, expected SHA-256) per pretrained model. The file is
fetched only when that model is run (at planning, once, before any run starts), into
``$XDG_CACHE_HOME/tea-harness/models/<family>/`` (``~/.cache/...`` by default, or the folder
``TEA_HARNESS_MODEL_CACHE`` names), and its SHA-256 is compared with the recorded one before
it is used. The hash goes into every run's provenance like any model file's; the URL with it.
Where no hash of the file could be found (``sha256`` empty), the hash of the first download is
kept beside the cached file (``<file>.sha256``) and every later use is checked against it.

Offline (no network, or ``TEA_HARNESS_OFFLINE=1``, which the tests set), one line says what to
download and where to put it; the launch exits with code 2. ``--model-file`` always works.
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from harness.errors import UserError
from harness.models import Download, sha256_of

#: Seconds to wait for the server before giving up (offline machines fail at once).
TIMEOUT_S = 60.0


def cache_dir() -> Path:
    """Where published weights are kept: ``TEA_HARNESS_MODEL_CACHE``, else
    ``$XDG_CACHE_HOME/tea-harness/models`` (``~/.cache/tea-harness/models``)."""
    given = os.environ.get("TEA_HARNESS_MODEL_CACHE")
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "tea-harness" / "models"


def cached_path(download: Download, family: str) -> Path:
    """The cache path of one published file."""
    return cache_dir() / family / download.filename


#: What the provenance says of weights whose hash no source gives.
FIRST_USE = ("no published hash: the hash of the first download is kept beside the cached "
             "file and checked on every later use")


def _where_to_put(download: Download, target: Path) -> str:
    known = f" (sha256 {download.sha256})" if download.sha256 else ""
    return (f"download {download.url} and put it at {target}{known}, "
            "or give the file with --model-file")


def expected_sha256(download: Download, target: Path) -> str | None:
    """The hash the cached file must have: the published one, else the one kept at the first
    download (None before it)."""
    if download.sha256:
        return download.sha256
    pin = target.with_name(target.name + ".sha256")
    return pin.read_text().strip() if pin.is_file() else None


def fetch(download: Download, family: str, model: str) -> Path:
    """The cached weights of ``family`` ``model``, fetched and checked on first use.

    Raises
    ------
    UserError
        Offline or unreachable (one line: what to download and where to put it), or a file
        whose SHA-256 is not the recorded one (cached or just downloaded).
    """
    target = cached_path(download, family)
    expected = expected_sha256(download, target)
    if target.is_file():
        found = sha256_of(target)
        if expected is None:  # put there by hand, no hash published: kept as the reference
            target.with_name(target.name + ".sha256").write_text(found + "\n")
        elif found != expected:
            also = "" if download.sha256 else f" and {target.name}.sha256 beside it"
            raise UserError(f"model {family} {model}: the cached file {target} has sha256 "
                            f"{found}, not the expected {expected}; delete it{also} and "
                            "run again to fetch it anew")
        return target
    if os.environ.get("TEA_HARNESS_OFFLINE", "").strip() not in ("", "0"):
        raise UserError(f"model {family} {model}: its weights are not cached and "
                        f"TEA_HARNESS_OFFLINE is set: {_where_to_put(download, target)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{download.filename}.", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, \
                urllib.request.urlopen(download.url, timeout=TIMEOUT_S) as response:  # noqa: S310
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        found = sha256_of(tmp)
        if expected is not None and found != expected:
            raise UserError(f"model {family} {model}: {download.url} gave a file with sha256 "
                            f"{found}, not the expected {expected}; not used. "
                            + _where_to_put(download, target))
        if expected is None:
            target.with_name(target.name + ".sha256").write_text(found + "\n")
        tmp.replace(target)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UserError(f"model {family} {model}: cannot fetch its weights ({reason}): "
                        f"{_where_to_put(download, target)}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


def provenance(download: Download, family: str) -> dict[str, str]:
    """What a run records about published weights: URL, expected hash, its source, cache."""
    return {"url": download.url, "sha256": download.sha256,
            "sha256_source": download.sha256_source or FIRST_USE,
            "cache_path": str(cached_path(download, family))}
