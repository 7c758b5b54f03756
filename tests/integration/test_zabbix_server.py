"""Against a real Zabbix (PostgreSQL + zabbix_server + frontend under php -S, brought up by
tools/zabbix_lab.py) and a real private Postfix queue (tools/postfix_lab.py). Every test that
talks to the server runs twice: on Debian 12's Zabbix 6.0, which the templates are exported for,
and on 7.0 (bookworm-backports, unpacked by scripts/fetch-zabbix7.sh), which converts them on
import — so "imports into 6.0 and 7.0" and "works there" are both shown, not assumed.

The order matters and is the file's order within each version (pytest runs all of 6.0, then
all of 7.0, then the one test that needs no server): templates are imported, the host deployed,
values sent and read back, a trigger flips, the server is stopped while the sender spools, and
the no-data trigger is checked last, after the agent and discovery tests have let the time pass.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import labproc
import nagios_lab
import postfix_lab
import zabbix_lab
from fakes import age_growth_samples, slow_postqueue
from postfix_queue_monitor import __version__, listing, metrics
from postfix_queue_monitor.state import StateDir
from postfix_queue_monitor.zabbix import document, sender, template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "zabbix_templates"
BIN = Path(sys.executable).parent
AGENT_PORT = 10150
RELAY_PORT = 10159          # nothing listens: every message defers ("Connection refused")
HOST = "mail-trapper"
MESSAGES = 12
NODATA = "30s"              # the minimum nodata() accepts


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "checks")}


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "postfix_queue_monitor.zabbix.cli", *args],
                          capture_output=True, text=True, env=_env(), timeout=timeout)


def wait_until(fn, timeout: float, what: str, step: float = 0.5):
    return labproc.wait_until(fn, timeout, what, step)


def make_certs(d: Path) -> dict[str, Path]:
    """A CA, the server's certificate and the sender's, with openssl."""
    def ossl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
         "ca.crt", "-subj", "/CN=zlab CA", "-days", "2")
    for name, cn in (("server", "Zabbix server"), ("agent", "mail-tls")):
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
             f"{name}.csr", "-subj", f"/O=zlab/CN={cn}")
        ossl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", f"{name}.crt", "-days", "2")
    for f in d.iterdir():
        f.chmod(0o644)          # the server runs as zabbix; a test directory only
    return {n: d / n for n in ("ca.crt", "server.crt", "server.key", "agent.crt",
                               "agent.key")}


@pytest.fixture(scope="module", params=[zabbix_lab.ZABBIX6, zabbix_lab.ZABBIX7],
                ids=lambda dist: f"zabbix{dist.version}")
def zbx(request):
    why = zabbix_lab.missing(request.param) or postfix_lab.available()
    if why:
        pytest.skip(why)
    d = Path(tempfile.mkdtemp(prefix="zbx-certs-"))
    lab = None
    try:
        d.chmod(0o755)
        c = make_certs(d)
        lab = zabbix_lab.ZabbixLab(dist=request.param,
                                   extra_conf=[f"TLSCAFile={c['ca.crt']}",
                                               f"TLSCertFile={c['server.crt']}",
                                               f"TLSKeyFile={c['server.key']}"])
        lab.certs = c
        lab.start()
        yield lab
    finally:
        if lab is not None:
            lab.stop()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def mailq():
    why = postfix_lab.available()
    if why:
        pytest.skip(why)
    lab = postfix_lab.Lab(name="zbx", relay_port=RELAY_PORT)
    lab.setup().start()
    try:
        lab.inject(MESSAGES, domains=3)
        lab.wait_settled(MESSAGES, timeout=60)
        yield lab
    finally:
        lab.destroy()


@pytest.fixture(scope="module")
def state_dir(zbx, tmp_path_factory) -> str:
    """The sender's state for one server (growth baseline, spool), as on a real host."""
    return str(tmp_path_factory.mktemp(f"zbx{zbx.dist.version}-state") / "state")


def send(zbx, mailq, state_dir: str, host: str = HOST,
         *extra: str) -> subprocess.CompletedProcess:
    return cli("send", "-z", zbx.server_addr, "--host", host, "--config-dir",
               str(mailq.config_dir),
               "--log-file", str(mailq.log_file), "--state-dir", state_dir,
               "--send-timeout", "3", *extra)


def items_of(zbx, host: str) -> dict[str, dict]:
    rows = zbx.api("item.get", {"host": host, "output": ["itemid", "key_", "state", "error",
                                                          "value_type", "lastclock",
                                                          "lastvalue"]})
    return {r["key_"]: r for r in rows}


