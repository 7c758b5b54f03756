"""The shipped prometheus/postfix-queue-prometheus{.service,.timer,-serve.service} run by a
real systemd (tools/systemd_lab.py) as the prometheus user, against a real Postfix queue. The
units are copied byte for byte; a drop-in, as an administrator would write one, points
ExecStart= at this test's venv, textfile directory, port and Postfix instance (and its output
at a file: this systemd has no journal)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

import postfix_lab
import prometheus_lab
import systemd_lab
from labproc import port_open, wait_until

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "prometheus"
SERVICE, TIMER = "postfix-queue-prometheus.service", "postfix-queue-prometheus.timer"
SERVE = "postfix-queue-prometheus-serve.service"
STATES = (Path("/var/lib/postfix-queue-prometheus"),
          Path("/var/lib/postfix-queue-prometheus-serve"))     # the units' StateDirectory=
OURS = Path("/var/lib/.pqm-test-owns-postfix-queue-prometheus")
MESSAGES = 4
SHIPPED_FILE = "/var/lib/prometheus/node-exporter/postfix_queue.prom"


def _exec_start(unit: str) -> str:
    return next(line for line in (UNITS / unit).read_text().splitlines()
                if line.startswith("ExecStart="))


def _depth(text: str) -> float:
    return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
               if s.name == "postfix_showq_queue_depth")


def _up(text: str) -> list[float]:
    return [s.value for fam in text_string_to_metric_families(text) for s in fam.samples
            if s.name == "postfix_up"]


@pytest.fixture(scope="module")
def world(daemon_venv: Path):
    why = systemd_lab.missing() or postfix_lab.available()
    if why:
        pytest.skip(why)
    try:
        pwd.getpwnam("prometheus")
    except KeyError:
        pytest.skip("no prometheus user (install prometheus-node-exporter)")
    if any(s.exists() for s in STATES) and not OURS.exists():
        pytest.skip(f"{STATES[0]} exists (a real installation's state): the unit would use it")
    for s in STATES:
        shutil.rmtree(s, ignore_errors=True)         # left by a killed run of this test
    OURS.touch()
    base = Path(tempfile.mkdtemp(prefix="pqm-promunits-", dir="/var/lib"))  # PrivateTmp
    os.chmod(base, 0o755)
    with contextlib.ExitStack() as stack:
        stack.callback(OURS.unlink, missing_ok=True)
        stack.callback(shutil.rmtree, base, ignore_errors=True)
        for s in STATES:
            stack.callback(shutil.rmtree, s, ignore_errors=True)
        # a queue of its own under /var/lib: the shared one is under /tmp, hidden by PrivateTmp=
        postfix = systemd_lab.unit_queue(stack, base, "promunits", prometheus_lab.free_port(),
                                         MESSAGES)
        textdir = base / "textfile"
        textdir.mkdir()
        shutil.chown(textdir, "prometheus", "prometheus")      # as the unit's header says
        port = prometheus_lab.free_port()
        units = base / "units"
        instance = f" --config-dir {postfix.config_dir} --log-file {postfix.log_file}"
        drop = {
            SERVICE: _exec_start(SERVICE).replace("/opt/postfix-queue-monitor/bin/",
                                                  f"{daemon_venv}/")
            .replace(SHIPPED_FILE, str(textdir / "postfix_queue.prom")) + instance,
            SERVE: _exec_start(SERVE).replace("/opt/postfix-queue-monitor/bin/",
                                              f"{daemon_venv}/")
            .replace("127.0.0.1:9154", f"127.0.0.1:{port}") + instance,
        }
        assert all(line != _exec_start(unit) for unit, line in drop.items())
        systemd_lab.install_units(units, UNITS, (SERVICE, TIMER, SERVE), drop, {
            unit: f"StandardOutput=file:{base / unit}.out\n" for unit in drop})
        sd = systemd_lab.SystemdLab(units)
        stack.callback(sd.stop)
        sd.start()
        yield sd, textdir / "postfix_queue.prom", port, postfix


def test_textfile_service_writes_a_0644_file_as_prometheus(world) -> None:
    sd, target, _, lab = world
    assert sd.show(TIMER, "LoadState")["LoadState"] == "loaded"
    sd.systemctl("start", SERVICE, check=False)          # oneshot: returns when it has run
    p = sd.show(SERVICE, "Result", "ExecMainStatus")
    out = target.parent.parent / f"{SERVICE}.out"
    assert p == {"Result": "success", "ExecMainStatus": "0"}, (
        p, out.read_text() if out.exists() else "")
    st = target.stat()
    assert stat.S_IMODE(st.st_mode) == 0o644
    assert st.st_uid == pwd.getpwnam("prometheus").pw_uid
    text = target.read_text()
    assert _up(text) == [1.0]
    assert _depth(text) == MESSAGES
    state = STATES[0]
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert any(p.name.startswith("counters-") for p in state.iterdir())   # the log was read


def test_serve_service_answers_scrapes(world) -> None:
    sd, _, port, lab = world
    sd.systemctl("start", SERVE)
    try:
        text = prometheus_lab.wait_http(f"http://127.0.0.1:{port}/metrics")
        assert _up(text) == [1.0], text[:2000]
        assert _depth(text) == MESSAGES
        assert sd.show(SERVE, "ActiveState")["ActiveState"] == "active"
    finally:
        sd.systemctl("stop", SERVE)
    wait_until(lambda: not port_open(port), 10, "serve to stop")
