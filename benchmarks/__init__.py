"""Benchmarks: `make bench` (python -m benchmarks) runs them all; each prints its cost line."""
