"""``chgnet``: CHGNet pretrained models through chgnet's own ASE calculator.

``--model chgnet`` runs CHGNet 0.3.0; ``--model-option chgnet:model=0.2.0`` or ``r2scan`` the
others. Their weights ship inside chgnet's wheel (usable offline). Option ``device``
(``cpu`` by default). CHGNet computes in float32.

CHGNet needs a periodic cell (its graph is built from the lattice; with no cell it dies with
``numpy.linalg.LinAlgError: Singular matrix``), so the family is periodic-only: on a gas-phase
challenge each run's force client puts the molecule in a cubic vacuum box wider than the
molecule by the 6 A atom-graph cutoff plus a margin (:func:`harness.models.vacuum_box`),
stated in the run's provenance.

The force client asks for energy and forces only (chgnet's calculator computes stress and
magnetic moments too unless told otherwise: about 50 % more time per step). ``--batch``
evaluates the group's structures as one batch of graphs (``CHGNet.predict_structure``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.models import ModelFamily, Pretrained, element_range

#: CHGNet's atom embedding covers atomic numbers 1..94 (H-Pu).
ELEMENTS = element_range(1, 94)
#: The atom-graph cutoff of the pretrained models (the bond graph's is 3 A).
CUTOFF_ANGSTROM = 6.0
LICENCE = "BSD-3-Clause (chgnet package)"

PRETRAINED = (
    Pretrained(name="0.3.0", elements=ELEMENTS, licence=LICENCE),
    Pretrained(name="0.2.0", elements=ELEMENTS, licence=LICENCE),
    Pretrained(name="r2scan", elements=ELEMENTS, licence=LICENCE),
)


def load_model(model_file: Path | None, options: dict[str, Any]):
    """The CHGNet model: a pretrained one by name, or the user's checkpoint file."""
    from chgnet.model import CHGNet

    device = str(options.get("device", "cpu"))
    if model_file is not None:
        return CHGNet.from_file(str(model_file))
    name = FAMILY.pretrained_model(options).package_name
    return CHGNet.load(model_name=name, use_device=device, verbose=False)


def _calculator(model_file: Path | None, options: dict[str, Any]):
    from chgnet.model.dynamics import CHGNetCalculator

    class EnergyForces(CHGNetCalculator):
        """chgnet's calculator asked for energy and forces only (task ``ef``)."""

        def calculate(self, atoms=None, properties=None, system_changes=None,
                      task: str = "ef") -> None:
            super().calculate(atoms, properties, system_changes, task=task)

    return EnergyForces(model=load_model(model_file, options),
                        use_device=str(options.get("device", "cpu")))


def _batch_evaluator(model_file: Path | None, options: dict[str, Any]):
    """Energies and forces of several structures in one call: chgnet batches their graphs."""
    import numpy as np
    from pymatgen.io.ase import AseAtomsAdaptor

    model = load_model(model_file, options)

    def evaluate(structures: list) -> list[tuple[float, Any]]:
        converted = [AseAtomsAdaptor.get_structure(atoms) for atoms in structures]
        out = model.predict_structure(converted, task="ef", batch_size=len(converted))
        out = out if isinstance(out, list) else [out]
        factor = [len(s) if model.is_intensive else 1 for s in converted]
        return [(float(o["e"]) * n, np.asarray(o["f"], dtype=np.float64))
                for o, n in zip(out, factor, strict=True)]

    return evaluate


FAMILY = ModelFamily(
    name="chgnet",
    description="CHGNet pretrained models (chgnet; 0.3.0 by default, weights in the wheel; "
                "periodic-only: gas-phase molecules get a vacuum box)",
    ase_calculator=_calculator,
    packages=("chgnet", "torch", "pymatgen"),
    requires=("chgnet", "torch"),
    install_hint="pip install 'tea-harness[chgnet]' (CPU clusters: pip install torch==2.13.0 "
                 "first)",
    options=("model", "device"),
    batch_evaluator=_batch_evaluator,
    pretrained=PRETRAINED,
    default_pretrained="0.3.0",
    periodic_only=True,
    cutoff_angstrom=CUTOFF_ANGSTROM,
)
