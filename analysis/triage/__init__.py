"""Why models failed, and where they are wrong: the reference method evaluated on a run's frames.

* :mod:`analysis.triage.reference`: the reference method (the challenge's ``reference_model``,
  GFN2-xTB by default, or any registry model), evaluated on frames with a content-keyed cache,
  in parallel.
* :mod:`analysis.triage.frames`: the frames of a run that are evaluated (stored frames and the
  watchdog's every-step record before a failure), with the model's own energies and forces.
* :mod:`analysis.triage.triage`: per failed run, model-minus-reference errors on the approach
  to the failure, the force along the broken bond in both, and the classification.
* :mod:`analysis.triage.errors`: per-element and per-atom errors on frames sampled from every run.
* :mod:`analysis.triage.export`: the failure frames labelled with the reference (extxyz).
* :mod:`analysis.triage.plots`: figures (nothing here writes files except where it says so).

The rule that classifies a failure is stated in ``docs/triage.md`` and in
:func:`analysis.triage.triage.classify`.
"""
