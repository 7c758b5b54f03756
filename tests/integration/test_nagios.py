"""nagios_configs/ in a real Nagios 4: ``nagios4 -v`` on a main config that includes our files as
they are, and a daemon (as nagios) that runs our checks against a real Postfix queue and records
state, output and perfdata in status.dat — locally and through NRPE (check_nrpe_postfix)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

import nagios_lab
from postfix_queue_monitor import check_registry, nagios_gen

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "nagios_configs"
NRPE_PORT = 15666
CHECKS, _MISSING = nagios_gen.load_checks()

reason = nagios_lab.available()
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")


def unescape(value: str) -> str:
    """status.dat writes long output with \\n for newlines."""
    return value.replace("\\n", "\n")


def hosts() -> str:
    return (nagios_lab.nagios_host("mail-local", nagios_gen.HOSTGROUP)
            + nagios_lab.nagios_host("mail-nrpe", use=nagios_gen.NRPE_HOST_TEMPLATE,
                                     custom={"NRPE_OPTIONS": f"-p {NRPE_PORT} -t 30"}))


def test_ok_nagios4_verify_loads_our_files_as_they_are(base):
    cfg = [CONFIGS / "commands.cfg", CONFIGS / "services.cfg"]
    lab = nagios_lab.NagiosLab(base, cfg, base / "plugins", hosts()).write()
    (base / "plugins").mkdir()
    res = lab.verify()
    assert res.returncode == 0, res.stdout
    assert "Total Errors:   0" in res.stdout
    assert f"Checked {2 * len(CHECKS)} services." in res.stdout
    assert f"Checked {len(CHECKS) + 2} commands." in res.stdout   # ours + check_nrpe_postfix, noop


def test_ok_nagios4_verify_our_files_alone_without_hosts(base):
    """Without any host in our host groups the files still load (no dangling reference)."""
    cfg = [CONFIGS / "commands.cfg", CONFIGS / "services.cfg"]
    lab = nagios_lab.NagiosLab(base, cfg, base, "").write()
    res = lab.verify()
    assert "Error: There are no hosts defined!" in res.stdout   # only what we did not add
    errors = [x for x in res.stdout.splitlines() if "Error" in x and "no hosts" not in x
              and "no services" not in x and "Total Errors" not in x]
    assert errors == []


def test_ok_nagios4_verify_next_to_debians_stock_config(base):
    """Dropped beside Debian's own objects (nagios-plugins commands, stock templates), our
    names clash with nothing: Debian's nagios.cfg with our files instead of conf.d/."""
    stock = Path("/etc/nagios4/nagios.cfg").read_text().splitlines()
    lines = [x for x in stock if x.strip() != "cfg_dir=/etc/nagios4/conf.d"]
    (base / "host.cfg").write_text(
        "define host {\n    use linux-server\n    host_name mail1\n    address 127.0.0.1\n"
        f"    hostgroups {nagios_gen.HOSTGROUP}\n}}\n"
        "define host {\n    use linux-server,postfix-nrpe-host\n    host_name mail2\n"
        "    address 127.0.0.1\n}\n")
    lines += [f"cfg_file={CONFIGS / 'commands.cfg'}", f"cfg_file={CONFIGS / 'services.cfg'}",
              f"cfg_file={base / 'host.cfg'}"]
    (base / "nagios.cfg").write_text("\n".join(lines) + "\n")
    res = subprocess.run([nagios_lab.NAGIOS, "-v", str(base / "nagios.cfg")],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stdout
    assert "Total Errors:   0" in res.stdout


def test_ok_check_nrpe_postfix_gets_the_templates_default_options(base):
    """A host that only uses postfix-nrpe-host: check_nrpe gets exactly the template's default
    options (an undefined custom macro would reach it as a stray '$'). check_nrpe here is a
    stand-in printing its arguments, so nothing is contacted."""
    plugins = base / "plugins"
    plugins.mkdir()
    (plugins / "check_nrpe").write_text('#!/bin/sh\necho "ARGS: $*"\n')
    (plugins / "check_nrpe").chmod(0o755)
    lab = nagios_lab.NagiosLab(base, [CONFIGS / "commands.cfg", CONFIGS / "services.cfg"],
                               plugins, nagios_lab.nagios_host(
                                   "mail-plain", use=nagios_gen.NRPE_HOST_TEMPLATE)).write()
    try:
        lab.start()
        services = lab.wait_checked(len(CHECKS), timeout=30)
    finally:
        lab.stop()
    outputs = sorted(s["plugin_output"] for s in services)
    assert outputs == sorted(f"ARGS: -H 127.0.0.1 {nagios_gen.NRPE_DEFAULT_OPTIONS} -c {c.command}"
                             for c in CHECKS)


def test_ok_nagios_daemon_runs_every_check_on_the_real_queue(base, venv, postfix):
    user1 = nagios_lab.plugin_dir(venv, base)
    state = base / "state"
    state.mkdir()
    env = {"MAIL_CONFIG": str(postfix.config_dir), "XDG_STATE_HOME": str(state)}
    links = {nagios_lab.MAIL_LOG: postfix.log_file}     # the bounce check's default log
    # NRPE keeps its own state, as on a mail host of its own: two growth checks sharing one
    # state file at the same instant would see each other's samples out of order
    nrpe_base = nagios_lab.public_tempdir("pqm-nrpe-")
    (nrpe_base / "state").mkdir()
    nrpe = nagios_lab.NrpeLab(nrpe_base, CONFIGS / "nrpe.cfg", venv, NRPE_PORT,
                              keep_env={**env, "XDG_STATE_HOME": str(nrpe_base / "state")},
                              links=links).write()
    # one service of the admin's own: a command with $ARG3$ options, judged non-OK
    own = ("define service {\n    use                     postfix-queue-service\n"
           "    host_name               mail-local\n    service_description     Lab deferred\n"
           f"    check_command           check_postfix_queue!20!40!--queue deferred "
           f"--config-dir {postfix.config_dir}\n}}\n")
    lab = nagios_lab.NagiosLab(base, [CONFIGS / "commands.cfg", CONFIGS / "services.cfg"],
                               user1, hosts() + own, env=env, links=links).write()
    try:
        nrpe.start()
        lab.start()
        services = lab.wait_checked(2 * len(CHECKS) + 1, timeout=40)
        users = {nagios_lab.proc_user(p.pid) for p in (lab.proc, nrpe.proc)}
    finally:
        lab.stop()
        nrpe.stop()
        shutil.rmtree(nrpe.base, ignore_errors=True)

    assert users == {"nagios"}
    by_name = {(s["host_name"], s["service_description"]): s for s in services}
    for check in CHECKS:
        for host in ("mail-local", "mail-nrpe"):
            s = by_name[(host, check.spec.service)]
            out, perf, long = s["plugin_output"], s["performance_data"], \
                unescape(s["long_plugin_output"])
            assert s["current_state"] == "0", (host, out)
            assert out.startswith("POSTFIX ") and " OK - " in out, out
            assert len(out.encode()) <= 1024
            labels = set(re.findall(r"(\w+)=", perf))
            if check.spec.key == "growth":     # first run: no rate before its baseline
                assert "waiting for baseline" in out, out
                assert labels == {"queue_deferred"}, perf
            else:
                assert set(check.perfdata) <= labels, perf
            assert "\n" not in perf and perf.count("|") == 0
            if check.spec.key != "bounce":       # -v: top deferred domains
                assert nagios_lab.NON_ASCII_DOMAIN in long, long
    total = by_name[("mail-local", "Postfix queue")]["performance_data"]
    w, c = check_registry.BY_KEY["queue"].warning, check_registry.BY_KEY["queue"].critical
    assert f"queue_total={nagios_lab.LAB_MESSAGES};{w};{c};0" in total.split()
    assert f"queue_deferred={nagios_lab.LAB_MESSAGES};;;0" in total.split()
    own = by_name[("mail-local", "Lab deferred")]
    n = nagios_lab.LAB_MESSAGES
    assert own["current_state"] == "1"
    assert own["plugin_output"] == (f"POSTFIX QUEUE WARNING - {n} deferred (> 20): 100% refused, "
                                    f"top {nagios_lab.NON_ASCII_DOMAIN} 6")
    assert f"queue_deferred={n};20;40;0" in own["performance_data"].split()
    assert by_name[("mail-nrpe", "Postfix queue")]["check_command"].startswith(
        "check_nrpe_postfix!check_postfix_queue")
