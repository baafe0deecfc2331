"""Bringing a reference: ``analysis reference import`` and ``analysis reference show``.

Round trips of the shipped Challenge I reference through extxyz, MD22 .npz, ASE .traj and H5MD
written by MDAnalysis or by plain h5py; the atom-order mapping checked against networkx; every
bad input of the import one line and exit code 2.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from ase.io import read, write

from analysis import atom_order, reference, reference_formats
from analysis.divergence import hellinger, jensen_shannon
from analysis.observables.ramachandran import compute as rama
from analysis.observables.ramachandran.torus import density
from analysis.trajectories import read_record
from conftest import REPO
from harness import challenges, h5md
from harness.challenges import backbone

ALA = challenges.load("alanine-tetrapeptide")
SHIPPED = sorted((ALA.path / "reference").glob("*.h5"))[:2]
PAIRS = rama.challenge_pairs(ALA)
SETTINGS = rama.settings_for(ALA, {})
SHIPPED_INTERVAL_FS = 1e3 * float(np.diff(h5md.read_meta(SHIPPED[0])["times_ps"][:2])[0])
EXTXYZ_EVERY = 4  # the text round trip on every 4th frame keeps the test at seconds
KCAL_EV = reference_formats.ENERGY_EV["kcal/mol"]


def _analysis(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=REPO)


def _import(files: list[Path], out: Path, *extra: str) -> subprocess.CompletedProcess:
    return _analysis("reference", "import", *map(str, files), "--challenge", ALA.name,
                     "--method", "PBE+MBD (FHI-aims)", "--out", str(out), *extra)


def _in_process(capsys, *args: str) -> subprocess.CompletedProcess:
    """``analysis ARGS`` through :func:`analysis.cli.main` in this process (no interpreter
    start: the many bad-input cases stay cheap); stdout/stderr/exit code as a subprocess's."""
    from analysis.cli import main

    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse's own errors
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out.out, out.err)


def _import_here(capsys, files: list[Path], out: Path, *extra: str
                 ) -> subprocess.CompletedProcess:
    return _in_process(capsys, "reference", "import", *map(str, files), "--challenge", ALA.name,
                       "--method", "PBE+MBD (FHI-aims)", "--out", str(out), *extra)


def _rama_numbers(files: list[Path], stride: int = 1) -> dict[str, np.ndarray]:
    """Per pair: the density, and JS/Hellinger against a fixed run (shipped replica 0)."""
    fixed = rama.read_group(SHIPPED[:1], PAIRS, 1)
    data = rama.read_group(files, PAIRS, stride)
    smooth = SETTINGS.smooth_deg / (360.0 / SETTINGS.bins)
    out = {}
    for k, pair in enumerate(PAIRS):
        dens = density(data.angles[:, 2 * k:2 * k + 2].astype(float), SETTINGS.bins, smooth)
        ref = density(fixed.angles[:, 2 * k:2 * k + 2].astype(float), SETTINGS.bins, smooth)
        out[pair.name] = np.concatenate([dens.ravel(), [jensen_shannon(dens, ref),
                                                        hellinger(dens, ref)]])
    return out


