"""Strict JSON for command output: non-finite floats (nan, inf) become null.

Python's :func:`json.dumps` writes ``NaN`` and ``Infinity``, which are not JSON: ``jq``, a
browser's ``JSON.parse`` and most other readers reject the whole document. Values that can be
non-finite (an R-hat of chains that never vary, a ratio with nothing to divide) carry their
meaning in a neighbouring field (e.g. ``mixed: false``).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def strict(value: Any) -> Any:
    """``value`` with every non-finite float (also numpy's) replaced by None, recursively."""
    if isinstance(value, dict):
        return {k: strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):  # a numpy scalar (arrays are left to ``default``)
        return strict(value.item())
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """:func:`json.dumps` of :func:`strict` ``(value)``; raises on anything still not JSON."""
    return json.dumps(strict(value), allow_nan=False, **kwargs)
