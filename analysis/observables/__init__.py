"""The observables, one folder each (``analysis/observables/<name>/``), found here.

A folder's ``__init__.py`` declares ``OBSERVABLE`` (an instance of a subclass of
:class:`analysis.observables.base.Observable`) and exposes its ``register`` and
``report_sections`` at module level, so that the ``analysis`` command and ``analysis report``
treat it like any command module (see :mod:`analysis.commands`). Nothing is imported until
asked for.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def modules() -> list[ModuleType]:
    """The observable packages, sorted by name."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.ispkg and not info.name.startswith("_"):
            found.append(importlib.import_module(f"{__name__}.{info.name}"))
    return found


def get(name: str):
    """The declared observable called ``name`` (KeyError when there is none)."""
    for module in modules():
        if module.OBSERVABLE.name == name:
            return module.OBSERVABLE
    raise KeyError(name)
