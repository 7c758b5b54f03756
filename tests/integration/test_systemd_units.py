"""The shipped zabbix_templates/postfix-queue-zabbix.{service,timer}, run by a real systemd
(tools/systemd_lab.py: PID 1 of its own namespaces, since no systemd runs this machine), against
a real private Postfix queue and a real Zabbix 6.0 that must end up with the values.

The units are copied byte for byte; the only change is a drop-in, as an administrator would
write one, that points the shipped ExecStart= at this test's venv, agent config and Postfix
instance. Everything else — User=zabbix, the groups, StateDirectory=, PrivateTmp=,
ProtectSystem=, SuccessExitStatus=, the timer's schedule — is the shipped file's.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import postfix_lab
import systemd_lab
import zabbix_lab
from postfix_queue_monitor.zabbix import sender

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "zabbix_templates"
SERVICE, TIMER = "postfix-queue-zabbix.service", "postfix-queue-zabbix.timer"
STATE = Path("/var/lib/postfix-queue-zabbix")       # the unit's StateDirectory=
OURS = Path("/var/lib/.pqm-test-owns-postfix-queue-zabbix")   # STATE is this test's, not a user's
HOST = "mail-systemd"
MESSAGES = 5
RELAY_PORT = 10158                                   # nothing listens: all mail defers


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "postfix_queue_monitor.zabbix.cli", *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "checks")})


@pytest.fixture(scope="module")
def world(daemon_venv: Path):
    """(systemd, zabbix, postfix lab) with the units installed and the host deployed."""
    why = systemd_lab.missing() or zabbix_lab.missing() or postfix_lab.available()
    if why:
        pytest.skip(why)
    if STATE.exists() and not OURS.exists():
        pytest.skip(f"{STATE} exists (a real installation's state): the unit would use it")
    shutil.rmtree(STATE, ignore_errors=True)    # left by a run of this test that was killed
    OURS.touch()
    base = Path(tempfile.mkdtemp(prefix="pqm-systemd-", dir="/var/lib"))  # not /tmp: PrivateTmp
    os.chmod(base, 0o755)
    with contextlib.ExitStack() as stack:
        stack.callback(OURS.unlink, missing_ok=True)
        stack.callback(shutil.rmtree, base, ignore_errors=True)
        stack.callback(shutil.rmtree, STATE, ignore_errors=True)
        zbx = zabbix_lab.ZabbixLab()
        stack.callback(zbx.stop)
        zbx.start()
        mq = systemd_lab.unit_queue(stack, base, "systemd", RELAY_PORT, MESSAGES)
        deployed = _cli("deploy", "--url", zbx.url, "--user", "Admin", "--password", "zabbix",
                        "--host", HOST)
        assert deployed.returncode == 0, deployed.stdout
        agent_conf = base / "zabbix_agentd.conf"
        agent_conf.write_text(f"ServerActive={zbx.server_addr}\nHostname={HOST}\n")
        os.chmod(agent_conf, 0o644)
        units = base / "units"
        shipped = next(line for line in (UNITS / SERVICE).read_text().splitlines()
                       if line.startswith("ExecStart="))
        exec_start = (shipped.replace("/opt/postfix-queue-monitor/bin/", f"{daemon_venv}/")
                      .replace("/etc/zabbix/zabbix_agentd.conf", str(agent_conf))
                      + f" --config-dir {mq.config_dir} --log-file {mq.log_file}")
        assert exec_start != shipped and "--state-dir /var/lib/postfix-queue-zabbix" in exec_start
        systemd_lab.install_units(units, UNITS, (SERVICE, TIMER), {SERVICE: exec_start})
        sd = systemd_lab.SystemdLab(units)
        stack.callback(sd.stop)
        sd.start()
        yield sd, zbx, mq


def test_ok_timer_runs_the_shipped_service_and_values_reach_zabbix(world) -> None:
    sd, zbx, mq = world
    assert sd.show(SERVICE, "LoadState")["LoadState"] == "loaded"
    sd.systemctl("start", TIMER)
    assert sd.show(SERVICE, "ExecMainStartTimestamp")["ExecMainStartTimestamp"] == ""
    # the timer's first run: OnBootSec=1min, which systemd in a container counts from its own
    # start (OnStartupSec), so about a minute after the manager came up
    done = postfix_lab.wait_until(
        lambda: (p := sd.show(SERVICE, "ExecMainExitTimestamp", "Result", "ExecMainStatus"))[
            "ExecMainExitTimestamp"] != "" and p, 90, "the timer to run the service", step=0.5)
    assert done["Result"] == "success" and done["ExecMainStatus"] == "0", (
        done, sd.log.read_text(errors="replace")[-2000:])
    # ... ran as zabbix, with its state in the 0700 StateDirectory systemd made for it
    st = STATE.stat()
    assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == zabbix_uid()
    files = list(STATE.iterdir())
    assert files and all(p.stat().st_uid == zabbix_uid() for p in files), files
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files if p.is_file())
    # the values are in Zabbix: the queue the Nagios check sees
    items = postfix_lab.wait_until(
        lambda: (i := {r["key_"]: r for r in zbx.api("item.get", {
            "host": HOST, "output": ["key_", "lastvalue", "lastclock", "state", "error"]})})[
            "postfix.queue.size[deferred]"]["lastclock"] != "0" and i, 30, "values in Zabbix")
    assert items["postfix.queue.size[deferred]"]["lastvalue"] == str(MESSAGES)
    assert items["postfix.monitor.error"]["lastvalue"] == ""
    assert {k: r["error"] for k, r in items.items() if r["state"] != "0"} == {}
    # and the timer has the next run a minute after this one (OnUnitActiveSec=1min)
    t = sd.show(TIMER, "NextElapseUSecMonotonic", "LastTriggerUSecMonotonic", "LastTriggerUSec",
                "ActiveState")
    assert t["ActiveState"] == "active"
    ran = sd.show(SERVICE, "ExecMainStartTimestamp")["ExecMainStartTimestamp"]
    assert abs(_unix(t["LastTriggerUSec"]) - _unix(ran)) <= 2, (t, ran)
    gap = _span(t["NextElapseUSecMonotonic"]) - _span(t["LastTriggerUSecMonotonic"])
    assert 59 <= gap <= 61, t


def test_unreachable_server_is_not_a_failed_unit_and_values_are_spooled(world) -> None:
    sd, zbx, mq = world
    # the timer stays active: it holds the service loaded, and with it the properties of its
    # last run (an unreferenced inactive unit is unloaded at once). A timer run in between
    # would also fail (server down) or deliver (server up), so the checks below hold either way.
    zbx.stop_server()
    try:
        sd.systemctl("start", SERVICE)      # oneshot: returns when the run has ended
        p = sd.show(SERVICE, "Result", "ExecMainStatus")
        # exit 1 (unreachable) is a success for the unit (SuccessExitStatus=1 2) ...
        assert p == {"Result": "success", "ExecMainStatus": "1"}, p
        # ... and the document waits in the spool for the next run
        assert len(_spooled(zbx)) >= 1
    finally:
        zbx.start_server()
    time.sleep(1)
    sd.systemctl("start", SERVICE)
    p = sd.show(SERVICE, "Result", "ExecMainStatus")
    assert p == {"Result": "success", "ExecMainStatus": "0"}, p
    assert _spooled(zbx) == []


def _spooled(zbx) -> list[dict]:
    """The values in the sender's spool file for the lab's server (state.py's format)."""
    path = STATE / sender.spool_name(sender.parse_servers(zbx.server_addr)[0])
    assert path.is_file(), list(STATE.iterdir())
    doc = json.loads(path.read_text())
    assert doc["kind"] == sender.SPOOL_KIND, doc
    return doc["data"]["values"]


def _span(text: str) -> float:
    """A monotonic time as systemctl shows it ('2h 8min 11.452499s') in seconds."""
    units = {"d": 86400, "h": 3600, "min": 60, "s": 1, "ms": 1e-3, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(d|h|min|ms|us|s)\b", text)
    assert parts, text
    return sum(float(n) * units[u] for n, u in parts)


def _unix(stamp: str) -> float:
    """A timestamp of ``systemctl show --timestamp=unix``: '@1764437682', or, for the timer
    properties that ignore that option on systemd 252, 'Sun 2026-11-29 17:36:52 UTC'."""
    if stamp.startswith("@"):
        return float(stamp[1:])
    out = subprocess.run(["date", "-d", stamp, "+%s"], capture_output=True, text=True,
                         check=True, timeout=10)
    return float(out.stdout)


def zabbix_uid() -> int:
    return pwd.getpwnam("zabbix").pw_uid
