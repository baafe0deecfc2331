"""Subcommands of ``analysis`` beyond ``info`` and ``stability``, one module each.

A module here defines ``register(subparsers)``, which adds its subparser and sets ``func`` to a
function taking the parsed namespace and returning the exit code. Raise
:class:`harness.errors.UserError` for bad input. Adding a command is one new file; ``cli.py``
finds it. Keep heavy imports (matplotlib, scikit-learn) inside the command function so that
``analysis --help`` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def modules() -> list[ModuleType]:
    """The command modules in this package, sorted by name."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "register"):
            found.append(module)
    return found
