"""``analysis report``: sections from providers, the content cache, the page in a real browser."""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from report_data import synthesise

from conftest import launch
from harness import h5md

TESTS = Path(__file__).resolve().parent
NOISE = {"reference": 0.05, "close": 0.06, "wobbly": 0.4}
FAILING = frozenset({("wobbly", 500.0, 1)})


def plugin_site(root: Path) -> Path:
    """A folder holding an installed-looking distribution that declares the test plug-in."""
    dist = root / "site" / "tea_test_plugin-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: tea-test-plugin\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(
        "[tea_harness.report_sections]\nrg-test = report_plugin:report_sections\n")
    return root / "site"


def report(out: Path, *args: str, site: Path | None = None, timeout: float = 300,
           **env_extra: str) -> subprocess.CompletedProcess:
    """Run ``analysis report OUT ARGS`` as a user would, with the plug-in when ``site``."""
    path = [str(site), str(TESTS)] if site else []
    path += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(path), **env_extra)
    return subprocess.run([sys.executable, "-m", "analysis.cli", "report", str(out), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Three models, two temperatures, one failed run, reported once with the plug-in."""
    root = tmp_path_factory.mktemp("report")
    out = root / "runs"
    synthesise(out, NOISE, temperatures=(300.0, 500.0), replicas=2, n_frames=200,
               failing=FAILING)
    site = plugin_site(root)
    calls = root / "calls.txt"
    proc = report(out, site=site, TEA_TEST_PLUGIN_CALLS=str(calls))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"out": out, "dir": out / "reports", "site": site, "calls": calls, "proc": proc}


# --- the cache ---------------------------------------------------------------------------

def test_content_hasher_remembers_by_stat_and_sees_every_write(tmp_path: Path) -> None:
    from analysis.cache import ContentHasher

    data = tmp_path / "a.bin"
    data.write_bytes(b"x" * 100_000)
    memo = tmp_path / "memo.json"
    first = ContentHasher(memo)
    original = first.digest(data)
    assert original == hashlib.sha256(data.read_bytes()).hexdigest()
    first.save()
    second = ContentHasher(memo)
    assert second.digest(data) == original and second.bytes_hashed == 0
    # same size, mtime set back: the ctime still moves, so the file is read again
    stat = data.stat()
    data.write_bytes(b"y" + b"x" * 99_999)
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    third = ContentHasher(memo)
    assert third.needs_reading(data)
    assert third.digest(data) == hashlib.sha256(data.read_bytes()).hexdigest() != original


def test_cache_key_depends_on_code_version_and_inputs_not_order() -> None:
    from analysis.cache import make_key

    base = make_key("rama", "1", ["c1", "c2"], ["f1", "f2"])
    assert base == make_key("rama", "1", ["c2", "c1"], ["f2", "f1"])
    others = {make_key("rama", "2", ["c1", "c2"], ["f1", "f2"]),
              make_key("rama", "1", ["c1", "c3"], ["f1", "f2"]),
              make_key("rama", "1", ["c1", "c2"], ["f1", "f3"]),
              make_key("other", "1", ["c1", "c2"], ["f1", "f2"])}
    assert base not in others and len(others) == 4


def test_code_that_can_change_a_section_is_in_its_key_presentation_is_not() -> None:
    from analysis.cache import code_files
    from analysis.observables import stability

    names = {p.relative_to(Path(stability.__file__).parents[3]).as_posix()
             for p in code_files(stability)}
    assert {"analysis/observables/stability/__init__.py",
            "analysis/observables/stability/compute.py", "analysis/observables/base.py",
            "analysis/observables/stability/rule.py", "harness/h5md.py",
            "analysis/sections.py"} <= names
    assert not names & {"analysis/render.py", "analysis/report_layout.py"}


def test_providers_stability_first_and_entry_point_plugins(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from analysis.report import providers

    monkeypatch.syspath_prepend(str(TESTS))
    monkeypatch.syspath_prepend(str(plugin_site(tmp_path)))
    found = providers()
    names = [p.name for p in found]
    assert names[0] == "stability" and "rg-test" in names
    plugin = found[names.index("rg-test")]
    assert plugin.module.__name__ == "report_plugin"


# --- what the report says ------------------------------------------------------------------

def test_report_sections_verdicts_and_provenance(built: dict) -> None:
    summary = json.loads((built["dir"] / "report.json").read_text())
    (chal,) = summary["challenges"]
    assert chal["name"] == "alanine-tetrapeptide" and chal["runs"] == 12
    assert [s["provider"] for s in chal["sections"]][0] == "stability"
    verdicts = {(v["observable"], v["model"], v["temperature_K"]): v for v in chal["verdicts"]}
    # stability: only wobbly at 500 K lost a run. Failures per ns of simulated time: one
    # failure in 2.98 ps (runs of 1.99 ps, the failed one up to 0.99 ps) is far above 0.5 per
    # ns; 2 runs of 2 ps without a failure are never evidence of stability (under 500 ps)
    stab = {k[1:]: v for k, v in verdicts.items() if k[0] == "stability"}
    assert set(stab) == {(m, t) for m in NOISE for t in (300.0, 500.0)}
    wobbly = stab.pop(("wobbly", 500.0))
    assert (wobbly["decision"], wobbly["reason"]) == ("differs", "rate_above_tolerance")
    assert wobbly["value"] == pytest.approx(1000 / 2.98) and wobbly["ci_low"] > 0.5
    assert all((v["decision"], v["reason"], v["agrees"], v["value"])
               == ("inconclusive", "runs_too_short", None, 0.0) for v in stab.values())
    assert all(v["ci_low"] <= v["value"] <= v["ci_high"] and v["n_runs"] == 2
               and v["tolerance"] == 0.5 and v["unit"] == "failures/ns"
               and v["scope"]["label"] == "2 runs x 1.99 ps, failures per ns"
               for v in [wobbly, *stab.values()])
    assert "1 of 2 runs failed (bond_break x1" in wobbly["detail"]
    # the plug-in's observable: noise 0.4 A shifts the mean Rg beyond 0.02 A, 0.06 A does not
    rg = {k[1:]: v["agrees"] for k, v in verdicts.items() if k[0] == "radius of gyration"}
    assert rg == {("close", 300.0): True, ("close", 500.0): True,
                  ("wobbly", 300.0): False, ("wobbly", 500.0): False}
    # every observable Challenge I declares (stability, ramachandran) has its section
    assert chal["missing_observables"] == []
    assert "ramachandran" in [s["provider"] for s in chal["sections"]]
    md = (built["dir"] / "report.md").read_text()
    assert "## Challenge I: Alanine tetrapeptide" in md and "### Stability" in md
    assert "\n#### Means\n" in md  # the plug-in's own "# Means", demoted under its section
    figures = re.findall(r"\]\((report_files/figure-\d+\.png)\)", md)
    assert len(figures) >= 3 and all((built["dir"] / f).stat().st_size > 5000 for f in figures)
    assert "| wobbly | 500 | 1 / 2 | 1 | 0 |" in md
    assert "runs fail at most 0.5 times per ns of simulated time" in md
    assert "tolerance 0.02 A" in md and "| 2 runs x 1.99 ps, failures per ns |" in md
    # provenance appendix: every run, with its content digest
    runs = md.split("### Runs")[1]
    digests = [hashlib.sha256(p.read_bytes()).hexdigest()[:12]
               for p in sorted(built["out"].rglob("replica-*.h5"))]
    assert all(f"`{d}`" in runs for d in digests)
    assert "stderr" not in built["proc"].stdout


def test_a_second_report_takes_every_section_from_the_cache(built: dict,
                                                             tmp_path: Path) -> None:
    """Every provider (errors, triage, Ramachandran, the plug-in ...), not only those the
    cache tests below build: on unchanged runs all come back from the cache, with the same
    verdicts and figures, and no provider is called again."""
    calls_before = built["calls"].read_text()
    again = tmp_path / "again"
    proc = report(built["out"], "--quiet", "--report-dir", str(again), "--cache-dir",
                  str(built["dir"] / ".cache"), site=built["site"],
                  TEA_TEST_PLUGIN_CALLS=str(built["calls"]))
    assert proc.returncode == 0, proc.stderr
    first = json.loads((built["dir"] / "report.json").read_text())["challenges"][0]
    second = json.loads((again / "report.json").read_text())["challenges"][0]
    assert [s["provider"] for s in second["sections"]] == \
        [s["provider"] for s in first["sections"]]
    assert {"errors", "triage", "ramachandran", "rg-test"} <= \
        {s["provider"] for s in second["sections"]}
    assert all(s["cached"] for s in second["sections"]), \
        [s["provider"] for s in second["sections"] if not s["cached"]]
    assert second["verdicts"] == first["verdicts"]
    assert built["calls"].read_text() == calls_before  # the plug-in was not called
    figures = re.findall(r"\]\((report_files/figure-\d+\.png)\)", (again / "report.md").read_text())
    assert len(figures) == len(re.findall(r"\]\((report_files/figure-\d+\.png)\)",
                                          (built["dir"] / "report.md").read_text()))
    assert all((again / f).stat().st_size > 5000 for f in figures)


def test_second_report_reuses_every_section_until_a_file_changes(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    paths = synthesise(out, {"reference": 0.05, "close": 0.06}, n_frames=100)
    assert "close" in paths[2].parts
    site, calls = plugin_site(tmp_path), tmp_path / "calls.txt"
    env = {"TEA_TEST_PLUGIN_CALLS": str(calls)}
    only = ("--sections", "stability,rg-test")  # the cache is the same for every provider
    assert report(out, "--quiet", *only, site=site, **env).returncode == 0
    assert report(out, "--quiet", *only, site=site, **env).returncode == 0
    assert calls.read_text().splitlines() == ["4"]  # the second report did not call it
    summary = json.loads((out / "reports" / "report.json").read_text())
    assert all(s["cached"] for s in summary["challenges"][0]["sections"])
    h5md.set_status(paths[2], "failed", {"kind": "bond_break", "time_ps": 0.5,
                                         "atoms": [3, 4], "elements": ["N", "C"]})
    proc = report(out, *only, site=site, **env)
    assert proc.returncode == 0 and calls.read_text().splitlines() == ["4", "4"]
    summary = json.loads((out / "reports" / "report.json").read_text())
    assert not any(s["cached"] for s in summary["challenges"][0]["sections"])
    assert "report: stability: alanine-tetrapeptide" in proc.stderr  # progress, one line per step
    stab = [v for v in summary["challenges"][0]["verdicts"] if v["observable"] == "stability"]
    # one failure at 0.5 ps beside a run of 0.99 ps: 1 per 1.49 ps of simulated time
    assert [v["value"] for v in stab if v["model"] == "close"] == [pytest.approx(1000 / 1.49)]
    assert "1 of 2 runs failed" in next(v["detail"] for v in stab if v["model"] == "close")
    # one cache entry per (provider, challenge): the superseded ones are gone
    assert len(list((out / "reports" / ".cache" / "stability").glob("*/*"))) == 1


def test_a_failing_section_is_shown_and_the_rest_still_written(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    synthesise(out, {"reference": 0.05}, n_frames=50)
    proc = report(out, "--quiet", "--sections", "stability,rg-test", site=plugin_site(tmp_path),
                  TEA_TEST_PLUGIN_FAIL="1")
    assert proc.returncode == 1
    assert "section provider rg-test failed on alanine-tetrapeptide: RuntimeError" in proc.stderr
    html = (out / "reports" / "report.html").read_text()
    assert "asked to fail by TEA_TEST_PLUGIN_FAIL" in html and 'id="stability"' in html
    assert not (out / "reports" / ".cache" / "rg-test").exists() or not any(
        (out / "reports" / ".cache" / "rg-test").rglob("result.pkl"))


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = report(tmp_path / "nothing-here")
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_challenge_one_runs_then_report(tmp_path: Path) -> None:
    """Real MD (i-PI) of two models on Challenge I, one that breaks, then the report."""
    out = tmp_path / "runs"
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), env_path) if p)
    try:
        launch("--model", "harmonic", "--criteria", "non_finite", "--temperatures", "300",
               "--replicas", "2", "--time", "0.05ps", "--out", str(out), "--stall-timeout",
               "600", check=True)
        launch("--model", "ase:breaking_models:make", "--model-option", "pull=3-4",
               "--temperatures", "300", "--replicas", "1", "--time", "0.5ps", "--out", str(out),
               "--stall-timeout", "600")
    finally:
        os.environ["PYTHONPATH"] = env_path
    # stability and speed of real runs; the observables of such runs are tested with their own
    # files (test_ramachandran, test_triage), the whole report on richer data above
    proc = report(out, "--quiet", "--sections", "stability,speed")
    assert proc.returncode == 0, proc.stderr
    # failures per ns of simulated time: 2 intact runs of 50 fs are no evidence of stability
    # (inconclusive, with their interval); 1 failure within 0.5 ps is far above 0.5 per ns
    assert "verdicts: 0 within tolerance, 1 outside, 1 inconclusive" in proc.stdout
    md = (out / "reports" / "report.md").read_text()
    assert "| harmonic | 300 | – inconclusive | 2 runs x 50 fs, failures per ns | 0 [0, 3.69e+04] "\
        "failures/ns, tolerance 0.5: inconclusive | 2 | scope: 2 runs x 50 fs, failures per ns " \
        "(0.1 ps simulated)" in md
    assert re.search(r"\| ase-breaking_models-make \| 300 \| \S+ no \| 1 run x 0.5 ps, failures "
                     r"per ns \| [\d.e+]+ \[[\d.e+]+, "
                     r"[\d.e+]+\] failures/ns, tolerance 0.5: differs \| 1 \| scope: 1 run x "
                     r"0.5 ps, failures per ns", md)
    # the failed run is listed with its event (bond_break N-C (3-4) when nothing else intervenes)
    assert re.search(r"- ase-breaking_models-make, 300 K, replica 0: \w+.* at [\d.]+ ps", md)
    assert "python -m harness.launch --quiet --model harmonic" in md
    _speed_and_drift_shown(out / "reports", tmp_path)


def _speed_and_drift_shown(report_dir: Path, tmp_path: Path) -> None:
    """The real runs' speed table and drift column: in report.json, and on the page as
    Chromium renders it (when installed)."""
    tables = json.loads((report_dir / "report.json").read_text())["challenges"][0]["tables"]
    speed = {r["model"]: r for r in tables["speed"]}
    harmonic = speed["harmonic"]
    assert harmonic["runs"] == 2 and harmonic["atoms"] == 42
    assert 0 < harmonic["model_ms_per_step"] < harmonic["total_ms_per_step"]
    assert harmonic["ns_per_day_per_replica"] > 0 and harmonic["stable_ns_per_device_hour"] > 0
    drift = {r["model"]: r for r in tables["drift"]}
    assert drift["harmonic"]["runs_with_drift"] == 2
    if _chromium_missing() is not None:
        return
    from browser import Browser

    with Browser(tmp_path) as browser:
        browser.open((report_dir / "report.html").as_uri())
        shown = browser.run(
            "return Array.from(document.querySelectorAll('table')).filter(t => "
            "t.offsetHeight > 0).map(t => Array.from(t.rows).map(r => "
            "Array.from(r.cells).map(c => c.innerText.trim())))")
        headings = browser.run("return Array.from(document.querySelectorAll('h3'))"
                               ".filter(h => h.offsetHeight > 0).map(h => h.textContent)")
    assert "Speed and energy drift" in headings
    by_header = {tuple(t[0]): t[1:] for t in shown if t}
    speed_rows = next(rows for head, rows in by_header.items() if "model (ms/step)" in head
                      and "harness (ms/step)" in head and "ns/day per node" in head)
    row = next(r for r in speed_rows if r[0] == "harmonic")
    # model + harness = total (3 significant digits each), every number shown
    model_ms, harness_ms, total_ms = (float(x) for x in row[4:7])
    assert abs(model_ms + harness_ms - total_ms) <= 0.01 * total_ms
    assert all(float(x) > 0 for x in row[7:11])
    drift_rows = next(rows for head, rows in by_header.items()
                      if "median drift" in head and "flagged (> 1)" in head)
    row = next(r for r in drift_rows if r[0] == "harmonic")
    assert row[1] == "300" and float(row[4]) == float(row[4]) and row[6].endswith("of 2")


# --- the page, in a browser ---------------------------------------------------------------

def _chromium_missing() -> str | None:
    from browser import available

    return available()


@pytest.mark.skipif(_chromium_missing() is not None, reason=str(_chromium_missing()))
def test_report_page_in_headless_chromium(built: dict, tmp_path: Path) -> None:
    from browser import ELEMENT, Browser, decode_png, resized

    from analysis.render import NONE

    page = built["dir"] / "report.html"
    with Browser(tmp_path) as browser:
        browser.open(page.as_uri())
        assert browser.run("return document.title").startswith("Force-field crash test")
        headings = browser.run("return Array.from(document.querySelectorAll('h2, h3'))"
                               ".map(h => [h.tagName, h.textContent, h.offsetHeight > 0])")
        shown = {(tag, text) for tag, text, visible in headings if visible}
        for expected in (("H2", "Verdicts at a glance"), ("H3", "Stability"),
                         ("H2", "Challenge I: Alanine tetrapeptide (Ac-Ala3-NHMe), gas phase"),
                         ("H3", "Radius of gyration (test plugin)"),
                         ("H2", "Appendix: provenance"), ("H3", "Runs")):
            assert expected in shown, (expected, headings)
        images = browser.run(
            "return Array.from(document.images).map(i => ({el: i, ok: i.complete, "
            "w: i.naturalWidth, shown: i.getBoundingClientRect().width, "
            "vis: getComputedStyle(i).visibility, src: i.src.slice(0, 22)}))")
        sources = sorted((built["dir"] / "report_files").glob("*.png"))
        assert len(images) == len(sources) >= 2
        originals = {s.name: decode_png(s.read_bytes()) for s in sources}
        matched = set()
        for image in images:
            assert image["ok"] and image["w"] > 300 and image["shown"] > 300, image
            assert image["vis"] == "visible" and image["src"] == "data:image/png;base64,"
            pixels = browser.element_png(image["el"])[1:-1, 1:-1]  # without the 1px border
            assert (pixels.mean(axis=2) < 0.85).mean() > 0.01  # not blank: lines, text, axes
            likeness = {name: np.corrcoef(resized(original, pixels.shape[:2]).ravel(),
                                          pixels.ravel())[0, 1]
                        for name, original in originals.items()}
            best = max(likeness, key=likeness.get)
            # thin lines of a wide figure shown smaller lose some likeness in the resize;
            # the figure must still be clearly itself and like none of the others
            runner_up = max([v for k, v in likeness.items() if k != best], default=0.0)
            assert likeness[best] > 0.95 or (likeness[best] > 0.8
                                             and likeness[best] - runner_up > 0.3), \
                f"a figure on screen looks like none of {likeness}"
            matched.add(best)
        assert matched == set(originals)  # every figure file is on the page
        cells = browser.run(
            "return ['ok', 'bad', 'na'].map(c => Array.from(document.querySelectorAll('td.' + c))"
            ".map(td => getComputedStyle(td).backgroundColor))")
        ok, bad, _ = cells
        assert ok and bad
        # every verdict table shows the number with its interval and tolerance
        text = browser.run("return document.body.innerText")
        assert re.search(r"0 \[0, [\d.e+]+\] failures/ns, tolerance 0\.5: inconclusive", text)
        assert "scope: 2 runs x 1.99 ps, failures per ns" in text
        assert re.search(r"\d \[[\d.e-]+, [\d.e-]+\] bits, tolerance 0\.15: \w+", text)
        assert "failures per ns [95%]" in text and "fail" in text
        # the summary table itself says what each verdict rests on, cell by cell
        glance = browser.run(
            "const h = Array.from(document.querySelectorAll('h2'))"
            ".find(e => e.textContent === 'Verdicts at a glance');"
            "let e = h.nextElementSibling; while (e && !e.querySelector('table')"
            " && e.tagName !== 'TABLE') { e = e.nextElementSibling; }"
            "const t = e.tagName === 'TABLE' ? e : e.querySelector('table');"
            "return Array.from(t.querySelectorAll('td')).map(td => [td.className,"
            " td.textContent, td.offsetHeight > 0]);")
        decided = [(cls, words) for cls, words, shown in glance if cls and shown]
        assert decided, glance
        assert any(words.endswith("(2 runs x 1.99 ps, failures per ns)")
                   for _, words in decided), decided
        assert any(re.search(r"\((paired by start, first [\d.]+ ps|unpaired, the runs' "
                             r"distribution against the reference's)\)$", words)
                   for _, words in decided), decided
        # every decided cell states a scope: a decision with no scope is no longer shown bare
        bare = [words for _, words in decided
                if not re.search(r"\(.+\)$", words) and words not in (NONE, f"{NONE} n/a")]
        assert not bare, bare
        # the test plug-in gives old-style verdicts (agrees only): said, not hidden
        assert any(words.endswith("(scope not stated)") for _, words in decided), decided
        red = [tuple(map(int, re.findall(r"\d+", c)[:3])) for c in bad]
        green = [tuple(map(int, re.findall(r"\d+", c)[:3])) for c in ok]
        assert all(r > g for r, g, _ in red) and all(g > r for r, g, _ in green)
        resources = browser.run("return performance.getEntriesByType('resource')"
                                ".map(e => e.name)")
        assert all(r.startswith(("data:", "file:")) for r in resources), resources
        shot = browser.page_png()
        assert isinstance(images[0]["el"], dict) and ELEMENT in images[0]["el"]
    (built["dir"] / "screenshot.png").write_bytes(shot)
    # a figure on the page (the survival curves) carries 95% bands: the shaded tint of a curve
    # colour (matplotlib's tab10 at alpha 0.2 on white) covers part of the 500 K panel, where a
    # run failed
    tints = [0.8 * 255 + 0.2 * np.array(c) for c in ((31, 119, 180), (255, 127, 14),
                                                     (44, 160, 44))]
    shaded = max(np.mean(np.all(np.abs(decode_png(source.read_bytes()) * 255 - t) < 8, axis=-1))
                 for source in sources for t in tints)
    assert shaded > 0.005, shaded
    full = decode_png(shot)
    assert full.shape[0] > 2000 and full.shape[1] >= 1000
    assert 'src="http' not in page.read_text() and "url(http" not in page.read_text()


# --- speed of the cache ---------------------------------------------------------------------

def _timed(fn) -> tuple[float, float]:
    """(wall s, CPU s of child processes) of ``fn()``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    fn()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


@pytest.mark.slow
def test_second_report_at_least_5x_faster_on_realistic_data(tmp_path: Path) -> None:
    """Three models x three temperatures x four replicas of 20,000 frames (1.4 GB)."""
    out = tmp_path / "runs"
    synthesise(out, NOISE, temperatures=(300.0, 500.0, 700.0), replicas=4, n_frames=20_000)
    site = plugin_site(tmp_path)

    def run() -> None:
        proc = report(out, "--quiet", site=site, timeout=1200)
        assert proc.returncode == 0, proc.stderr

    first_wall, first_cpu = _timed(run)
    second = [_timed(run) for _ in range(3)]
    best_wall, best_cpu = min(w for w, _ in second), min(c for _, c in second)
    print(f"first report {first_wall:.1f} s wall ({first_cpu:.1f} s CPU); second "
          f"{best_wall:.2f} s wall ({best_cpu:.2f} s CPU): {first_wall / best_wall:.1f}x")
    assert first_cpu >= 5 * best_cpu
    assert first_wall >= 5 * best_wall


def test_a_single_command_can_fill_the_report_cache(tmp_path: Path) -> None:
    from analysis.observables import stability
    from analysis.report import cached_sections

    out = tmp_path / "runs"
    synthesise(out, {"reference": 0.05}, n_frames=50)
    (section,) = cached_sections(stability, [out])
    assert section.title == "Stability" and Path(section.figures[0].path).is_file()
    proc = report(out, "--quiet", "--sections", "stability")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "reports" / "report.json").read_text())
    first = summary["challenges"][0]["sections"][0]
    assert (first["provider"], first["cached"], first["titles"]) == ("stability", True,
                                                                     ["Stability"])


