"""The shared shape of the observables: applicability and groups from challenge.toml, one frame
selection, verdicts with intervals and decisions, model against model.

MAPbI3 runs here are the exact motion of the isotropic harmonic well (``perovskite_data.py``):
no MD, seconds per test.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from perovskite_data import synthesise

from analysis.cli import main as analysis_main
from analysis.framesets import FrameSelection
from conftest import REPO
from conftest import analysis as run_analysis
from harness import challenges, h5md

ITEM_4 = {"observable", "model", "temperature_K", "decision", "value", "ci_low", "ci_high",
          "tolerance", "n_runs", "detail", "agrees"}


def test_observables_are_folders_with_one_declaration() -> None:
    from analysis import commands, observables

    found = {m.OBSERVABLE.name: m for m in observables.modules()}
    assert set(found) == {"orientation", "phonons", "ramachandran", "rdf", "scan", "spectrum",
                          "stability", "surface"}
    for name, module in found.items():
        assert Path(module.__file__).parent.name == name
        assert module.register == module.OBSERVABLE.register
    # commands and report providers come from one discovery: observables plus plain commands
    names = [m.__name__.rsplit(".", 1)[-1] for m in commands.modules()]
    assert {"report", *found} <= set(names)
    assert {m.__name__.rsplit(".", 1)[-1] for m in commands.section_modules()} >= set(found)
    # no challenge name and no reference model written into the observables' code
    for path in (REPO / "analysis" / "observables").rglob("*.py"):
        text = path.read_text()
        assert '"mapbi3"' not in text and "REFERENCE_MODEL" not in text, path
        assert '== "xtb"' not in text, path


def test_frame_selection_ranges_cover_exactly_the_selected_frames() -> None:
    sel = FrameSelection(skip_ps=0.05, every=3)
    ranges = sel.ranges(n_frames=100, frame_dt_ps=0.005, n_blocks=4)
    frames = [f for a, b in ranges for f in range(a, b, 3) if f < 100]
    assert frames == list(range(10, 100, 3))
    assert FrameSelection(0.0, 1).ranges(10, 0.1, 1) == [(0, 10)]


def _truncated_copy(src: Path, dst: Path, first: int) -> None:
    """``dst``: the run ``src`` holding only its frames from ``first`` on."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    with h5py.File(dst, "a") as f:
        for group, _, _ in h5md._series(f):
            for name in ("step", "time", "value"):
                data = group[name][first:]
                group[name].resize(len(data), axis=0)
                group[name][:] = data


