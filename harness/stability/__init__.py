"""Crash detection: stability criteria, the in-run watchdog, and after-run re-evaluation.

A criterion looks at one frame (positions, and forces, energy or temperature when it needs
them) and returns an :class:`Event` or None. The same criteria run inside every run (the
watchdog in the force client, at every MD step) and after the run on a stored trajectory,
so both give the same event.
"""