def test_progress_bar_on_a_terminal_and_in_a_log() -> None:
    import io

    from analysis.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    with Progress(total=4, stream=screen, tick_s=0.05) as bar:
        bar.start("stability: alanine-tetrapeptide")
        bar.partial(0.5)
        time.sleep(0.2)  # the clock keeps redrawing while a step runs
        bar.finish()
        bar.start("writing")
    frames = screen.getvalue().split("\r")
    assert any(f.startswith("[###") and " 12%" in f and "stability: alanine" in f for f in frames)
    assert any(" 25%  1/4  writing" in f for f in frames) and len(frames) > 4
    log = io.StringIO()
    with Progress(total=2, stream=log) as bar:
        bar.start("reading runs")
        bar.finish("8 runs")
    assert log.getvalue() == "report: reading runs: 8 runs\n"


def test_each_challenge_gets_its_own_sections_and_files(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    paths = synthesise(out, {"reference": 0.05}, n_frames=30)
    with h5md.open_file(paths[1], "a") as f:  # the second run now says it is another challenge
        spec = json.loads(f[h5md.PARAMS].attrs["run_spec"])
        f[h5md.PARAMS].attrs["run_spec"] = json.dumps({**spec, "challenge": "my-challenge"})
    calls = tmp_path / "calls.txt"
    proc = report(out, "--quiet", "--sections", "stability,rg-test", site=plugin_site(tmp_path),
                  TEA_TEST_PLUGIN_CALLS=str(calls))
    assert proc.returncode == 0, proc.stderr
    assert calls.read_text().splitlines() == ["1", "1"]  # one call per challenge, its file only
    summary = json.loads((out / "reports" / "report.json").read_text())
    assert [(c["name"], c["runs"]) for c in summary["challenges"]] == [
        ("alanine-tetrapeptide", 1), ("my-challenge", 1)]
    assert summary["challenges"][1]["missing_observables"] == []  # unknown challenge: no list
    md = (out / "reports" / "report.md").read_text()
    assert "## Challenge: my-challenge" in md and md.count("### Stability") == 2


def test_figures_written_elsewhere_and_unstorable_data(tmp_path: Path) -> None:
    import types

    from analysis.progress import Progress
    from analysis.report import Provider, build
    from analysis.sections import Figure, Section

    out = tmp_path / "runs"
    synthesise(out, {"reference": 0.05}, n_frames=20)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def sections(files: list[Path], workdir: Path) -> list[Section]:
        made = []
        for n in range(2):  # two sections, each with a figure of the same name elsewhere
            png = elsewhere / f"{n}" / "fig.png"
            png.parent.mkdir(exist_ok=True)
            png.write_bytes(b"\x89PNG fake " + bytes([n]))
            made.append(Section("alanine-tetrapeptide", f"part {n}", "text",
                                [Figure(png, "caption")], data={"f": lambda: None}))
        return made

    module = types.ModuleType("elsewhere_sections")
    provider = Provider("elsewhere", sections, module)
    cache_root = tmp_path / "cache"
    for _ in range(2):  # data with a lambda cannot be cached: computed again, shown both times
        result = build([out], cache_root, Progress(2, enabled=False), use=[provider])
        (outcome,) = result.challenges[0].outcomes
        assert not outcome.cached and outcome.error is None
        shown = [Path(s.figures[0].path).read_bytes()[-1] for s in outcome.sections]
        assert shown == [0, 1]  # both figures kept apart
    assert not list((cache_root / "elsewhere").rglob("result.pkl"))


def test_no_cache_keeps_nothing(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    synthesise(out, {"reference": 0.05}, n_frames=20)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = report(out, "--no-cache", "--quiet", "--report-dir", str(tmp_path / "rep"),
                  "--sections", "stability", TMPDIR=str(scratch))
    assert proc.returncode == 0, proc.stderr
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "Only the sections stability were built (`--sections`)" in md
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["sections_only"] == \
        ["stability"]
    # a name no provider has: one line naming it and the names there are, exit 2
    bad = report(out, "--no-cache", "--quiet", "--sections", "stability,nope",
                 "--report-dir", str(tmp_path / "rep2"))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "'nope'" in bad.stderr and "choose from stability, " in bad.stderr
    assert "Traceback" not in bad.stderr
    assert (tmp_path / "rep" / "report.html").stat().st_size > 10_000
    assert (tmp_path / "rep" / "report_files" / "figure-01.png").is_file()
    assert not (tmp_path / "rep" / ".cache").exists() and not list(scratch.iterdir())


@pytest.mark.slow
@pytest.mark.skipif(_chromium_missing() is not None, reason=str(_chromium_missing()))
def test_gap_and_xtb_on_challenge_one_then_a_readable_page(tmp_path: Path) -> None:
    """The demo GAP and the xTB reference, a short run each, then the report in a browser."""
    from browser import Browser

    out = tmp_path / "runs"
    launch("--model", "gap,xtb", "--temperatures", "300", "--replicas", "1", "--time",
           "0.1ps", "--out", str(out), check=True, timeout=900)
    proc = report(out)
    assert proc.returncode == 0, proc.stderr
    md = (out / "reports" / "report.md").read_text()
    assert "| gap | 300 | – inconclusive |" in md and "| xtb | 300 | – inconclusive |" in md
    assert "xtb: GFN2-xTB via tblite: the reference method" in md
    with Browser(tmp_path) as browser:
        browser.open((out / "reports" / "report.html").as_uri())
        text = browser.run("return document.body.innerText")
        shot = browser.page_png()
    (out / "reports" / "screenshot.png").write_bytes(shot)
    for words in ("Verdicts at a glance", "Challenge I: Alanine tetrapeptide", "Stability",
                  "Figure 1.", "Appendix: provenance", "python -m harness.launch"):
        assert words in text


def test_a_report_without_bootstrap_is_never_served_to_one_with_it(tmp_path: Path) -> None:
    """The settings (bootstrap, reference) reach the sections as a value and are part of every
    cache key: a Ramachandran section made with the bootstrap off (values, no intervals) is
    not served to the next report, made with it on, which computes its intervals afresh; a
    third report with the same settings is served from the cache. A provider that takes no
    settings (a plug-in) is called with two arguments and is keyed on them all the same."""
    import types

    from analysis.progress import Progress
    from analysis.report import Provider, build, providers, select
    from analysis.settings import AnalysisSettings

    out = tmp_path / "runs"
    synthesise(out, {"m": 0.3}, temperatures=(500.0,), replicas=4, n_frames=51)
    calls = []

    def plain(files: list[Path], workdir: Path) -> list:
        calls.append(len(files))
        return []

    use = [*select(providers(), ["ramachandran"]),
           Provider("plain", plain, types.ModuleType("plain_sections"))]
    cache_root = tmp_path / "cache"

    def made(settings: AnalysisSettings):
        result = build([out], cache_root, Progress(2, enabled=False), use=use,
                       settings=settings)
        rama, other = result.challenges[0].outcomes
        assert rama.error is None and other.error is None
        [verdict] = [v for s in rama.sections for v in s.verdicts]
        return rama.cached, other.cached, verdict

    cached, _, verdict = made(AnalysisSettings(bootstrap=False))
    assert not cached and verdict.ci_low is None and verdict.value is not None
    cached, plain_cached, verdict = made(AnalysisSettings())
    assert not cached and not plain_cached  # never the values-only result
    assert verdict.ci_low is not None and verdict.ci_high is not None
    cached, plain_cached, again = made(AnalysisSettings())
    assert cached and plain_cached and (again.ci_low, again.ci_high) == (verdict.ci_low,
                                                                         verdict.ci_high)
    assert calls == [4, 4]
    # another reference is another key too
    cached, _, _ = made(AnalysisSettings.make(reference="none"))
    assert not cached
