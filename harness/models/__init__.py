"""The model registry: one module per model family, discovered at run time.

A family module in this package defines ``FAMILY = ModelFamily(...)``. The CLI choices,
the README table and the test matrix all come from :func:`families`, so adding a family
is adding one file. Heavy imports (torch, quippy, tblite) happen inside the family's
functions, only when that model is used.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UserError

#: Characters a run label may hold: it names folders and files.
LABEL_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-")

MODELS_DIR = Path(__file__).resolve().parent
DEMO_DIR = MODELS_DIR / "demo"


@dataclass(frozen=True)
class Download:
    """Published weights that the family fetches on the user's machine on first use.

    Attributes
    ----------
    url
        Where the authors publish the file.
    sha256
        Its expected SHA-256; a file with another hash is refused. Empty where no hash of the
        file could be found: the hash of the first download is then kept beside the cached
        file and every later use is checked against it (trust on first use, said in the
        provenance).
    filename
        The name it is cached under (``$XDG_CACHE_HOME/tea-harness/models/<family>/``).
    sha256_source
        Where the expected hash comes from (it is stated in the docs and the provenance).
    """

    url: str
    sha256: str
    filename: str
    sha256_source: str = ""


@dataclass(frozen=True)
class Pretrained:
    """One pretrained model of a family, chosen with ``--model-option FAMILY:model=NAME``.

    Attributes
    ----------
    name
        Its readable name (used in folders, files and the report: ``<family>-<name>``).
    elements
        The chemical symbols it was trained on (checked against the challenge before anything
        runs, without importing the model's package).
    weights
        ``"wheel"`` (shipped inside the family's package) or a :class:`Download`.
    licence
        The licence of the weights.
    aliases
        Other names the package accepts for it (mapped to ``name``).
    modals
        The levels of theory of a multi-fidelity model (``--model-option FAMILY:modal=...``);
        empty for a single-fidelity model.
    default_modal
        The modal used when none is given.
    loader_name
        The name the package's own loader takes (default: ``name``).
    """

    name: str
    elements: frozenset[str]
    weights: str | Download = "wheel"
    licence: str = ""
    aliases: tuple[str, ...] = ()
    modals: tuple[str, ...] = ()
    default_modal: str | None = None
    loader_name: str | None = None

    @property
    def package_name(self) -> str:
        """The name the package's loader takes."""
        return self.loader_name or self.name


def element_range(first: int, last: int) -> frozenset[str]:
    """Chemical symbols of atomic numbers ``first`` to ``last`` inclusive."""
    from ase.data import chemical_symbols

    return frozenset(chemical_symbols[first:last + 1])


#: The 89 elements of the Materials Project trajectory set (MPtrj): H-Bi and Ac-Pu.
MPTRJ_ELEMENTS = element_range(1, 83) | element_range(89, 94)


@dataclass(frozen=True)
class ModelFamily:
    """How one family of force fields is found, checked and served.

    Attributes
    ----------
    name
        The name used with ``--model``.
    description
        One line for ``--help`` and the README.
    packages
        Distribution names whose versions go into the provenance.
    requires
        Importable module names the family needs; their absence gives ``install_hint``.
    install_hint
        The command that installs what is missing.
    ase_calculator
        ``ase_calculator(model_file, options) -> ase.calculators.Calculator``.
    needs_model_file
        Whether the family cannot run without a model file.
    default_model_file
        ``default_model_file(challenge) -> Path | None``: a model shipped for that challenge.
    model_elements
        ``model_elements(model_file) -> set[str] | None``: elements the model covers
        (None: any element). Raises UserError for a corrupt file.
    model_metadata
        ``model_metadata(model_file) -> dict``: training settings carried by the file, if any.
    model_files
        ``model_files(model_file) -> list[Path]``: every file the model consists of (hashed
        into the provenance).
    options
        Names ``--model-option`` may set (None: any; the calculator checks them).
    model_is_directory
        Whether the model is a folder (a checkpoint directory) rather than one file.
    check_structure
        ``check_structure(model_file, atoms)``: raise UserError when the model cannot
        describe this starting structure (e.g. a global model trained on another molecule).
    lammps_pair
        ``lammps_pair(model_file, elements) -> list[str]``: pair_style/pair_coeff lines that
        serve the model inside LAMMPS (types 1..n in the order of ``elements``), or None.
    lammps_requirement
        The :class:`~harness.engines.lammps_env.PairRequirement` of those lines.
    batch_evaluator
        ``batch_evaluator(model_file, options) -> evaluate`` where ``evaluate(list_of_atoms)``
        returns ``[(energy_eV, forces_eV_per_A), ...]`` for several structures in one model
        call (``--batch``). None: the batched client loops over one calculator per run.
    pretrained
        The family's pretrained models (``--model-option FAMILY:model=NAME``); empty for a
        family that always needs ``--model-file`` or has one fixed model.
    default_pretrained
        The pretrained model used when none is named.
    periodic_only
        Whether the model needs a periodic cell: a gas-phase challenge is then served in a
        vacuum box (:func:`vacuum_box`), stated in the provenance.
    cutoff_angstrom
        The model's interaction cutoff (the vacuum box is wider than the molecule by this
        much plus a margin, so no periodic image lies within it).
    """

    name: str
    description: str
    ase_calculator: Callable[[Path | None, dict[str, Any]], Any] | None = None
    packages: tuple[str, ...] = ()
    requires: tuple[str, ...] = ()
    install_hint: str = ""
    needs_model_file: bool = False
    default_model_file: Callable[[str], Path | None] = field(default=lambda challenge: None)
    model_elements: Callable[[Path | None], set[str] | None] = field(default=lambda path: None)
    model_metadata: Callable[[Path | None], dict[str, Any]] = field(default=lambda path: {})
    model_files: Callable[[Path], list[Path]] = field(default=lambda path: [path])
    options: tuple[str, ...] | None = None
    model_is_directory: bool = False
    check_structure: Callable[[Path | None, Any], None] = field(
        default=lambda path, atoms: None)
    lammps_pair: Callable[[Path, list[str]], list[str]] | None = None
    lammps_requirement: Any = None
    batch_evaluator: Callable[[Path | None, dict[str, Any]], Callable[[list[Any]], list[
        tuple[float, Any]]]] | None = None
    pretrained: tuple[Pretrained, ...] = ()
    default_pretrained: str | None = None
    periodic_only: bool = False
    cutoff_angstrom: float | None = None

    def pretrained_model(self, options: dict[str, Any]) -> Pretrained | None:
        """The pretrained model ``options`` name (its ``model`` key, else the default).

        Raises
        ------
        UserError
            For a name the family does not know, or a modal the model lacks.
        """
        if not self.pretrained:
            return None
        wanted = str(options.get("model", self.default_pretrained))
        for entry in self.pretrained:
            if wanted.lower() in {entry.name.lower(), *(a.lower() for a in entry.aliases)}:
                modal = options.get("modal")
                if modal is not None and str(modal) not in entry.modals:
                    allowed = ", ".join(entry.modals) if entry.modals else "none (one level)"
                    raise UserError(f"--model-option {self.name}:modal={modal}: "
                                    f"{self.name} {entry.name} has modals {allowed}")
                return entry
        raise UserError(f"--model-option {self.name}:model={wanted}: unknown pretrained "
                        f"{self.name} model; choose one of "
                        + ", ".join(e.name for e in self.pretrained)
                        + ", or give your own file with --model-file")

    def modal(self, options: dict[str, Any]) -> str | None:
        """The modal (level of theory) of a multi-fidelity pretrained model, else None."""
        entry = self.pretrained_model(options)
        if entry is None or not entry.modals:
            return None
        return str(options.get("modal", entry.default_modal))

    def elements(self, model_file: Path | None, options: dict[str, Any]) -> set[str] | None:
        """Elements the model covers: read from the user's file, else declared by the
        pretrained model (no import of the model's package), None when any element goes."""
        if model_file is None and self.pretrained:
            entry = self.pretrained_model(options)
            return set(entry.elements) if entry is not None else None
        return self.model_elements(model_file)

    def label(self, user_file: Path | None, options: dict[str, Any]) -> str:
        """The readable name of the model in folders, files and the report.

        ``sevenn-7net-0``, ``chgnet-0.3.0``, ``mace-mp-medium-mpa-0`` for a pretrained model
        (its modal appended for a multi-fidelity one); the family name with the file's stem for
        the user's own file; ``ase-<module>-<factory>`` for the generic route.
        """
        base = self.name.replace(":", "-")
        if user_file is not None:
            return f"{base}-{Path(user_file).stem}"
        entry = self.pretrained_model(options)
        if entry is None:
            return base
        modal = self.modal(options)
        return f"{base}-{entry.name}" + (f"-{modal}" if modal else "")

    def check_installed(self) -> None:
        """Raise UserError naming the install command when a required package is missing."""
        for module in self.requires:
            if importlib.util.find_spec(module) is None:
                raise UserError(
                    f"model {self.name!r} needs the python package {module!r}: {self.install_hint}"
                )

    def versions(self) -> dict[str, str]:
        """Installed versions of the family's packages (``'not installed'`` when absent)."""
        out = {}
        for dist in self.packages:
            try:
                out[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                out[dist] = "not installed"
        return out


def families() -> dict[str, ModelFamily]:
    """All registered model families, by name, discovered from this package's modules."""
    found: dict[str, ModelFamily] = {}
    for info in pkgutil.iter_modules([str(MODELS_DIR)]):
        if info.name.startswith("_") or info.ispkg:
            continue
        module = importlib.import_module(f"harness.models.{info.name}")
        family = getattr(module, "FAMILY", None)
        if isinstance(family, ModelFamily):
            found[family.name] = family
    return dict(sorted(found.items()))


def _generic_ase_family(name: str) -> ModelFamily:
    """``ase:module.path:factory``: any ASE calculator; ``factory(**options)`` returns it.

    With ``--model-file F`` the factory also receives ``model_file=F``.
    """
    module, sep, factory = name[len("ase:"):].partition(":")
    if not sep or not module or not factory:
        raise UserError(f"--model {name!r}: write ase:MODULE:FACTORY, e.g. "
                        "ase:mypackage.calculators:make_calculator")

    def make(model_file: Path | None, options: dict[str, Any]):
        try:
            target = getattr(importlib.import_module(module), factory)
        except (ImportError, AttributeError) as exc:
            raise UserError(f"--model {name}: cannot load {module}.{factory} ({exc})") from None
        if model_file is not None:
            options = {"model_file": str(model_file), **options}
        return target(**options)

    return ModelFamily(name=name, description=f"ASE calculator from {module}.{factory}",
                       ase_calculator=make, packages=(module.split(".")[0], "ase"),
                       requires=(module.split(".")[0],),
                       install_hint=f"install {module.split('.')[0]} or add it to PYTHONPATH")


def get_family(name: str) -> ModelFamily:
    """Look a family up by name; an unknown name is a UserError listing the known ones."""
    if name.startswith("ase:"):
        return _generic_ase_family(name)
    known = families()
    if name not in known:
        raise UserError(f"unknown model {name!r}: choose one of {', '.join(known)}, "
                        "or ase:MODULE:FACTORY for any ASE calculator")
    return known[name]


def files_in(folder: Path) -> list[Path]:
    """Every file under a model folder, in a fixed order (for hashing a checkpoint folder)."""
    return sorted(p for p in folder.rglob("*") if p.is_file())


def json_safe(value: Any) -> Any:
    """Model metadata made storable as JSON: arrays to lists, other objects to strings."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist()) if value.size <= 1000 else f"array{value.shape}"
    if isinstance(value, np.generic):
        return json_safe(value.item())
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def sha256_of(paths: list[Path] | Path | None) -> str | None:
    """SHA-256 over the bytes of a model's files, in the given order."""
    if paths is None:
        return None
    digest = hashlib.sha256()
    for item in [paths] if isinstance(paths, Path) else paths:
        with open(item, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def resolve_model_file(family: ModelFamily, model_file: str | None, challenge: str,
                       options: dict[str, Any] | None = None, fetch: bool = True
                       ) -> Path | None:
    """The model file a run will use: the user's, the family's default for the challenge, or
    the published weights of the pretrained model ``options`` name (fetched into the cache on
    first use, hash checked: :mod:`harness.models.weights`; with ``fetch=False``, as for a
    dry run, only its cache path, which may not exist yet).

    Raises
    ------
    UserError
        When the file is missing, or the family needs a file and none ships for the challenge.
    """
    if model_file:
        path = Path(model_file).expanduser().resolve()
        if family.model_is_directory:
            if not path.is_dir():
                raise UserError(f"--model-file {model_file}: no such folder; give the "
                                f"checkpoint folder of a trained {family.name} model")
        elif not path.is_file():
            raise UserError(f"--model-file {model_file}: no such file; give the path of a "
                            f"trained {family.name} model")
        return path
    entry = family.pretrained_model(options or {})
    if entry is not None and isinstance(entry.weights, Download):
        from harness.models import weights

        if not fetch:
            return weights.cached_path(entry.weights, family.name)
        return weights.fetch(entry.weights, family.name, entry.name)
    default = family.default_model_file(challenge)
    if default is None and family.needs_model_file:
        raise UserError(f"model {family.name!r} has no built-in model for challenge "
                        f"{challenge!r}: give one with --model-file FILE")
    return default


def vacuum_box(family: ModelFamily, start_files: list[str], margin_angstrom: float = 10.0
               ) -> dict[str, float]:
    """The cubic box a periodic-only model gets around a gas-phase molecule.

    Edge = the molecule's largest extent over ``start_files`` (its diameter, the largest
    interatomic distance, so any orientation fits) + the model's cutoff + ``margin_angstrom``.
    The molecule is not moved: images are one edge apart along each axis, so while its extent
    along every axis stays below ``edge - cutoff`` no image lies within the cutoff; the force
    client checks this at every call (:class:`harness.driver.ModelServer`).
    """
    import numpy as np

    from harness.structures import read_structure

    if family.cutoff_angstrom is None:
        raise ValueError(f"family {family.name} is periodic-only but declares no cutoff")
    diameter = 0.0
    for path in start_files:
        pos = read_structure(path).positions
        diffs = pos[:, None, :] - pos[None, :, :]
        diameter = max(diameter, float(np.sqrt((diffs ** 2).sum(-1)).max()))
    edge = float(np.ceil(diameter + family.cutoff_angstrom + margin_angstrom))
    return {"edge_angstrom": edge, "molecule_extent_angstrom": round(diameter, 3),
            "cutoff_angstrom": float(family.cutoff_angstrom),
            "margin_angstrom": float(margin_angstrom)}


def boxed_calculator(calculator: Any, box: dict[str, float]) -> Any:
    """``calculator`` seeing every structure in the vacuum box ``box`` (:func:`vacuum_box`):
    for the single-point commands (phonons, scans, error tables) on a gas-phase challenge, what
    the force client does in runs. The structure is not moved; its cell and pbc are set on a
    copy, so the caller's atoms stay gas-phase."""
    from ase.calculators.calculator import Calculator, all_changes

    edge = float(box["edge_angstrom"])

    class InVacuumBox(Calculator):
        implemented_properties = ("energy", "forces")

        def __init__(self) -> None:
            super().__init__()
            self.inner = calculator
            self.box = dict(box)

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            boxed = self.atoms.copy()
            boxed.cell[:] = [[edge, 0, 0], [0, edge, 0], [0, 0, edge]]
            boxed.pbc = True
            boxed.calc = self.inner
            self.results = {"energy": float(boxed.get_potential_energy()),
                            "forces": boxed.get_forces().copy()}

    return InVacuumBox()


def check_label(label: str, flag: str = "--label") -> str:
    """A run label as given by the user, checked to be usable as a folder name."""
    if not label or label in (".", "..") or not set(label) <= LABEL_CHARACTERS:
        raise UserError(f"{flag} {label!r}: a label names folders and files; use letters, "
                        "digits and . _ + - only")
    return label
