"""The Debian package as a user gets it: built by scripts/build-deb.sh from this tree, installed
with apt-get, its checks run as nagios against a real Postfix queue (by hand, by real Nagios and
NRPE daemons from the package's files, and by a real Icinga 2 through the ITL's
plugins-contrib), its Nagios commands validated beside Debian's stock
nagios4 configuration and its CheckCommands beside Debian's stock icinga2 configuration, then
purged: the file system (/etc, /usr, /var/lib) is as before, users and groups unchanged.

The tests run in file order and share one installation (module fixture); the last one purges.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from importlib.metadata import distribution
from pathlib import Path

import pytest

import nagios_lab
from postfix_queue_monitor import __version__, dist_files, nagios_gen

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "postfix-queue-monitor"
PLUGINS = Path("/usr/lib/nagios/plugins")
SHARE = Path("/usr/share/postfix-queue-monitor")
API_PORT = 15665
NRPE_PORT = 15666
CHECKS, _MISSING = nagios_gen.load_checks()
#: Scanned before install and after purge. dpkg's and apt's own records change by design.
SCANNED = ("/etc", "/usr", "/var/lib")
IGNORED = ("/var/lib/dpkg", "/var/lib/apt", "/var/cache")

reason = nagios_lab.available() or (
    None if shutil.which("dpkg-buildpackage") and shutil.which("lintian")
    else "dpkg-buildpackage/lintian missing (make deps installs them)")
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")


def snapshot() -> set[str]:
    """Every path under SCANNED. Bytecode caches outside our private directory are left out:
    any root python3 run on the machine may write them."""
    seen = set()
    for top in SCANNED:
        for d, dirs, files in os.walk(top):
            if d.startswith(IGNORED):
                dirs[:] = []
                continue
            for name in dirs + files:
                p = os.path.join(d, name)
                if "__pycache__" in p and not p.startswith("/usr/lib/postfix-queue-monitor"):
                    continue
                seen.add(p)
    return seen


def apt(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["flock", "/tmp/apt.lock", "apt-get", "-y", "-q", *argv],
                          capture_output=True, text=True, timeout=300, env=env)


def installed() -> bool:
    res = subprocess.run(["dpkg-query", "-W", "-f=${Status}", PACKAGE], capture_output=True,
                         text=True)
    return "installed" in res.stdout


def stock_counts() -> tuple[str, str]:
    """Debian's stock nagios4 and icinga2 configurations validated as they are."""
    nag = subprocess.run([nagios_lab.NAGIOS, "-v", "/etc/nagios4/nagios.cfg"],
                         capture_output=True, text=True, timeout=60)
    ici = subprocess.run(["icinga2", "daemon", "-C"], capture_output=True, text=True,
                         timeout=120)
    assert nag.returncode == 0 and "Total Errors:   0" in nag.stdout, nag.stdout
    assert ici.returncode == 0, ici.stdout + ici.stderr
    return nag.stdout, ici.stdout


def count(pattern: str, text: str) -> int:
    m = re.search(pattern, text)
    assert m, f"{pattern!r} not in output"
    return int(m[1])


