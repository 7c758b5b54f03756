"""The check registry: each check's names and defaults, in one place beside the metric registry.

The plugins' parsers, the status line, ``nagios_gen`` (Nagios, NRPE and Icinga 2 files), the
Zabbix templates' macros and the Zabbix sender's options all read them from here. The
perfdata labels of a check are the metric registry's (``metrics.for_check(key)``).
"""

from __future__ import annotations

from collections import namedtuple

#: One check. A namedtuple (like metrics.Metric): importing dataclasses costs every check's
#: start-up. Fields: key (the check's name in the metric registry), program (the console
#: script), module (postfix_queue_monitor.plugins.<module>), description (the parser's),
#: service (Nagios service description / Icinga service name), status (the status line's
#: name), var (Icinga custom variable infix: postfix_queue_<var>_<option>), macro (Zabbix
#: macro stem: {$POSTFIX.<macro>.WARN}), warning and critical (the examples' and the
#: templates' thresholds), timeout (default -t, seconds), window (default --window, seconds;
#: None: no window), min_deliveries (default --min-deliveries; None: not taken).
Check = namedtuple("Check", "key program module description service status var macro warning "
                            "critical timeout window min_deliveries",
                   defaults=(8.0, None, None))

CHECKS: tuple[Check, ...] = (
    Check("queue", "check_postfix_queue", "queue_size",
          "Postfix queue size: messages and bytes per queue, judged on --queue.",
          "Postfix queue", "POSTFIX QUEUE", "size", "QUEUE.SIZE", "500", "2000"),
    Check("oldest", "check_postfix_oldest_message", "oldest",
          "Age of the oldest message in the Postfix queue (true arrival time).",
          "Postfix oldest message", "POSTFIX OLDEST", "oldest", "OLDEST.AGE", "1h", "1d"),
    Check("growth", "check_postfix_deferred_growth", "growth",
          "Growth of the Postfix deferred queue in messages per hour. A bare -w/-c N means "
          "'above N' (~:N): a shrinking queue is never a problem by itself.",
          "Postfix deferred growth", "POSTFIX GROWTH", "growth", "DEFERRED.GROWTH", "100", "500",
          window=900.0),
    Check("bounce", "check_postfix_bounce_rate", "bounce",
          "Share of recipients bounced or expired over a sliding window, from the mail log or "
          "the journal; -w/-c in percent.",
          "Postfix bounce rate", "POSTFIX BOUNCE RATE", "bounce", "BOUNCE.RATE", "5", "15",
          window=3600.0, min_deliveries=10),
)
BY_KEY: dict[str, Check] = {c.key: c for c in CHECKS}


def icinga_command(check: Check) -> str:
    """The Icinga 2 CheckCommand name, ITL style: the program without ``check_``."""
    return check.program.removeprefix("check_")


def duration_text(seconds: float) -> str:
    """``900`` → ``15m``, ``3600`` → ``1h``: a default as the options' help writes it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
