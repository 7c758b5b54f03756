"""The Debian package's configuration files come from the generators with the package's paths
(dist_files), and its version is the project's."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from postfix_queue_monitor import __version__, dist_files, nagios_gen

ROOT = Path(__file__).resolve().parents[2]
#: The sdist leaves debian/ out (MANIFEST.in) and has no git history: the tests of the Debian
#: package's sources, and the one building an sdist from git's files, run in the git tree.
needs_git_tree = pytest.mark.skipif(
    not (ROOT / "debian").is_dir() or not (ROOT / ".git").exists(),
    reason="not a git checkout with debian/ (an unpacked sdist): run in the git tree")


def test_ok_package_files_carry_package_paths_only():
    files = dist_files.render(ROOT)
    for rel, text in files.items():
        assert nagios_gen.PREFIX not in text, f"{rel} still names {nagios_gen.PREFIX}"
    nrpe = files[f"{dist_files.SHARE}/nrpe/{dist_files.NAME}.cfg"]
    checks, _ = nagios_gen.load_checks()
    assert re.findall(r"^command\[[^\]]+\]=(\S+)", nrpe, re.M) == [
        f"/usr/lib/nagios/plugins/{c.prog}" for c in checks]
    for rel in (f"{dist_files.SHARE}/zabbix/userparameter_postfix_queue.conf",
                f"{dist_files.SYSTEMD}/postfix-queue-zabbix.service",
                f"{dist_files.SHARE}/zabbix/postfix-queue-zabbix.cron"):
        assert "/usr/bin/postfix_queue_zabbix " in files[rel], rel
    for rel, text in files.items():
        if dist_files.is_unit(rel):
            assert "/etc/systemd/system, then" not in text, rel      # the package installs them
    assert dist_files._UNIT_NOTE in files[f"{dist_files.SYSTEMD}/postfix-queue-zabbix.service"]


def test_ok_package_files_differ_from_nagios_configs_only_in_paths():
    """Same generator: with the layout's words put back, the package's Nagios commands are
    nagios_configs/commands.cfg byte for byte; the Icinga files split postfix-queue.conf."""
    files = dist_files.render(ROOT)
    cmds = files[dist_files.NAGIOS_COMMANDS].replace(nagios_gen.DEBIAN.how, nagios_gen.VENV.how)
    assert cmds == (ROOT / "nagios_configs/commands.cfg").read_text()
    contrib = files[dist_files.ICINGA_COMMANDS]
    services = files[f"{dist_files.SHARE}/icinga2/services.conf"]
    assert "apply Service" not in contrib and "object CheckCommand" in contrib
    assert "object CheckCommand" not in services and "apply Service" in services
    both = (ROOT / "nagios_configs/postfix-queue.conf").read_text()
    assert both.endswith(nagios_gen.icinga_commands(nagios_gen.load_checks()[0])
                         + services.split(" */\n", 1)[1])


def test_ok_every_zabbix_file_is_shipped():
    files = dist_files.render(ROOT)
    names = {p.name for p in (ROOT / "zabbix_templates").iterdir()}
    shipped = {Path(rel).name for rel in files}
    assert names <= shipped
    assert files[f"{dist_files.SHARE}/zabbix/postfix_queue_agent.yaml"] == (
        ROOT / "zabbix_templates/postfix_queue_agent.yaml").read_text()


def test_ok_every_prometheus_file_is_shipped():
    """prometheus/ of this tree (not a copy): rules as committed, units and cron job with the
    package's console script."""
    files = dist_files.render(ROOT)
    for path in (ROOT / "prometheus").iterdir():
        # where a package puts it, said here (not with dist_files.is_unit, the code under test)
        rel = (f"lib/systemd/system/{path.name}" if path.suffix in (".service", ".timer")
               else f"usr/share/postfix-queue-monitor/prometheus/{path.name}")
        assert rel in files, f"prometheus/{path.name} is not in the package"
        if path.name.endswith(".yml"):
            assert files[rel] == path.read_text(), rel
        elif path.name.endswith((".service", ".cron")):
            assert "/usr/bin/postfix_queue_prometheus " in files[rel], rel
    assert "lib/systemd/system/postfix-queue-prometheus.timer" in files


def test_unknown_changed_static_file_fails_instead_of_shipping_a_stale_path():
    with pytest.raises(ValueError, match="update dist_files.RELOCATE"):
        dist_files.relocate("userparameter_postfix_queue.conf", "UserParameter=x,/else\n")


def test_ok_a_new_static_directory_file_and_unit_ship_by_themselves(tmp_path):
    shutil.copytree(ROOT / "zabbix_templates", tmp_path / "zabbix_templates")
    (tmp_path / "prometheus").mkdir()
    (tmp_path / "prometheus/x.rules.yml").write_text("groups: []\n")
    (tmp_path / "prometheus/x.service").write_text(
        "# Sends x. Copy to /etc/systemd/system, then: systemctl enable --now x.timer\n"
        f"ExecStart={nagios_gen.PREFIX}/bin/postfix_queue_x run\n")
    files = dist_files.render(tmp_path)
    assert files[f"{dist_files.SHARE}/prometheus/x.rules.yml"] == "groups: []\n"
    assert files[f"{dist_files.SYSTEMD}/x.service"] == (
        f"# Sends x. {dist_files._UNIT_NOTE[2:]} systemctl enable --now x.timer\n"
        "ExecStart=/usr/bin/postfix_queue_x run\n")