def test_skip_longer_than_a_block_equals_a_file_without_those_frames(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from analysis.observables.orientation import compute as orientation
    from analysis.observables.rdf import compute as rdf

    # blocks of 16 frames: a 2 ps skip (400 frames) spans 25 blocks of both observables
    monkeypatch.setattr(rdf, "READ_BLOCK_FRAMES", 16)
    monkeypatch.setattr(orientation, "READ_BLOCK_FRAMES", 16)
    [full] = synthesise(tmp_path / "full", {"k1": 1.0}, replicas=1, n_frames=700)
    _truncated_copy(full, tmp_path / "cut" / full.relative_to(tmp_path / "full"), 400)
    results = {}
    for name, skip in (("full", "2ps"), ("cut", "0")):
        out = tmp_path / f"rep-{name}"
        for command in (["rdf", "--every", "3", "--export", str(out / "g.csv")],
                        ["orientation", "--every", "2"]):
            assert analysis_main([command[0], str(tmp_path / name), "--skip", skip,
                                  "--report-dir", str(out), *command[1:]]) == 0
        results[name] = (json.loads((out / "rdf.json").read_text())["groups"],
                         json.loads((out / "orientation.json").read_text())["groups"],
                         (out / "g.csv").read_text())
    (rdf_full, ori_full, g_full), (rdf_cut, ori_cut, g_cut) = results["full"], results["cut"]
    assert rdf_full[0]["n_frames"] == rdf_cut[0]["n_frames"] == 100  # 300 frames, every 3rd
    assert rdf_full[0]["first_peak_angstrom"] == rdf_cut[0]["first_peak_angstrom"]
    assert g_full == g_cut
    assert ori_full[0]["n_samples"] == ori_cut[0]["n_samples"] == 150 * 8
    assert ori_full[0]["quadrant_ratios"] == ori_cut[0]["quadrant_ratios"]


def test_two_different_wells_differ_on_spectra_and_a_same_well_does_not(tmp_path: Path) -> None:
    from analysis.observables import spectrum

    # the reference model (xtb in challenge.toml) and a second k = 1 well with other phases
    # and amplitudes; a k = 2 well; 4 runs each: the intervals come from the runs
    files = synthesise(tmp_path, {"xtb": 1.0, "same": 1.0, "stiff": 2.0}, replicas=4,
                       n_frames=600)
    study = spectrum.OBSERVABLE.study(challenges.load("mapbi3"), files, FrameSelection(),
                                      spectrum.OBSERVABLE.report_settings(None, files))
    verdicts = {v.model: v for v in study.verdicts}
    assert set(verdicts) == {"same", "stiff"}
    stiff, same = verdicts["stiff"], verdicts["same"]
    assert stiff.decision == "differs" and stiff.agrees is False
    assert stiff.ci_low > stiff.tolerance and stiff.n_runs == 4 and stiff.method == "runs"
    assert same.decision == "agrees" and same.ci_high <= same.tolerance
    assert "tolerance 0.1: differs" in stiff.detail and "[" in stiff.detail
    pairs = {(p["model_a"], p["model_b"]): p for p in study.pairs}
    assert pairs[("same", "stiff")]["disagree"] and pairs[("stiff", "xtb")]["disagree"]
    assert pairs[("same", "xtb")]["disagree"] is False
    # peaks sqrt(2) apart: the H stretch of the well is sqrt(k / m_H)
    peaks = {g.model: max(spectrum.OBSERVABLE.summary(g.total, study.settings)["peaks_cm"])
             for g in study.groups}
    assert peaks["stiff"] / peaks["xtb"] == pytest.approx(np.sqrt(2), rel=0.02)


def _copy_challenge(root: Path, name: str) -> Path:
    """The mapbi3 folder copied under another name, with its own groups."""
    folder = root / name
    shutil.copytree(REPO / "harness" / "challenges" / "mapbi3", folder,
                    ignore=shutil.ignore_patterns("__pycache__"))
    toml = folder / "challenge.toml"
    text = toml.read_text()
    text = text.replace('rdf_pairs = ["Pb-I", "C-N", "N-I", "C-I", "H-I", "Pb-Pb", "I-I"]',
                        'rdf_pairs = ["Pb-I", "C-N"]')
    text = text.replace("carbon = [0, 1, 2, 3, 4, 5, 6, 7]", "carbon = [0, 1, 2]")
    text = text.replace("nitrogen = [8, 9, 10, 11, 12, 13, 14, 15]", "nitrogen = [8, 9, 10]")
    toml.write_text(text)
    return folder


def test_a_copy_of_the_mapbi3_folder_gets_its_sections_and_groups(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _copy_challenge(tmp_path / "challenges", "perovskite-copy")
    env = {"TEA_HARNESS_CHALLENGE_PATH": str(tmp_path / "challenges")}
    monkeypatch.setenv("TEA_HARNESS_CHALLENGE_PATH", env["TEA_HARNESS_CHALLENGE_PATH"])
    out = tmp_path / "runs"
    synthesise(out, {"xtb": 1.0, "model": 1.0}, challenge="perovskite-copy", n_frames=120)
    proc = run_analysis("report", str(out), "--quiet", env=env)
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "reports" / "report.json").read_text())
    [chal] = report["challenges"]
    assert chal["name"] == "perovskite-copy" and chal["missing_observables"] == ["phonons"]
    titles = {t for s in chal["sections"] for t in s["titles"]}
    assert {"Radial distribution functions", "MA cation orientation",
            "Vibrational spectrum (VACF)", "Stability"} <= titles
    observed = {v["observable"] for v in chal["verdicts"] if v["model"] == "model"}
    assert {"rdf", "orientation", "spectrum", "stability"} <= observed
    md = (out / "reports" / "report.md").read_text()
    # [groups] read: two RDF pairs, three cations (120 frames x 3 C-N samples per run)
    assert "| model | T (K) | runs | Pb-I | C-N |\n" in md
    proc = run_analysis("orientation", str(out), "--report-dir", str(tmp_path / "o"), env=env)
    assert proc.returncode == 0, proc.stderr
    groups = json.loads((tmp_path / "o" / "orientation.json").read_text())["groups"]
    assert {g["n_samples"] for g in groups} == {2 * 120 * 3}