def _assert_same_rama(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert np.abs(a[name] - b[name]).max() < 1e-6, name
        assert a[name][-2] > 0.01  # a real comparison, not two empty densities


def _user_error(proc: subprocess.CompletedProcess, expected: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, list[Path]]:
    """The shipped reference (its first two runs) as extxyz (every 4th frame) and MD22 npz."""
    folder = tmp_path_factory.mktemp("exported")
    out: dict[str, list[Path]] = {"extxyz": [], "npz": []}
    for k, path in enumerate(SHIPPED):
        out["extxyz"].append(folder / f"run{k}.extxyz")
        reference_formats.export_extxyz(path, out["extxyz"][-1], every=EXTXYZ_EVERY)
        out["npz"].append(folder / f"run{k}.npz")
        reference_formats.export_npz(path, out["npz"][-1])
    return out


# --- round trips -----------------------------------------------------------------------------

def test_round_trip_extxyz(exported, tmp_path: Path) -> None:
    interval = f"{SHIPPED_INTERVAL_FS * EXTXYZ_EVERY:g}fs"
    proc = _import(exported["extxyz"], tmp_path / "ref", "--temperature", "500",
                   "--frame-interval", interval)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("atom order: as is") == 2
    files = sorted((tmp_path / "ref").glob("*.h5"))
    assert [f.name for f in files] == ["replica-00.h5", "replica-01.h5"]
    _assert_same_rama(_rama_numbers(files), _rama_numbers(SHIPPED, stride=EXTXYZ_EVERY))
    # energies survive (eV in, eV out); the times follow the frame interval
    shipped = h5md.read_frames(SHIPPED[0])
    mine = h5md.read_frames(files[0])
    assert np.allclose(mine["potential"], shipped["potential"][::EXTXYZ_EVERY], atol=1e-7)
    assert np.allclose(mine["time"], shipped["time"][::EXTXYZ_EVERY], atol=1e-9)
    info = _analysis("info", str(files[0]))
    assert info.returncode == 0, info.stderr
    assert "PBE+MBD-FHI-aims / 500 K / replica 0" in info.stdout
    record = read_record(files[0])
    assert record.model == "PBE+MBD-FHI-aims" and record.temperature_K == 500.0
    assert record.status == "completed" and record.reached_ps == pytest.approx(
        h5md.read_meta(SHIPPED[0])["times_ps"][::EXTXYZ_EVERY][-1], abs=1e-6)


def test_round_trip_npz(exported, tmp_path: Path) -> None:
    proc = _import(exported["npz"], tmp_path / "ref", "--temperature", "500",
                   "--frame-interval", f"{SHIPPED_INTERVAL_FS:g}fs")
    assert proc.returncode == 0, proc.stderr
    assert "kcal/mol converted" in proc.stdout
    ref = reference.load(ALA, tmp_path / "ref")
    assert ref is not None and ref.n_runs == 2 and not ref.shipped
    assert ref.method == "PBE+MBD (FHI-aims)" and ref.temperature_K == 500.0
    _assert_same_rama(_rama_numbers(ref.files), _rama_numbers(SHIPPED))
    # the reference attribute: method, units, source file and its sha256, atom order
    attr = ref.info
    assert attr["frame_interval_fs"] == pytest.approx(SHIPPED_INTERVAL_FS)
    assert attr["source"]["sha256"] == hashlib.sha256(exported["npz"][0].read_bytes()).hexdigest()
    assert attr["atom_order"] == {"kind": "as is", "applied": False, "permutation": None,
                                  "meaning": attr["atom_order"]["meaning"], "note": ""}
    assert attr["made_by"].startswith("analysis reference import")
    assert np.allclose(h5md.read_frames(ref.files[0])["potential"],
                       h5md.read_frames(SHIPPED[0])["potential"], atol=1e-6)
    # the Ramachandran command itself, imported runs against the shipped files: identical
    report = tmp_path / "report"
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for path in SHIPPED:
        shutil.copy(path, shipped / path.name)
    proc = _analysis("ramachandran", str(tmp_path / "ref"), "--reference", str(shipped),
                     "--report-dir", str(report))
    assert proc.returncode == 0, proc.stderr
    study = json.loads((report / "ramachandran.json").read_text())["challenges"][0]
    (comparison,) = study["comparisons_vs_reference"].values()
    assert sorted(comparison) == ["A", "B"]
    for item in comparison.values():
        assert item["js_divergence_bits"] == pytest.approx(0.0, abs=1e-9)
        assert item["hellinger"] == pytest.approx(0.0, abs=1e-6)
    # the split-half noise of the import: run 1 against run 2 of the shipped files
    mine = reference.split_half_noise(ref, ALA, n_resamples=200)
    expected = _split_half(SHIPPED)
    for name in ("A", "B"):
        assert mine["pairs"][name]["js_bits"] == pytest.approx(expected[name], abs=1e-6)


def _split_half(files: list[Path]) -> dict[str, float]:
    """Run 1 against run 2 of two files, computed here without analysis.reference."""
    smooth = SETTINGS.smooth_deg / (360.0 / SETTINGS.bins)
    first, second = (rama.read_group([f], PAIRS, 1).angles for f in files)
    return {p.name: jensen_shannon(density(first[:, 2 * k:2 * k + 2].astype(float),
                                           SETTINGS.bins, smooth),
                                   density(second[:, 2 * k:2 * k + 2].astype(float),
                                           SETTINGS.bins, smooth))
            for k, p in enumerate(PAIRS)}


def test_forces_kept_in_ev_per_angstrom(tmp_path: Path) -> None:
    positions = h5md.read_frames(SHIPPED[0], 0, 50)["positions"]
    forces = np.random.default_rng(3).normal(size=positions.shape)  # kcal/mol/A
    np.savez(tmp_path / "md22.npz", R=positions, z=h5md.read_meta(SHIPPED[0])["species"],
             E=np.arange(50.0)[:, None], F=forces)
    proc = _import([tmp_path / "md22.npz"], tmp_path / "ref", "--temperature", "500",
                   "--frame-interval", "1fs")
    assert proc.returncode == 0, proc.stderr
    frames = h5md.read_frames(next((tmp_path / "ref").glob("*.h5")))
    assert np.allclose(frames["forces"], forces * KCAL_EV, rtol=1e-6, atol=1e-6)
    assert np.allclose(frames["potential"], np.arange(50.0) * KCAL_EV)
    assert abs(KCAL_EV - 0.0433641) < 1e-7


def test_permuted_ase_traj_is_mapped(tmp_path: Path) -> None:
    """Atoms shuffled in an ASE .traj: the bond graph gives the order back."""
    frames = h5md.read_frames(SHIPPED[0], 0, 400)
    species = h5md.read_meta(SHIPPED[0])["species"]
    perm = np.random.default_rng(7).permutation(len(species))
    from ase import Atoms

    write(str(tmp_path / "shuffled.traj"),
          [Atoms(numbers=species[perm], positions=p[perm]) for p in frames["positions"]])
    proc = _import([tmp_path / "shuffled.traj"], tmp_path / "ref", "--temperature", "500",
                   "--frame-interval", f"{SHIPPED_INTERVAL_FS:g}fs")
    assert proc.returncode == 0, proc.stderr
    assert "atom order: bond-graph mapping (atoms reordered)" in proc.stdout
    out = next((tmp_path / "ref").glob("*.h5"))
    attr = reference.load(ALA, tmp_path / "ref").info["atom_order"]
    assert attr["kind"] == "bond-graph mapping" and attr["applied"]
    mapped = h5md.read_frames(out)["positions"]
    assert np.array_equal(h5md.read_meta(out)["species"], species)
    heavy = species > 1  # hydrogens of one methyl group may trade places; nothing else
    assert np.array_equal(mapped[:, heavy], frames["positions"][:, heavy])
    original = perm[np.array(attr["permutation"])]
    assert np.all(original[heavy] == np.nonzero(heavy)[0])
    assert np.allclose(rama.read_group([out], PAIRS, 1).angles,
                       rama.read_group([SHIPPED[0]], PAIRS, 1).angles[:400])


def test_mdanalysis_h5md_with_nm_and_time_stamps(tmp_path: Path) -> None:
    """MDAnalysis's H5MDWriter: group 'trajectory', no species, nm, fs time stamps."""
    mda = pytest.importorskip("MDAnalysis")
    from MDAnalysis.coordinates.H5MD import H5MDWriter

    universe = mda.Universe(str(ALA.starts[0]), str(SHIPPED[0]), format="H5MD")
    with H5MDWriter(str(tmp_path / "mda.h5"), n_atoms=len(universe.atoms), lengthunit="nm",
                    timeunit="fs", velocities=False, forces=False) as writer:
        for _ in universe.trajectory[:300]:
            writer.write(universe.atoms)
    if writer.h5md_file.id.valid:  # MDAnalysis 2.11's close() leaves the HDF5 file open
        writer.h5md_file.close()
    proc = _import([tmp_path / "mda.h5"], tmp_path / "ref", "--temperature", "500")
    assert proc.returncode == 0, proc.stderr
    assert "the file names no elements" in proc.stdout
    out = next((tmp_path / "ref").glob("*.h5"))
    attr = json.loads(h5py.File(out)["parameters/harness"].attrs["reference"])
    assert attr["frame_interval_fs"] == pytest.approx(SHIPPED_INTERVAL_FS, rel=1e-6)
    assert attr["frame_interval_from"] == "the file's time stamps"
    assert np.allclose(h5md.read_frames(out)["positions"],
                       h5md.read_frames(SHIPPED[0], 0, 300)["positions"], atol=2e-6)


def test_plain_h5md_other_group_fixed_interval(tmp_path: Path) -> None:
    """An H5MD 1.1 file by another code: group 'peptide', scalar step/time, species, pm."""
    frames = h5md.read_frames(SHIPPED[1], 0, 200)
    species = h5md.read_meta(SHIPPED[1])["species"]
    with h5py.File(tmp_path / "other.h5md", "w") as f:
        f.create_group("h5md").attrs["version"] = [1, 1]
        part = f.create_group("particles/peptide")
        part.create_group("box").attrs["boundary"] = np.array([b"none"] * 3)
        part.create_dataset("species", data=species)
        pos = part.create_group("position")
        pos.create_dataset("step", data=20)
        pos.create_dataset("time", data=10.0).attrs["unit"] = "fs"
        pos.create_dataset("value", data=frames["positions"] * 100.0).attrs["unit"] = "pm"
    proc = _import([tmp_path / "other.h5md"], tmp_path / "ref", "--temperature", "500")
    assert proc.returncode == 0, proc.stderr
    out = next((tmp_path / "ref").glob("*.h5"))
    got = h5md.read_frames(out)
    assert np.allclose(got["time"], np.arange(200) * 0.010)
    assert np.allclose(got["positions"], frames["positions"], atol=2e-6)


def test_force_replaces_and_show(exported, tmp_path: Path) -> None:
    args = ("--temperature", "500", "--frame-interval", f"{SHIPPED_INTERVAL_FS:g}fs")
    assert _import(exported["npz"], tmp_path / "ref", *args).returncode == 0
    proc = _import(exported["npz"][:1], tmp_path / "ref", *args, "--force")
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "ref").glob("*.h5"))) == 1
    show = _analysis("reference", "show", "--challenge", ALA.name, "--reference",
                     str(tmp_path / "ref"), "--json", "--resamples", "200")
    assert show.returncode == 0, show.stderr
    summary = json.loads(show.stdout)
    assert summary["n_runs"] == 1 and summary["frames"] == h5md.read_meta(SHIPPED[0])["n_frames"]
    assert summary["ps_per_run"] == [pytest.approx(h5md.read_meta(SHIPPED[0])["times_ps"][-1],
                                                   abs=0.05)]
    noise = summary["split_half"]
    assert noise["how"].startswith("first half of the run")
    data = rama.read_group(SHIPPED[:1], PAIRS, 1).angles
    half = len(data) // 2
    smooth = SETTINGS.smooth_deg / (360.0 / SETTINGS.bins)
    expected = jensen_shannon(density(data[:half, :2].astype(float), SETTINGS.bins, smooth),
                              density(data[half:, :2].astype(float), SETTINGS.bins, smooth))
    assert noise["pairs"]["A"]["js_bits"] == pytest.approx(expected, abs=1e-9)
    assert noise["tolerance_bits"] == SETTINGS.js_tolerance


