"""Security tests (issue 10): one attack per finding, written first against the old code."""
