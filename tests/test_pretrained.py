"""Pretrained model families by name: readable labels, declared elements, vacuum boxes,
published weights in a hash-checked cache, and bad input.

The real run: ``--model chgnet`` (CHGNet 0.3.0, weights in chgnet's wheel) on Challenge I,
the gas-phase alanine tetrapeptide. CHGNet needs a cell and dies at step 0 without one
(``numpy.linalg.LinAlgError: Singular matrix``); the harness gives it a vacuum box, and the
forces in the trajectories equal chgnet's own calculator on the same frames in the same box.
Nothing here downloads: the cache tests fetch ``file://`` URLs, and the offline path is forced
with ``TEA_HARNESS_OFFLINE=1``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, analysis, launch
from harness import challenges, config, h5md, models
from harness.errors import UserError
from harness.models import Download, weights

CHALLENGE = "alanine-tetrapeptide"
N_STEPS = 5
needs_chgnet = pytest.mark.skipif(importlib.util.find_spec("chgnet") is None,
                                  reason="needs chgnet: pip install -e '.[test]'")


def _assert_user_error(proc, expected: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0], lines[0]


# ----------------------------------------------------------------------------- CHGNet, boxed
@pytest.fixture(scope="module")
def chgnet_runs(tmp_path_factory) -> Path:
    """Two short CHGNet replicas of Challenge I (a frame every step)."""
    out = tmp_path_factory.mktemp("chgnet")
    launch("--model", "chgnet", "--challenge", CHALLENGE, "--replicas", "2",
           "--temperatures", "300", "--time", f"{N_STEPS * 0.5}fs", "--stride", "1",
           "--jobs", "2", "--threads", "1", "--out", str(out), check=True, timeout=900)
    return out


def _files(out: Path) -> list[Path]:
    return sorted(out.glob(f"{CHALLENGE}/*/300K/replica-*.h5"))


#: chgnet's own numbers, computed in a fresh interpreter pinned to one torch thread as the
#: force client is (``--threads 1``). CHGNet computes in float32, where the order of a sum
#: shows in the last bits; a pytest worker's torch state is whatever the test files before
#: this one left (threads, in-process models), and forces computed there differed from the
#: client's by 1.4e-5 eV/A (batched against single: 4.5e-6) in a suite run while alone both
#: were equal to the bit. Like is compared with like: the same interpreter, fresh, one thread.
CHGNET_REFERENCE = textwrap.dedent("""
    import sys
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from ase import Atoms
    from chgnet.model import CHGNet
    from chgnet.model.dynamics import CHGNetCalculator
    from harness import models

    data = np.load(sys.argv[1])
    numbers = data["numbers"]

    def boxed(positions, edge):
        return Atoms(numbers=numbers, positions=positions, cell=np.eye(3) * edge, pbc=True)

    # chgnet's own calculator on the stored frames, asked for energy and forces (task 'ef')
    # as the driver does
    own = CHGNetCalculator(model=CHGNet.load(model_name="0.3.0", use_device="cpu",
                                             verbose=False), use_device="cpu")
    own_forces = []
    for positions, edge in zip(data["frame_positions"], data["frame_edges"]):
        own.calculate(boxed(positions, edge), ["energy", "forces"],
                      ["positions", "numbers", "cell", "pbc"], task="ef")
        own_forces.append(own.results["forces"])
    # the family's batched evaluation and its single-structure calculator on the same starts
    family = models.get_family("chgnet")
    group = [boxed(positions, float(data["start_edge"])) for positions in data["starts"]]
    batched = family.batch_evaluator(None, {})(group)
    single = family.ase_calculator(None, {})
    single_energy, single_forces = [], []
    for atoms in group:
        single.calculate(atoms, ["energy", "forces"], ["positions", "numbers", "cell", "pbc"])
        single_energy.append(float(single.results["energy"]))
        single_forces.append(single.results["forces"])
    np.savez(sys.argv[2], own_forces=np.array(own_forces),
             batched_energy=np.array([e for e, _ in batched]),
             batched_forces=np.array([f for _, f in batched]),
             batched_dtype=str(batched[0][1].dtype),
             single_energy=np.array(single_energy), single_forces=np.array(single_forces))
