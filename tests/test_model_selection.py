"""Choosing models: one file per model, options per model, and the families that cannot be
installed here (SO3krates, SO3LR) failing with the install instructions."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from conftest import launch, plan
from harness import config, models
from harness.errors import UserError
from harness.models import so3krates


def _plan(tmp_path: Path, *argv: str):
    return plan(tmp_path, "--temperatures", "300", "--replicas", "1", *argv)


def test_single_model_file_form_still_works(tmp_path: Path) -> None:
    gap = models.get_family("gap").default_model_file("alanine-tetrapeptide")
    plan = _plan(tmp_path, "--model", "gap", "--model-file", str(gap))
    assert [s.model_file for s in plan] == [str(gap)]
    assert plan[0].model_label == "gap-gap"


def test_one_model_file_per_model(tmp_path: Path) -> None:
    gap = models.get_family("gap").default_model_file("alanine-tetrapeptide")
    files = config.model_files([f"gap={gap}"], ["gap", "xtb"])
    assert files == {"gap": str(gap), "xtb": None}
    plan = _plan(tmp_path, "--model", "gap,xtb,harmonic", "--model-file", f"gap={gap}",
                 "--model-option", "harmonic:k=2.5", "--model-option", "xtb:accuracy=0.1")
    by_model = {s.model: s for s in plan}
    assert by_model["gap"].model_file == str(gap) and by_model["xtb"].model_file is None
    assert by_model["harmonic"].model_options == {"k": 2.5}
    assert by_model["xtb"].model_options == {"accuracy": 0.1}
    assert by_model["gap"].model_options == {}
    # identical conditions: seeds and starts do not depend on the model
    assert len({(s.seed, s.start_file) for s in plan}) == 1


def test_model_file_table_in_config(tmp_path: Path) -> None:
    gap = models.get_family("gap").default_model_file("alanine-tetrapeptide")
    toml = tmp_path / "run.toml"
    toml.write_text(f'model = ["gap", "xtb"]\n[model-file]\ngap = "{gap}"\n')
    plan = _plan(tmp_path, "--config", str(toml))
    assert {s.model: s.model_file for s in plan} == {"gap": str(gap), "xtb": None}


@pytest.mark.parametrize(("items", "names", "needle"), [
    (["/some/file"], ["gap", "xtb"], "with several models write MODEL=PATH"),
    (["mace=/a.model"], ["gap", "xtb"], "'mace' is not among --model"),
    (["gap=/a.xml", "gap=/b.xml"], ["gap", "xtb"], "two files for model 'gap'"),
])
def test_model_file_mistakes(items, names, needle) -> None:
    with pytest.raises(UserError, match=needle):
        config.model_files(items, names)


def test_model_file_with_equals_sign_in_single_form() -> None:
    assert config.model_files(["/data/run=3/model.xml"], ["gap"]) == {
        "gap": "/data/run=3/model.xml"}


def test_model_option_checked_per_family() -> None:
    with pytest.raises(UserError, match="model 'xtb' takes method"):
        config.model_options(["device=cuda"], ["xtb"])
    with pytest.raises(UserError, match="MODEL:k=VALUE"):
        config.model_options(["k=1"], ["harmonic", "xtb"])
    # the generic route takes any option; MODEL: prefixes work for names with colons
    got = config.model_options(["ase:pkg.mod:make:alpha=3", "k=1"], ["ase:pkg.mod:make",
                                                                      "harmonic"])
    assert got == {"ase:pkg.mod:make": {"alpha": 3, "k": 1}, "harmonic": {"k": 1}}


def test_every_family_documents_itself() -> None:
    """The registry drives --help: every family has a description and an install hint."""
    text = config.build_parser().format_help()
    for name, family in models.families().items():
        assert family.description and name in text
        if family.requires:
            assert family.install_hint


# ------------------------------------------------------------------ SO3krates / SO3LR
absent = pytest.mark.skipif(importlib.util.find_spec("mlff") is not None,
                            reason="mlff is installed: the missing-package message cannot show")


@absent
def test_so3krates_missing_package_message(tmp_path: Path) -> None:
    proc = launch("--model", "so3krates", "--model-file", str(tmp_path), "--dry-run")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert "not on PyPI" in line and "github.com/thorben-frank/mlff" in line


@pytest.mark.skipif(importlib.util.find_spec("so3lr") is not None, reason="so3lr installed")
def test_so3lr_missing_package_message() -> None:
    proc = launch("--model", "so3lr", "--dry-run")
    assert proc.returncode == 2 and "general-molecular-simulations/so3lr" in proc.stderr


def test_so3krates_option_handling() -> None:
    api, kwargs = so3krates.calculator_settings({})
    assert api == "sparse" and kwargs == {"E_to_eV": 1.0, "F_to_eV_Ang": 1.0,
                                          "dtype": "float32"}
    api, kwargs = so3krates.calculator_settings(
        {"energy_unit": "kcal/mol", "dtype": "float64", "lr_cutoff": 12})
    assert kwargs["E_to_eV"] == pytest.approx(0.0433641, rel=1e-5)
    assert kwargs["F_to_eV_Ang"] == kwargs["E_to_eV"] and kwargs["lr_cutoff"] == 12.0
    for bad, needle in (({"api": "old"}, "choose sparse"), ({"dtype": "half"}, "float32"),
                        ({"energy_unit": "Ry"}, "energy_unit=Ry"),
                        ({"api": "dense", "lr_cutoff": 10}, "only with api=sparse"),
                        ({"cutoff": 5}, "so3krates takes")):
        with pytest.raises(UserError, match=needle):
            so3krates.calculator_settings(bad)


def test_so3krates_checkpoint_folder(tmp_path: Path) -> None:
    family = models.get_family("so3krates")
    with pytest.raises(UserError, match="no such folder"):
        models.resolve_model_file(family, str(tmp_path / "missing"), "alanine-tetrapeptide")
    with pytest.raises(UserError, match="no hyperparameters.json"):
        family.model_elements(tmp_path)
    (tmp_path / "hyperparameters.json").write_text('{"model": {"r_cut": 5.0}}')
    (tmp_path / "checkpoint_1").mkdir()
    (tmp_path / "checkpoint_1" / "params.pkl").write_bytes(b"weights")
    assert models.resolve_model_file(family, str(tmp_path), "x") == tmp_path.resolve()
    assert family.model_metadata(tmp_path)["hyperparameters"] == {"model": {"r_cut": 5.0}}
    assert [p.name for p in family.model_files(tmp_path)] == ["params.pkl",
                                                              "hyperparameters.json"]


def test_so3krates_adapter_calls_mlff_as_documented(tmp_path: Path, monkeypatch) -> None:
    """A stand-in ``mlff`` records the call (the real package cannot be installed here):
    this checks the adapter's side of the contract only, not SO3krates itself."""
    calls = {}

    class StandIn:
        @classmethod
        def create_from_ckpt_dir(cls, **kwargs):
            calls.update(kwargs)
            return "calculator"

    module = type(sys)("mlff.md.calculator_sparse")
    module.mlffCalculatorSparse = StandIn
    for name in ("mlff", "mlff.md"):
        monkeypatch.setitem(sys.modules, name, type(sys)(name))
    monkeypatch.setitem(sys.modules, "mlff.md.calculator_sparse", module)
    calc = models.get_family("so3krates").ase_calculator(tmp_path, {"energy_unit": "Ha"})
    assert calc == "calculator"
    assert calls["ckpt_dir"] == str(tmp_path)
    assert calls["E_to_eV"] == pytest.approx(27.211386, rel=1e-6)
    assert calls["dtype"].__name__ == "float32"
