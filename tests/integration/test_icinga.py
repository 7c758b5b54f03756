"""nagios_configs/*.conf in a real Icinga 2: ``icinga2 daemon -C`` next to the ITL alone, the
command_endpoint (agent) rule validated with a zone and endpoint of the test's own, and a daemon
whose API (127.0.0.1:15665) returns our services' results from the real Postfix queue."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import labproc
import nagios_lab
from postfix_queue_monitor import check_registry, nagios_gen

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "nagios_configs"
API_PORT = 15665
AGENT_PORT = 15667
CHECKS, _MISSING = nagios_gen.load_checks()

reason = nagios_lab.available()
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")


def conf_files() -> list[Path]:
    return sorted(CONFIGS.glob("*.conf"))


def test_ok_icinga2_validates_our_files_next_to_the_itl_alone(base):
    lab = nagios_lab.IcingaLab(base, conf_files(), Path("/usr/lib/nagios/plugins")).write()
    res = lab.validate()
    assert res.returncode == 0, res.stdout + res.stderr
    m = re.search(r"Instantiated (\d+) CheckCommands", res.stdout)
    bare = nagios_lab.IcingaLab(nagios_lab.public_tempdir("pqm-icinga-"), [],
                                Path("/usr/lib/nagios/plugins")).write()
    try:
        m0 = re.search(r"Instantiated (\d+) CheckCommands", bare.validate().stdout)
    finally:
        shutil.rmtree(bare.base, ignore_errors=True)
    assert m and m0 and int(m[1]) - int(m0[1]) == len(CHECKS)
    assert "Services" not in res.stdout    # no host yet: the apply rules match nothing


def test_ok_icinga2_validates_agent_rule_with_command_endpoint(base):
    extra = """
