"""nagios_configs/ is the generator's output (drift test), and the generator follows the parsers:
a new option, flag or repeatable option appears by itself; thresholds come from one place."""

from __future__ import annotations

import re
from importlib.metadata import distribution
from pathlib import Path

import pytest

from postfix_queue_monitor import check_registry, nagios_gen
from postfix_queue_monitor.cli import check_parser

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "nagios_configs"
REGEN = "python -m postfix_queue_monitor.nagios_gen"


def test_ok_committed_nagios_configs_match_the_generator():
    files = nagios_gen.render()
    on_disk = {p.name for p in CONFIGS.iterdir() if p.is_file()}
    assert on_disk == set(files), (
        f"nagios_configs/ holds {sorted(on_disk)}, the generator makes {sorted(files)}: "
        f"run `{REGEN}` and commit")
    for name, text in files.items():
        assert (CONFIGS / name).read_text() == text, (
            f"nagios_configs/{name} differs from the generator's output: run `{REGEN}` "
            f"and commit the result (never edit the file by hand)")


def test_ok_generator_check_mode_agrees(tmp_path):
    assert nagios_gen.main([str(CONFIGS), "--check"]) == 0
    assert nagios_gen.main([str(tmp_path)]) == 0
    (tmp_path / "nrpe.cfg").write_text("# edited\n")
    assert nagios_gen.main([str(tmp_path), "--check"]) == 1


def test_ok_every_check_script_is_known_to_the_generator():
    scripts = {ep.name: ep.value for ep in distribution("postfix-queue-monitor").entry_points
               if ep.group == "console_scripts"}
    checks = {name: target.split(":")[0].rsplit(".", 1)[-1]
              for name, target in scripts.items() if name.startswith("check_")}
    assert sorted(checks.values()) == sorted(s.module for s in check_registry.CHECKS)
    assert sorted(checks) == sorted(s.program for s in check_registry.CHECKS)
    found, _missing = nagios_gen.load_checks()
    for c in found:
        assert checks[c.prog] == c.spec.module       # the parser's prog is the script's name


def test_ok_every_importable_check_is_generated():
    found, missing = nagios_gen.load_checks()
    files = nagios_gen.render()
    for c in found:
        assert f"command_name    {c.command}\n" in files["commands.cfg"]
        assert f"command[{c.command}]=" in files["nrpe.cfg"]
        assert f'object CheckCommand "{c.icinga}"' in files["postfix-queue.conf"]
        assert f"service_description     {c.spec.service}\n" in files["services.cfg"]
    assert set(missing) | {c.spec.module for c in found} == {
        s.module for s in check_registry.CHECKS}


def fake_check(extra) -> nagios_gen.Check:
    p = check_parser("check_postfix_fake", "A fake check.", state=True)
    extra(p)
    spec = check_registry.BY_KEY["queue"]._replace(program="check_postfix_fake", module="fake",
                                                   var="fake", service="Fake")
    return nagios_gen.introspect(p, spec)


def test_ok_new_options_appear_by_themselves():
    def extra(p):
        p.add_argument("--domain", metavar="DOMAIN", action="append", help="only DOMAIN")
        p.add_argument("--journal", action="store_true", help="read journald")
        p.add_argument("--min-deliveries", metavar="N", type=int, default=10,
                       help="at least N (default %(default)s)")
    c = fake_check(extra)
    conf = nagios_gen.icinga_conf([c])
    block = conf[conf.index('object CheckCommand "postfix_fake"'):]
    assert re.search(r'"--domain" = \{\n\t+value = "\$postfix_queue_fake_domain\$"\n'
                     r'\t+repeat_key = true\n', block)
    assert re.search(r'"--journal" = \{\n\t+set_if = "\$postfix_queue_fake_journal\$"', block)
    assert 'description = "at least N (default 10)"' in block
    # the reserved options share one variable across checks, so a host sets them once
    assert '"--config-dir" = {\n\t\t\tvalue = "$postfix_queue_config_dir$"' in block
    assert '"--state-dir" = {\n\t\t\tvalue = "$postfix_queue_state_dir$"' in block
    orders = [int(x) for x in re.findall(r"order = (\d+)", block)]
    assert orders == list(range(1, len(c.options) + 1))
    cmds = nagios_gen.nagios_commands([c])
    assert "#     --domain DOMAIN  only DOMAIN (repeatable)\n" in cmds
    assert "#     --journal  read journald\n" in cmds
    assert "-h" not in {f for o in c.options for f in o.flags}      # help/version left out


def test_ok_thresholds_come_from_the_check_registry(monkeypatch):
    queue = check_registry.BY_KEY["queue"]._replace(warning="123", critical="456")
    monkeypatch.setattr(check_registry, "CHECKS",
                        tuple(queue if c.key == "queue" else c for c in check_registry.CHECKS))
    found, _ = nagios_gen.load_checks(check_registry.CHECKS)
    files = nagios_gen.render(found)
    assert "/bin/check_postfix_queue -w 123 -c 456 -v --listing-max-age 60\n" in files["nrpe.cfg"]
    assert ("check_command           check_postfix_queue!123!456!-v --listing-max-age 60\n"
            in files["services.cfg"])
    assert 'vars.postfix_queue_size_warning = "123"' in files["postfix-queue.conf"]


@pytest.mark.parametrize("name", ["postfix-queue.conf"])
def test_ok_icinga_file_validates_next_to_the_itl_alone(name):
    text = (CONFIGS / name).read_text()
    assert not re.search(r"^\s*(const|object\s+(Zone|Endpoint|Host|ApiListener))\b", text, re.M)
    assert 'PluginDir + "/check_postfix_' in text


def test_ok_nagios_files_use_user1_and_nrpe_an_absolute_prefix():
    cmds = (CONFIGS / "commands.cfg").read_text()
    lines = re.findall(r"command_line\s+(\S+)", cmds)
    assert lines and all(x.startswith("$USER1$/check_") for x in lines)
    nrpe = (CONFIGS / "nrpe.cfg").read_text()
    assert f"Install prefix: {nagios_gen.PREFIX}" in nrpe
    for line in re.findall(r"^command\[[^\]]+\]=(\S+)", nrpe, re.M):
        assert line.startswith(f"{nagios_gen.PREFIX}/bin/check_postfix_")


def test_ok_shipped_queue_checks_share_one_listing():
    """Every shipped queue check takes --listing-max-age (one showq scan per interval); the
    bounce check reads the log, not the queue, and has no such option."""
    files = nagios_gen.render(nagios_gen.load_checks()[0])
    nrpe = files["nrpe.cfg"].splitlines()
    queue_lines = [ln for ln in nrpe if "check_postfix_" in ln and "bounce" not in ln
                   and ln.startswith("command[")]
    assert len(queue_lines) == 3 and all("--listing-max-age 60" in ln for ln in queue_lines)
    assert files["postfix-queue.conf"].count('vars.postfix_queue_listing_max_age = "60"') == 3
