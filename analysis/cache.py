"""Results keyed on file content, so unchanged trajectories are not analysed twice.

Two parts:

* :class:`ContentHasher`: the SHA-256 of a file's bytes. Hashing gigabytes of trajectories on
  every report would cost as much as reading them, so a digest is remembered together with
  the file's (size, mtime_ns, ctime_ns, inode), as ``git`` does in its index: a file whose
  stat is unchanged is not read again. Any write to a file changes its ctime, which the
  user cannot set back, so a changed file is always hashed again.
* :class:`ResultCache`: entries under ``ROOT/<name>/<scope>/<key>/``, where the key is a
  digest of the code that computes the result and the content digests of its inputs
  (:func:`make_key`). Storing an entry removes the older entries of the same name and scope,
  so the cache holds one result per (analysis, challenge).

Entries are pickles written by this package into the user's own output folder; do not
point the cache at a folder other people can write to.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

_PACKAGES = ("analysis", "harness")
#: Modules that only present results (how the report looks): editing them keeps the cache.
_PRESENTATION = ("analysis/render.py", "analysis/report_layout.py", "analysis/progress.py",
                 "analysis/commands/report.py")


class ContentHasher:
    """SHA-256 of file contents, remembered by stat in ``memo_file`` (JSON) between runs."""

    def __init__(self, memo_file: Path | None = None) -> None:
        self.memo_file = memo_file
        self._memo: dict[str, list] = {}
        self.bytes_hashed = 0
        if memo_file is not None and memo_file.is_file():
            try:
                self._memo = json.loads(memo_file.read_text())
            except (OSError, ValueError):
                self._memo = {}

    @staticmethod
    def _stat_key(path: Path) -> list[int]:
        st = path.stat()
        return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]

    def needs_reading(self, path: Path) -> bool:
        """Whether :meth:`digest` will read the file (its stat changed or is unknown)."""
        entry = self._memo.get(str(path.resolve()))
        return entry is None or entry[0] != self._stat_key(path)

    def digest(self, path: Path, on_bytes: Callable[[int], None] | None = None) -> str:
        """Hex SHA-256 of the file's bytes; ``on_bytes(n)`` is told of every block read."""
        name = str(path.resolve())
        stat_key = self._stat_key(path)
        entry = self._memo.get(name)
        if entry is not None and entry[0] == stat_key:
            return entry[1]
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
                self.bytes_hashed += len(block)
                if on_bytes is not None:
                    on_bytes(len(block))
        hexdigest = digest.hexdigest()
        self._memo[name] = [stat_key, hexdigest]
        return hexdigest

    def save(self) -> None:
        """Write the memo (atomically), if it has a file."""
        if self.memo_file is None:
            return
        self.memo_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.memo_file.with_name(self.memo_file.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self._memo))
        tmp.replace(self.memo_file)


def code_files(module: ModuleType, extra: Iterable[Path] = ()) -> list[Path]:
    """The source files a result computed by ``module`` depends on.

    All Python files of the ``analysis`` and ``harness`` packages (small; an observable
    usually calls library modules beside its command module) except those that only present
    the report, the module's own file when it lives elsewhere (a plug-in), and ``extra``
    files such as a challenge's reference data.
    """
    files: set[Path] = set()
    for package in _PACKAGES:
        root = Path(__import__(package).__file__).resolve().parent
        files.update(p for p in root.rglob("*.py") if "__pycache__" not in p.parts
                     and p.relative_to(root.parent).as_posix() not in _PRESENTATION)
    own = getattr(module, "__file__", None)
    if own:
        files.add(Path(own).resolve())
    files.update(Path(p).resolve() for p in extra)
    return sorted(files)


def make_key(name: str, version: str, code_digests: Iterable[str],
             input_digests: Iterable[str]) -> str:
    """Digest of an analysis's name, declared version, code and inputs (order-insensitive)."""
    digest = hashlib.sha256()
    for part in (name, version, *sorted(code_digests), "|", *sorted(input_digests)):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:32]


class ResultCache:
    """Results stored as ``ROOT/<name>/<scope>/<key>/result.pkl`` plus the files they refer to."""

    RESULT = "result.pkl"

    def __init__(self, root: Path) -> None:
        self.root = root

    def entry(self, name: str, scope: str, key: str) -> Path:
        """The folder of one entry (it may not exist)."""
        return self.root / _safe(name) / _safe(scope) / key

    def load(self, name: str, scope: str, key: str) -> Any | None:
        """The stored result, or None when there is none (or it cannot be read)."""
        path = self.entry(name, scope, key) / self.RESULT
        if not path.is_file():
            return None
        try:
            with open(path, "rb") as handle:
                return pickle.load(handle)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            return None

    def workdir(self, name: str, scope: str, key: str) -> Path:
        """A fresh folder in which a result is computed before :meth:`store` commits it."""
        work = self.entry(name, scope, key).with_name(f"{key}.work-{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        return work

    def store(self, name: str, scope: str, key: str, work: Path, result: Any) -> Path:
        """Pickle ``result`` into ``work``, make it the entry for ``key`` and drop older keys."""
        data = pickle.dumps(result)  # first, so that an unpicklable result leaves no entry
        (work / self.RESULT).write_bytes(data)
        final = self.entry(name, scope, key)
        shutil.rmtree(final, ignore_errors=True)
        work.replace(final)
        for other in final.parent.iterdir():
            if other.name != key and not _in_use(other.name):
                shutil.rmtree(other, ignore_errors=True)
        return final

    def discard(self, work: Path) -> None:
        """Remove a work folder whose computation failed."""
        shutil.rmtree(work, ignore_errors=True)


def _in_use(name: str) -> bool:
    """Whether a folder is the work folder of a process still running (``KEY.work-PID``)."""
    _, sep, pid = name.rpartition(".work-")
    if not sep or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _safe(text: str) -> str:
    """A file-name-safe version of a name (module names, challenge names)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text) or "_"