def test_temperature_note() -> None:
    ref = reference.load(ALA)
    assert reference.temperature_note(ref, ref.temperature_K) is None
    assert "compared qualitatively" in reference.temperature_note(ref, 300.0)


# --- atom order ------------------------------------------------------------------------------

def test_graph_matching_agrees_with_networkx() -> None:
    nx = pytest.importorskip("networkx")
    start = read(str(ALA.starts[0]))
    symbols = start.get_chemical_symbols()
    bonds = backbone.bonds_from_geometry(symbols, start.positions)
    rng = np.random.default_rng(11)
    for _ in range(5):
        perm = rng.permutation(len(symbols))
        inverse = np.argsort(perm)
        shuffled_symbols = [symbols[i] for i in perm]
        shuffled_bonds = {tuple(sorted((int(inverse[a]), int(inverse[b])))) for a, b in bonds}
        p = atom_order.match_graphs(symbols, bonds, shuffled_symbols, shuffled_bonds)
        assert p is not None
        mapped = {tuple(sorted((int(p[a]), int(p[b])))) for a, b in bonds}
        assert mapped == shuffled_bonds
        assert [shuffled_symbols[j] for j in p] == symbols
    # one hydrogen moved from a methyl carbon to a nitrogen: no isomorphism, networkx agrees
    h_on_c = next((a, b) if symbols[a] == "H" else (b, a) for a, b in sorted(bonds)
                  if {symbols[a], symbols[b]} == {"C", "H"})
    n_atom = symbols.index("N")
    changed = (bonds - {tuple(sorted(h_on_c))}) | {tuple(sorted((h_on_c[0], n_atom)))}
    assert atom_order.match_graphs(symbols, bonds, symbols, changed) is None

    def graph(b):
        g = nx.Graph()
        g.add_nodes_from((i, {"el": s}) for i, s in enumerate(symbols))
        g.add_edges_from(b)
        return g

    assert not nx.is_isomorphic(graph(bonds), graph(changed),
                                node_match=lambda x, y: x["el"] == y["el"])


