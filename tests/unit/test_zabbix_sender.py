"""Sender: destinations like the agent's ServerActive, the spool, the exit summary."""

from __future__ import annotations

import json
import os
import socket
import stat
import time
from pathlib import Path

import pytest

from fakes import fake_postqueue
from postfix_queue_monitor import listing
from postfix_queue_monitor.errors import MonitorError
from postfix_queue_monitor.state import StateDir
from postfix_queue_monitor.zabbix import document, sender
from postfix_queue_monitor.zabbix.cli import main, parse_postmulti

CLOSED_PORT = 10152   # assigned to this suite; nothing listens there


def _closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_parse_servers_like_server_active() -> None:
    assert sender.parse_servers("zbx1") == [["zbx1:10051"]]
    assert sender.parse_servers("a:10061;b , c:1") == [["a:10061", "b:10051"], ["c:1"]]
    with pytest.raises(MonitorError, match="IPv6"):
        sender.parse_servers("[::1]:10051")
    with pytest.raises(MonitorError, match="port"):
        sender.parse_servers("a:x")
    with pytest.raises(MonitorError, match="no Zabbix server"):
        sender.parse_servers(" , ")


def test_agent_config_with_includes(tmp_path: Path) -> None:
    d = tmp_path / "zabbix_agentd.d"
    d.mkdir()
    (d / "a.conf").write_text("Hostname=mail1.example\nTLSConnect=cert\n")
    (d / "b.txt").write_text("Hostname=ignored\n")
    conf = tmp_path / "zabbix_agentd.conf"
    conf.write_text("# comment\nServerActive=zbx1;zbx2:10052,zbx3\nHostname=before\n"
                    f"Include={d}/*.conf\nSourceIP=127.0.0.1\n")
    got = sender.read_agent_config(str(conf))
    assert got["serveractive"] == "zbx1;zbx2:10052,zbx3"
    assert got["hostname"] == "mail1.example"
    assert got["tlsconnect"] == "cert" and got["sourceip"] == "127.0.0.1"
    with pytest.raises(MonitorError, match="cannot read Zabbix agent config"):
        sender.read_agent_config(str(tmp_path / "missing.conf"))


def test_tls_settings_checked() -> None:
    assert sender.tls_wrapper({}) is None
    assert sender.tls_wrapper({"tlsconnect": "unencrypted"}) is None
    with pytest.raises(MonitorError, match="TLSCAFile"):
        sender.tls_wrapper({"tlsconnect": "cert"})
    with pytest.raises(MonitorError, match="TLSPSKIdentity"):
        sender.tls_wrapper({"tlsconnect": "psk"})
    with pytest.raises(MonitorError, match="expected unencrypted"):
        sender.tls_wrapper({"tlsconnect": "bogus"})


def test_rfc4514_subject() -> None:
    subject = ((("countryName", "LV"),), (("organizationName", "Zabbix SIA"),),
               (("commonName", "Zabbix server"),))
    assert sender.rfc4514(subject) == "CN=Zabbix server,O=Zabbix SIA,C=LV"


def test_value_keeps_clock_and_ns() -> None:
    v = sender.Value.at("h", "k", "1", 1795966298.123456789)
    assert (v.clock, abs(v.ns - 123456789) < 1000) == (1795966298, True)
    assert sender.Value.from_dict(v.to_dict()) == v


def test_unreachable_spools_with_original_clock_and_bounded(tmp_path: Path) -> None:
    assert _closed(CLOSED_PORT)
    state = StateDir(str(tmp_path / "state"))
    nodes = [f"127.0.0.1:{CLOSED_PORT}"]
    for i in range(5):
        out = sender.send_to(nodes, [sender.Value.at("h", "postfix.metrics", f"v{i}", 1000 + i)],
                             state, timeout=1, spool_max=3)
        assert out.unreachable is not None and out.sent == 0
    assert out.spooled == 3 and out.dropped == 1 and out.from_spool == 3
    with state.locked(sender.spool_name(nodes), 1) as sf:
        kept = sf.read(sender.SPOOL_KIND)["values"]
    assert [(v["value"], v["clock"]) for v in kept] == [("v2", 1002), ("v3", 1003),
                                                        ("v4", 1004)]
    st = os.stat(state.file(sender.spool_name(nodes)))
    assert stat.S_IMODE(st.st_mode) == 0o600
    code, line = sender.summarize([out])
    assert code == 1 and "UNREACHABLE" in line and "3 values kept" in line


