"""Benchmarks: python -m bench.<name> (each has --json PATH and --smoke)."""