# --- bad input: one line, exit code 2 ----------------------------------------------------------

def _extxyz(path: Path, n_frames: int = 3, symbols=None, drop_last: bool = False) -> Path:
    images = [read(str(ALA.starts[0])) for _ in range(n_frames)]
    for atoms in images:
        if symbols is not None:
            atoms.set_chemical_symbols(symbols)
        if drop_last:
            del atoms[-1]
    write(str(path), images, format="extxyz")
    return path


OK_FLAGS = ("--temperature", "500", "--frame-interval", "10fs")


def test_bad_atom_count(capsys, tmp_path: Path) -> None:
    bad = _extxyz(tmp_path / "a.extxyz", drop_last=True)
    _user_error(_import_here(capsys, [bad], tmp_path / "o", *OK_FLAGS),
                "41 atoms, the challenge has 42")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_bad_elements(capsys, tmp_path: Path) -> None:
    symbols = read(str(ALA.starts[0])).get_chemical_symbols()
    symbols[symbols.index("O")] = "S"
    bad = _extxyz(tmp_path / "a.extxyz", symbols=symbols)
    _user_error(_import_here(capsys, [bad], tmp_path / "o", *OK_FLAGS), "the challenge has C")


def test_bad_bond_graph(capsys, tmp_path: Path) -> None:
    start = read(str(ALA.starts[0]))
    order = np.argsort(start.get_chemical_symbols(), kind="stable")
    start = start[order]
    start.positions = np.random.default_rng(0).uniform(0, 30, size=start.positions.shape)
    write(str(tmp_path / "a.xyz"), [start])
    _user_error(_import_here(capsys, [tmp_path / "a.xyz"], tmp_path / "o", *OK_FLAGS),
                "does not match the challenge's")


