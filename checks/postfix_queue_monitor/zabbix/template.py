"""Generate the Zabbix 6.0 templates (and their README) from the metric registry.

    python -m postfix_queue_monitor.zabbix.template [OUTDIR]     # default: zabbix_templates/

writes ``postfix_queue_trapper.yaml`` ("Postfix queue by Zabbix trapper"),
``postfix_queue_agent.yaml`` ("Postfix queue by Zabbix agent") and ``README.md``. Keys, JSON
paths, units and value types come from the registry only; UUIDs are derived from names (uuid5,
then the version bits forced to 4) so a regeneration changes nothing unless the registry did.
The static files beside them (userparameter conf, systemd units, cron line) are not generated.
"""

from __future__ import annotations

import os
import sys
import uuid
from typing import Any

from .. import check_registry, metrics
from ..metrics import Metric
from ..queue import QUEUES
from ..reasons import CLASSES
from . import document

GROUP = "Templates/Applications"
KINDS = ("trapper", "agent")
TEMPLATE_NAMES = {"trapper": "Postfix queue by Zabbix trapper",
                  "agent": "Postfix queue by Zabbix agent"}
FILES = {"trapper": "postfix_queue_trapper.yaml", "agent": "postfix_queue_agent.yaml"}
MASTER_KEY = "postfix.metrics"
DISCOVERY_KEY = "postfix.instances"
INSTANCE_MASTER = {"trapper": "postfix.instance.metrics[{#INSTANCE}]",
                   "agent": "postfix.instance.metrics[{#CONFIG_DIR}]"}
AGENT_DELAY = "1m"
MIN_DELIVERIES = str(check_registry.BY_KEY["bounce"].min_deliveries)
_NS = uuid.UUID("5f0d8a52-6a3c-4d0e-9a57-3c1b4f2e7d10")


def stable_uuid(*parts: str) -> str:
    """A UUIDv4-shaped id (32 lowercase hex) derived from ``parts``: stable across runs."""
    raw = bytearray(uuid.uuid5(_NS, "\x1f".join(parts)).bytes)
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return uuid.UUID(bytes=bytes(raw)).hex


# -- macros ---------------------------------------------------------------------------------

#: What each check's threshold macros measure (their descriptions).
_MEASURES = {
    "queue": "Messages in all queues (total)",
    "oldest": "Age of the oldest message (all queues but hold)",
    "growth": "Growth of the deferred queue (messages per hour)",
    "bounce": "Bounce rate (%) over the sender's --bounce-window",
}


def threshold_macro(stem: str, level: str) -> str:
    """``{$POSTFIX.<stem>.WARN}`` / ``.CRIT``: a check's threshold macro (stem: its ``macro``)."""
    return f"{{$POSTFIX.{stem}.{level}}}"


def _threshold_macros() -> tuple[tuple[str, str, str], ...]:
    out = []
    for c in check_registry.CHECKS:
        what = _MEASURES[c.key]
        warn = (f"{what} above which a warning is raised." if c.key == "queue"
                else f"{what} for a warning.")
        crit = (f"{what} above which a high-severity problem is raised." if c.key == "queue"
                else f"{what} for a high-severity problem.")
        out += [(threshold_macro(c.macro, "WARN"), c.warning, warn),
                (threshold_macro(c.macro, "CRIT"), c.critical, crit)]
    return tuple(out)


MACROS: tuple[tuple[str, str, str], ...] = (
    *_threshold_macros(),
    ("{$POSTFIX.BOUNCE.MIN_DELIVERIES}", MIN_DELIVERIES,
     "Sent + bounced + expired in the window below which the bounce rate is not judged."),
    ("{$POSTFIX.TRIGGER.PERIOD}", "5m",
     "Hysteresis: a problem needs every value of this period above its threshold, the "
     "recovery every value below it (a time, or #N for the last N values)."),
    ("{$POSTFIX.NODATA.PERIOD}", "10m",
     "No value of the master item for this long raises the no-data problem (at least 30s)."),
)

