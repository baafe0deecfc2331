"""Provenance of a run: versions, model file hash, host, times, command line."""

from __future__ import annotations

import getpass
import importlib.metadata
import os
import platform
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Any

from harness import __version__, model_python, models
from harness.plan import RunSpec

_CORE_PACKAGES = ("ipi", "ase", "numpy", "h5py", "scipy")


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def command_line() -> str:
    """The command the user typed (``python -m harness.launch ...`` rather than a file path)."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("harness/launch.py", "harness\\launch.py")):
        argv = ["python", "-m", "harness.launch", *argv[1:]]
    return shlex.join(argv)


def now() -> str:
    """Local time, ISO 8601 with offset."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def pretrained_record(family: models.ModelFamily, spec: RunSpec) -> dict[str, Any] | None:
    """Which pretrained model a run used and where its weights came from (None: the user's
    own file, or a family without pretrained models)."""
    if not family.pretrained:
        return None
    entry = family.pretrained_model(spec.model_options)
    record: dict[str, Any] = {"name": entry.name, "modal": family.modal(spec.model_options),
                              "licence": entry.licence, "elements": sorted(entry.elements)}
    if isinstance(entry.weights, models.Download):
        from harness.models import weights

        record["weights"] = weights.provenance(entry.weights, family.name)
        if spec.model_file != record["weights"]["cache_path"]:
            return None  # the user's own file (--model-file)
    elif spec.model_file is not None:
        return None
    else:
        record["weights"] = f"shipped in the {family.packages[0]} wheel"
    return record


def collect(spec: RunSpec) -> dict[str, Any]:
    """Everything needed to say how a run was made (model metadata included).

    With ``--model-python`` the family's package versions are those its interpreter sees
    (asked once, by running it), and ``model_python`` says which interpreter that was.
    """
    family = models.get_family(spec.model)
    model_file = None if spec.model_file is None else Path(spec.model_file)
    versions = {"tea-harness": __version__, "python": platform.python_version()}
    versions.update({d: _version(d) for d in _CORE_PACKAGES})
    interpreter = None
    if spec.model_python:
        interpreter = model_python.provenance(spec.model_python, family.packages)
        seen = interpreter.get("versions") or {}
        # the model's packages as its interpreter has them; numpy, ASE etc. of both sides
        # stay apart (this side's here, the model's under model_python)
        versions.update({d: seen.get(d, "unknown") for d in family.packages
                         if d not in _CORE_PACKAGES})
    else:
        versions.update(family.versions())
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return {
        "versions": versions,
        "model": spec.model,
        "model_file": spec.model_file,
        "model_sha256": models.sha256_of(family.model_files(model_file)) if model_file else None,
        "model_files": [p.name for p in family.model_files(model_file)] if model_file else [],
        "model_metadata": family.model_metadata(model_file),
        "pretrained": pretrained_record(family, spec),
        "vacuum_box": dict(spec.vacuum_box) or None,
        "seed": spec.seed,
        "ensemble": spec.ensemble,
        "thermostat": None if spec.ensemble == "nve" else spec.thermostat,
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "user": user,
        "command_line": os.environ.get("TEA_HARNESS_COMMAND", command_line()),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "start_time": now(),
        "end_time": None,
        "segments": [],
        "model_python": interpreter,
    }