@pytest.mark.parametrize("kind", ["empty extxyz", "npz without frames", "h5md without frames"])
def test_no_frames(capsys, kind: str, tmp_path: Path) -> None:
    if kind == "empty extxyz":
        path = tmp_path / "a.extxyz"
        path.write_text("")
    elif kind == "npz without frames":
        path = tmp_path / "a.npz"
        np.savez(path, R=np.zeros((0, 42, 3)), z=np.ones(42, int))
    else:
        path = tmp_path / "a.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("particles/all/position/value", data=np.zeros((0, 42, 3)))
    _user_error(_import_here(capsys, [path], tmp_path / "o", *OK_FLAGS), "no frames in the file")


def test_missing_temperature(tmp_path: Path) -> None:
    _user_error(_import([_extxyz(tmp_path / "a.extxyz")], tmp_path / "o", "--frame-interval",
                        "10fs"), "give --temperature")


def test_missing_frame_interval(capsys, tmp_path: Path) -> None:
    _user_error(_import_here(capsys, [_extxyz(tmp_path / "a.extxyz")], tmp_path / "o",
                             "--temperature", "500"), "give --frame-interval")


def test_non_finite_positions(capsys, tmp_path: Path) -> None:
    positions = np.repeat(read(str(ALA.starts[0])).positions[None], 4, axis=0)
    positions[2, 5, 1] = np.nan
    np.savez(tmp_path / "a.npz", R=positions, z=read(str(ALA.starts[0])).numbers)
    _user_error(_import_here(capsys, [tmp_path / "a.npz"], tmp_path / "o", *OK_FLAGS),
                "positions are not finite in 1 frame(s) (first: frame 2)")