# (registry id, macro stem, name)
THRESHOLD_TRIGGERS: tuple[tuple[str, str, str], ...] = (
    ("queue.size.total", check_registry.BY_KEY["queue"].macro,
     "Postfix: too many messages queued"),
    ("queue.oldest_age", check_registry.BY_KEY["oldest"].macro,
     "Postfix: oldest queued message is too old"),
    ("deferred.growth", check_registry.BY_KEY["growth"].macro,
     "Postfix: deferred queue growing fast"),
)


# -- keys -----------------------------------------------------------------------------------

def instance_key(key: str, macro: str = "{#INSTANCE}") -> str:
    """``postfix.queue.size[total]`` → ``postfix.queue.size[{#INSTANCE},total]``."""
    if key.endswith("]"):
        name, _, params = key[:-1].partition("[")
        return f"{name}[{macro},{params}]"
    return f"{key}[{macro}]"


def _per_instance(m: Metric) -> bool:
    """Queue metrics (and growth) are measured per instance; deliveries come from the log."""
    return (m.id.startswith(("queue.", "deferred."))
            or m.id in ("meta.growth_ready", "meta.cut_messages"))


def _value_type(m: Metric) -> str | None:
    return {"unsigned": None, "float": "FLOAT", "char": "CHAR", "text": "TEXT"}[m.value_type]


def _tags(m: Metric) -> list[dict[str, str]]:
    parts = m.id.split(".")
    if m.id.startswith("queue."):
        tags = [{"tag": "component", "value": "queue"}]
        if parts[-1] in (*QUEUES, "total"):
            tags.append({"tag": "queue", "value": parts[-1]})
    elif m.id.startswith("deferred.reason."):
        tags = [{"tag": "component", "value": "queue"},
                {"tag": "reason", "value": parts[-1]}]
    elif m.id == "meta.cut_messages":
        tags = [{"tag": "component", "value": "queue"}, {"tag": "queue", "value": "total"}]
    elif m.id.startswith("deferred.") or m.id == "meta.growth_ready":
        tags = [{"tag": "component", "value": "queue"}, {"tag": "queue", "value": "deferred"}]
    elif m.id.startswith("delivery."):
        tags = [{"tag": "component", "value": "delivery"}]
    else:
        tags = [{"tag": "component", "value": "monitor"}]
    return tags


VALUEMAPS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "meta.listing": ("Postfix queue listing", [
        (str(document.LISTING["json"]), "postqueue -j"),
        (str(document.LISTING["text"]), "postqueue -p (Postfix < 3.1)")]),
    "meta.growth_ready": ("Postfix growth baseline", [
        ("0", "waiting for baseline"), ("1", "ready")]),
}

DESCRIPTIONS = {
    "deferred.growth": "(deferred now - deferred then) / elapsed x 3600 over the sender's "
                       "--growth-window; absent (value discarded) until a baseline exists.",
    "queue.oldest_age": "Seconds since the arrival of the oldest message in every queue but "
                        "hold (the arrival time, never a file's mtime).",
    "meta.error": "Empty when everything was measured; otherwise what failed (its values are "
                  "left out) or was measured in part (a mail log read in part at the "
                  "deadline), and how to fix it.",
    "meta.cut_messages": "Only when the queue listing was cut by the deadline (a storm: showq "
                         "could not list the whole queue within -t): the messages read before "
                         "the cut, a lower bound of the total. The queue items get no value "
                         "then (no false dip); this item's trigger fires when even the lower "
                         "bound is above {$POSTFIX.QUEUE.SIZE.CRIT}.",
}


def _description(m: Metric) -> str:
    if m.id in DESCRIPTIONS:
        return DESCRIPTIONS[m.id]
    if m.id.startswith("deferred.reason."):
        return ("Recipients in the deferred queue whose delay reason falls in the class "
                f"'{m.id.rsplit('.', 1)[1]}'.")
    if m.id.startswith("delivery."):
        return "Recipients in the sender's --bounce-window, from the mail log."
    return m.name + "."