def test_report_json_verdicts_carry_intervals_for_every_observable(tmp_path: Path) -> None:
    from report_data import synthesise as peptide_runs
    from test_surface_analysis import write_run as surface_run

    out = tmp_path / "runs"
    synthesise(out, {"xtb": 1.0, "stiff": 2.0}, n_frames=200)
    peptide_runs(out, {"close": 0.06, "wobbly": 0.4}, temperatures=(500.0,), replicas=2,
                 n_frames=150, failing=frozenset({("wobbly", 500.0, 1)}))
    rng = np.random.default_rng(2)
    for model, shift in (("xtb", 0.0), ("toy", 0.6)):
        for replica in range(2):
            surface_run(out, model, 300.0, replica, rng.normal(3.4 + shift, 0.2, 100))
    reports = out / "reports"
    reports.mkdir(parents=True)
    for model, scale in (("xtb", 1.0), ("stiff", 1.4)):
        (reports / f"phonons-mapbi3-{model}.json").write_text(json.dumps(
            {"challenge": "mapbi3", "model_label": model,
             "frequencies_cm": list(scale * np.linspace(60, 3000, 30))}))
    # every provider but the two that give no verdict (errors and triage: reference single
    # points on sampled frames, tested in test_triage and by the report fixture of test_report)
    from analysis.report import providers

    judged = [p.name for p in providers() if p.name not in ("errors", "triage")]
    proc = run_analysis("report", str(out), "--quiet", "--sections", ",".join(judged))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((reports / "report.json").read_text())
    verdicts = [v for c in report["challenges"] for v in c["verdicts"]]
    assert {v["observable"] for v in verdicts} >= {"stability", "rdf", "orientation", "spectrum",
                                                   "phonons", "ramachandran", "surface"}
    for v in verdicts:
        assert ITEM_4 <= set(v), v
        assert v["decision"] in ("agrees", "differs", "inconclusive", "no_reference")
        assert v["agrees"] == {"agrees": True, "differs": False}.get(v["decision"])
        if v["decision"] in ("agrees", "differs"):
            assert v["value"] is not None and v["tolerance"] is not None and v["n_runs"] >= 1
    by = {(v["observable"], v["model"]): v for v in verdicts}
    # intervals from the replicas where there are replicas
    for key in (("spectrum", "stiff"), ("rdf", "stiff"), ("surface", "toy"),
                ("stability", "wobbly"), ("ramachandran", "close")):
        v = by[key]
        assert v["ci_low"] is not None and v["ci_low"] <= v["value"] <= v["ci_high"], v
    assert by[("spectrum", "stiff")]["decision"] == "differs"
    assert by[("phonons", "stiff")]["decision"] == "differs"  # 40% stiffer: no interval needed
    assert by[("stability", "wobbly")]["n_runs"] == 2
    md = (reports / "report.md").read_text()
    assert "tolerance 0.1: differs" in md and "time blocks resampled" in md
    assert "fails sooner than" in md or "fail alike" in md  # log-rank in the stability section
    assert "**these models disagree**" in md  # stiff vs xtb spectra, model against model


def test_the_control_of_a_generic_verdict_vetoes_agreement_it_cannot_support(
        tmp_path: Path) -> None:
    """Every comparison verdict is also decided for a control that never gets further than its
    start (each run's first 0.1 ps repeated over its length). Surface heights, 4 runs x 0.5 ps
    per model. (1) The reference stays near its starts: a model that samples the same heights
    is within tolerance, but so is the control, so the verdict cannot be `agrees` and says
    why. (2) The reference leaves its starts within 0.1 ps: a model that does the same
    `agrees` (its control differs), and one that stays at the starts `differs`."""
    from test_surface_analysis import write_run as surface_run

    def heights(rng, opening: float, rest: float) -> np.ndarray:
        d = rng.normal(rest, 0.15, 1000)  # 0.5 fs per frame: 0.5 ps, opening = 200 frames
        d[:200] = rng.normal(opening, 0.15, 200)
        return d

    def verdicts(out: Path) -> dict[str, dict]:
        proc = run_analysis("report", str(out), "--quiet", "--sections", "surface")
        assert proc.returncode == 0, proc.stderr
        report = json.loads((out / "reports" / "report.json").read_text())
        return {v["model"]: v for c in report["challenges"] for v in c["verdicts"]
                if v["observable"] == "surface"}

    rng = np.random.default_rng(5)
    near = tmp_path / "near"
    for model in ("xtb", "sampler"):
        for replica in range(4):
            surface_run(near, model, 300.0, replica, heights(rng, 3.4, 3.4))
    v = verdicts(near)["sampler"]
    assert v["value"] <= v["tolerance"] and v["ci_high"] <= v["tolerance"]  # model alone: in
    assert v["control_decision"] == "agrees"
    assert v["decision"] == "inconclusive" and v["reason"] == "control_not_excluded", v
    assert "cannot tell a model that samples from one that stays put" in v["detail"]

    away = tmp_path / "away"
    for model, rest in (("xtb", 3.4), ("mover", 3.4), ("stuck", 4.6)):
        for replica in range(4):
            surface_run(away, model, 300.0, replica, heights(rng, 4.6, rest))
    found = verdicts(away)
    assert found["mover"]["decision"] == "agrees", found["mover"]
    assert found["mover"]["control_decision"] == "differs"
    assert found["stuck"]["decision"] == "differs"