def test_summary_of_rejections_names_host_and_key() -> None:
    o = sender.Outcome("z:10051", sent=3, rejected=[("mail1", "postfix.metrics", 1)])
    code, line = sender.summarize([o])
    assert code == 2
    assert "REJECTED 1 for mail1:postfix.metrics" in line
    assert sender.summarize([sender.Outcome("z:10051", sent=2)]) == (0, "z:10051: 2 processed")


def test_send_cli_unreachable_exit_1(tmp_path: Path, fixtures: Path, capsys) -> None:
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    args = ["send", "--postqueue", pq, "--state-dir", str(tmp_path / "s"),
            "-z", f"127.0.0.1:{CLOSED_PORT}", "--host", "mail1", "--send-timeout", "1"]
    assert main(args) == 1
    assert main(args) == 1
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("host mail1: 127.0.0.1:10152: 0 processed, 1 from the spool")
    assert "2 values kept in the spool" in line


def test_send_cli_needs_a_destination(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["send"])
    assert exc.value.code == 3
    assert "one of the arguments" in capsys.readouterr().out


def test_parse_postmulti() -> None:
    text = ("-               -               y         /etc/postfix\n"
            "postfix-out     mta             y         /etc/postfix-out\n"
            "postfix-in      mta             n         /etc/postfix-in\n")
    assert parse_postmulti(text) == [
        {"{#INSTANCE}": "postfix-out", "{#CONFIG_DIR}": "/etc/postfix-out"},
        {"{#INSTANCE}": "postfix-in", "{#CONFIG_DIR}": "/etc/postfix-in"}]