def _item(kind: str, m: Metric, master: str, *, proto: bool = False,
          key: str | None = None, name_prefix: str = "Postfix: ") -> dict[str, Any]:
    tpl = TEMPLATE_NAMES[kind]
    key = key or m.key
    item: dict[str, Any] = {
        "uuid": stable_uuid(tpl, "item", key),
        "name": name_prefix + m.name,
        "type": "DEPENDENT",
        "key": key,
        "delay": "0",
    }
    vt = _value_type(m)
    if vt:
        item["value_type"] = vt
    if m.value_type in ("char", "text"):
        item["trends"] = "0"
    if m.units:
        item["units"] = m.units
    item["description"] = _description(m)
    if m.id in VALUEMAPS:
        item["valuemap"] = {"name": VALUEMAPS[m.id][0]}
    step: dict[str, Any] = {"type": "JSONPATH", "parameters": [m.path]}
    if m.id in document.OPTIONAL:
        step["error_handler"] = "DISCARD_VALUE"
    item["preprocessing"] = [step]
    item["master_item"] = {"key": master}
    item["tags"] = _tags(m)
    return item


def _expr(tpl: str, key: str, fn: str, *args: str) -> str:
    return f"{fn}(/{tpl}/{key}{''.join(',' + a for a in args)})"


def _nodata_trigger(tpl: str, master: str, *, proto: bool = False) -> dict[str, Any]:
    name = "Postfix: no metrics received for {$POSTFIX.NODATA.PERIOD}"
    if proto:
        name = "Postfix {#INSTANCE}: no metrics received for {$POSTFIX.NODATA.PERIOD}"
    return {
        "uuid": stable_uuid(tpl, "trigger", master, "nodata"),
        "expression": _expr(tpl, master, "nodata", "{$POSTFIX.NODATA.PERIOD}") + "=1",
        "name": name,
        "priority": "AVERAGE",
        "description": "The sender (timer or cron) or the agent has delivered nothing: the "
                       "other Postfix triggers are suppressed until it does.",
        "tags": [{"tag": "scope", "value": "availability"}],
    }


def _dep(trigger: dict[str, Any]) -> dict[str, str]:
    dep = {"name": trigger["name"], "expression": trigger["expression"]}
    if trigger.get("recovery_expression"):
        dep["recovery_expression"] = trigger["recovery_expression"]
    return dep


def _threshold_triggers(tpl: str, key: str, stem: str, name: str, nodata: dict[str, Any],
                        units_hint: str, *, proto: bool = False) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    period = "{$POSTFIX.TRIGGER.PERIOD}"
    crit = None
    for level, priority in (("CRIT", "HIGH"), ("WARN", "WARNING")):
        macro = threshold_macro(stem, level)
        t: dict[str, Any] = {
            "uuid": stable_uuid(tpl, "trigger", key, level),
            "expression": _expr(tpl, key, "min", period) + f">{macro}",
            "recovery_mode": "RECOVERY_EXPRESSION",
            "recovery_expression": _expr(tpl, key, "max", period) + f"<{macro}",
            "name": f"{name} (over {macro}{units_hint})",
            "opdata": "Current: {ITEM.LASTVALUE1}",
            "priority": priority,
            "description": f"Every value over {period} above {macro}; recovers when every "
                           f"value over {period} is below it.",
            "dependencies": [_dep(nodata)] + ([_dep(crit)] if crit else []),
            "tags": [{"tag": "scope", "value": "capacity"}],
        }
        if proto:
            t["name"] = t["name"].replace("Postfix:", "Postfix {#INSTANCE}:")
        out.append(t)
        crit = crit or t
    return out


