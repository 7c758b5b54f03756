"""Suite-wide rules: under CI=true a skipped integration test is a failure (a green run must not
hide a missing install step), and the source root is importable without installing."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
for extra in (ROOT / "checks", ROOT / "tools"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if (os.environ.get("CI") == "true" and report.skipped
            and item.get_closest_marker("integration") is not None):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"integration test skipped under CI=true: {reason}"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def _local_zone(monkeypatch: pytest.MonkeyPatch, zone: str):
    """The process's local zone is ``zone`` for the test, the one before it afterwards."""
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch):
    """Local time is UTC (year-less and local timestamps in captures are read as such)."""
    yield from _local_zone(monkeypatch, "UTC")


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch):
    """The process's local zone is Europe/Berlin: tests/logstyles.py renders the real logs of
    fixtures/realworld-logs there, and stamps without an offset are read as local time."""
    yield from _local_zone(monkeypatch, "Europe/Berlin")
