"""Benchmarks: each stage of the pipeline timed as a whole step at a scale preset. Not tests: no assertions."""
