"""The plan: identical starts and seeds for every model; durations and paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import plan
from harness.errors import UserError
from harness.units import parse_time_ps


@pytest.mark.parametrize("text,ps", [("2ps", 2.0), ("1ns", 1000.0), ("500fs", 0.5),
                                     (" 0.25 ps", 0.25), ("1e-3ns", 1.0)])
def test_parse_time(text: str, ps: float) -> None:
    assert parse_time_ps(text) == pytest.approx(ps)


@pytest.mark.parametrize("text", ["2", "ps", "2 parsec", "-1ps", "0fs"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(UserError):
        parse_time_ps(text)


def _plan(tmp_path: Path, **overrides):
    return plan(tmp_path, **overrides)


def test_seeds_and_starts_do_not_depend_on_model(tmp_path: Path) -> None:
    plan = _plan(tmp_path, model=["xtb", "harmonic"], temperatures=["300", "500"], replicas=3)
    by_model: dict[str, dict] = {}
    for spec in plan:
        by_model.setdefault(spec.model, {})[(spec.temperature_K, spec.replica)] = (
            spec.seed, spec.start_file, spec.dt_fs, spec.thermostat_tau_fs, spec.n_steps)
    assert by_model["xtb"] == by_model["harmonic"]
    seeds = [v[0] for v in by_model["xtb"].values()]
    assert len(set(seeds)) == len(seeds) == 6


def test_paths_and_steps(tmp_path: Path) -> None:
    plan = _plan(tmp_path, model=["xtb"], temperatures=["300"], replicas=2, time="2ps")
    assert [Path(s.out_file).relative_to(tmp_path).as_posix() for s in plan] == [
        "alanine-tetrapeptide/xtb/300K/replica-00.h5",
        "alanine-tetrapeptide/xtb/300K/replica-01.h5"]
    assert plan[0].n_steps == 4000 and plan[0].dt_fs == 0.5
    assert plan[0].start_file != plan[1].start_file
