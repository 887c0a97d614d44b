"""Test-wide rules: GUI and PostgreSQL tests may not be silently skipped in CI.

`scripts/run.sh test` sets COUNTER_REQUIRE_DISPLAY and COUNTER_REQUIRE_PG; when set, a skipped
test marked `gui` or `postgres` turns the whole run red, so a CI machine without Xvfb or
PostgreSQL cannot look green. Fixture modules live in tests/support/ and are loaded here.
"""

from __future__ import annotations

import os

import pytest

pytest_plugins = [
    "tests.support.server_fixtures",
    "tests.support.gui_fixtures",
    "tests.support.deploy_fixtures",
    "tests.support.frozen_fixtures",
]

_skipped_required: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "root: installs system packages (dpkg/apt); CI runs as root and fails the run "
        "if these are skipped")
    config.addinivalue_line(
        "markers", "child_run(env): the body of a test another test runs in a child pytest (its "
        "own Xvfb screen, say); collected only where the env variable `env` is set, deselected "
        "elsewhere (deselected, not skipped: the required-GUI rule above stays strict)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        mark = item.get_closest_marker("child_run")
        (drop if mark is not None and not os.environ.get(str(mark.args[0])) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.skipped:
        required = []
        if os.environ.get("COUNTER_REQUIRE_DISPLAY") and item.get_closest_marker("gui"):
            required.append("gui")
        if os.environ.get("COUNTER_REQUIRE_PG") and item.get_closest_marker("postgres"):
            required.append("postgres")
        # The .deb install test needs root; CI runs as root, so a skip there is a failure.
        if os.environ.get("CI") and item.get_closest_marker("root"):
            required.append("root")
        if required:
            _skipped_required.append(f"{item.nodeid} ({', '.join(required)})")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped_required:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # type: ignore[no-untyped-def]
    if _skipped_required:
        terminalreporter.section("required tests were skipped", red=True)
        for line in _skipped_required:
            terminalreporter.write_line(f"SKIPPED BUT REQUIRED: {line}")
