"""icinga_director/postfix-queue-monitor.json is the generator's output (drift test), and the
basket follows the parsers like nagios_configs/: a new option becomes an argument and a data
field by itself; the options every check takes share one field."""

from __future__ import annotations

import json
from pathlib import Path

from postfix_queue_monitor import check_registry, director_basket, nagios_gen
from postfix_queue_monitor.cli import check_parser

ROOT = Path(__file__).resolve().parents[2]
BASKET = ROOT / director_basket.DEFAULT_FILE


def test_ok_committed_basket_matches_the_generator():
    assert BASKET.read_text() == director_basket.render(), (
        f"{director_basket.DEFAULT_FILE} differs from the generator's output: run "
        "`python -m postfix_queue_monitor.director_basket` and commit the result")


def test_ok_check_mode_agrees(tmp_path):
    assert director_basket.main([str(BASKET), "--check"]) == 0
    out = tmp_path / "b.json"
    assert director_basket.main([str(out)]) == 0
    out.write_text("{}\n")
    assert director_basket.main([str(out), "--check"]) == 1


def test_ok_every_check_has_a_command_and_a_service_template():
    checks, _ = nagios_gen.load_checks()
    data = json.loads(director_basket.render())
    assert sorted(data["Command"]) == sorted(c.icinga for c in checks)
    assert sorted(data["ServiceTemplate"]) == sorted(c.spec.service for c in checks)
    for c in checks:
        cmd = data["Command"][c.icinga]
        field_vars = {data["Datafield"][str(f["datafield_id"])]["varname"]
                      for f in cmd["fields"]}
        assert field_vars == {c.var(o) for o in c.options}


def test_ok_new_options_appear_by_themselves():
    p = check_parser("check_postfix_fake", "A fake check.", state=True)
    p.add_argument("--domain", metavar="DOMAIN", action="append", help="only DOMAIN")
    p.add_argument("--journal", action="store_true", help="read journald")
    spec = check_registry.BY_KEY["queue"]._replace(program="check_postfix_fake", module="fake",
                                                   var="fake", service="Fake")
    fake = nagios_gen.introspect(p, spec)
    checks, _ = nagios_gen.load_checks()
    data = director_basket.basket([*checks, fake])
    args = data["Command"]["postfix_fake"]["arguments"]
    assert args["--domain"]["value"] == "$postfix_queue_fake_domain$"
    assert args["--domain"]["repeat_key"] == "y"
    assert args["--journal"]["set_if"] == "$postfix_queue_fake_journal$"
    kinds = {f["varname"]: f["datatype"].rsplit("DataType", 1)[1]
             for f in data["Datafield"].values()}
    assert kinds["postfix_queue_fake_domain"] == "Array"
    assert kinds["postfix_queue_fake_journal"] == "Boolean"
    # one field for an option every check takes, linked from every command
    assert list(kinds).count("postfix_queue_config_dir") == 1
    assert len(kinds) == len(set(kinds))