def _cut_trigger(tpl: str, key: str, nodata: dict[str, Any], *,
                 proto: bool = False) -> dict[str, Any]:
    """A cut listing's lower bound already above the critical macro proves the problem; it
    recovers once no listing was cut for the trigger period (the queue items judge again)."""
    macro = "{$POSTFIX.QUEUE.SIZE.CRIT}"
    name = f"Postfix: at least {{ITEM.LASTVALUE1}} messages queued (over {macro}; listing cut)"
    return {
        "uuid": stable_uuid(tpl, "trigger", key, "cut"),
        "expression": _expr(tpl, key, "last", "#1") + f">{macro}",
        "recovery_mode": "RECOVERY_EXPRESSION",
        "recovery_expression": _expr(tpl, key, "nodata", "{$POSTFIX.TRIGGER.PERIOD}") + "=1",
        "name": name.replace("Postfix:", "Postfix {#INSTANCE}:") if proto else name,
        "priority": "HIGH",
        "description": "The queue listing was cut by the deadline and the messages read before "
                       f"the cut already exceed {macro}: the queue holds at least that many. "
                       "Recovers when no listing was cut for {$POSTFIX.TRIGGER.PERIOD}.",
        "dependencies": [_dep(nodata)],
        "tags": [{"tag": "scope", "value": "capacity"}],
    }


def _bounce_triggers(tpl: str, nodata: dict[str, Any]) -> list[dict[str, Any]]:
    rate = metrics.BY_ID["delivery.bounce_rate"].key
    counts = [metrics.BY_ID[f"delivery.count.{d}"].key for d in ("sent", "bounced", "expired")]
    volume = "+".join(_expr(tpl, k, "last") for k in counts)
    period = "{$POSTFIX.TRIGGER.PERIOD}"
    out = []
    crit = None
    for level, priority in (("CRIT", "HIGH"), ("WARN", "WARNING")):
        macro = threshold_macro(check_registry.BY_KEY["bounce"].macro, level)
        t = {
            "uuid": stable_uuid(tpl, "trigger", rate, level),
            "expression": (_expr(tpl, rate, "min", period) + f">{macro} and "
                           f"({volume})>={{$POSTFIX.BOUNCE.MIN_DELIVERIES}}"),
            "recovery_mode": "RECOVERY_EXPRESSION",
            "recovery_expression": _expr(tpl, rate, "max", period) + f"<{macro}",
            "name": f"Postfix: bounce rate is high (over {macro}%)",
            "opdata": "Current: {ITEM.LASTVALUE1}",
            "priority": priority,
            "description": "Bounced + expired recipients over all delivery attempts in the "
                           "window, judged only with at least {$POSTFIX.BOUNCE.MIN_DELIVERIES} "
                           "deliveries.",
            "dependencies": [_dep(nodata)] + ([_dep(crit)] if crit else []),
            "tags": [{"tag": "scope", "value": "performance"}],
        }
        out.append(t)
        crit = crit or t
    return out


_COLORS = ("1A7C11", "F63100", "2774A4", "A54F10", "FC6EA3", "6C59DC", "AC8C14", "611F27",
           "F230E0", "5CCD18", "BB2A02", "5A2B57", "89ABF8", "7EC25C")


def _graph(tpl: str, name: str, keys: list[str], *, stacked: bool = False,
           proto: bool = False) -> dict[str, Any]:
    g: dict[str, Any] = {"uuid": stable_uuid(tpl, "graph", name), "name": name}
    if stacked:
        g["type"] = "STACKED"
    g["graph_items"] = [
        {**({"sortorder": str(i)} if i else {}), "color": _COLORS[i % len(_COLORS)],
         "item": {"host": tpl, "key": k}}
        for i, k in enumerate(keys)]
    return g