@pytest.fixture(scope="module")
def package(tmp_path_factory, postfix, pki):
    """Build, record the machine, install; yields what the tests compare against. The session's
    Postfix lab and PKI are made first, so that the snapshot already has them."""
    if os.geteuid() != 0:
        pytest.skip("not root: cannot install a package")
    if installed():
        pytest.fail(f"{PACKAGE} is already installed: purge it first (the test must see "
                    "the machine without it)")
    out = tmp_path_factory.mktemp("deb")
    res = subprocess.run([str(ROOT / "scripts/build-deb.sh"), str(out)], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr       # includes lintian's verdict
    deb = out / f"{PACKAGE}_{__version__}-1_all.deb"
    before = snapshot()
    users = Path("/etc/passwd").read_text(), Path("/etc/group").read_text()
    stock = stock_counts()
    res = apt("install", "--no-install-recommends", str(deb))
    try:
        assert res.returncode == 0, res.stdout + res.stderr
        yield {"before": before, "users": users, "stock": stock, "deb": deb}
    finally:
        if installed():
            apt("purge", PACKAGE)


def test_ok_installed_layout_and_files_from_the_generators(package):
    scripts = [ep.name for ep in distribution(PACKAGE).entry_points
               if ep.group == "console_scripts"]
    for name in scripts:
        path = (PLUGINS if name.startswith("check_") else Path("/usr/bin")) / name
        assert os.access(path, os.X_OK), f"{path} missing"
        res = subprocess.run([str(path), "--version"], capture_output=True, text=True)
        assert res.stdout.strip() == f"{name} {__version__}", res.stdout + res.stderr
    conffiles = subprocess.run(["dpkg-query", "-W", "-f=${Conffiles}", PACKAGE],
                               capture_output=True, text=True).stdout
    assert f"/{dist_files.NAGIOS_COMMANDS} " in conffiles
    for rel, text in dist_files.render(ROOT).items():
        assert Path("/", rel).read_text() == text, f"/{rel} is not the generator's output"
    # the README's docs/*.md links and the checks' "see docs/log-formats.md" resolve beside it
    doc = Path("/usr/share/doc", PACKAGE)
    assert (doc / "README.md.gz").exists()
    for md in sorted((ROOT / "docs").glob("*.md")):
        assert {doc / "docs" / md.name, doc / "docs" / f"{md.name}.gz"} & {
            p for p in (doc / "docs").iterdir()}, f"docs/{md.name} is not installed"
    # ... but not the dashboard screenshot (debian/rules: dh_installdocs -X.png), which would
    # double the package's size: neither in the .deb nor on the disk
    assert (ROOT / "docs/zabbix-dashboard.png").is_file()
    listed = subprocess.run(["dpkg-deb", "--contents", str(package["deb"])], capture_output=True,
                            text=True, check=True).stdout
    paths = [ln.split()[5] for ln in listed.splitlines()]
    assert {f"./usr/share/doc/{PACKAGE}/docs/reference.md{gz}" for gz in ("", ".gz")} & set(
        paths), listed                                  # the listing is read: docs are there
    assert [p for p in paths if p.lower().endswith(".png")] == []
    assert not list(doc.rglob("*.png"))
    nrpe = (SHARE / "nrpe/postfix-queue-monitor.cfg").read_text()
    assert re.findall(r"=(\S+)", nrpe) == [f"{PLUGINS}/{c.prog}" for c in CHECKS]
    # every private library imports, as nagios, with nothing but Debian's python3 packages
    private = Path("/usr/lib/postfix-queue-monitor")
    tops = sorted({name for d in private.glob("*.dist-info")
                   for name in (d / "top_level.txt").read_text().split()})
    assert {"nagiosplugin", "zabbix_utils", "pyzabbix", "postfix_queue_monitor"} <= set(tops)
    # (and the reason classifier's fallback model is installed: a text no rule names, "426 Dns
    # resolve failure", is classified by it, docs/reasons.md)
    code = (f"import sys; sys.path.insert(0, {str(private)!r}); "
            + "; ".join(f"import {t}" for t in tops)
            + "; from postfix_queue_monitor import reasons"
            + "; assert reasons.rule_class('426 Dns resolve failure') is None"
            + "; assert reasons.classify('426 Dns resolve failure') == 'dns'"
            + "; print(sys.modules['nagiosplugin'].__file__)")
    res = nagios_lab.run_as_nagios(["/usr/bin/python3", "-I", "-c", code])
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode().startswith(str(private))      # never Debian's older one


def test_ok_installed_checks_run_as_nagios_on_the_real_queue(package, postfix, base):
    state = base / "state"
    state.mkdir(mode=0o700)
    nagios_lab.chown_tree(state)
    for c in CHECKS:
        w, cr = c.thresholds
        dests = {o.dest for o in c.options}
        argv = [str(PLUGINS / c.prog), "-w", w, "-c", cr]
        argv += ["--state-dir", str(state)] if "state_dir" in dests else []
        argv += (["--config-dir", str(postfix.config_dir)] if "config_dir" in dests
                 else ["--log-file", str(postfix.log_file)])
        res = nagios_lab.run_as_nagios(argv)
        out = res.stdout.decode()
        assert res.returncode == 0 and " OK - " in out.splitlines()[0], out + res.stderr.decode()
        assert b"Traceback" not in res.stderr
        if c.spec.key == "queue":
            w, cr = c.thresholds
            assert f"queue_total={nagios_lab.LAB_MESSAGES};{w};{cr};0" in out
    res = nagios_lab.run_as_nagios(["/usr/bin/postfix_queue_report", "--config-dir",
                                    str(postfix.config_dir)])
    assert res.returncode == 0 and nagios_lab.NON_ASCII_DOMAIN in res.stdout.decode()


def test_ok_nagios4_stock_config_loads_the_installed_commands(package, base):
    nag_before = package["stock"][0]
    nag, _ici = stock_counts()
    assert count(r"Checked (\d+) commands", nag) == (
        count(r"Checked (\d+) commands", nag_before) + len(CHECKS) + 1)   # + check_nrpe_postfix
    # and the example services, with a host in each of their host groups
    lines = Path("/etc/nagios4/nagios.cfg").read_text().splitlines()
    (base / "host.cfg").write_text(
        "define host {\n    use linux-server\n    host_name mail1\n    address 127.0.0.1\n"
        f"    hostgroups {nagios_gen.HOSTGROUP}\n}}\n"
        f"define host {{\n    use linux-server,{nagios_gen.NRPE_HOST_TEMPLATE}\n"
        "    host_name mail2\n    address 127.0.0.1\n}\n")
    lines += [f"cfg_file={SHARE / 'nagios/services.cfg'}", f"cfg_file={base / 'host.cfg'}"]
    (base / "nagios.cfg").write_text("\n".join(lines) + "\n")
    res = subprocess.run([nagios_lab.NAGIOS, "-v", str(base / "nagios.cfg")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "Total Errors:   0" in res.stdout, res.stdout
    assert count(r"Checked (\d+) services", res.stdout) == (
        count(r"Checked (\d+) services", nag_before) + 2 * len(CHECKS))


def test_ok_nagios_and_nrpe_daemons_run_the_installed_checks(package, postfix, base):
    """Nagios with the package's commands (its conffile) and example services, as nagios: the
    local services run /usr/lib/nagios/plugins/check_postfix_*, the NRPE ones go through a real
    NRPE that includes the package's NRPE file as it is."""
    state, nrpe_base = base / "state", base / "nrpe"
    state.mkdir()
    nrpe_base.mkdir()
    nagios_lab.chown_tree(state)
    env = {"MAIL_CONFIG": str(postfix.config_dir), "XDG_STATE_HOME": str(state)}
    links = {nagios_lab.MAIL_LOG: postfix.log_file}     # the bounce check's default log
    nrpe = nagios_lab.NrpeLab(nrpe_base, SHARE / "nrpe/postfix-queue-monitor.cfg", base,
                              NRPE_PORT, keep_env={**env, "XDG_STATE_HOME": str(nrpe_base)},
                              links=links).write()
    hosts = (nagios_lab.nagios_host("mail-local", nagios_gen.HOSTGROUP)
             + nagios_lab.nagios_host("mail-nrpe", use=nagios_gen.NRPE_HOST_TEMPLATE,
                                      custom={"NRPE_OPTIONS": f"-p {NRPE_PORT} -t 30"}))
    lab = nagios_lab.NagiosLab(base / "nagios", [Path("/", dist_files.NAGIOS_COMMANDS),
                                                 SHARE / "nagios/services.cfg"],
                               PLUGINS, hosts, env=env, links=links)
    lab.base.mkdir()
    lab.write()
    try:
        nrpe.start()
        lab.start()
        services = lab.wait_checked(2 * len(CHECKS), timeout=40)
    finally:
        lab.stop()
        nrpe.stop()
    assert len(services) == 2 * len(CHECKS)
    for s in services:
        assert s["current_state"] == "0" and " OK - " in s["plugin_output"], (
            s["host_name"], s["service_description"], s["plugin_output"])


def test_ok_icinga2_stock_config_and_a_daemon_run_the_installed_checks(package, postfix, pki,
                                                                        base):
    ici_before = package["stock"][1]
    _nag, ici = stock_counts()
    assert count(r"Instantiated (\d+) CheckCommands", ici) == (
        count(r"Instantiated (\d+) CheckCommands", ici_before) + len(CHECKS))
    state = base / "state"
    state.mkdir()
    extra = nagios_lab.icinga_mail_host(postfix, state)
    # the CheckCommands come from <plugins-contrib> (the package), only the services from us
    lab = nagios_lab.IcingaLab(base, [SHARE / "icinga2/services.conf"], PLUGINS, extra=extra,
                               api_port=API_PORT).write()
    try:
        lab.start(pki)
        lab.reschedule_all()
        results = lab.wait_checked(len(CHECKS), timeout=30)
    finally:
        lab.stop()
    for r in results:
        cr = r["attrs"]["last_check_result"]
        assert cr["exit_status"] == 0 and " OK - " in cr["output"], cr["output"]
        assert cr["command"][0].startswith(f"{PLUGINS}/check_postfix_")


def test_ok_purge_leaves_nothing_behind(package):
    spool = Path("/var/lib/postfix-queue-zabbix")    # as the shipped unit's StateDirectory=
    spool.mkdir(mode=0o700, exist_ok=True)
    (spool / "pending.json").write_text("{}\n")
    res = apt("purge", PACKAGE)
    assert res.returncode == 0, res.stdout + res.stderr
    assert not installed()
    after = snapshot()
    assert sorted(after - package["before"]) == []
    assert sorted(package["before"] - after) == []
    assert (Path("/etc/passwd").read_text(), Path("/etc/group").read_text()) == package["users"]