object Endpoint "mail.agent.invalid" { }
object Zone "mail.agent.invalid" { endpoints = [ "mail.agent.invalid" ]; parent = ZoneName }
object Endpoint NodeName { }
object Zone ZoneName { endpoints = [ NodeName ] }
object Host "mail.agent.invalid" {
  check_command = "dummy"
  vars.postfix_queue_monitor = true
  vars.agent_endpoint = name
  zone = ZoneName   /* as a host in zones.d/<master>/ has: its services inherit it */
}
object Host "mail.local.invalid" {
  check_command = "dummy"
  vars.postfix_queue_monitor = true
}
"""
    lab = nagios_lab.IcingaLab(base, conf_files(), Path("/usr/lib/nagios/plugins"),
                               extra=extra, in_zone=True).write()
    res = lab.validate()
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"Instantiated {2 * len(CHECKS)} Services" in res.stdout


def test_ok_icinga2_api_returns_our_results_from_the_real_queue(base, venv, postfix, pki):
    plugins = nagios_lab.plugin_dir(venv, base)
    state = base / "state"
    state.mkdir()
    extra = nagios_lab.icinga_mail_host(postfix, state)
    lab = nagios_lab.IcingaLab(base, conf_files(), plugins, extra=extra,
                               api_port=API_PORT).write()
    try:
        lab.start(pki)
        assert nagios_lab.proc_user(lab.proc.pid) == "nagios"
        lab.reschedule_all()
        results = lab.wait_checked(len(CHECKS), timeout=30)
    finally:
        lab.stop()
    by_cmd = {r["attrs"]["check_command"]: r["attrs"] for r in results}
    assert sorted(by_cmd) == sorted(c.icinga for c in CHECKS)
    for check in CHECKS:
        cr = by_cmd[check.icinga]["last_check_result"]
        w, c = check.thresholds
        assert cr["exit_status"] == 0 and cr["state"] == 0, cr["output"]
        argv = cr["command"]
        assert argv[0] == f"{plugins}/{check.prog}"
        assert argv[1:5] == ["--warning", w, "--critical", c]
        if any(o.dest == "config_dir" for o in check.options):
            assert argv[argv.index("--config-dir"):][:2] == ["--config-dir",
                                                            str(postfix.config_dir)]
        else:                      # the bounce check reads the log: the lab's, from a host var
            assert argv[argv.index("--log-file"):][:2] == ["--log-file", str(postfix.log_file)]
        first, *long = cr["output"].splitlines()
        assert first.startswith("POSTFIX ") and " OK - " in first
        if check.spec.key != "bounce":
            assert any(nagios_lab.NON_ASCII_DOMAIN in x for x in long), cr["output"]
        labels = {p.split("=")[0] for p in cr["performance_data"]}
        if "waiting for baseline" not in first:
            assert set(check.perfdata) <= labels
    perf = by_cmd["postfix_queue"]["last_check_result"]["performance_data"]
    w, c = check_registry.BY_KEY["queue"].warning, check_registry.BY_KEY["queue"].critical
    assert f"queue_total={nagios_lab.LAB_MESSAGES};{w};{c};0" in perf


def test_ok_icinga2_agent_runs_our_checks_via_command_endpoint(base, venv, postfix, pki):
    """A master (API 15665) whose apply rules send the checks to a mail host's agent (API on
    127.0.0.1:15667, accept_commands): the results come back with the agent as check_source
    and its plugin path. The master's own PluginDir has no check_postfix_* at all."""
    agent_name, master_name = "mail.agent.invalid", nagios_lab.IcingaLab.NODE
    (base / "agent").mkdir()
    (base / "master").mkdir()
    plugins = nagios_lab.plugin_dir(venv, base / "agent")
    state = base / "agent" / "state"
    state.mkdir()
    agent = nagios_lab.IcingaLab(base / "agent", conf_files(), plugins, api_port=AGENT_PORT,
                                 node=agent_name, parent=master_name, extra=f"""
object Endpoint "{master_name}" {{ }}
object Zone "{master_name}" {{ endpoints = [ "{master_name}" ] }}
""").write()
    master = nagios_lab.IcingaLab(base / "master", conf_files(), Path("/usr/lib/nagios/plugins"),
                                  api_port=API_PORT, in_zone=True, extra=f"""
object Endpoint "{agent_name}" {{ host = "127.0.0.1"; port = {AGENT_PORT} }}
object Zone "{agent_name}" {{ endpoints = [ "{agent_name}" ]; parent = ZoneName }}
object Host "{agent_name}" {{
  check_command = "dummy"
  zone = ZoneName
  vars.agent_endpoint = name
  vars.postfix_queue_monitor = true
  vars.postfix_queue_config_dir = "{postfix.config_dir}"
  vars.postfix_queue_state_dir = "{state}"
  vars.postfix_queue_bounce_log_file = "{postfix.log_file}"
}}
""").write()
    master.make_certs(pki)      # both signed by one CA, as icinga2 node setup arranges
    agent.make_certs(pki)
    try:
        agent.start()
        master.start()
        labproc.wait_until(lambda: master.endpoint_connected(agent_name), 30,
                         "the master to connect to the agent", step=0.2)
        master.reschedule_all()

        def from_agent():
            res = [s["attrs"] for s in master.services()
                   if (s["attrs"]["last_check_result"] or {}).get("check_source") == agent_name]
            return res if len(res) == len(CHECKS) else None
        results = labproc.wait_until(from_agent, 30, "results from the agent", step=0.2)
    finally:
        master.stop()
        agent.stop()
    for attrs in results:
        cr = attrs["last_check_result"]
        check = next(c for c in CHECKS if c.icinga == attrs["check_command"])
        assert cr["command"][0] == f"{plugins}/{check.prog}"
        assert cr["exit_status"] == 0, cr["output"]
        assert cr["output"].startswith("POSTFIX ") and " OK - " in cr["output"]
        if check.spec.key != "bounce":
            assert nagios_lab.NON_ASCII_DOMAIN in cr["output"]
