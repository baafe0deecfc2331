"""Pretrained families whose packages live in environments of their own (``--model-python``).

Each family here runs through its package's own loader. No test downloads weights: inside the
family's environment (``.venv-models/<family>``, built by ``tests/install-model-envs.sh``)
``tests/env_models.py`` builds the architecture of the family's default pretrained model with
random weights and writes it as that loader reads it. Through ``--model-file`` the family then
runs 2 short replicas of Challenge I, and the forces in the files must equal the package's own
ASE calculator on the same frames (1e-6 eV/A). The tests that need an environment skip, naming
the command that builds it, where it is absent; the bad-input ones need none.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, analysis, launch
from harness import h5md
from harness.structures import read_structure

CHALLENGE = "alanine-tetrapeptide"
ENVS = REPO / ".venv-models"
SCRIPT = REPO / "tests" / "env_models.py"
N_STEPS = 2
#: family -> file name of its random stand-in (the run is labelled <family>-<stem>)
FAMILIES = {"orb": "v3-random.ckpt", "mattersim": "m3gnet-random.pth",
            "aimnet2": "wb97m-random.pt"}


def env_python(family: str) -> Path:
    """The family's environment's interpreter; the test skips where it is absent."""
    python = ENVS / family / "bin" / "python"
    if not python.exists():
        pytest.skip(f"no environment {python.parent.parent}: run "
                    f"tests/install-model-envs.sh --with {family}")
    return python


def in_env(python: Path, *args: str, timeout: float = 1800) -> None:
    """Run ``tests/env_models.py`` under the family's interpreter (one torch thread)."""
    proc = subprocess.run([str(python), str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family_runs(request, tmp_path_factory) -> tuple[str, Path, Path]:
    """2 replicas of Challenge I with the family's random stand-in, client in its own env."""
    family = request.param
    python = env_python(family)
    root = tmp_path_factory.mktemp(family)
    checkpoint = root / FAMILIES[family]
    in_env(python, "checkpoint", family, str(checkpoint))
    out = root / "runs"
    proc = launch("--model", family, "--model-file", f"{family}={checkpoint}",
                  "--model-python", f"{family}={python}", "--challenge", CHALLENGE,
                  "--temperatures", "300", "--replicas", "2", "--time", f"{N_STEPS * 0.5}fs",
                  "--stride", "1", "--jobs", "2", "--threads", "1",
                  "--startup-timeout", "20min", "--stall-timeout", "10min", "--out", str(out),
                  timeout=2400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 completed, 0 failed" in proc.stdout
    return family, checkpoint, out


def _label(family: str) -> str:
    return f"{family}-{Path(FAMILIES[family]).stem}"


def test_forces_in_the_files_equal_the_packages_own_calculator(family_runs, tmp_path) -> None:
    """Every frame of both runs: the family's forces equal the package's own calculator,
    loaded from the same file by the package's own loader (1e-6 eV/A)."""
    family, checkpoint, out = family_runs
    files = sorted(out.glob(f"{CHALLENGE}/{_label(family)}/300K/replica-*.h5"))
    assert len(files) == 2
    for path in files:
        meta = h5md.read_meta(path)
        assert meta["status"] == "completed", meta["failure"]
        assert meta["provenance"]["model_python"]["executable"] == str(env_python(family))
        assert meta["provenance"]["model_sha256"] is not None
        frames = h5md.read_frames(path)
        assert len(frames["step"]) == N_STEPS + 1
        numbers = read_structure(meta["run_spec"]["start_file"]).numbers
        data = tmp_path / f"{path.stem}.npz"
        fields = {"positions": frames["positions"], "numbers": numbers}
        box = meta["run_spec"].get("vacuum_box") or {}
        if box:
            fields["boxes"] = np.array([np.eye(3) * box["edge_angstrom"]] * len(frames["step"]))
        np.savez(data, **fields)
        expected = tmp_path / f"{path.stem}.npy"
        in_env(env_python(family), "forces", family, str(checkpoint), str(data), str(expected))
        own = np.load(expected)
        assert float(np.abs(own).max()) > 1e-3  # a model that does something
        worst = float(np.abs(frames["forces"] - own).max())
        print(f"{family}: max |F_file - F_own| = {worst:.2e} eV/A")
        assert worst <= 1e-6


def test_the_report_names_the_model_readably(family_runs) -> None:
    family, _, out = family_runs
    proc = analysis("report", str(out), "--quiet", "--no-cache", "--sections", "stability")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (out / "reports" / "report.md").read_text()
    assert f"| {_label(family)} | 300 | 2 / 2 |" in text


@pytest.mark.parametrize("family, module", [("orb", "orb_models"), ("mattersim", "mattersim"),
                                            ("aimnet2", "aimnet")])
def test_an_interpreter_without_the_package_is_one_line(family: str, module: str,
                                                        tmp_path: Path) -> None:
    """This environment's own python lacks these packages: named as the model's
    interpreter it is refused before anything runs, in one line, exit code 2."""
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed in this environment")
    proc = launch("--model", family, "--model-python", f"{family}={sys.executable}",
                  "--out", str(tmp_path), "--dry-run")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert (f"that environment lacks the python package {module!r} that model {family!r} "
            "needs") in lines[0]


@pytest.mark.parametrize("family, url", [
    ("orb", "https://orbitalmaterials-public-models.s3.us-west-1.amazonaws.com/forcefields/"
            "orb-v3/orb-v3-conservative-inf-omat-20250404.ckpt"),
    ("mattersim", "https://raw.githubusercontent.com/microsoft/mattersim/main/"
                  "pretrained_models/mattersim-v1.0.0-1M.pth"),
    ("aimnet2", "https://storage.googleapis.com/aimnetcentral/aimnet2v2/AIMNet2/"
                "aimnet2_wb97m_d3_0.pt"),
])
def test_offline_without_cached_weights_says_what_to_download(family: str, url: str,
                                                              tmp_path: Path) -> None:
    """By name, served from its environment, with nothing cached and no network: one line
    naming the URL and where to put the file, exit code 2, before any run starts."""
    python = env_python(family)
    env = dict(os.environ, TEA_HARNESS_OFFLINE="1",
               TEA_HARNESS_MODEL_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "harness.launch", "--model", family,
                           "--model-python", f"{family}={python}", "--replicas", "1",
                           "--temperatures", "300", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"download {url} and put it at {tmp_path / 'cache' / family}/" in lines[0]
    assert not (tmp_path / "out" / CHALLENGE).exists()
