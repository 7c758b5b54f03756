"""Each check's perfdata labels, as it prints them when run, are its labels in the metric
registry; the generated Nagios and Icinga files and the Zabbix templates name the same checks,
labels and keys (the committed files are the generator's output: test_nagios_gen,
test_zabbix_template)."""

from __future__ import annotations

import importlib
import re
import time
from pathlib import Path

import pytest
import yaml

from fakes import fake_postqueue
from postfix_queue_monitor import check_registry, metrics

ROOT = Path(__file__).resolve().parents[2]
NOW = 1795966800.0  # one hour after the fixture's messages arrived


def _log(path: Path, now: float) -> None:
    stamp = time.strftime("%b %e %H:%M:%S", time.localtime(now - 120)).encode()
    lines = [stamp + b" vm postfix/smtp[1]: Q%d: to=<u@d.example>, relay=x, delay=1, "
             b"delays=1/0/0/0, dsn=%s, status=%s (%s)\n" % (i, dsn, st, text)
             for i, (dsn, st, text) in enumerate([(b"2.0.0", b"sent", b"250 ok")] * 20 + [
                 (b"5.1.1", b"bounced", b"550 5.1.1 no such user"),
                 (b"4.4.1", b"deferred", b"connect to x: Connection refused")])]
    path.write_bytes(b"".join(lines))


def emitted(check: check_registry.Check, tmp_path: Path, fixtures: Path, run_main) -> tuple:
    """Run a check in-process so that every metric it has is measured; its first line and
    perfdata labels."""
    main = importlib.import_module(f"postfix_queue_monitor.plugins.{check.module}").main
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    state = ["--state-dir", str(tmp_path / "state")]
    if check.key == "bounce":
        _log(tmp_path / "mail.log", NOW)
        argv, clock = ["--log-file", str(tmp_path / "mail.log"), *state], NOW
    elif check.key == "growth":             # the rate needs a baseline: a first run before
        run_main(main, ["--postqueue", pq, *state], NOW - 600)
        argv, clock = ["--postqueue", pq, *state], NOW
    else:
        argv, clock = ["--postqueue", pq], NOW
    result = run_main(main, argv, clock)
    assert result.code == 0, result.out
    return result.first, set(result.perfdata)


@pytest.mark.parametrize("check", check_registry.CHECKS, ids=lambda c: c.key)
def test_labels_run_are_the_registry_labels(check, tmp_path, fixtures, run_main) -> None:
    first, labels = emitted(check, tmp_path, fixtures, run_main)
    assert first.startswith(f"{check.status} OK - "), first
    assert labels == {m.label for m in metrics.for_check(check.key)}


def test_growth_carries_the_deferred_count_as_the_queue_check_does() -> None:
    growth = [m.label for m in metrics.for_check("growth")]
    assert growth == ["deferred_growth_per_hour", "queue_deferred"]
    assert "queue_deferred" in [m.label for m in metrics.for_check("queue")]


@pytest.mark.parametrize("check", check_registry.CHECKS, ids=lambda c: c.key)
def test_generated_nagios_and_icinga_files_name_the_same(check, tmp_path, fixtures,
                                                         run_main) -> None:
    _, labels = emitted(check, tmp_path, fixtures, run_main)
    commands = (ROOT / "nagios_configs" / "commands.cfg").read_text()
    block = commands[commands.index(f"# {check.program}: "):]
    block = block[:block.index("define command")]
    listed = re.search(r"^# perfdata: (.*)$", block, re.M)
    assert listed and set(listed[1].split()) == labels
    assert f"command_name    {check.program}\n" in commands
    services = (ROOT / "nagios_configs" / "services.cfg").read_text()
    assert f"service_description     {check.service}\n" in services
    assert f"check_command           {check.program}!{check.warning}!{check.critical}!" \
           in services
    nrpe = (ROOT / "nagios_configs" / "nrpe.cfg").read_text()
    assert f"command[{check.program}]=" in nrpe
    icinga = (ROOT / "nagios_configs" / "postfix-queue.conf").read_text()
    assert f'object CheckCommand "{check_registry.icinga_command(check)}"' in icinga
    assert f'apply Service "{check.service}"' in icinga
    assert f'vars.postfix_queue_{check.var}_warning = "{check.warning}"' in icinga


@pytest.mark.parametrize("kind", ["trapper", "agent"])
def test_zabbix_templates_carry_every_label_and_macro(kind) -> None:
    doc = yaml.safe_load((ROOT / "zabbix_templates" / f"postfix_queue_{kind}.yaml").read_text())
    (template,) = doc["zabbix_export"]["templates"]
    keys = {item["key"] for item in template["items"]}
    macros = {m["macro"]: m["value"] for m in template["macros"]}
    for check in check_registry.CHECKS:
        for m in metrics.for_check(check.key):
            assert m.key in keys, (check.key, m.label, m.key)
        assert macros[f"{{$POSTFIX.{check.macro}.WARN}}"] == check.warning
        assert macros[f"{{$POSTFIX.{check.macro}.CRIT}}"] == check.critical
    assert macros["{$POSTFIX.BOUNCE.MIN_DELIVERIES}"] == str(
        check_registry.BY_KEY["bounce"].min_deliveries)
