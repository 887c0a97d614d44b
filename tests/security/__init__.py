"""Security regression tests (issue 10) and the live-attack functions for `python -m tests.security.attack`."""
