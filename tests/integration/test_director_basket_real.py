"""icinga_director/postfix-queue-monitor.json restored into a real Icinga Director 1.10
(Debian's icingaweb2-module-director on a private PostgreSQL, tools/director_lab.py): every
Command, its arguments, custom variables and data fields as the checks' parsers define them, the
Service Templates, a second restore changing nothing, and the Icinga 2 configuration Director
renders from them validated by ``icinga2 daemon -C`` beside the package's CheckCommands (the
basket's Commands are external: Director renders none of them), with a host that gets every
service."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import director_lab
import nagios_lab
from postfix_queue_monitor import director_basket, dist_files, nagios_gen

ROOT = Path(__file__).resolve().parents[2]
BASKET = ROOT / director_basket.DEFAULT_FILE
CHECKS, _MISSING = nagios_gen.load_checks()

reason = director_lab.missing() or nagios_lab.available()
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")


@pytest.fixture(scope="module")
def director():
    with director_lab.DirectorLab() as lab:
        res = lab.cli("director", "basket", "restore", stdin=BASKET.read_text())
        assert "restored" in res.stdout, res.stdout + res.stderr
        yield lab


def counts(lab: director_lab.DirectorLab) -> tuple[str, str, str]:
    return (lab.psql("SELECT count(*) FROM director_datafield"),
            lab.psql("SELECT count(*) FROM icinga_command"),
            lab.psql("SELECT object_name, count(*) FROM icinga_command_field f JOIN "
                     "icinga_command c ON c.id = f.command_id GROUP BY 1 ORDER BY 1"))


def test_ok_director_has_every_command_with_its_arguments_and_fields(director):
    variables = {c.var(o) for c in CHECKS for o in c.options}
    fields, commands, links = counts(director)
    assert int(fields) == len(variables)
    assert int(commands) == len(CHECKS)
    assert links.split() == sorted(f"{c.icinga}|{len({c.var(o) for o in c.options})}"
                                   for c in CHECKS)
    for c in CHECKS:
        got = json.loads(director.cli("director", "command", "show", c.icinga, "--json").stdout)
        assert got["command"] == c.prog and got["methods_execute"] == "PluginCheck"
        assert got["object_type"] == "external_object"
        args = got["arguments"]
        assert set(args) == {o.long for o in c.options}
        for o in c.options:
            var = f"${c.var(o)}$"
            key = "set_if" if o.kind in ("flag", "count") else "value"
            assert args[o.long][key] == var, (c.icinga, o.long, args[o.long])
            assert args[o.long].get("repeat_key", False) is (o.kind == "append")
        w, cr = c.thresholds
        assert got["vars"] == {c.var(nagios_gen._find(c, "warning")): w,
                               c.var(nagios_gen._find(c, "critical")): cr}
        template = json.loads(director.cli("director", "service", "show", c.spec.service,
                                           "--json").stdout)
        assert template["object_type"] == "template" and template["check_command"] == c.icinga


def test_ok_a_second_restore_changes_nothing(director):
    before = counts(director)
    director.cli("director", "basket", "restore", stdin=BASKET.read_text())
    assert counts(director) == before


def test_ok_a_second_lab_runs_beside_the_first(director):
    """Each lab's PostgreSQL listens on a free port of its own, so a parallel suite or a
    left-over lab cannot take it (on the fixed 15433 this one's pg_ctl start failed)."""
    other = director_lab.DirectorLab()
    try:
        other._postgres()
        assert other.port != director.port
        assert other.psql("SHOW port", db="postgres").strip() == str(other.port)
    finally:
        other.stop()
    assert director.psql("SHOW port", db="postgres").strip() == str(director.port)


def test_ok_directors_rendered_config_validates_in_icinga2(director, base):
    package = base / "plugins-contrib.conf"      # what the package puts in plugins-contrib.d
    package.write_text(dist_files.render(ROOT)[dist_files.ICINGA_COMMANDS])
    rendered = [director.cli("director", "service", "show", c.spec.service).stdout
                for c in CHECKS]
    applies = "".join(f'apply Service "{c.spec.service}" {{\n  import "{c.spec.service}"\n'
                      '  assign where host.vars.postfix_queue_monitor\n}\n' for c in CHECKS)
    host = ('object Host "mail1" {\n  check_command = "dummy"\n  address = "127.0.0.1"\n'
            '  vars.postfix_queue_monitor = true\n}\n')
    conf = base / "director.conf"
    conf.write_text("\n".join(rendered) + applies + host)
    lab = nagios_lab.IcingaLab(base, [package, conf], Path("/usr/lib/nagios/plugins")).write()
    res = lab.validate()
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(rf"Instantiated {len(CHECKS)} Services?\.", res.stdout), res.stdout