@pytest.mark.parametrize("kind", ["garbage", "garbage npz", "npz without R", "missing"])
def test_unreadable_file(capsys, kind: str, tmp_path: Path) -> None:
    path = tmp_path / ("a.npz" if "npz" in kind else "a.xyz")
    if kind == "npz without R":
        np.savez(path, z=np.ones(42, int))
    elif kind.startswith("garbage"):
        path.write_bytes(b"\x00\x01 this is not a trajectory\n" * 3)
    expected = {"garbage": "not a trajectory ASE can read", "garbage npz": "not an .npz archive",
                "npz without R": "missing R (has z)", "missing": "no such file"}[kind]
    _user_error(_import_here(capsys, [path], tmp_path / "o", *OK_FLAGS), expected)


def test_existing_output_without_force(capsys, tmp_path: Path) -> None:
    src = _extxyz(tmp_path / "a.extxyz")
    assert _import_here(capsys, [src], tmp_path / "o", *OK_FLAGS).returncode == 0
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "o").glob("*.h5")}
    _user_error(_import_here(capsys, [src], tmp_path / "o", *OK_FLAGS), "give --force")
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "o").glob("*.h5")} == before


def test_second_file_bad_leaves_nothing(capsys, tmp_path: Path) -> None:
    good = _extxyz(tmp_path / "a.extxyz")
    bad = _extxyz(tmp_path / "b.extxyz", drop_last=True)
    _user_error(_import_here(capsys, [good, bad], tmp_path / "o", *OK_FLAGS), "b.extxyz: 41 atoms")
    assert list((tmp_path / "o").iterdir()) == []


def test_interval_disagrees_with_time_stamps(capsys, tmp_path: Path) -> None:
    wrong = f"{1.5 * SHIPPED_INTERVAL_FS:g}fs"
    _user_error(_import_here(capsys, [SHIPPED[0]], tmp_path / "o", "--frame-interval", wrong),
                "disagrees with the time stamps")


# --- more sources ----------------------------------------------------------------------------

def test_own_h5md_needs_no_flags(capsys, tmp_path: Path) -> None:
    """A harness run file states its temperature and time stamps: no flags needed."""
    proc = _import_here(capsys, [SHIPPED[0]], tmp_path / "ref")
    assert proc.returncode == 0, proc.stderr
    attr = reference.load(ALA, tmp_path / "ref").info
    assert attr["temperature_K"] == 500.0 and attr["temperature_from"] == "the file"
    assert attr["frame_interval_fs"] == pytest.approx(SHIPPED_INTERVAL_FS)
    _user_error(_import_here(capsys, [SHIPPED[0]], tmp_path / "other", "--temperature", "300"),
                "disagrees with")


def test_velocities_from_ase_traj(tmp_path: Path) -> None:
    from ase import units

    atoms = read(str(ALA.starts[0]))
    v_angstrom_ps = np.random.default_rng(5).normal(size=(3, len(atoms), 3))
    images = []
    for v in v_angstrom_ps:
        copy = atoms.copy()
        copy.set_velocities(v / (1000.0 * units.fs))
        images.append(copy)
    write(str(tmp_path / "v.traj"), images)
    assert _import([tmp_path / "v.traj"], tmp_path / "ref", *OK_FLAGS).returncode == 0
    frames = h5md.read_frames(tmp_path / "ref" / "replica-00.h5")
    assert np.allclose(frames["velocities"], v_angstrom_ps, atol=1e-5)


def test_periodic_challenge(capsys, tmp_path: Path) -> None:
    """MAPbI3: the cell is kept; a file without one, or in another atom order, is refused."""
    mapbi3 = challenges.load("mapbi3")
    atoms = read(str(mapbi3.starts[0]))
    write(str(tmp_path / "p.extxyz"), [atoms, atoms], format="extxyz")
    proc = _analysis("reference", "import", str(tmp_path / "p.extxyz"), "--challenge", "mapbi3",
                     "--method", "PBE+MBD-NL", "--out", str(tmp_path / "ref"), *OK_FLAGS)
    assert proc.returncode == 0, proc.stderr
    frames = h5md.read_frames(tmp_path / "ref" / "replica-00.h5")
    assert np.allclose(frames["box"], atoms.cell.array)
    np.savez(tmp_path / "nocell.npz", R=atoms.positions[None], z=atoms.numbers)
    _user_error(_in_process(capsys, "reference", "import", str(tmp_path / "nocell.npz"),
                            "--challenge", "mapbi3", "--method", "x", "--out",
                            str(tmp_path / "o"), *OK_FLAGS),
                "is periodic but the file has no cell")
    write(str(tmp_path / "rev.extxyz"), [atoms[::-1]], format="extxyz")
    _user_error(_in_process(capsys, "reference", "import", str(tmp_path / "rev.extxyz"),
                            "--challenge", "mapbi3", "--method", "x", "--out",
                            str(tmp_path / "o"), *OK_FLAGS),
                "a periodic system's order is not mapped")