""")


@pytest.fixture(scope="module")
def chgnet_reference(chgnet_runs: Path, tmp_path_factory) -> dict:
    """CHGNET_REFERENCE on every frame of both runs and on the first three starts of
    Challenge I in the harness's vacuum box (one CHGNet load for both tests)."""
    work = tmp_path_factory.mktemp("chgnet-reference")
    positions, edges, numbers = [], [], None
    for path in _files(chgnet_runs):
        meta = h5md.read_meta(path)
        frames = h5md.read_frames(path)
        positions += list(frames["positions"])
        edges += [meta["run_spec"]["vacuum_box"]["edge_angstrom"]] * len(frames["step"])
        numbers = meta["species"]
    family = models.get_family("chgnet")
    starts = [str(p) for p in challenges.load(CHALLENGE).starts[:3]]
    group = [h5md_free_start(p) for p in starts]
    assert all((atoms.numbers == numbers).all() for atoms in group)
    np.savez(work / "in.npz", numbers=numbers, frame_positions=np.array(positions),
             frame_edges=np.array(edges), starts=np.array([a.positions for a in group]),
             start_edge=models.vacuum_box(family, starts)["edge_angstrom"])
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", CHGNET_REFERENCE, str(work / "in.npz"),
                           str(work / "out.npz")], capture_output=True, text=True,
                          timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr
    with np.load(work / "out.npz") as out:
        return dict(out) | {"n_atoms": len(numbers)}


@needs_chgnet
def test_chgnet_runs_in_a_vacuum_box_under_a_readable_name(chgnet_runs: Path) -> None:
    files = _files(chgnet_runs)
    assert [f.relative_to(chgnet_runs).parts[1] for f in files] == ["chgnet-0.3.0"] * 2
    for path in files:
        meta = h5md.read_meta(path)
        assert meta["status"] == "completed", meta["failure"]
        spec = meta["run_spec"]
        assert spec["model_label"] == "chgnet-0.3.0"
        box = spec["vacuum_box"]
        # no periodic image within the cutoff: edge >= molecule extent + cutoff + margin
        assert box["cutoff_angstrom"] == 6.0
        assert box["edge_angstrom"] >= (box["molecule_extent_angstrom"]
                                        + box["cutoff_angstrom"] + box["margin_angstrom"])
        positions = h5md.read_frames(path)["positions"]
        assert np.ptp(positions, axis=1).max() < box["edge_angstrom"] - box["cutoff_angstrom"]
        prov = meta["provenance"]
        assert prov["vacuum_box"] == box
        assert prov["pretrained"]["name"] == "0.3.0"
        assert prov["pretrained"]["weights"] == "shipped in the chgnet wheel"
        assert prov["versions"]["chgnet"] != "not installed"


@needs_chgnet
def test_forces_in_the_files_equal_chgnets_own_calculator_in_the_box(
        chgnet_runs: Path, chgnet_reference: dict) -> None:
    """Every frame of both runs, max |F_file - F_chgnet| <= 1e-6 eV/A.

    chgnet's own calculator (CHGNetCalculator, model CHGNet.load('0.3.0')), fed the stored
    positions in the stored box, asked for energy and forces (task 'ef') as the driver does,
    in a fresh interpreter on one torch thread (CHGNET_REFERENCE).
    """
    stored = []
    for path in _files(chgnet_runs):
        frames = h5md.read_frames(path)
        assert len(frames["step"]) == N_STEPS + 1
        stored += list(frames["forces"])
    stored = np.array(stored)
    own = chgnet_reference["own_forces"]
    assert own.shape == stored.shape == (2 * (N_STEPS + 1), chgnet_reference["n_atoms"], 3)
    assert np.abs(stored).max(axis=(1, 2)).min() > 0.1  # a real force field, not zeros
    worst = float(np.abs(stored - own).max())
    print(f"chgnet: max |F_file - F_own| = {worst:.2e} eV/A")
    assert worst <= 1e-6


@needs_chgnet
def test_the_box_cures_chgnets_singular_matrix() -> None:
    """Without a cell CHGNet fails on Challenge I's start; in the harness's box it works."""
    from chgnet.model.dynamics import CHGNetCalculator

    family = models.get_family("chgnet")
    calc = family.ase_calculator(None, {})
    assert isinstance(calc, CHGNetCalculator)
    start = challenges.load(CHALLENGE).starts[0]
    atoms = h5md_free_start(start)
    with pytest.raises(np.linalg.LinAlgError, match="Singular matrix"):
        calc.calculate(atoms.copy(), ["energy", "forces"],
                       ["positions", "numbers", "cell", "pbc"])
    box = models.vacuum_box(family, [str(start)])
    boxed = atoms.copy()
    boxed.cell = np.eye(3) * box["edge_angstrom"]
    boxed.pbc = True
    calc.calculate(boxed, ["energy", "forces"], ["positions", "numbers", "cell", "pbc"])
    assert np.isfinite(calc.results["forces"]).all()
    assert np.isfinite(calc.results["energy"])


