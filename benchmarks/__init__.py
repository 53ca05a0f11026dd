"""Stroma's benchmarks: ``python -m benchmarks`` (``make bench``); docs/performance.md explains the figures."""
