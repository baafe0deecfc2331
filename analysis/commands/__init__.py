"""Subcommands of ``analysis`` that are not observables (``info``, ``report``, ...).

The observables live in :mod:`analysis.observables` (one folder each); :func:`modules` and
:func:`section_modules` list them too, so callers see one list of commands and providers.

A module here defines ``register(subparsers)``, which adds its subparser and sets ``func`` to a
function taking the parsed namespace and returning the exit code. Raise
:class:`harness.errors.UserError` for bad input. Adding a command is one new file; ``cli.py``
finds it. Keep heavy imports (matplotlib, scikit-learn) inside the command function so that
``analysis --help`` stays fast.

A module here may also define ``report_sections(files, workdir)`` (the contract is in
:mod:`analysis.sections`): ``analysis report`` finds it through :func:`section_modules`, also in
a module without a command of its own.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def _own() -> list[ModuleType]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found.append(module)
    return found


def _all() -> list[ModuleType]:
    from analysis import observables

    return sorted(_own() + observables.modules(), key=lambda m: m.__name__.rsplit(".", 1)[-1])


def modules() -> list[ModuleType]:
    """The command modules here and the observable packages, sorted by name."""
    return [m for m in _all() if hasattr(m, "register")]


def section_modules() -> list[ModuleType]:
    """Modules here and observable packages that define ``report_sections``, by name."""
    return [m for m in _all() if callable(getattr(m, "report_sections", None))]
