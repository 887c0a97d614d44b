"""Benchmarks: figures, never pass/fail timing tests. Run with `python -m bench [NAME ...]`."""