def h5md_free_start(path):
    """A start structure as the force client sees a gas-phase run: no cell, no pbc."""
    from harness.structures import read_structure

    atoms = read_structure(path)
    assert not atoms.pbc.any()
    return atoms


@needs_chgnet
def test_report_names_chgnet_readably(chgnet_runs: Path, tmp_path: Path) -> None:
    proc = analysis("report", str(chgnet_runs), "--sections", "stability",
                    "--report-dir", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = "".join(p.read_text() for p in (tmp_path / "report").rglob("*.md"))
    assert "chgnet-0.3.0" in text
    assert "ase-chgnet" not in text


# ------------------------------------------------------------------------ names and labels
def test_pretrained_names_are_readable() -> None:
    label = {name: models.get_family(name).label(None, {})
             for name in ("sevenn", "chgnet", "mace-mp", "mace-off")}
    assert label == {"sevenn": "sevenn-7net-0", "chgnet": "chgnet-0.3.0",
                     "mace-mp": "mace-mp-medium-mpa-0", "mace-off": "mace-off-medium"}
    sevenn = models.get_family("sevenn")
    assert sevenn.label(None, {"model": "7net-l3i5"}) == "sevenn-7net-l3i5"
    assert sevenn.label(None, {"model": "SevenNet-0"}) == "sevenn-7net-0"  # an alias
    assert sevenn.label(None, {"model": "7net-mf-0"}) == "sevenn-7net-mf-0-PBE"
    assert sevenn.label(None, {"model": "7net-mf-0", "modal": "R2SCAN"}) == \
        "sevenn-7net-mf-0-R2SCAN"
    assert models.get_family("chgnet").label(None, {"model": "r2scan"}) == "chgnet-r2scan"
    assert models.get_family("orb").label(None, {}) == "orb-v3-conservative-inf-omat"
    assert models.get_family("mattersim").label(None, {"model": "5M"}) == "mattersim-5m"
    assert sevenn.label(Path("/x/my-7net.pth"), {}) == "sevenn-my-7net"


def test_label_names_any_model_in_the_plan(tmp_path: Path) -> None:
    emt = "ase:ase.calculators.emt:EMT"
    proc = launch("--model", f"harmonic,{emt}", "--label", f"{emt}=emt-demo",
                  "--label", "harmonic=well", "--replicas", "1", "--temperatures", "300",
                  "--out", str(tmp_path), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert f"{tmp_path}/{CHALLENGE}/emt-demo/300K/replica-00.h5" in proc.stdout
    assert f"{tmp_path}/{CHALLENGE}/well/300K/replica-00.h5" in proc.stdout
    proc = launch("--model", emt, "--label", "emt", "--replicas", "1", "--temperatures", "300",
                  "--out", str(tmp_path), "--dry-run")
    assert f"{tmp_path}/{CHALLENGE}/emt/300K/replica-00.h5" in proc.stdout, proc.stderr


# ------------------------------------------------------------- SevenNet without its package
def test_sevenn_without_its_package_names_the_install_line(tmp_path: Path) -> None:
    if importlib.util.find_spec("sevenn") is not None:
        pytest.skip("sevenn is installed in this environment")
    _assert_user_error(launch("--model", "sevenn", "--out", str(tmp_path), "--dry-run"),
                       "needs the python package 'sevenn': pip install sevenn in an "
                       "environment of its own")


def _challenge_with(tmp_path: Path, element: str) -> Path:
    """Challenge I's folder with one more element declared (an element no MPtrj model has)."""
    folder = tmp_path / f"peptide-{element.lower()}"
    shutil.copytree(challenges.load(CHALLENGE).path, folder,
                    ignore=shutil.ignore_patterns("reference"))
    toml = folder / "challenge.toml"
    text = toml.read_text().replace('elements = ["C", "H", "N", "O"]',
                                    f'elements = ["C", "H", "N", "O", "{element}"]')
    toml.write_text(text)
    return folder


def test_sevenn_missing_an_element_is_refused_before_anything(tmp_path: Path) -> None:
    """Refused from the declared elements, with sevenn not even installed."""
    folder = _challenge_with(tmp_path, "Po")  # polonium: not in MPtrj's 89 elements
    _assert_user_error(launch("--model", "sevenn", "--challenge", str(folder),
                              "--out", str(tmp_path / "out"), "--dry-run"),
                       "challenge 'peptide-po' needs Po too")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("model, element, expected", [
    (["orb", "--model-option", "orb:model=v3-direct-omol"], "Po",
     "model 'orb' (orb-v3-direct-omol) covers 83 elements but challenge 'peptide-po' needs Po"),
    (["mattersim"], "Am",
     "model 'mattersim' (mattersim-1m) covers 94 elements but challenge 'peptide-am' needs Am"),
])
def test_families_in_other_envs_refuse_a_missing_element_before_anything(
        model: list[str], element: str, expected: str, tmp_path: Path) -> None:
    """Declared elements decide in the main environment, where orb-models and mattersim are
    not installed (ORB's OMol25 models: H-Bi; MatterSim v1: H-Pu)."""
    folder = _challenge_with(tmp_path, element)
    _assert_user_error(launch("--model", *model, "--challenge", str(folder),
                              "--out", str(tmp_path / "out"), "--dry-run"), expected)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------ bad input
BAD = {
    "unknown sevenn model": (["--model", "sevenn", "--model-option", "sevenn:model=nope"],
                             "sevenn:model=nope: unknown pretrained sevenn model; choose one "
                             "of 7net-0, 7net-l3i5, 7net-mf-0"),
    "unknown mace-mp model": (["--model", "mace-mp", "--model-option", "mace-mp:model=nope"],
                              "mace-mp:model=nope: unknown pretrained mace-mp model"),
    "unknown chgnet model": (["--model", "chgnet", "--model-option", "model=0.9"],
                             "chgnet:model=0.9: unknown pretrained chgnet model"),
    "unknown orb model": (["--model", "orb", "--model-option", "orb:model=v4"],
                          "orb:model=v4: unknown pretrained orb model; choose one of "
                          "v3-conservative-inf-omat,"),
    "unknown mattersim model": (["--model", "mattersim", "--model-option", "model=10m"],
                                "mattersim:model=10m: unknown pretrained mattersim model; "
                                "choose one of 1m, 5m"),
    "unknown aimnet2 model": (["--model", "aimnet2", "--model-option", "model=nse"],
                              "aimnet2:model=nse: unknown pretrained aimnet2 model; choose "
                              "one of wb97m-d3, b973c-d3"),
    "aimnet2 lacks Pb": (["--model", "aimnet2", "--challenge", "mapbi3"],
                         "model 'aimnet2' (aimnet2-wb97m-d3) covers As,B,Br,C,Cl,F,H,I,N,O,P,S,"
                         "Se,Si but challenge 'mapbi3' needs Pb too"),
    "modal of a one-level model": (["--model", "sevenn", "--model-option", "modal=PBE"],
                                   "sevenn 7net-0 has modals none"),
    "mace-off lacks Pb": (["--model", "mace-off", "--challenge", "mapbi3"],
                          "challenge 'mapbi3' needs Pb too"),
    "label used twice": (["--model", "harmonic,xtb", "--label", "harmonic=same",
                          "--label", "xtb=same"], "label 'same' used twice"),
    "default name taken by a label": (["--model", "harmonic,xtb", "--label", "xtb=harmonic"],
                                      "label 'harmonic' used twice"),
    "label that is no folder name": (["--model", "harmonic", "--label", "a/b"],
                                     "--label 'a/b': a label names folders and files"),
    "bare label for two models": (["--model", "harmonic,xtb", "--label", "x"],
                                  "with several models write MODEL=NAME"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_and_exit_2(case: str, tmp_path: Path) -> None:
    args, expected = BAD[case]
    _assert_user_error(launch(*args, "--out", str(tmp_path), "--dry-run"), expected)


def test_offline_without_cached_weights_says_what_to_download(tmp_path: Path,
                                                              monkeypatch) -> None:
    monkeypatch.setenv("TEA_HARNESS_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TEA_HARNESS_MODEL_CACHE", raising=False)
    target = tmp_path / "cache" / "tea-harness" / "models" / "mace-off" / \
        "MACE-OFF23_medium.model"
    _assert_user_error(
        launch("--model", "mace-off", "--out", str(tmp_path / "out")),
        "download https://raw.githubusercontent.com/ACEsuit/mace-off/main/mace_off23/"
        f"MACE-OFF23_medium.model and put it at {target} (sha256 4842c52a")


# ------------------------------------------------------------------- the weights cache
def _published(tmp_path: Path, payload: bytes) -> Download:
    source = tmp_path / "published" / "weights.model"
    source.parent.mkdir()
    source.write_bytes(payload)
    return Download(url=source.as_uri(), sha256=hashlib.sha256(payload).hexdigest(),
                    filename="weights.model")


def test_weights_are_fetched_once_into_the_cache_and_hash_checked(tmp_path: Path,
                                                                  monkeypatch) -> None:
    monkeypatch.setenv("TEA_HARNESS_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TEA_HARNESS_OFFLINE", raising=False)
    download = _published(tmp_path, b"weights of a model")
    path = weights.fetch(download, "fam", "m1")
    assert path == tmp_path / "cache" / "fam" / "weights.model"
    assert path.read_bytes() == b"weights of a model"
    Path(download.url.removeprefix("file://")).unlink()  # the second call needs no source
    assert weights.fetch(download, "fam", "m1") == path
    path.write_bytes(b"tampered")
    with pytest.raises(UserError, match="has sha256 .* not the expected"):
        weights.fetch(download, "fam", "m1")


def test_weights_without_a_published_hash_are_checked_against_the_first_download(
        tmp_path: Path, monkeypatch) -> None:
    """No hash published: the first download's is kept beside the file, later uses are
    checked against it, and the provenance says so."""
    monkeypatch.setenv("TEA_HARNESS_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TEA_HARNESS_OFFLINE", raising=False)
    published = _published(tmp_path, b"weights without a published hash")
    download = Download(url=published.url, sha256="", filename=published.filename)
    path = weights.fetch(download, "fam", "m1")
    pin = path.with_name("weights.model.sha256")
    assert pin.read_text().strip() == published.sha256
    assert weights.fetch(download, "fam", "m1") == path
    assert weights.provenance(download, "fam")["sha256_source"] == weights.FIRST_USE
    path.write_bytes(b"tampered")
    with pytest.raises(UserError, match="not the expected .* delete it and weights.model.sha256"):
        weights.fetch(download, "fam", "m1")


def test_weights_with_another_hash_are_refused_and_not_cached(tmp_path: Path,
                                                              monkeypatch) -> None:
    monkeypatch.setenv("TEA_HARNESS_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TEA_HARNESS_OFFLINE", raising=False)
    good = _published(tmp_path, b"the published file")
    bad = Download(url=good.url, sha256="0" * 64, filename=good.filename)
    with pytest.raises(UserError, match="gave a file with sha256"):
        weights.fetch(bad, "fam", "m1")
    assert list((tmp_path / "cache" / "fam").iterdir()) == []


def test_unreachable_weights_say_what_to_download_and_where(tmp_path: Path,
                                                            monkeypatch) -> None:
    monkeypatch.setenv("TEA_HARNESS_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("TEA_HARNESS_OFFLINE", raising=False)
    download = Download(url=(tmp_path / "nowhere.model").as_uri(), sha256="0" * 64,
                        filename="w.model")
    with pytest.raises(UserError) as caught:
        weights.fetch(download, "fam", "m1")
    message = str(caught.value)
    assert "\n" not in message
    assert f"put it at {tmp_path / 'cache' / 'fam' / 'w.model'}" in message


def test_a_dry_run_fetches_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TEA_HARNESS_OFFLINE", "1")
    monkeypatch.setenv("TEA_HARNESS_MODEL_CACHE", str(tmp_path / "cache"))
    proc = launch("--model", "mace-mp", "--replicas", "1", "--temperatures", "300",
                  "--out", str(tmp_path / "out"), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert f"{CHALLENGE}/mace-mp-medium-mpa-0/300K/replica-00.h5" in proc.stdout
    assert not (tmp_path / "cache").exists()


def test_declared_elements_decide_without_the_package() -> None:
    mapbi3 = challenges.load("mapbi3")
    peptide = challenges.load(CHALLENGE)
    config.check_elements(models.get_family("sevenn"), None, mapbi3, {})
    config.check_elements(models.get_family("mace-off"), None, peptide, {})
    with pytest.raises(UserError, match="needs Pb too"):
        config.check_elements(models.get_family("mace-off"), None, mapbi3, {})


@needs_chgnet
def test_chgnet_batched_evaluation_equals_single(chgnet_reference: dict) -> None:
    """``--batch``: chgnet's batch of graphs gives each structure's energy and forces as one
    call of the single-structure calculator does (CHGNet computes in float32; measured: equal
    to the last bit in one fresh single-threaded interpreter, CHGNET_REFERENCE)."""
    batched, single = chgnet_reference["batched_forces"], chgnet_reference["single_forces"]
    assert str(chgnet_reference["batched_dtype"]) == "float64"
    assert batched.shape == single.shape == (3, chgnet_reference["n_atoms"], 3)
    assert np.abs(batched - single).max() <= 1e-6
    assert np.abs(chgnet_reference["batched_energy"] - chgnet_reference["single_energy"]
                  ).max() <= 1e-5 * chgnet_reference["n_atoms"]
    # the three starts really differ: a mix-up of the batch order would be seen
    assert np.abs(single[0] - single[1]).max() > 1e-3


@needs_chgnet
def test_batched_chgnet_runs_equal_single_runs(chgnet_runs: Path, tmp_path: Path) -> None:
    """``--batch 2``: one client serves both boxed runs through chgnet's batched graphs; the
    trajectories equal the runs with one client each (same seeds), frame by frame."""
    launch("--model", "chgnet", "--challenge", CHALLENGE, "--replicas", "2",
           "--temperatures", "300", "--time", f"{N_STEPS * 0.5}fs", "--stride", "1",
           "--batch", "2", "--threads", "1", "--out", str(tmp_path), check=True, timeout=900)
    for single, grouped in zip(_files(chgnet_runs), _files(tmp_path), strict=True):
        assert h5md.read_meta(grouped)["run_spec"]["vacuum_box"]["edge_angstrom"] == 29.0
        one, many = h5md.read_frames(single), h5md.read_frames(grouped)
        assert len(many["step"]) == N_STEPS + 1
        assert np.abs(one["forces"] - many["forces"]).max() <= 1e-6
        assert np.abs(one["positions"] - many["positions"]).max() <= 1e-9


# ----------------------------------------------- MACE foundation families, with a stand-in
needs_mace = pytest.mark.skipif(importlib.util.find_spec("mace") is None,
                                reason="needs mace-torch: pip install -e '.[test]'")


@needs_mace
@pytest.mark.parametrize("family_name", ["mace-mp", "mace-off"])
def test_mace_foundation_families_load_through_maces_own_loaders(family_name: str,
                                                                 tmp_path: Path) -> None:
    """The loader path (``mace_mp``/``mace_off`` on a local file) with a tiny random MACE
    standing in for the published weights (none can be fetched in a test): its forces equal
    mace-torch's MACECalculator on the same file, single and batched, in float64."""
    import tiny_models
    from ase.io import read
    from mace.calculators import MACECalculator

    model = tiny_models.make_mace(tmp_path / "stand-in.model")
    family = models.get_family(family_name)
    assert family.label(model, {}) == f"{family_name}-stand-in"
    atoms = read(challenges.load(CHALLENGE).starts[0])
    calc = family.ase_calculator(model, {"model": family.default_pretrained})
    calc.calculate(atoms, ["energy", "forces"], ["positions", "numbers", "cell", "pbc"])
    own = MACECalculator(model_paths=str(model), device="cpu", default_dtype="float64")
    own.calculate(atoms, ["energy", "forces"], ["positions", "numbers", "cell", "pbc"])
    assert np.abs(calc.results["forces"] - own.results["forces"]).max() <= 1e-10
    (energy, forces), = family.batch_evaluator(model, {})([atoms])
    assert np.abs(forces - own.results["forces"]).max() <= 1e-10
    assert family.elements(model, {}) == {"C", "H", "N", "O"}  # the file's own table


def test_labels_in_a_config_file(tmp_path: Path) -> None:
    """A config file takes ``label`` as a ``[label]`` table, as ``[model-file]``."""
    cfg = tmp_path / "run.toml"
    cfg.write_text('model = ["harmonic", "xtb"]\nreplicas = 1\ntemperatures = [300]\n'
                   '[label]\nharmonic = "well"\n')
    proc = launch("--config", str(cfg), "--out", str(tmp_path), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert f"{tmp_path}/{CHALLENGE}/well/300K/replica-00.h5" in proc.stdout
    assert f"{tmp_path}/{CHALLENGE}/xtb/300K/replica-00.h5" in proc.stdout
