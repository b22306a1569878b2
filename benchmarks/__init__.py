"""Benchmarks: ``python -m benchmarks [--only NAME]...`` (``make bench``)."""