def _graphs(tpl: str, key=lambda k: k, prefix: str = "Postfix: ", proto: bool = False,
            deliveries: bool = True) -> list[dict[str, Any]]:
    by = metrics.BY_ID
    gs = [
        _graph(tpl, prefix + "queue messages", [key(by[f"queue.size.{q}"].key) for q in QUEUES],
               stacked=True, proto=proto),
        _graph(tpl, prefix + "queue size in bytes",
               [key(by[f"queue.bytes.{q}"].key) for q in QUEUES], stacked=True, proto=proto),
        _graph(tpl, prefix + "oldest message age",
               [key(by["queue.oldest_age"].key)]
               + [key(by[f"queue.oldest_age.{q}"].key) for q in QUEUES], proto=proto),
        _graph(tpl, prefix + "deferred recipients by reason",
               [key(by[f"deferred.reason.{c}"].key) for c in CLASSES], stacked=True,
               proto=proto),
        _graph(tpl, prefix + "deferred queue growth", [key(by["deferred.growth"].key)],
               proto=proto),
    ]
    if deliveries:
        gs += [
            _graph(tpl, prefix + "deliveries in the window",
                   [by[f"delivery.count.{d}"].key for d in metrics.DELIVERY_COUNTS]),
            _graph(tpl, prefix + "bounce and deferral rate",
                   [by["delivery.bounce_rate"].key, by["delivery.deferral_rate"].key]),
        ]
    return gs


