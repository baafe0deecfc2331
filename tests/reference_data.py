"""Known-truth groups cut from a reference: its own runs, shortened, filed as model runs.

Used by ``tests/test_ramachandran.py`` and ``benchmarks/ramachandran_blocks.py``: runs of the
reference method, at its temperature, from the challenge's starts, judged against that
reference, must not be called different from it beyond the nominal rate.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py


def short_groups(reference: list[Path], out: Path, length_ps: float, per_group: int,
                 label: str = "xtb-short", unpaired: bool = False) -> list[Path]:
    """Copy the first ``length_ps`` of each reference run into ``out`` as model runs.

    Consecutive runs form a group of ``per_group`` (model ``{label}0``, ``{label}1``, ...;
    a remainder smaller than ``per_group`` is left out). Every time series is cut, the run spec
    names the group as the model, and the ``reference`` attribute is dropped. A group of 4 or
    more runs would pair with the very runs it was cut from (identical frames: JS 0); with
    ``unpaired`` the stored start positions move by 1e-4 A, so that the analysis compares the
    groups unpaired, the rules a benchmark of them is about.
    """
    written = []
    usable = len(reference) - len(reference) % per_group
    for k, src in enumerate(reference[:usable]):
        model = f"{label}{k // per_group}"
        with h5py.File(src) as a:
            times = a["particles/all/position/time"][:2]
            keep = int(round(length_ps / (times[1] - times[0]))) + 1
            spec = json.loads(a["parameters/harness"].attrs["run_spec"])
            dest = (out / spec["challenge"] / model / f"{spec['temperature_K']:g}K"
                    / f"replica-{k:02d}.h5")
            dest.parent.mkdir(parents=True, exist_ok=True)
            n = a["particles/all/position/value"].shape[0]
            with h5py.File(dest, "w") as b:
                def copy(name, obj, a=a, b=b, n=n, keep=keep):
                    if isinstance(obj, h5py.Group):
                        b.require_group(name).attrs.update(obj.attrs)
                        return
                    data = obj[()]
                    b.create_dataset(name, data=data[:keep] if obj.shape[:1] == (n,) else data)
                    b[name].attrs.update(obj.attrs)

                a.visititems(copy)
                b.attrs.update(a.attrs)
                harness = b["parameters/harness"]
                harness.attrs["run_spec"] = json.dumps(spec | {"model": model,
                                                               "model_label": model})
                if "reference" in harness.attrs:
                    del harness.attrs["reference"]
                if unpaired:
                    harness["start_positions"][0, 0] += 1e-4
        written.append(dest)
    return written