def test_deploy_without_credentials_is_one_line_exit_3(capsys, monkeypatch) -> None:
    for var in ("ZABBIX_USER", "ZABBIX_PASSWORD", "ZABBIX_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    assert main(["deploy", "--url", "http://127.0.0.1:10154/", "--host", "h"]) == 3
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "deploy needs --token" in out


def test_deploy_unreachable_api_is_one_line_exit_3(capsys) -> None:
    assert main(["deploy", "--url", "http://127.0.0.1:10154/", "--host", "h",
                 "--token", "x"]) == 3
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "cannot reach the Zabbix API" in out
    # the cause itself, not urllib3's wrappers cut at 200 characters before it (was: "...
    # HTTPConnectionPool(host=..., port=10154): Max retries exceeded ... a new connect")
    assert out.rstrip().endswith("Connection refused"), out
    assert "HTTPConnectionPool" not in out and " object at 0x" not in out, out


def test_import_rules_name_groups_as_each_server_version_wants() -> None:
    # 6.0 refuses "template_groups", 6.2+ refuse "groups" (both measured: integration tests)
    from postfix_queue_monitor.zabbix.deploy import import_rules
    assert "groups" in import_rules("6.0.14") and "template_groups" not in import_rules("6.0.14")
    for version in ("6.2.0", "6.4.21", "7.0.9", "7.4.1"):
        rules = import_rules(version)
        assert "template_groups" in rules and "groups" not in rules, version
    assert import_rules("7.0.9")["templateDashboards"]["deleteMissing"] is True
    with pytest.raises(MonitorError, match="unexpected Zabbix API version"):
        import_rules("seven")


def test_postmulti_default_falls_back_to_usr_sbin_off_path(monkeypatch, tmp_path: Path) -> None:
    """cron's PATH (/usr/bin:/bin), as in the shipped .cron lines, lacks /usr/sbin: postmulti
    is then found where Debian puts it, as postqueue is (the same proc.postfix_program)."""
    from postfix_queue_monitor.proc import postfix_program
    monkeypatch.setenv("PATH", str(tmp_path))
    assert postfix_program("postmulti") == "/usr/sbin/postmulti"
    pm = tmp_path / "postmulti"
    pm.write_text("#!/bin/sh\n")
    pm.chmod(0o755)
    assert postfix_program("postmulti") == str(pm)


def test_discover_says_what_to_do_when_postmulti_is_missing(tmp_path: Path, capsys) -> None:
    """Before: 'postmulti not found' and nothing about the fix."""
    rc = main(["discover", "--postmulti", str(tmp_path / "postmulti")])
    out = capsys.readouterr().out
    assert rc == 3 and len(out.splitlines()) == 1, out
    assert "not found: install Postfix or pass --postmulti PATH" in out, out


def _age_stored_listing(state: Path, seconds: float) -> float:
    """Move the stored shared listing ``seconds`` into the past (as if another run had taken it
    then); returns its new time."""
    path = state / listing.file_name(None)
    doc = json.loads(path.read_text())
    doc["data"]["now"] -= seconds
    with open(path, "r+") as fh:        # in place: owner and mode stay
        fh.write(json.dumps(doc))
        fh.truncate()
    return doc["data"]["now"]


def test_send_stamps_log_values_with_the_runs_clock_and_a_reused_listing_with_its_own(
        tmp_path: Path, fixtures: Path) -> None:
    """A listing reused from another run (--listing-max-age) is sent at its own time, the
    delivery counts and rates read from the log at this run's: before, one document carried
    both at the listing's clock (the counts stamped up to the max age early). Every document
    carries the items that have no discard-on-fail step (version, collection time, error)."""
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    state = tmp_path / "s"
    common = ["--postqueue", pq, "--state-dir", str(state), "--listing-max-age", "600",
              "--log-file", str(fixtures / "postfix-3.7-mixed.log"), "--bounce-window", "3650d"]
    assert main(["json", *common]) == 0            # lists and stores the listing
    listed = _age_stored_listing(state, 120)
    started = time.time()
    nodes = [f"127.0.0.1:{CLOSED_PORT}"]
    assert main(["send", *common, "-z", nodes[0], "--host", "mail1", "--send-timeout", "1"]) == 1
    ended = time.time()
    with StateDir(str(state)).locked(sender.spool_name(nodes), 1) as sf:
        spooled = sf.read(sender.SPOOL_KIND)["values"]
    docs = [(v["clock"] + v["ns"] / 1e9, json.loads(v["value"])) for v in spooled]
    assert [v["key"] for v in spooled] == ["postfix.metrics", "postfix.metrics"], docs
    (queue_at, queue_doc), (log_at, log_doc) = docs
    assert abs(queue_at - listed) < 1e-3
    assert started - 1e-3 <= log_at <= ended
    assert queue_doc["queue"]["total"]["messages"] == 50 and "delivery" not in queue_doc
    assert log_doc["delivery"]["sent"] == 38 and "queue" not in log_doc
    assert "reasons" not in log_doc.get("deferred", {})
    for doc in (queue_doc, log_doc):
        required = {m.id for m in document.ALL if m.id not in document.OPTIONAL}
        assert required == {"meta.collect_seconds", "meta.version", "meta.error"}
        assert doc["meta"]["version"] and doc["meta"]["collect_seconds"] >= 0
        assert doc["meta"]["error"] == ""


def test_send_of_a_listing_taken_by_the_run_is_one_document(tmp_path: Path,
                                                             fixtures: Path) -> None:
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    state = tmp_path / "s"
    nodes = [f"127.0.0.1:{CLOSED_PORT}"]
    assert main(["send", "--postqueue", pq, "--state-dir", str(state), "--listing-max-age",
                 "600", "--log-file", str(fixtures / "postfix-3.7-mixed.log"),
                 "--bounce-window", "3650d", "-z", nodes[0], "--host", "mail1",
                 "--send-timeout", "1"]) == 1
    with StateDir(str(state)).locked(sender.spool_name(nodes), 1) as sf:
        spooled = sf.read(sender.SPOOL_KIND)["values"]
    assert len(spooled) == 1
    doc = json.loads(spooled[0]["value"])
    assert doc["queue"]["total"]["messages"] == 50 and doc["delivery"]["sent"] == 38