def test_split_half_intervals(tmp_path: Path) -> None:
    """Two copies of one run: no noise, interval at 0. Two runs in different basins of pair A:
    the interval stays far above the tolerance."""
    from analysis import reference_import

    reference_import.import_files([SHIPPED[0], SHIPPED[0]], ALA, "copy", tmp_path / "same")
    same = reference.split_half_noise(reference.load(ALA, tmp_path / "same"), ALA,
                                      n_resamples=300)
    for item in same["pairs"].values():
        assert item["js_bits"] == pytest.approx(0.0, abs=1e-12)
        assert item["units"] == "time blocks (8 + 8)"
        assert 0.0 == item["js_ci"][0] <= item["js_ci"][1] < 0.5 * SETTINGS.js_tolerance
    two_runs = reference.ReferenceSet(directory=tmp_path, method="xtb", temperature_K=500.0,
                                      files=SHIPPED, shipped=False)
    apart = reference.split_half_noise(two_runs, ALA, n_resamples=300)
    a = apart["pairs"]["A"]
    assert a["js_bits"] > 0.9 and a["js_ci"][0] > 0.5 and a["js_ci"][1] <= 1.0
    assert a["random_halves_js"]["n_units"] == 8
    text = reference.format_summary(reference.summarize(
        reference.load(ALA, tmp_path / "same"), ALA, n_resamples=200))
    assert "the reference can decide" in text and "copy at 500 K, 2 run(s)" in text


def test_one_run_in_another_basin_is_named(tmp_path: Path) -> None:
    """Halves [B, B] against [B, A], where run A holds the basin of pair A that run B never
    visits: the split-half is far above the tolerance, and leaving out the fourth run (A)
    makes the halves identical, so ``reference show`` names that run and says what would
    settle the pair. With every run alike, nothing is named."""
    from analysis import reference_import

    odd, usual = SHIPPED  # replica 00 sits in the phi2 > 0 basin all along, replica 01 not
    reference_import.import_files([usual, usual, usual, odd], ALA, "xtb", tmp_path / "four")
    ref = reference.load(ALA, tmp_path / "four")
    noise = reference.split_half_noise(ref, ALA, n_resamples=100)
    a = noise["pairs"]["A"]
    assert a["js_bits"] > SETTINGS.js_tolerance
    named = a["most_atypical_run"]
    assert named["index"] == 3 and named["file"] == ref.files[3].name
    assert named["js_without_bits"] == pytest.approx(0.0, abs=1e-12)
    assert named["js_bits"] == pytest.approx(a["js_bits"])
    text = reference.format_summary(reference.summarize(ref, ALA, n_resamples=100))
    line = next(row for row in text.splitlines() if row.startswith("- pair A"))
    assert f"One run explains it: without {ref.files[3].name} the halves differ by 0.000" in line
    assert "longer runs" in line
    reference_import.import_files([usual] * 4, ALA, "xtb", tmp_path / "alike")
    alike = reference.load(ALA, tmp_path / "alike")
    assert "One run explains it" not in reference.format_summary(
        reference.summarize(alike, ALA, n_resamples=100))
    two = reference.split_half_noise(reference.ReferenceSet(
        directory=tmp_path, method="xtb", temperature_K=500.0, files=SHIPPED, shipped=False),
        ALA, n_resamples=100)
    assert two["pairs"]["A"]["most_atypical_run"] is None  # one run per half: nothing to leave out


