"""Command output in strict JSON: nan and inf become null (``harness.jsonutil``)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from harness import jsonutil


def test_non_finite_values_become_null_and_the_rest_is_kept() -> None:
    data = {"rhat": math.inf, "nan": float("nan"), "np": np.float64("-inf"), "ok": 1.25,
            "n": np.int64(3), "rows": [1, math.nan, (2.0, np.float32("inf"))], "s": "inf"}
    text = jsonutil.dumps(data)
    assert "Infinity" not in text and "NaN" not in text
    back = json.loads(text)
    assert back == {"rhat": None, "nan": None, "np": None, "ok": 1.25, "n": 3,
                    "rows": [1, None, [2.0, None]], "s": "inf"}
    # what plain json.dumps writes is not JSON for strict readers
    with pytest.raises(ValueError):
        json.dumps({"rhat": math.inf}, allow_nan=False)
