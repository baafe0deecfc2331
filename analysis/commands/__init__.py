"""Subcommands of ``analysis`` beyond ``info`` and ``stability``, one module each.

A module here defines ``register(subparsers)``, which adds its subparser and sets ``func`` to a
function taking the parsed namespace and returning the exit code. Raise
:class:`harness.errors.UserError` for bad input. Adding a command is one new file; ``cli.py``
finds it. Keep heavy imports (matplotlib, scikit-learn) inside the command function so that
``analysis --help`` stays fast.

A module here may also define ``report_sections(files, workdir)`` (the contract is in
:mod:`analysis.sections`): ``analysis report`` finds it through :func:`section_modules`, also in
a module without a command of its own (``stability.py``: its command is built into ``cli.py``).
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


def section_modules() -> list[ModuleType]:
    """Modules in this package that define ``report_sections``, sorted by name."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        if callable(getattr(module, "report_sections", None)):
            found.append(module)
    return found