def test_report_section_states_the_reference(tmp_path: Path) -> None:
    """The report's "Reference" section: which reference, its numbers, and the qualitative
    comparison of a model at another temperature."""
    from analysis import reference_import
    from analysis.commands import reference as reference_command

    src = _extxyz(tmp_path / "a.extxyz", n_frames=6)
    reference_import.import_files([src, src], ALA, "PBE+MBD (FHI-aims)", tmp_path / "ref500",
                                  temperature_K=500.0, frame_interval_ps=0.01)
    reference_import.import_files([src], ALA, "some model", tmp_path / "runs",
                                  temperature_K=300.0, frame_interval_ps=0.01)
    from analysis.settings import AnalysisSettings

    (section,) = reference_command.report_sections(
        sorted((tmp_path / "runs").glob("*.h5")), tmp_path / "work",
        settings=AnalysisSettings.make(reference=tmp_path / "ref500"))
    assert section.challenge == ALA.name and section.title == "Reference: PBE+MBD (FHI-aims)"
    assert section.markdown.startswith("Reference: PBE+MBD (FHI-aims) at 500 K, 2 run(s), "
                                       "0.05 ps per run (0.1 ps in all), 12 frames")
    assert "the model at 300 K: compared qualitatively" in section.markdown
    assert section.data["split_half"]["pairs"]["A"]["js_bits"] == pytest.approx(0.0, abs=1e-12)
    assert not (tmp_path / "work").exists()  # one cache: the report's, not the section's


def test_h5md_without_species_wrong_count(capsys, tmp_path: Path) -> None:
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("particles/trajectory/position/value",
                         data=np.zeros((2, 41, 3))).attrs["unit"] = "Angstrom"
    _user_error(_import_here(capsys, [tmp_path / "a.h5"], tmp_path / "o", *OK_FLAGS),
                "41 atoms, the challenge has 42")


def test_compaction_takes_the_longer_set_aside_copy_of_the_same_run_only(tmp_path):
    """A run set aside (no checkpoint) and started over repeats itself: until it catches up,
    the set-aside copy is the longer record of the same trajectory and is the one shipped;
    a copy of another run (another seed) in the folder never is."""
    from report_data import synthesise

    from harness.challenges.reference_md import pick_runs

    short = synthesise(tmp_path / "now", {"xtb": 0.05}, temperatures=(500.0,), n_frames=20)
    longer = synthesise(tmp_path / "before", {"xtb": 0.05}, temperatures=(500.0,),
                        n_frames=50)
    folder = short[0].parent
    shutil.copy(longer[0], folder / "replica-00.no-checkpoint.1795808432.h5")
    other = synthesise(tmp_path / "other", {"xtb": 0.05}, temperatures=(500.0,), n_frames=80)
    shutil.copy(other[1], folder / "replica-00.other.1.h5")  # longest, but replica 01's run
    picked = pick_runs(folder)
    assert [p.name for p in picked] == ["replica-00.no-checkpoint.1795808432.h5",
                                        "replica-01.h5"]
    assert h5md.read_meta(picked[0])["n_frames"] == 50


def test_compaction_cuts_every_run_at_one_length(tmp_path, capsys):
    """``reference_md --from OUT --until T``: runs stopped at different points are shipped cut
    at one time, so every start weighs the same; a run shorter than T is one line, exit 2,
    and nothing is written."""
    from report_data import DT_FS, STRIDE, synthesise

    from harness.challenges.reference_md import main

    frame_ps = DT_FS * STRIDE * 1e-3
    synthesise(tmp_path / "out", {"xtb": 0.05}, temperatures=(500.0,), replicas=2,
               n_frames=60, failing=frozenset({("xtb", 500.0, 1)}))  # replica 01: 30 frames
    base = ["--from", str(tmp_path / "out"), "--temperature", "500", "--every", "1"]
    assert main([*base, "--dest", str(tmp_path / "ref"), "--until", f"{25 * frame_ps}ps"]) == 0
    for name in ("xtb-500K-replica-00.h5", "xtb-500K-replica-01.h5"):
        with h5py.File(tmp_path / "ref" / name) as f:
            times = f["particles/all/position/time"][:]
            meta = json.loads(f["parameters/harness"].attrs["reference"])
        assert len(times) == 26 and times[-1] == pytest.approx(25 * frame_ps, abs=1e-9)
        assert meta["cut_at_ps"] == pytest.approx(25 * frame_ps)
        assert meta["length_ps"] == pytest.approx(25 * frame_ps, abs=1e-9)
    capsys.readouterr()
    assert main([*base, "--dest", str(tmp_path / "none"), "--until", f"{40 * frame_ps}ps"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "replica-01.h5 holds only" in err[0] and "shorter --until" in err[0]
    assert not (tmp_path / "none").exists()
