"""``analysis info``: one screen about a run, from what the file says about itself."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import HARMONIC, launch
from conftest import analysis as _analysis


def test_info_on_a_finished_run(out_dir: Path) -> None:
    launch(*HARMONIC, "--temperatures", "300", "--replicas", "1", "--time", "0.05ps",
           "--out", str(out_dir), check=True)
    path = out_dir / "alanine-tetrapeptide" / "harmonic" / "300K" / "replica-00.h5"
    proc = _analysis("info", str(path))
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "status      COMPLETED" in text
    assert "atoms       42 (C12H22N4O4)" in text
    assert "frames      6, t = 0 .. 0.05 ps of 0.05 ps planned" in text
    assert "python -m harness.launch" in text
    data = json.loads(_analysis("info", "--json", str(path)).stdout)
    assert data["frames"] == 6 and data["status"] == "completed" and data["failure"] is None


def test_info_bad_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    for target in (str(junk), str(tmp_path / "missing.h5")):
        proc = _analysis("info", target)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: ")
