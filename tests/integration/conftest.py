"""Real programs for the integration tests: a private Postfix instance with a stuck queue, and a
venv the unprivileged daemon users (nagios, zabbix) can execute.

Everything started here is stopped at the end of the session; /etc/postfix/main.cf is restored
byte for byte by the lab.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import nagios_lab
from postfix_lab import Lab, available

ROOT = Path(__file__).resolve().parents[2]
STUCK_MESSAGES = 1100
STUCK_DOMAINS = 12
HELD = 60


def require_lab() -> None:
    reason = available()
    if reason:
        pytest.skip(reason)


def require_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        pytest.skip(f"no {name} user (its package is not installed; make test installs it)")


@dataclass
class StuckQueue:
    lab: Lab
    held_ids: list[str]
    counts: dict[str, int]          # queue files per queue, counted in the spool as root


@pytest.fixture(scope="session")
def stuck_queue() -> Iterator[StuckQueue]:
    """≥ 1,000 deferred messages over ≥ 10 domains, some on hold, in a private instance."""
    require_lab()
    lab = Lab("stuck").setup().start()
    try:
        lab.inject(STUCK_MESSAGES, domains=STUCK_DOMAINS, recipients_per_message=1)
        lab.inject(40, domains=STUCK_DOMAINS, recipients_per_message=3)
        lab.wait_settled(STUCK_MESSAGES + 40, timeout=180)
        listing = lab.postqueue_json()
        held = sorted(m["queue_id"] for m in listing)[:HELD]
        lab.hold(held)
        counts = lab.wait_settled(STUCK_MESSAGES + 40, timeout=60)
        assert counts["hold"] == HELD
        yield StuckQueue(lab, held, counts)
    finally:
        lab.destroy()


@pytest.fixture(scope="session")
def venv(request: pytest.FixtureRequest) -> Path:
    """This project installed (not editable) into a venv under /var/lib, mode 0755, made from
    /usr/bin/python3, so nagios/zabbix can run its console scripts (pytest's tmp_path under
    /root is unreadable to them). Built once per session."""
    if os.geteuid() != 0:
        pytest.skip("not root: cannot prepare a venv for the daemon users")
    return nagios_lab.shared_venv(request.config, ROOT)


@pytest.fixture(scope="session")
def daemon_venv(venv: Path) -> Path:
    """The console scripts' directory of ``venv``."""
    return venv / "bin"


@pytest.fixture(scope="session")
def postfix(request: pytest.FixtureRequest):
    """A small stuck queue the nagios user may list (see nagios_lab.shared_postfix)."""
    require_lab()
    return nagios_lab.shared_postfix(request.config)


@pytest.fixture(scope="session")
def pki(request: pytest.FixtureRequest):
    return nagios_lab.shared_pki(request.config)


@pytest.fixture
def base(request: pytest.FixtureRequest) -> Iterator[Path]:
    """A fresh 0755 directory under /tmp that the daemon users can read."""
    d = nagios_lab.public_tempdir(f"pqm-{request.module.__name__.split('_')[-1]}-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def run_as(user: str | None, argv: list[str], timeout: float = 60,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a command (as ``user`` when given) from a neutral directory, capturing both streams."""
    kw: dict = {}
    if user is not None:
        kw.update(user=user, group=pwd.getpwnam(user).pw_gid, extra_groups=[])
        home = pwd.getpwnam(user).pw_dir
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": home, "LC_ALL": "C.UTF-8",
               **(env or {})}
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd="/",
                          env=env, **kw)