def history(zbx, item: dict, since: int = 0) -> list[dict]:
    return zbx.api("history.get", {"itemids": [item["itemid"]], "history": int(item["value_type"]),
                                   "time_from": since, "sortfield": "clock",
                                   "sortorder": "ASC", "output": "extend"})


def trigger_value(zbx, host: str, name_start: str) -> int:
    rows = zbx.api("trigger.get", {"host": host, "output": ["description", "value"],
                                   "expandDescription": True})
    found = [int(r["value"]) for r in rows if r["description"].startswith(name_start)]
    assert found, f"no trigger {name_start!r} on {host}"
    return max(found)


def postmulti_listed() -> list[list[str]]:
    """The real ``postmulti -l``, a row of columns a line (the default instance's name: -)."""
    out = subprocess.run(["postmulti", "-l"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return [line.split() for line in out.stdout.splitlines()]


def perfdata(check: str, *args: str) -> tuple[dict[str, float], float, float]:
    t0 = time.time()
    out = subprocess.run([str(BIN / check), *args], capture_output=True, text=True,
                         env=_env(), timeout=60)
    t1 = time.time()
    assert "|" in out.stdout, out.stdout
    perf = {}
    for item in out.stdout.split("|", 1)[1].split():
        label, raw = item.split("=", 1)
        perf[label] = float(raw.split(";")[0].rstrip("Bs%"))
    return perf, t0, t1


# -- 1. every committed template imports ----------------------------------------------------

def test_ok_every_yaml_imports_through_the_api(zbx) -> None:
    files = sorted(TEMPLATES.glob("*.yaml")) + sorted(TEMPLATES.glob("*.yml"))
    assert len(files) == 2
    from postfix_queue_monitor.zabbix.deploy import import_rules
    version = zbx.api("apiinfo.version", {}, auth=False)
    assert version.startswith(zbx.dist.version + "."), version
    for path in files:
        assert zbx.api("configuration.import", {"format": "yaml", "source": path.read_text(),
                                                "rules": import_rules(version)}) is True
    for kind in template.KINDS:
        got = zbx.api("template.get", {"filter": {"host": [template.TEMPLATE_NAMES[kind]]},
                                       "selectItems": "count", "selectTriggers": "count",
                                       "selectGraphs": "count", "selectDashboards": "count",
                                       "selectDiscoveries": "count", "output": ["host"]})
        assert len(got) == 1, kind
        t = got[0]
        assert int(t["items"]) == len(document.ALL) + 1
        assert int(t["dashboards"]) == 1 and int(t["discoveries"]) == 1
        assert int(t["graphs"]) >= 7
    zbx.analyze()   # fresh planner statistics for what follows (see ZabbixLab.analyze)


# -- 2. deploy (twice: idempotent) ---------------------------------------------------------

def test_ok_deploy_creates_host_then_changes_nothing(zbx) -> None:
    args = ["deploy", "--url", zbx.url, "--user", "Admin", "--password", "zabbix",
            "--host", HOST, "--group", "Mail servers",
            "--macro", "{$POSTFIX.TRIGGER.PERIOD}=#1", "--macro", f"{{$POSTFIX.NODATA.PERIOD}}"
            f"={NODATA}"]
    first = cli(*args)
    assert first.returncode == 0, first.stdout
    assert f"created host '{HOST}' linked to 'Postfix queue by Zabbix trapper'" in first.stdout
    second = cli(*args)
    assert second.returncode == 0, second.stdout
    assert f"host '{HOST}' already up to date" in second.stdout
    hosts = zbx.api("host.get", {"filter": {"host": [HOST]}, "selectParentTemplates": ["host"],
                                 "selectGroups": ["name"], "selectMacros": ["macro", "value"]})
    assert len(hosts) == 1
    assert [t["host"] for t in hosts[0]["parentTemplates"]] == ["Postfix queue by Zabbix trapper"]
    assert [g["name"] for g in hosts[0]["groups"]] == ["Mail servers"]
    assert {m["macro"]: m["value"] for m in hosts[0]["macros"]}["{$POSTFIX.NODATA.PERIOD}"] \
        == NODATA
    assert len(zbx.api("template.get", {"filter": {"host": list(
        template.TEMPLATE_NAMES.values())}})) == 2
    # an API token instead of user/password, from the environment (kept out of ps)
    tokenid = zbx.api("token.create", {"name": "deploy-test", "userid": "1"})["tokenids"][0]
    token = zbx.api("token.generate", [tokenid])[0]["token"]
    third = subprocess.run([sys.executable, "-m", "postfix_queue_monitor.zabbix.cli", "deploy",
                            "--url", zbx.url, "--host", HOST], capture_output=True, text=True,
                           env={**_env(), "ZABBIX_API_TOKEN": token}, timeout=120)
    assert third.returncode == 0, third.stdout
    assert f"host '{HOST}' already up to date" in third.stdout
    # or from a file readable by root alone: --token-file
    with tempfile.NamedTemporaryFile("w", suffix=".token") as fh:
        fh.write(token + "\n")
        fh.flush()
        fourth = cli("deploy", "--url", zbx.url, "--host", HOST, "--token-file", fh.name)
    assert fourth.returncode == 0 and fourth.stderr == "", fourth.stdout + fourth.stderr
    assert f"host '{HOST}' already up to date" in fourth.stdout
    bad = cli("deploy", "--url", zbx.url, "--user", "Admin", "--password", "wrong",
              "--host", HOST)
    assert bad.returncode == 3 and bad.stdout.count("\n") == 1
    assert "refused the login" in bad.stdout


# -- 3. send: history equals the checks' perfdata, nothing unsupported ----------------------

def test_ok_sent_values_equal_check_perfdata(zbx, mailq, state_dir) -> None:
    # a new host's trapper items take values once the configuration cache has them (2 s here)
    sent = wait_until(lambda: (r := send(zbx, mailq, state_dir)).returncode == 0 and r, 30,
                      "the server to accept values for the new host", step=1)
    assert sent.stdout.startswith(f"host {HOST}: {zbx.server_addr}: 1 processed"), sent.stdout
    items = wait_until(lambda: (i := items_of(zbx, HOST))["postfix.queue.size[total]"][
        "lastclock"] != "0" and i, 30, "values in the items")
    master = items["postfix.metrics"]
    doc_row = history(zbx, master)[-1]
    clock = int(doc_row["clock"]) + int(doc_row["ns"]) / 1e9
    queue, q0, q1 = perfdata("check_postfix_queue", "--config-dir", str(mailq.config_dir))
    oldest, o0, o1 = perfdata("check_postfix_oldest_message", "--config-dir",
                              str(mailq.config_dir))
    age_growth_samples(state_dir, 120)
    growth, _, _ = perfdata("check_postfix_deferred_growth", "--config-dir",
                            str(mailq.config_dir), "--state-dir", state_dir)
    assert "deferred_growth_per_hour" in growth
    bounce, _, _ = perfdata("check_postfix_bounce_rate", "--log-file", str(mailq.log_file),
                            "--state-dir", state_dir)
    assert queue["queue_deferred"] == MESSAGES and queue["queue_total"] == MESSAGES
    assert bounce["delivery_deferred"] >= MESSAGES and bounce["deferral_rate"] == 100.0
    compared = 0
    for label, value in {**queue, **oldest, **growth, **bounce}.items():
        m = metrics.BY_LABEL.get(label)
        if label == "deferred_growth_per_hour":
            # the sender's was the first sample: no baseline, so no growth value (discarded,
            # not unsupported); the check, run after it, has that sample as its baseline
            # (aged by two minutes above: a rate needs samples a minute apart)
            assert history(zbx, items[m.key]) == [] and value == 0.0
            continue
        item = items[m.key]
        rows = history(zbx, item)
        assert rows, f"no history for {m.key}"
        got = float(rows[-1]["value"])
        assert int(rows[-1]["clock"]) == int(doc_row["clock"])
        if label.startswith("oldest_age") and value > 0:
            # the check ran after the sender: its ages are older by the time in between
            assert got + (o0 - clock) - 0.5 <= value <= got + (o1 - clock) + 0.5, (label, got)
        else:
            assert got == value, (label, got, value)
        compared += 1
    assert compared == 12 + 6 + 6
    assert float(history(zbx, items["postfix.queue.deferred.reason[refused]"])[-1]["value"]) \
        == MESSAGES
    unsupported = {k: r["error"] for k, r in items_of(zbx, HOST).items() if r["state"] != "0"}
    assert unsupported == {}
    now = items_of(zbx, HOST)
    assert now["postfix.monitor.version"]["lastvalue"] == __version__
    assert now["postfix.monitor.error"]["lastvalue"] == ""


def test_ok_second_send_has_growth_and_still_nothing_unsupported(zbx, mailq, tmp_path) -> None:
    """Stands alone: the host deployed if no test before did, a state dir of its own whose
    first send is the growth baseline."""
    if not zbx.api("host.get", {"filter": {"host": [HOST]}, "output": ["hostid"]}):
        assert cli("deploy", "--url", zbx.url, "--user", "Admin", "--password", "zabbix",
                   "--host", HOST).returncode == 0
    state = str(tmp_path / "state")
    since = int(time.time())
    wait_until(lambda: send(zbx, mailq, state).returncode == 0, 30,
               "the server to accept values for the host", step=1)
    age_growth_samples(state, 120)      # the first send two minutes ago: a rate needs 60 s
    out = send(zbx, mailq, state)
    assert out.returncode == 0, out.stdout
    growth = wait_until(lambda: history(zbx, items_of(zbx, HOST)[
        "postfix.queue.deferred.growth"], since), 20, "a growth value")
    perf, _, _ = perfdata("check_postfix_deferred_growth", "--config-dir",
                          str(mailq.config_dir), "--state-dir", state)
    # the queue did not change: both 0, the check's against the sender's samples
    assert float(growth[-1]["value"]) == perf["deferred_growth_per_hour"] == 0.0
    items = items_of(zbx, HOST)
    assert items["postfix.queue.deferred.growth.ready"]["lastvalue"] == "1"
    assert {k: r["error"] for k, r in items.items() if r["state"] != "0"} == {}


def test_ok_reused_listing_at_its_clock_and_log_values_at_the_runs(zbx, mailq, tmp_path) -> None:
    """A listing another run took (``json`` here) reused by ``send`` (--listing-max-age): the
    queue items get the listing's clock, the delivery items the run's; nothing unsupported
    (each of the two documents lacks the other's values)."""
    if not zbx.api("host.get", {"filter": {"host": [HOST]}, "output": ["hostid"]}):
        assert cli("deploy", "--url", zbx.url, "--user", "Admin", "--password", "zabbix",
                   "--host", HOST).returncode == 0
    state = tmp_path / "state"
    shared = ("--listing-max-age", "600", "--state-dir", str(state))
    taken = cli("json", "--config-dir", str(mailq.config_dir), "--log-file",
                str(mailq.log_file), *shared)
    assert taken.returncode == 0, taken.stdout
    stored = json.loads((state / listing.file_name(str(mailq.config_dir))).read_text())
    listed = stored["data"]["now"]
    time.sleep(1.5)             # the listing is then more than a second older than the run
    since = int(time.time())
    out = wait_until(lambda: (r := send(zbx, mailq, str(state), HOST, *shared)).returncode == 0
                     and r, 30, "the server to accept values for the host", step=1)
    assert "2 processed" in out.stdout, out.stdout
    items = items_of(zbx, HOST)

    def stamps(key: str) -> list[tuple[int, int]]:
        """(clock, ns) of the item's values from the listing's time on."""
        return [(int(r["clock"]), int(r["ns"])) for r in history(zbx, items[key], int(listed))
                if int(r["clock"]) + int(r["ns"]) / 1e9 >= listed - 1e-3]
    at = wait_until(lambda: len(r := stamps("postfix.metrics")) >= 2 and r, 20,
                    "both documents in history")
    assert len(at) == 2 and abs(at[0][0] + at[0][1] / 1e9 - listed) < 1e-3, at
    assert at[1][0] >= since, at
    total = metrics.BY_ID["queue.size.total"].key
    deferred = metrics.BY_ID["delivery.count.deferred"].key
    assert wait_until(lambda: stamps(total), 20, "the queue size in history") == [at[0]]
    assert wait_until(lambda: stamps(deferred), 20, "the deferred count in history") == [at[1]]
    assert float(history(zbx, items[deferred], since)[-1]["value"]) >= MESSAGES
    assert {k: r["error"] for k, r in items_of(zbx, HOST).items() if r["state"] != "0"} == {}


# -- 4. a threshold trigger goes to PROBLEM and back ----------------------------------------

def _set_macro(zbx, host: str, macro: str, value: str) -> None:
    out = cli("deploy", "--url", zbx.url, "--user", "Admin", "--password", "zabbix",
              "--host", host, "--macro", f"{macro}={value}")
    assert out.returncode == 0, out.stdout


def test_problem_then_ok_queue_size_trigger(zbx, mailq, state_dir) -> None:
    name = "Postfix: too many messages queued (over "
    assert trigger_value(zbx, HOST, name) == 0
    _set_macro(zbx, HOST, "{$POSTFIX.QUEUE.SIZE.WARN}", str(MESSAGES - 1))
    time.sleep(3)   # CacheUpdateFrequency=2
    assert send(zbx, mailq, state_dir).returncode == 0
    wait_until(lambda: trigger_value(zbx, HOST, name) == 1, 20, "the trigger to fire")
    _set_macro(zbx, HOST, "{$POSTFIX.QUEUE.SIZE.WARN}", "500")
    time.sleep(3)
    assert send(zbx, mailq, state_dir).returncode == 0
    wait_until(lambda: trigger_value(zbx, HOST, name) == 0, 20, "the trigger to recover")


def test_problem_from_a_cut_listings_lower_bound(zbx, mailq, state_dir, tmp_path) -> None:
    """A storm: the listing is cut by -t. The document carries the messages read as the
    lower-bound item only, whose trigger fires above {$POSTFIX.QUEUE.SIZE.CRIT} (2000); no queue
    item receives the lower bound as a value."""
    name = "Postfix: at least "
    total = items_of(zbx, HOST)["postfix.queue.size[total]"]
    before = history(zbx, total)
    # a stand-in that lists 3,000 messages, then hangs as showq does in a storm
    out = send(zbx, mailq, state_dir, HOST, "--postqueue", slow_postqueue(tmp_path, 3000),
               "-t", "1.5")
    assert out.returncode == 0, out.stdout
    wait_until(lambda: trigger_value(zbx, HOST, name) == 1, 20, "the lower-bound trigger")
    items = items_of(zbx, HOST)
    assert items["postfix.queue.size.lower_bound"]["lastvalue"] == "3000"
    assert "queue listing cut after 3000 messages" in items["postfix.monitor.error"]["lastvalue"]
    assert history(zbx, total) == before
    assert {k: r["error"] for k, r in items.items() if r["state"] != "0"} == {}


# -- 5. server down for several runs: everything spooled arrives with its own clock ----------

def test_unreachable_runs_spool_then_arrive_with_original_clocks(zbx, mailq, state_dir) -> None:
    zbx.stop_server()
    try:
        for _ in range(3):
            out = send(zbx, mailq, state_dir)
            assert out.returncode == 1, out.stdout
            assert "UNREACHABLE" in out.stdout
            time.sleep(1.1)     # distinct clocks
        assert "3 values kept in the spool" in out.stdout
        nodes = sender.parse_servers(zbx.server_addr)[0]
        with StateDir(state_dir).locked(sender.spool_name(nodes), 2) as sf:
            spooled = sf.read(sender.SPOOL_KIND)["values"]
        assert len(spooled) == 3
    finally:
        zbx.start_server()
    out = wait_until(lambda: (r := send(zbx, mailq, state_dir)).returncode == 0 and r, 60,
                     "the restarted server to take the spool", step=1)
    assert "3 from the spool" in out.stdout and "4 processed" in out.stdout
    items = items_of(zbx, HOST)
    want = {(v["clock"], v["ns"]) for v in spooled}
    got_master = wait_until(
        lambda: want <= {(int(r["clock"]), int(r["ns"])) for r in history(
            zbx, items["postfix.metrics"], min(c for c, _ in want))} and True, 30,
        "the spooled documents in history")
    assert got_master
    total = {(int(r["clock"]), int(r["ns"])) for r in history(
        zbx, items["postfix.queue.size[total]"], min(c for c, _ in want))}
    assert want <= total
    with StateDir(state_dir).locked(sender.spool_name(nodes), 2) as sf:
        assert sf.read(sender.SPOOL_KIND)["values"] == []


def test_rejected_values_exit_2_and_name_the_key(zbx, mailq, state_dir) -> None:
    out = send(zbx, mailq, state_dir, "no-such-host")
    assert out.returncode == 2, out.stdout
    assert "REJECTED 1 for no-such-host:postfix.metrics" in out.stdout


# -- 5b. several servers, HA nodes, TLS ---------------------------------------------------

def test_unreachable_second_server_exit_1_and_ha_node_failover(zbx, mailq, tmp_path) -> None:
    state = str(tmp_path / "state")
    down = "127.0.0.1:10153"       # nothing listens there
    both = send_args = ("send", "--host", HOST, "--config-dir", str(mailq.config_dir),
                        "--log-file", str(mailq.log_file), "--state-dir", state,
                        "--send-timeout", "2")
    out = cli(*both, "-z", f"{zbx.server_addr},{down}")
    assert out.returncode == 1, out.stdout
    assert f"{zbx.server_addr}: 1 processed" in out.stdout
    assert f"{down}: 0 processed, UNREACHABLE" in out.stdout
    # the reachable server's values are not kept; the other's are
    with StateDir(state).locked(sender.spool_name([zbx.server_addr]), 2) as sf:
        assert (sf.read(sender.SPOOL_KIND) or {}).get("values", []) == []
    with StateDir(state).locked(sender.spool_name([down]), 2) as sf:
        assert len(sf.read(sender.SPOOL_KIND)["values"]) == 1
    # an HA cluster whose first node is down: the second takes the values
    out = cli(*send_args, "-z", f"{down};{zbx.server_addr}")
    assert out.returncode == 0, out.stdout
    assert f"{down};{zbx.server_addr}: 1 processed" in out.stdout


def _tls_host(zbx, host: str, **tls) -> None:
    """Deploy ``host`` and set what the server accepts from it (host.update's tls_* fields)."""
    out = cli("deploy", "--url", zbx.url, "--user", "Admin", "--password", "zabbix",
              "--host", host)
    assert out.returncode == 0, out.stdout
    hostid = zbx.api("host.get", {"filter": {"host": [host]}, "output": ["hostid"]})[0]["hostid"]
    zbx.api("host.update", {"hostid": hostid, **tls})
    time.sleep(3)       # CacheUpdateFrequency=2: until then the server has the old settings


def _send_with_agent_config(zbx, mailq, tmp_path, host: str, tls_lines: list[str]):
    """Send with ServerActive, Hostname and ``tls_lines`` from an agent config until the server
    takes the values; (the send arguments, the config, the output, the host's items)."""
    conf = tmp_path / "zabbix_agentd.conf"
    conf.write_text("\n".join([f"ServerActive={zbx.server_addr}", f"Hostname={host}",
                               *tls_lines, ""]))
    args = ("send", "--config", str(conf), "--config-dir", str(mailq.config_dir),
            "--log-file", str(mailq.log_file), "--state-dir", str(tmp_path / "state"),
            "--send-timeout", "3")
    out = wait_until(lambda: (r := cli(*args)).returncode == 0 and r, 30,
                     f"the server to take values from {host} over TLS", step=1)
    # (a retry sends a failed attempt's value from the spool first)
    assert out.stdout.startswith(f"host {host}: {zbx.server_addr}: "), out.stdout
    assert " processed" in out.stdout and "UNREACHABLE" not in out.stdout, out.stdout
    items = wait_until(lambda: (i := items_of(zbx, host))["postfix.queue.size[total]"][
        "lastclock"] != "0" and i, 30, f"the values of {host}")
    assert items["postfix.queue.size[total]"]["lastvalue"] == str(MESSAGES)
    return args, conf, out


def test_ok_tls_certificate_from_the_agent_config(zbx, mailq, tmp_path) -> None:
    c = zbx.certs
    _tls_host(zbx, "mail-tls", tls_accept=4, tls_issuer="CN=zlab CA",   # certificate only
              tls_subject="CN=mail-tls,O=zlab")
    args, conf, out = _send_with_agent_config(zbx, mailq, tmp_path, "mail-tls", [
        "TLSConnect=cert", f"TLSCAFile={c['ca.crt']}", f"TLSCertFile={c['agent.crt']}",
        f"TLSKeyFile={c['agent.key']}", "TLSServerCertIssuer=CN=zlab CA",
        "TLSServerCertSubject=CN=Zabbix server,O=zlab"])
    # a refused attempt is rejected (not spooled), so the first good run sends exactly one
    assert out.stdout.startswith(f"host mail-tls: {zbx.server_addr}: 1 processed"), out.stdout
    # the same host refuses an unencrypted sender ...
    plain = cli("send", "-z", zbx.server_addr, "--host", "mail-tls", "--config-dir",
                str(mailq.config_dir), "--log-file", str(mailq.log_file), "--state-dir",
                str(tmp_path / "state"), "--send-timeout", "3")
    assert plain.returncode == 2 and "REJECTED 1 for mail-tls:postfix.metrics" in plain.stdout
    # ... and the sender refuses a server whose certificate subject is not the configured one
    conf.write_text(conf.read_text().replace("CN=Zabbix server,O=zlab", "CN=someone else"))
    wrong = cli(*args)
    assert wrong.returncode == 1 and "subject is not 'CN=someone else'" in wrong.stdout


def test_ok_tls_psk_from_the_agent_config(zbx, mailq, tmp_path) -> None:
    if sys.version_info < (3, 13):      # the stdlib has PSK from 3.13 on (sender._psk_wrapper)
        pytest.importorskip("sslpsk3", reason="PSK on Python < 3.13 needs sslpsk3 "
                            "(make test installs it)")
    identity, key = "pqm-test-psk", os.urandom(32).hex()
    _tls_host(zbx, "mail-psk", tls_accept=2, tls_psk_identity=identity, tls_psk=key)  # PSK only
    psk = tmp_path / "sender.psk"
    psk.write_text(key + "\n")
    psk.chmod(0o600)
    args, _, _ = _send_with_agent_config(zbx, mailq, tmp_path, "mail-psk", [
        "TLSConnect=psk", f"TLSPSKIdentity={identity}", f"TLSPSKFile={psk}"])
    # a wrong key fails the handshake: unreachable (exit 1, spooled), not a traceback
    psk.write_text(os.urandom(32).hex() + "\n")
    wrong = cli(*args)
    assert wrong.returncode == 1, wrong.stdout
    assert "Traceback" not in wrong.stdout + wrong.stderr
    assert "kept in the spool" in wrong.stdout, wrong.stdout


# -- 6. the agent path: zabbix_agentd with our UserParameter, zabbix_get --------------------

@pytest.fixture(scope="session")
def agent(mailq, daemon_venv):
    """zabbix_agentd as the zabbix user (as in production), running the shipped UserParameter
    lines from a venv zabbix can execute, on the lab instance it may list."""
    if not shutil.which("zabbix_agentd") or not shutil.which("zabbix_get"):
        pytest.skip("zabbix_agentd / zabbix_get missing (zabbix-agent, zabbix-server-pgsql)")
    d = nagios_lab.public_tempdir("pqm-agent-")
    prog = daemon_venv / "postfix_queue_zabbix"
    shipped = (TEMPLATES / "userparameter_postfix_queue.conf").read_text()
    # the shipped lines, with this venv's program, the lab instance and a private state dir
    conf_lines = []
    for line in shipped.splitlines():
        if line.startswith("UserParameter="):
            line = line.replace("/opt/postfix-queue-monitor/bin/postfix_queue_zabbix", str(prog))
            if line.startswith(("UserParameter=postfix.metrics,",
                                "UserParameter=postfix.instance.metrics")):
                line += f" --state-dir {d / 'state'}"
            if line.startswith("UserParameter=postfix.metrics,"):
                line += f" --config-dir {mailq.config_dir} --log-file {mailq.log_file}"
            conf_lines.append(line)
    (d / "userparameter_postfix_queue.conf").write_text("\n".join(conf_lines) + "\n")
    (d / "zabbix_agentd.conf").write_text("\n".join([
        f"PidFile={d / 'agentd.pid'}", f"LogFile={d / 'agentd.log'}", "LogFileSize=0",
        "Server=127.0.0.1", "ServerActive=", "ListenIP=127.0.0.1", f"ListenPort={AGENT_PORT}",
        "Hostname=mail-agent", "StartAgents=2", "Timeout=15", "User=zabbix",
        f"Include={d / 'userparameter_postfix_queue.conf'}", ""]))
    shutil.chown(d, "zabbix", "zabbix")
    os.chmod(mailq.log_file, 0o644)   # as group adm would give on a real host
    with mailq.allow_unprivileged_listing():
        proc = subprocess.Popen(["zabbix_agentd", "-f", "-c", str(d / "zabbix_agentd.conf")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            wait_until(lambda: labproc.port_open(AGENT_PORT), 15,
                       "zabbix_agentd to listen", step=0.2)
            yield d
        finally:
            labproc.stop_group(proc)
            shutil.rmtree(d, ignore_errors=True)


def zabbix_get(key: str) -> str:
    out = subprocess.run(["zabbix_get", "-s", "127.0.0.1", "-p", str(AGENT_PORT), "-t", "20",
                          "-k", key], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_ok_agent_userparameter_through_zabbix_get(agent, mailq) -> None:
    doc = json.loads(zabbix_get("postfix.metrics"))
    users = subprocess.run(["ps", "-o", "user=", "-C", "zabbix_agentd"], capture_output=True,
                           text=True).stdout.split()
    assert users and set(users) == {"zabbix"}, users
    queue, _, _ = perfdata("check_postfix_queue", "--config-dir", str(mailq.config_dir))
    for label, value in queue.items():
        assert metrics.get_path(doc, metrics.BY_LABEL[label].path) == value, label
    inst = json.loads(zabbix_get(f"postfix.instance.metrics[{mailq.config_dir}]"))
    assert inst["queue"]["total"]["messages"] == MESSAGES
    # discovery: what the real postmulti -l lists besides the default instance, this lab and
    # another suite's lab of the same name among them (other labs may come and go meanwhile:
    # the list before or after); the names differ (two suites once both registered postfix-zbx)
    other = postfix_lab.Lab(name="zbx")
    try:
        with mailq.as_postmulti_instance() as name, \
                other.setup().as_postmulti_instance() as other_name:
            before = postmulti_listed()
            got = json.loads(zabbix_get("postfix.instances"))
            expected = [[{"{#INSTANCE}": row[0], "{#CONFIG_DIR}": row[3]} for row in rows
                         if row[0] != "-"] for rows in (before, postmulti_listed())]
    finally:
        other.destroy()
    assert name != other_name
    assert {"{#INSTANCE}": name, "{#CONFIG_DIR}": str(mailq.config_dir)} in got, got
    assert {"{#INSTANCE}": other_name, "{#CONFIG_DIR}": str(other.config_dir)} in got, got
    assert got in expected, (got, expected)


def test_ok_agent_template_items_polled_by_the_server(zbx, agent) -> None:
    out = cli("deploy", "--url", zbx.url, "--user", "Admin", "--password", "zabbix",
              "--host", "mail-agent", "--agent", "--agent-address", f"127.0.0.1:{AGENT_PORT}")
    assert out.returncode == 0, out.stdout
    time.sleep(3)
    master = items_of(zbx, "mail-agent")["postfix.metrics"]
    zbx.api("task.create", [{"type": 6, "request": {"itemid": master["itemid"]}}])
    items = wait_until(lambda: (i := items_of(zbx, "mail-agent"))["postfix.queue.size[total]"][
        "lastclock"] != "0" and i, 60, "the agent's values")
    assert items["postfix.queue.size[total]"]["lastvalue"] == str(MESSAGES)
    assert {k: r["error"] for k, r in items.items() if r["state"] != "0"} == {}


# -- 7. discovery of instances (send --instances) -------------------------------------------

def test_ok_discovered_instance_gets_its_items(zbx, mailq, tmp_path) -> None:
    with mailq.as_postmulti_instance() as name:
        assert name.startswith("postfix-zbx-")
        assert [name, "mta", "y", str(mailq.config_dir)] in postmulti_listed()
        _discovered_instance(zbx, mailq, tmp_path, name)


def _discovered_instance(zbx, mailq, tmp_path, name: str) -> None:
    host = "mail-multi"
    out = cli("deploy", "--url", zbx.url, "--user", "Admin", "--password", "zabbix",
              "--host", host)
    assert out.returncode == 0, out.stdout
    state = str(tmp_path / "state")
    args = ("--instances",)     # the real postmulti -l, which lists the lab as an instance
    time.sleep(3)
    # the first run creates the items (LLD); its instance value may arrive before they exist
    first = send(zbx, mailq, state, host, *args)
    assert first.returncode in (0, 2), first.stdout
    key = f"postfix.queue.size[{name},deferred]"
    wait_until(lambda: key in items_of(zbx, host), 30, "the discovered items")
    time.sleep(3)
    again = wait_until(lambda: (r := send(zbx, mailq, state, host, *args)).returncode == 0
                       and r, 30, "the discovered items to take values", step=1)
    assert "3 processed" in again.stdout
    items = wait_until(lambda: (i := items_of(zbx, host))[key]["lastclock"] != "0" and i, 30,
                       "a value in the discovered item")
    assert items[key]["lastvalue"] == str(MESSAGES)
    assert f"postfix.queue.oldest_age[{name}]" in items
    assert {k: r["error"] for k, r in items.items() if r["state"] != "0"} == {}


# -- 8. last: the no-data trigger fires once sending stops ----------------------------------

def test_problem_nodata_when_sending_stops(zbx, mailq, state_dir) -> None:
    name = "Postfix: no metrics received"
    items = items_of(zbx, HOST)
    last = int(items["postfix.metrics"]["lastclock"])
    wait_until(lambda: trigger_value(zbx, HOST, name) == 1, 120, "the nodata trigger", step=2)
    trig = zbx.api("trigger.get", {"host": HOST, "output": ["description", "lastchange"],
                                   "search": {"description": name}})
    assert int(trig[0]["lastchange"]) - last >= 30
    # and the other triggers depend on it
    deps = zbx.api("trigger.get", {"host": HOST, "output": ["description"],
                                   "selectDependencies": ["description"],
                                   "expandDescription": True})
    for t in deps:
        if not t["description"].startswith(name):
            assert any(d["description"].startswith(name) for d in t["dependencies"]), t
    assert send(zbx, mailq, state_dir).returncode == 0
    wait_until(lambda: trigger_value(zbx, HOST, name) == 0, 30, "nodata to recover")
