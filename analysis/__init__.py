"""Post-processing of tea-harness trajectories: one module per observable, plus the CLI."""
