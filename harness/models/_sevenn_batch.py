"""Several structures in one SevenNet call (``--batch N`` with a SevenNet model).

sevenn builds one graph per structure (``unlabeled_atoms_to_graph``, the calculator's own
graph builder) and its models take a torch_geometric batch of graphs once told so
(``set_is_batch_data(True)``, as sevenn's torch-sim interface does). :func:`batched` wraps a
``SevenNetCalculator`` that way: same model, same cutoff, same modal, the graphs of all runs
of a group in one forward pass. Energies and forces come back per structure, as float64
numpy arrays in eV and eV/A.

Private module (not a family): the SevenNet family's ``batch_evaluator`` builds its
calculator and hands it here. sevenn and torch are imported only when it is called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def batched(calculator: Any) -> Callable[[list[Any]], list[tuple[float, np.ndarray]]]:
    """``evaluate(list_of_atoms) -> [(energy_eV, forces_eV_per_A), ...]`` with the model of
    ``calculator`` (a ``sevenn.calculator.SevenNetCalculator``, owned from now on: its model
    is switched to batched input)."""
    import sevenn._keys as keys
    from sevenn.atom_graph_data import AtomGraphData
    from sevenn.train.dataload import unlabeled_atoms_to_graph
    from torch_geometric.loader.dataloader import Collater

    model = calculator.model
    model.set_is_batch_data(True)
    collate = Collater([], follow_batch=None, exclude_keys=None)

    def evaluate(structures: list[Any]) -> list[tuple[float, np.ndarray]]:
        graphs = []
        for atoms in structures:
            graph = AtomGraphData.from_numpy_dict(
                unlabeled_atoms_to_graph(atoms, calculator.cutoff, with_shift=False))
            if calculator.modal:
                graph[keys.DATA_MODALITY] = calculator.modal
            graphs.append(graph)
        output = model(collate(graphs).to(calculator.device))
        energies = output[keys.PRED_TOTAL_ENERGY].detach().cpu().numpy().astype(np.float64)
        forces = output[keys.PRED_FORCE].detach().cpu().numpy().astype(np.float64)
        ends = np.cumsum([len(atoms) for atoms in structures])
        return [(float(energy), part) for energy, part in
                zip(energies.reshape(-1), np.split(forces, ends[:-1]), strict=True)]

    return evaluate
