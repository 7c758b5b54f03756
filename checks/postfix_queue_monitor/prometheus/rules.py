"""The Prometheus alert rules, generated from the check registry's defaults (the same
thresholds, window and minimum deliveries as the Nagios examples and the Zabbix macros);
``prometheus/postfix-queue-monitor.rules.yml`` is this module's output and a test fails when
it drifts.

``python -m postfix_queue_monitor.prometheus.rules prometheus`` rewrites the file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .. import check_registry, metrics
from ..check_registry import duration_text
from ..cli import parse_duration
from . import exposition

FILE = "postfix-queue-monitor.rules.yml"
GROUP = "postfix-queue-monitor"
#: The job name the docs' scrape config uses for ``serve`` (the exporter-down rule needs one).
JOB = "postfix_queue"
#: How old the last collection may be before the data counts as stale (5 missed minute runs).
STALE_AFTER = 300
FOR = "5m"

_RECIPIENTS = "postfix_delivery_recipients_total"


def _number(text: str) -> str:
    """A threshold as PromQL wants it: durations ("1h") in seconds."""
    try:
        value = float(text)
    except ValueError:
        value = parse_duration(text)
    return f"{value:g}"


BOUNCE = check_registry.BY_KEY["bounce"]


def _bounce_expr(threshold: str) -> str:
    w = duration_text(BOUNCE.window)
    done = (f'sum without (status) (increase({_RECIPIENTS}{{status=~"sent|bounced|expired"}}'
            f'[{w}]))')
    failed = f'sum without (status) (increase({_RECIPIENTS}{{status=~"bounced|expired"}}[{w}]))'
    return (f"100 * {failed} / {done} > {threshold}\n"
            f"and {done} >= {BOUNCE.min_deliveries}")


def rules() -> list[dict[str, object]]:
    """The rules, in file order."""
    out: list[dict[str, object]] = []

    def pair(name: str, check: str, expr_of, summary: str, description: str) -> None:
        c = check_registry.BY_KEY[check]
        for severity, threshold in zip(("warning", "critical"), (c.warning, c.critical)):
            out.append({
                "alert": f"{name}{severity.capitalize()}",
                "expr": expr_of(_number(threshold)),
                "for": FOR,
                "labels": {"severity": severity},
                "annotations": {"summary": summary,
                                "description": description.replace("THRESHOLD", threshold)},
            })

    pair("PostfixQueueSize", "queue",
         lambda t: f"sum without (queue) ({metrics.PROM_QUEUE_DEPTH}) > {t}",
         "Postfix queue on {{ $labels.instance }} holds {{ $value }} messages",
         "More than THRESHOLD messages in all Postfix queues together "
         "(check_postfix_queue's default).")
    pair("PostfixOldestMessage", "oldest",
         lambda t: (f'max without (queue) ({metrics.PROM_OLDEST_AGE}{{queue!="hold"}}) > {t}'),
         "Oldest queued message on {{ $labels.instance }} is {{ $value | humanizeDuration }} "
         "old",
         "A message has waited longer than THRESHOLD in a Postfix queue other than hold "
         "(check_postfix_oldest_message's default).")
    pair("PostfixDeferredGrowth", "growth",
         lambda t: f"{metrics.PROM_GROWTH} > {t}",
         "Deferred queue on {{ $labels.instance }} grows by {{ $value }} messages per hour",
         "The deferred queue grows faster than THRESHOLD messages per hour over the growth "
         "window (check_postfix_deferred_growth's default).")
    pair("PostfixBounceRate", "bounce", _bounce_expr,
         "Bounce rate on {{ $labels.instance }} is {{ $value | printf \"%.1f\" }}%",
         f"More than THRESHOLD% of the recipients bounced or expired over "
         f"{duration_text(BOUNCE.window)}, with at least {BOUNCE.min_deliveries} delivered, "
         f"bounced or expired (check_postfix_bounce_rate's defaults).")
    out += [
        {"alert": "PostfixQueueMonitorFailing", "expr": f"{exposition.UP} == 0", "for": FOR,
         "labels": {"severity": "critical"},
         "annotations": {
             "summary": "Postfix queue cannot be measured on {{ $labels.instance }}",
             "description": "postfix_queue_prometheus could not list the queue; its log (serve) "
                            "or its output (textfile) says what to fix."}},
        {"alert": "PostfixQueueMonitorPartial", "expr": f"{exposition.ERRORS} > 0", "for": "15m",
         "labels": {"severity": "warning"},
         "annotations": {
             "summary": "Part of the Postfix metrics is missing on {{ $labels.instance }}",
             "description": "The growth or the delivery counters could not be measured (e.g. "
                            "the mail log is unreadable); the exporter's log says why."}},
        {"alert": "PostfixQueueMetricsStale",
         "expr": f"time() - {exposition.LAST_RUN} > {STALE_AFTER}", "for": FOR,
         "labels": {"severity": "warning"},
         "annotations": {
             "summary": "Postfix queue metrics of {{ $labels.instance }} are stale",
             "description": f"The last collection is more than {STALE_AFTER} s old: the "
                            f"textfile timer or cron job no longer runs."}},
        {"alert": "PostfixQueueExporterDown", "expr": f'up{{job="{JOB}"}} == 0', "for": FOR,
         "labels": {"severity": "critical"},
         "annotations": {
             "summary": "postfix_queue_prometheus on {{ $labels.instance }} cannot be scraped",
             "description": f"Prometheus cannot scrape the job {JOB} (postfix_queue_prometheus "
                            f"serve is down or unreachable)."}},
    ]
    return out


def _yaml(text: str) -> str:
    """A scalar: JSON's double-quoted string is valid YAML."""
    return json.dumps(text, ensure_ascii=False)


def render() -> str:
    """The rules file (YAML, written by hand: PyYAML is not a runtime dependency)."""
    lines = [
        "# Generated by python -m postfix_queue_monitor.prometheus.rules: do not edit; the",
        "# thresholds are the Nagios/Zabbix defaults (check_registry.py).",
        "groups:",
        f"  - name: {GROUP}",
        "    rules:",
    ]
    for rule in rules():
        lines.append(f"      - alert: {rule['alert']}")
        expr = str(rule["expr"])
        if "\n" in expr:
            lines.append("        expr: |-")
            lines += [f"          {ln}" for ln in expr.splitlines()]
        else:
            lines.append(f"        expr: {_yaml(expr)}")
        lines.append(f"        for: {rule['for']}")
        for section in ("labels", "annotations"):
            lines.append(f"        {section}:")
            for k, v in rule[section].items():  # type: ignore[attr-defined]
                lines.append(f"          {k}: {_yaml(v)}")
    return "\n".join(lines) + "\n"


def generated() -> dict[str, str]:
    return {FILE: render()}


def main(argv: list[str]) -> int:
    target = Path(argv[0] if argv else "prometheus")
    target.mkdir(parents=True, exist_ok=True)
    for name, text in generated().items():
        (target / name).write_text(text, encoding="utf-8")
        print(f"wrote {target / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
