"""Security regression tests (issue 10) and the live attack runner (`python -m tests.security.attack URL`)."""
