"""The metric registry: every metric named once, with its Nagios perfdata label, Zabbix key,
units, place in the Zabbix JSON document and Prometheus name.

The checks' perfdata, the Zabbix document, the template items, the Prometheus exposition and
the generated Nagios, Icinga and NRPE files are all derived from ``REGISTRY``; tests fail when a
committed artefact drifts.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator

from .queue import ALL_QUEUES, QUEUES, QueueSnapshot
from .reasons import CLASSES

# typing is imported for type checkers only: at run time it cost ~3 ms of every check's start-up
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Queues the oldest-message check (and the Zabbix key without a queue) judge by default.
DEFAULT_OLDEST_QUEUES: tuple[str, ...] = tuple(q for q in QUEUES if q != "hold")
DELIVERY_COUNTS: tuple[str, ...] = ("sent", "bounced", "expired", "deferred")


#: One metric. A namedtuple, not a dataclass: importing dataclasses cost ~8 ms of every check's
#: start-up. Fields: id (stable registry id), key (Zabbix item key), path (JSONPath in the
#: Zabbix document), name (human name), units (Zabbix units), value_type ("unsigned", "float",
#: "char"), label (Nagios perfdata label; None: Zabbix only), uom (Nagios unit), min, max,
#: checks (the keys in check_registry of the checks whose perfdata carry it), prom (Prometheus
#: gauge family; None: not exposed, e.g. a total PromQL sums itself), prom_labels (that
#: series' labels, as pairs).
Metric = namedtuple("Metric",
                    "id key path name units value_type label uom min max checks prom prom_labels",
                    defaults=(None, "", None, None, (), None, ()))

#: Prometheus families of the registry's gauges. postfix_exporter's own name where it has the
#: same measure (its dashboards work unchanged); ours under postfix_queue_* / postfix_delivery_*.
PROM_QUEUE_DEPTH = "postfix_showq_queue_depth"
PROM_QUEUE_BYTES = "postfix_queue_size_bytes"
PROM_OLDEST_AGE = "postfix_queue_oldest_message_age_seconds"
PROM_GROWTH = "postfix_queue_deferred_growth_messages_per_hour"
PROM_REASON = "postfix_queue_deferred_recipients"


def _build() -> tuple[Metric, ...]:
    out: list[Metric] = []
    for q in ALL_QUEUES:
        out.append(Metric(f"queue.size.{q}", f"postfix.queue.size[{q}]",
                          f"$.queue.{q}.messages", f"Queue {q}: messages", "", "unsigned",
                          f"queue_{q}", "", 0, None,
                          ("queue", "growth") if q == "deferred" else ("queue",),
                          *_prom(PROM_QUEUE_DEPTH, q)))
        out.append(Metric(f"queue.bytes.{q}", f"postfix.queue.bytes[{q}]",
                          f"$.queue.{q}.bytes", f"Queue {q}: size", "B", "unsigned",
                          f"queue_{q}_bytes", "B", 0, None, ("queue",),
                          *_prom(PROM_QUEUE_BYTES, q)))
    out.append(Metric("queue.oldest_age", "postfix.queue.oldest_age", "$.oldest_age",
                      "Oldest message age (all queues but hold)", "s", "float",
                      "oldest_age", "s", 0, None, ("oldest",)))
    for q in QUEUES:
        out.append(Metric(f"queue.oldest_age.{q}", f"postfix.queue.oldest_age[{q}]",
                          f"$.queue.{q}.oldest_age", f"Queue {q}: oldest message age", "s",
                          "float", f"oldest_age_{q}", "s", 0, None, ("oldest",),
                          PROM_OLDEST_AGE, (("queue", q),)))
    out.append(Metric("deferred.growth", "postfix.queue.deferred.growth",
                      "$.deferred.growth_per_hour", "Deferred queue growth", "msg/h", "float",
                      "deferred_growth_per_hour", "", None, None, ("growth",), PROM_GROWTH))
    for c in CLASSES:
        out.append(Metric(f"deferred.reason.{c}", f"postfix.queue.deferred.reason[{c}]",
                          f"$.deferred.reasons.{c}", f"Deferred recipients: {c}", "",
                          "unsigned", None, "", None, None, (), PROM_REASON,
                          (("reason", c),)))
    for d in DELIVERY_COUNTS:
        out.append(Metric(f"delivery.count.{d}", f"postfix.delivery.count[{d}]",
                          f"$.delivery.{d}", f"Deliveries {d} (window)", "", "unsigned",
                          f"delivery_{d}", "", 0, None, ("bounce",)))
    for r in ("bounce_rate", "deferral_rate"):
        out.append(Metric(f"delivery.{r}", f"postfix.delivery.{r}", f"$.delivery.{r}",
                          f"{r.replace('_', ' ').capitalize()} (window)", "%", "float",
                          r, "%", 0, 100, ("bounce",)))
    return tuple(out)


def _prom(family: str, queue: str) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """The five queues' series of a per-queue family; the total has none (PromQL sums)."""
    return (None, ()) if queue == "total" else (family, (("queue", queue),))


REGISTRY: tuple[Metric, ...] = _build()
BY_ID: dict[str, Metric] = {m.id: m for m in REGISTRY}
BY_LABEL: dict[str, Metric] = {m.label: m for m in REGISTRY if m.label}


def for_check(check: str) -> Iterator[Metric]:
    """The metrics in a check's perfdata (``check``: a check_registry key): its own first, then
    those it shares with the check that owns them (the growth check's ``queue_deferred``)."""
    mine = [m for m in REGISTRY if check in m.checks]
    return iter(sorted(mine, key=lambda m: m.checks[0] != check))


def queue_values(snap: QueueSnapshot) -> dict[str, float]:
    """Every queue metric (sizes, bytes, ages, reason classes) of one listing, by registry id."""
    values: dict[str, float] = {}
    for q in ALL_QUEUES:
        stats = snap.stats(q)
        values[f"queue.size.{q}"] = stats.messages
        values[f"queue.bytes.{q}"] = stats.bytes
        if q != "total":
            values[f"queue.oldest_age.{q}"] = round(stats.oldest_age(snap.now), 3)
    values["queue.oldest_age"] = round(snap.oldest_age(DEFAULT_OLDEST_QUEUES), 3)
    for c in CLASSES:
        values[f"deferred.reason.{c}"] = snap.deferred_classes.get(c, 0)
    return values


def set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    """Put ``value`` at a ``$.a.b.c`` path, creating the objects on the way."""
    parts = path.removeprefix("$.").split(".")
    node = doc
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def get_path(doc: dict[str, Any], path: str) -> Any:
    """The value at a ``$.a.b.c`` path (KeyError when absent)."""
    node: Any = doc
    for part in path.removeprefix("$.").split("."):
        node = node[part]
    return node
