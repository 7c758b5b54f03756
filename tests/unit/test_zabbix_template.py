"""The templates are generated from the registry; the committed files are that output."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
import yaml

from postfix_queue_monitor import metrics
from postfix_queue_monitor.zabbix import document, template

TEMPLATES = Path(__file__).resolve().parents[2] / "zabbix_templates"


@pytest.mark.parametrize("name", sorted(template.generated()))
def test_committed_file_equals_generator_output(name: str) -> None:
    committed = (TEMPLATES / name).read_text(encoding="utf-8")
    assert committed == template.generated()[name], (
        f"zabbix_templates/{name} differs from the generator: run "
        f"python -m postfix_queue_monitor.zabbix.template")


def test_every_yaml_is_a_6_0_export() -> None:
    files = sorted(TEMPLATES.glob("*.yaml")) + sorted(TEMPLATES.glob("*.yml"))
    assert len(files) == 2
    for path in files:
        doc = yaml.safe_load(path.read_text())
        assert doc["zabbix_export"]["version"] == "6.0"
        assert doc["zabbix_export"]["templates"][0]["groups"] == [{"name": template.GROUP}]


def _walk(node, found):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "uuid":
                found.append(v)
            _walk(v, found)
    elif isinstance(node, list):
        for v in node:
            _walk(v, found)
    return found


@pytest.mark.parametrize("kind", template.KINDS)
def test_uuids_are_v4_hex_unique_and_stable(kind: str) -> None:
    ids = _walk(template.build(kind), [])
    assert len(ids) > 100
    assert len(ids) == len(set(ids))
    for u in ids:
        assert re.fullmatch(r"[0-9a-f]{32}", u)
        assert uuid.UUID(hex=u).version == 4
    assert ids == _walk(template.build(kind), [])


def _items(kind: str) -> dict[str, dict]:
    tpl = template.build(kind)["zabbix_export"]["templates"][0]
    return {i["key"]: i for i in tpl["items"]}


@pytest.mark.parametrize("kind", template.KINDS)
def test_every_registry_key_is_a_dependent_item_with_its_path(kind: str) -> None:
    items = _items(kind)
    master = items[template.MASTER_KEY]
    assert master["type"] == ("TRAP" if kind == "trapper" else "ZABBIX_PASSIVE")
    assert master["value_type"] == "TEXT"
    for m in metrics.REGISTRY:
        item = items[m.key]
        assert item["type"] == "DEPENDENT"
        assert item["master_item"] == {"key": template.MASTER_KEY}
        step = item["preprocessing"][0]
        assert step["type"] == "JSONPATH" and step["parameters"] == [m.path]
        assert item.get("value_type", "UNSIGNED") == {"unsigned": "UNSIGNED",
                                                      "float": "FLOAT"}[m.value_type]
        if m.id in document.OPTIONAL:
            assert step["error_handler"] == "DISCARD_VALUE"
        else:
            assert "error_handler" not in step
    assert len(items) == len(document.ALL) + 1


def test_contract_key_forms() -> None:
    items = _items("trapper")
    for key in ("postfix.queue.size[total]", "postfix.queue.bytes[deferred]",
                "postfix.queue.oldest_age", "postfix.queue.oldest_age[hold]",
                "postfix.queue.deferred.growth", "postfix.queue.deferred.reason[rate_limited]",
                "postfix.delivery.count[expired]", "postfix.delivery.bounce_rate",
                "postfix.delivery.deferral_rate"):
        assert key in items
    rule = template.build("trapper")["zabbix_export"]["templates"][0]["discovery_rules"][0]
    protos = {p["key"] for p in rule["item_prototypes"]}
    assert "postfix.queue.size[{#INSTANCE},deferred]" in protos
    assert "postfix.queue.oldest_age[{#INSTANCE}]" in protos
    assert template.instance_key("postfix.queue.size[total]") == \
        "postfix.queue.size[{#INSTANCE},total]"


def test_macros_carry_the_contract_defaults() -> None:
    tpl = template.build("trapper")["zabbix_export"]["templates"][0]
    macros = {m["macro"]: m["value"] for m in tpl["macros"]}
    assert macros["{$POSTFIX.QUEUE.SIZE.WARN}"] == "500"
    assert macros["{$POSTFIX.QUEUE.SIZE.CRIT}"] == "2000"
    assert macros["{$POSTFIX.OLDEST.AGE.WARN}"] == "1h"
    assert macros["{$POSTFIX.OLDEST.AGE.CRIT}"] == "1d"
    assert macros["{$POSTFIX.DEFERRED.GROWTH.WARN}"] == "100"
    assert macros["{$POSTFIX.DEFERRED.GROWTH.CRIT}"] == "500"
    assert macros["{$POSTFIX.BOUNCE.RATE.WARN}"] == "5"
    assert macros["{$POSTFIX.BOUNCE.RATE.CRIT}"] == "15"
    assert macros["{$POSTFIX.BOUNCE.MIN_DELIVERIES}"] == "10"


def _triggers(kind: str) -> list[dict]:
    exp = template.build(kind)["zabbix_export"]
    tpl = exp["templates"][0]
    return [t for i in tpl["items"] for t in i.get("triggers", [])] + exp["triggers"]


@pytest.mark.parametrize("kind", template.KINDS)
def test_triggers_use_known_keys_macros_hysteresis_and_nodata(kind: str) -> None:
    name = template.TEMPLATE_NAMES[kind]
    keys = set(_items(kind))
    macros = {m[0] for m in template.MACROS}
    triggers = _triggers(kind)
    nodata = [t for t in triggers if t["expression"].startswith("nodata(")]
    assert len(nodata) == 1
    assert nodata[0]["expression"] == \
        f"nodata(/{name}/postfix.metrics,{{$POSTFIX.NODATA.PERIOD}})=1"
    judged = {re.search(r"/([^,]+),", t["expression"])[1].split("/")[1]
              for t in triggers if t["priority"] in ("WARNING", "HIGH")}
    assert judged == {"postfix.queue.size[total]", "postfix.queue.oldest_age",
                      "postfix.queue.deferred.growth", "postfix.delivery.bounce_rate",
                      "postfix.queue.size.lower_bound"}
    cut = [t for t in triggers if "postfix.queue.size.lower_bound" in t["expression"]]
    assert [t["expression"] for t in cut] == [
        f"last(/{name}/postfix.queue.size.lower_bound,#1)>{{$POSTFIX.QUEUE.SIZE.CRIT}}"]
    assert cut[0]["recovery_expression"].startswith(
        f"nodata(/{name}/postfix.queue.size.lower_bound,")
    for t in triggers:
        for ref in re.findall(r"/" + re.escape(name) + r"/([^,)]+(?:\[[^\]]*\])?)",
                              t["expression"] + t.get("recovery_expression", "")):
            assert ref in keys, ref
        for macro in re.findall(r"\{\$[A-Z._]+\}", t["expression"]):
            assert macro in macros
        if t["priority"] in ("WARNING", "HIGH") and t not in cut:
            assert "min(" in t["expression"] and "max(" in t["recovery_expression"]
            assert t["recovery_mode"] == "RECOVERY_EXPRESSION"
        if t is not nodata[0]:
            assert {"name": nodata[0]["name"], "expression": nodata[0]["expression"]} in \
                t["dependencies"]


def test_graphs_and_dashboard_reference_each_other() -> None:
    exp = template.build("trapper")["zabbix_export"]
    names = {g["name"] for g in exp["graphs"]}
    keys = set(_items("trapper"))
    for g in exp["graphs"]:
        for gi in g["graph_items"]:
            assert gi["item"]["key"] in keys
    dash = exp["templates"][0]["dashboards"][0]
    widgets = dash["pages"][0]["widgets"]
    assert {w["fields"][1]["value"]["name"] for w in widgets} == names
    assert len(widgets) == 7


def test_value_maps_used_by_items() -> None:
    tpl = template.build("agent")["zabbix_export"]["templates"][0]
    maps = {v["name"] for v in tpl["valuemaps"]}
    used = {i["valuemap"]["name"] for i in tpl["items"] if "valuemap" in i}
    assert used == maps and len(maps) == 2


def test_readme_lists_every_key_and_macro() -> None:
    text = template.readme()
    for m in metrics.REGISTRY:
        assert f"|{m.key}" in text
    for macro, value, _ in template.MACROS:
        assert f"|{macro}|" in text and f"`{value}`" in text
    for heading in ("## Overview", "## Requirements", "## Setup", "### Macros used",
                    "### Items collected", "### Triggers"):
        assert heading in text
