"""The health contracts: deterministic modules of the health chain (see docs/HEALTH.md).

No clock, no randomness, no I/O, no floats: every outcome is a function of the state, the
transaction and the block. ``health_registry()`` (``registry.py``) lists the modules a
health chain runs.
"""