def _dashboard(tpl: str, graphs: list[dict[str, Any]]) -> dict[str, Any]:
    widgets = []
    for i, g in enumerate(graphs):
        widgets.append({
            "type": "GRAPH_CLASSIC",
            "name": g["name"],
            "x": str((i % 2) * 12),
            "y": str((i // 2) * 5),
            "width": "12",
            "height": "5",
            "fields": [
                {"type": "INTEGER", "name": "source_type", "value": "0"},
                {"type": "GRAPH", "name": "graphid", "value": {"name": g["name"], "host": tpl}},
            ],
        })
    return {"uuid": stable_uuid(tpl, "dashboard"), "name": "Postfix queue",
            "pages": [{"widgets": widgets}]}


def _discovery(kind: str) -> dict[str, Any]:
    tpl = TEMPLATE_NAMES[kind]
    master_key = INSTANCE_MASTER[kind]
    master: dict[str, Any] = {
        "uuid": stable_uuid(tpl, "item", master_key),
        "name": "Postfix {#INSTANCE}: metrics (JSON)",
        "type": "TRAP" if kind == "trapper" else "ZABBIX_PASSIVE",
        "key": master_key,
        "delay": "0" if kind == "trapper" else AGENT_DELAY,
        "history": "1d",
        "trends": "0",
        "value_type": "TEXT",
        "description": "Every metric of this Postfix instance as one JSON document.",
        "tags": [{"tag": "component", "value": "raw"}, {"tag": "instance",
                                                         "value": "{#INSTANCE}"}],
    }
    nodata = _nodata_trigger(tpl, master_key, proto=True)
    master["trigger_prototypes"] = [nodata]
    protos = [master]
    by_key: dict[str, dict[str, Any]] = {}
    for m in document.ALL:
        if not _per_instance(m):
            continue
        p = _item(kind, m, master_key, proto=True, key=instance_key(m.key),
                  name_prefix="Postfix {#INSTANCE}: ")
        p["tags"].append({"tag": "instance", "value": "{#INSTANCE}"})
        protos.append(p)
        by_key[m.id] = p
    for mid, stem, name in THRESHOLD_TRIGGERS:
        key = instance_key(metrics.BY_ID[mid].key)
        by_key[mid]["trigger_prototypes"] = _threshold_triggers(
            tpl, key, stem, name, nodata, "", proto=True)
    by_key["meta.cut_messages"]["trigger_prototypes"] = [_cut_trigger(
        tpl, instance_key(document.BY_ID["meta.cut_messages"].key), nodata, proto=True)]
    rule: dict[str, Any] = {
        "uuid": stable_uuid(tpl, "discovery", DISCOVERY_KEY),
        "name": "Postfix instances",
        "type": "TRAP" if kind == "trapper" else "ZABBIX_PASSIVE",
        "key": DISCOVERY_KEY,
        "delay": "0" if kind == "trapper" else "1h",
        "lifetime": "7d",
        "description": "Postfix instances other than the default one, from postmulti -l "
                       "({#INSTANCE}: the instance name, {#CONFIG_DIR}: its config dir).",
        "item_prototypes": protos,
        "graph_prototypes": _graphs(tpl, key=instance_key, prefix="Postfix {#INSTANCE}: ",
                                    proto=True, deliveries=False),
    }
    return rule


def build(kind: str) -> dict[str, Any]:
    """The export document of one template."""
    tpl = TEMPLATE_NAMES[kind]
    master: dict[str, Any] = {
        "uuid": stable_uuid(tpl, "item", MASTER_KEY),
        "name": "Postfix: metrics (JSON)",
        "type": "TRAP" if kind == "trapper" else "ZABBIX_PASSIVE",
        "key": MASTER_KEY,
        "delay": "0" if kind == "trapper" else AGENT_DELAY,
        "history": "1d",
        "trends": "0",
        "value_type": "TEXT",
        "description": ("Every metric as one JSON document, pushed by `postfix_queue_zabbix "
                        "send`." if kind == "trapper" else
                        "Every metric as one JSON document, from `postfix_queue_zabbix json` "
                        "(UserParameter postfix.metrics)."),
        "tags": [{"tag": "component", "value": "raw"}],
    }
    nodata = _nodata_trigger(tpl, MASTER_KEY)
    master["triggers"] = [nodata]
    items = [master]
    by_id: dict[str, dict[str, Any]] = {}
    for m in document.ALL:
        item = _item(kind, m, MASTER_KEY)
        items.append(item)
        by_id[m.id] = item
    for mid, stem, name in THRESHOLD_TRIGGERS:
        units = {"queue.oldest_age": "", "deferred.growth": " msg/h"}.get(mid, "")
        by_id[mid]["triggers"] = _threshold_triggers(tpl, metrics.BY_ID[mid].key, stem, name,
                                                     nodata, units)
    by_id["meta.cut_messages"]["triggers"] = [
        _cut_trigger(tpl, document.BY_ID["meta.cut_messages"].key, nodata)]
    by_id["meta.error"]["triggers"] = [{
        "uuid": stable_uuid(tpl, "trigger", "meta.error"),
        "expression": f"length({_expr(tpl, document.BY_ID['meta.error'].key, 'last')})>0",
        "name": "Postfix: part of the metrics could not be measured",
        "opdata": "{ITEM.LASTVALUE1}",
        "priority": "INFO",
        "description": "The item's value says what failed and how to fix it.",
        "dependencies": [_dep(nodata)],
        "tags": [{"tag": "scope", "value": "notice"}],
    }]
    graphs = _graphs(tpl)
    template: dict[str, Any] = {
        "uuid": stable_uuid(tpl, "template"),
        "template": tpl,
        "name": tpl,
        "description": ("Postfix mail queue, deferral reasons, deliveries and bounce rate, "
                        "measured by postfix-queue-monitor (the same numbers as its Nagios "
                        "checks). " + ("Values are pushed by `postfix_queue_zabbix send` from "
                                       "a timer or cron." if kind == "trapper" else
                                       "Values are read by the Zabbix agent through the "
                                       "UserParameter in userparameter_postfix_queue.conf.")),
        "groups": [{"name": GROUP}],
        "items": items,
        "discovery_rules": [_discovery(kind)],
        "tags": [{"tag": "class", "value": "software"}, {"tag": "target", "value": "postfix"}],
        "macros": [{"macro": k, "value": v, "description": d} for k, v, d in MACROS],
        "dashboards": [_dashboard(tpl, graphs)],
        "valuemaps": [
            {"uuid": stable_uuid(tpl, "valuemap", name), "name": name,
             "mappings": [{"value": v, "newvalue": t} for v, t in maps]}
            for name, maps in VALUEMAPS.values()],
    }
    return {"zabbix_export": {
        "version": "6.0",
        "groups": [{"uuid": stable_uuid("group", GROUP), "name": GROUP}],
        "templates": [template],
        "triggers": _bounce_triggers(tpl, nodata),
        "graphs": graphs,
    }}


# -- YAML -----------------------------------------------------------------------------------

def to_yaml(doc: dict[str, Any]) -> str:
    import yaml  # noqa: PLC0415 - a developer's tool: PyYAML is in the test extra

    class Dumper(yaml.SafeDumper):
        pass

    def str_repr(dumper: yaml.SafeDumper, data: str):
        # Zabbix's own exports quote these; 'y' and 'n' are booleans to some YAML readers
        style = "'" if data in ("y", "n", "Y", "N", "") or data.isdigit() else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Dumper.add_representer(str, str_repr)
    return yaml.dump(doc, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=100,
                     default_flow_style=False)


# -- README ---------------------------------------------------------------------------------

def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def readme() -> str:
    t = build("trapper")["zabbix_export"]
    tpl = t["templates"][0]
    lines = [
        "# Postfix queue by Zabbix trapper / Postfix queue by Zabbix agent",
        "",
        "<!-- generated by `python -m postfix_queue_monitor.zabbix.template`: do not edit -->",
        "",
        "## Overview",
        "",
        "Two templates for the Postfix mail queue, measured by postfix-queue-monitor: messages, "
        "bytes and the age of the oldest message per queue, the deferred queue's growth and its "
        "recipients by deferral reason class, delivery counts and the bounce and deferral rates "
        "from the mail log. The values are the numbers the project's Nagios checks report, "
        "computed by the same code.",
        "",
        "- **Postfix queue by Zabbix trapper** (`postfix_queue_trapper.yaml`): "
        "`postfix_queue_zabbix send` pushes one JSON document per run (systemd timer or cron) "
        "to the trapper item `postfix.metrics`; dependent items pick the values out.",
        "- **Postfix queue by Zabbix agent** (`postfix_queue_agent.yaml`): the agent runs "
        "`postfix_queue_zabbix json` through `UserParameter=postfix.metrics` every "
        f"{AGENT_DELAY}.",
        "",
        "Multi-instance hosts (postmulti): the discovery rule `postfix.instances` adds the queue "
        "items per instance with the instance name as first key parameter "
        "(`postfix.queue.size[{#INSTANCE},deferred]`).",
        "",
        "## Requirements",
        "",
        "Zabbix version: 6.0 and higher (imports into 6.0 and 7.0).",
        "",
        "## Tested versions",
        "",
        "This template has been tested on:",
        "- Zabbix server 6.0.14 (Debian 12) with Postfix 3.7.11",
        "- Zabbix server 7.0.9 (Debian 12 bookworm-backports; the tests take the 7.0 release "
        "backports has) with Postfix 3.7.11",
        "",
        "## Configuration",
        "",
        "> Zabbix should be configured according to the instructions in the "
        "[Templates out of the box](https://www.zabbix.com/documentation/6.0/manual/config/"
        "templates_out_of_the_box) section.",
        "",
        "## Setup",
        "",
        "Trapper (recommended):",
        "",
        "1. `pip install postfix-queue-monitor` on each mail host.",
        "2. Import the template and create the host: `postfix_queue_zabbix deploy --url "
        "https://zabbix.example/ --token TOKEN --host mail1.example` (or import "
        "`postfix_queue_trapper.yaml` by hand and link it to the host).",
        "3. Run the sender every minute: copy `postfix-queue-zabbix.service` and "
        "`postfix-queue-zabbix.timer` to /etc/systemd/system and `systemctl enable --now "
        "postfix-queue-zabbix.timer`, or use the line in `postfix-queue-zabbix.cron`. The "
        "sender reads ServerActive, Hostname and the TLS settings from "
        "/etc/zabbix/zabbix_agentd.conf (`--config`) or takes `--zabbix-server HOST[:PORT] "
        "--host NAME`. Values the server cannot take are kept in the state dir and sent first "
        "on the next run, with their original time.",
        "4. Multi-instance hosts: add `--instances` to the sender's command line.",
        "",
        "Agent:",
        "",
        "1. Copy `userparameter_postfix_queue.conf` to /etc/zabbix/zabbix_agentd.d/ (adjust the "
        "path of `postfix_queue_zabbix`) and set `Timeout=10` in zabbix_agentd.conf (a large "
        "queue takes seconds to list).",
        "2. Restart the agent, import `postfix_queue_agent.yaml` and link it to the host.",
        "",
        "## Zabbix configuration",
        "",
        "No specific Zabbix configuration is required.",
        "",
        "### Macros used",
        "",
        "|Name|Description|Default|",
        "|----|-----------|-------|",
    ]
    for m in tpl["macros"]:
        lines.append(f"|{m['macro']}|<p>{_md(m['description'])}</p>|`{m['value']}`|")
    lines += ["", "### Template links", "", "There are no template links in this template.", "",
              "### Discovery rules", "", "|Name|Description|Type|Key and additional info|",
              "|----|-----------|----|-----------------------|"]
    rule = tpl["discovery_rules"][0]
    lines.append(f"|{rule['name']}|<p>{_md(rule['description'])}</p>|TRAP / ZABBIX_PASSIVE|"
                 f"{rule['key']}|")
    lines += ["", "### Items collected", "",
              "|Group|Name|Description|Type|Key and additional info|",
              "|-----|----|-----------|----|-----------------------|"]
    for it in tpl["items"]:
        group = next((tg["value"] for tg in it["tags"] if tg["tag"] == "component"), "")
        extra = ""
        if it.get("preprocessing"):
            step = it["preprocessing"][0]
            extra = f"<p>**Preprocessing**:</p><p>- JSONPATH: `{step['parameters'][0]}`</p>"
            if step.get("error_handler") == "DISCARD_VALUE":
                extra += "<p>⛔️ON_FAIL: `DISCARD_VALUE`</p>"
        typ = it["type"] if it["type"] != "TRAP" else "TRAP / ZABBIX_PASSIVE (agent template)"
        lines.append(f"|{group.capitalize()}|{it['name']}|<p>{_md(it['description'])}</p>|"
                     f"{typ}|{it['key']}{extra}|")
    for p in rule["item_prototypes"][1:]:
        lines.append(f"|Queue|{p['name']}|<p>{_md(p['description'])}</p>|DEPENDENT|"
                     f"{p['key']}<p>**Preprocessing**:</p><p>- JSONPATH: "
                     f"`{p['preprocessing'][0]['parameters'][0]}`</p>|")
    lines += ["", "### Triggers", "",
              "|Name|Description|Expression|Severity|Dependencies and additional info|",
              "|----|-----------|----------|--------|--------------------------------|"]
    triggers = [tr for it in tpl["items"] for tr in it.get("triggers", [])] + t["triggers"]
    for tr in triggers:
        deps = "".join(f"<p>- {d['name']}</p>" for d in tr.get("dependencies", []))
        rec = (f"<p>Recovery expression:</p>`{tr['recovery_expression']}`"
               if tr.get("recovery_expression") else "")
        dep_text = f"<p>**Depends on**:</p>{deps}" if deps else ""
        lines.append(f"|{_md(tr['name'])}|<p>{_md(tr['description'])}</p>|"
                     f"`{tr['expression']}`{rec}|{tr['priority'].capitalize()}|{dep_text}|")
    lines += ["", "## Feedback", "",
              "Please report any issues with the templates in the project's issue tracker.", ""]
    return "\n".join(lines)


def write(outdir: str) -> list[str]:
    os.makedirs(outdir, exist_ok=True)
    written = []
    outputs = {FILES[k]: to_yaml(build(k)) for k in KINDS}
    outputs["README.md"] = readme()
    for name, text in outputs.items():
        path = os.path.join(outdir, name)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        written.append(path)
    return written


def generated() -> dict[str, str]:
    """File name → text, as ``write`` would produce them (for the drift test)."""
    out = {FILES[k]: to_yaml(build(k)) for k in KINDS}
    out["README.md"] = readme()
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    outdir = args[0] if args else "zabbix_templates"
    for path in write(outdir):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