@needs_git_tree
def test_ok_one_version_everywhere():
    changelog = (ROOT / "debian/changelog").read_text().splitlines()[0]
    assert re.match(rf"postfix-queue-monitor \({re.escape(__version__)}-\d+\) ", changelog)
    assert f"\n## {__version__} " in (ROOT / "CHANGELOG.md").read_text()
    assert 'dynamic = ["version"]' in (ROOT / "pyproject.toml").read_text()


@needs_git_tree
def test_the_sdist_carries_the_mit_real_log_and_not_the_agpl_ones(tmp_path):
    """The project is MIT: the AGPL-3.0-only real logs (and the rsyslog captures made from one,
    and the AGPL text) stay in git, out of the sdist (MANIFEST.in); the MIT one, its licence
    text (with the source's copyright line) and the sources list go in."""
    import subprocess
    import sys
    import tarfile
    res = subprocess.run([sys.executable, "-m", "build", "-q", "--sdist", "-o", str(tmp_path),
                          str(ROOT)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    (sdist,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
        logs = sorted(n.split("realworld-logs/", 1)[1] for n in names
                      if "/tests/fixtures/realworld-logs/" in n)
        (mit,) = [n for n in names if n.endswith("realworld-logs/LICENSES/MIT.txt")]
        member = tar.extractfile(mit)
        assert member is not None
        mit_text = member.read().decode()
    assert logs == ["LICENSES/MIT.txt", "SOURCES.md", "infohtreasure-maillog.gz"], logs
    # every generated config and template the package ships, and what the unit tests import
    tops = {n.split("/", 2)[1] for n in names if n.count("/") >= 2}
    wanted = {"nagios_configs", "icinga_director", "docs", "tests", "tools", "benchmarks",
              *dist_files.STATIC_DIRS}
    assert sorted(wanted - tops) == []
    assert [n for n in names if n.endswith("/benchmarks/harness.py")]
    # the reason classifier's generated fallback model and its generator (docs/reasons.md)
    assert [n for n in names if n.endswith("/checks/postfix_queue_monitor/reason_model.py")]
    assert [n for n in names if n.endswith("/tools/reason_model_gen.py")]
    assert not [n for n in names if "AGPL" in n or "lightmeter" in n or "rsyslog-8" in n]
    # the source repository's LICENSE as it is (git blob 03e38f5c), its holder's line first
    assert mit_text == (ROOT / "tests/fixtures/realworld-logs/LICENSES/MIT.txt").read_text()
    assert mit_text.startswith("MIT License\n\nCopyright (c) 2022 Hideen Treasures\n")
    assert "The above copyright notice and this permission notice shall be included" in mit_text
    assert (ROOT / "tests/fixtures/realworld-logs/LICENSES/AGPL-3.0-only.txt").exists()
    assert (ROOT / "tests/fixtures/realworld-logs/lightmeter-mail.log.1.gz").exists()


def installed_docs(entries: list[str]) -> set[str]:
    """What dh_installdocs puts under /usr/share/doc/<package>/ for debian/docs' entries: a file
    by its base name, a directory by its base name with everything under it."""
    out = set()
    for entry in entries:
        path = ROOT / entry
        if path.is_dir():
            out |= {f"{path.name}/{p.relative_to(path)}" for p in path.rglob("*") if p.is_file()}
        else:
            out.add(path.name)
    return out


@needs_git_tree
def test_ok_the_package_has_every_doc_the_readme_and_the_messages_name():
    """The installed README links docs/*.md, and a check's UNKNOWN line can say "see
    docs/log-formats.md": those paths must exist beside the README in /usr/share/doc (a flat
    docs/packaging.md entry would install packaging.md, and the link would lead nowhere)."""
    entries = (ROOT / "debian/docs").read_text().split()
    shipped = installed_docs(entries)
    assert "README.md" in shipped
    named = set(re.findall(r"\]\((docs/[\w.-]+\.md)\)", (ROOT / "README.md").read_text()))
    for src in (ROOT / "checks/postfix_queue_monitor").rglob("*.py"):
        named |= set(re.findall(r"(docs/[\w.-]+\.md)\"", src.read_text()))
    assert "docs/log-formats.md" in named and "docs/reference.md" in named
    named |= {f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")}
    assert sorted(named - shipped) == []


@needs_git_tree
def test_ok_readme_and_package_description_name_every_tool_the_package_installs():
    """The README's "Debian 12 package" section and debian/control's Description are what an
    admin reads before installing: each names every console script put on PATH (before:
    postfix_queue_prometheus, in /usr/bin, was in neither)."""
    from importlib.metadata import distribution
    tools = sorted(ep.name for ep in distribution("postfix-queue-monitor").entry_points
                   if ep.group == "console_scripts" and not ep.name.startswith("check_"))
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Debian 12 package", 1)[1].split("\n### ", 1)[0]
    control = (ROOT / "debian/control").read_text().split("\nDescription:", 1)[1]
    assert "postfix_queue_prometheus" in tools
    assert [t for t in tools if f"`{t}`" not in section] == []
    assert [t for t in tools if t not in control] == []
