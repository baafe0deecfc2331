"""MD engines: how a RunSpec becomes a running simulation."""
