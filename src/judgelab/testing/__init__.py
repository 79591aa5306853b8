"""Test tooling shipped with the package, so tests and benchmarks share it."""
