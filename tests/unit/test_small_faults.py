"""Issue 16, items 11 and 12: the smaller faults, one test each (the FIFO log, the symlink and
corrupt-spool wording and umask 000 are in test_line_bound, test_state_faults and
test_zabbix_sender_faults)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from postfix_queue_monitor import reasons
from postfix_queue_monitor.maillog import Clock, LineFeeder, Tally
from postfix_queue_monitor.queue import parse_json_lines, read_queue

NOW = 1795966298.0


def _line(**kw) -> bytes:
    obj = {"queue_name": "active", "queue_id": "A1", "arrival_time": NOW - 60,
           "message_size": 1000, "forced_expire": False, "sender": "s@x.example",
           "recipients": [{"address": "u@d.example"}]}
    obj.update(kw)
    return json.dumps(obj).encode() + b"\n"


# -- 11. a huge -t: a clean usage error, no OverflowError or threading traceback -------------

@pytest.mark.parametrize("argv", [
    ["check_postfix_queue", "-t", "2147483648"],
    ["postfix_queue_report", "-t", "99999999999"],
    ["postfix_queue_zabbix", "json", "-t", "99999999999"],
    ["check_postfix_deferred_growth", "--window", "9" * 400],
])
def test_huge_durations_are_a_usage_error(argv: list[str], tmp_path: Path) -> None:
    """Before: OverflowError (signal.alarm) or a threading traceback on stderr and exit 0 with
    the child timeout silently off."""
    res = subprocess.run([str(Path(sys.executable).parent / argv[0]), *argv[1:]],
                         capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert res.returncode in (2, 3), res
    assert "Traceback" not in res.stderr + res.stdout and "Overflow" not in res.stdout
    assert "at most" in res.stdout + res.stderr


# -- 12. the queue listing --------------------------------------------------------------------

def test_negative_message_size_is_malformed_not_negative_bytes() -> None:
    snap = parse_json_lines([_line(message_size=-5000), _line(queue_id="A2")], NOW)
    assert snap.stats("total").bytes == 1000 and snap.malformed == 1


def test_lone_surrogate_escape_is_read_like_the_stdlib_does() -> None:
    """Before: orjson refused '\\udcff' (the stdlib reads it) and the whole line was dropped."""
    raw = (b'{"queue_name":"deferred","queue_id":"A1","arrival_time":%d,"message_size":10,'
           b'"recipients":[{"address":"u\\udcff@d.example","delay_reason":"connect to '
           b'd.example[192.0.2.1]:25: Connection timed out"}]}\n' % int(NOW - 600))
    snap = parse_json_lines([raw, raw.replace(b'"A1"', b'"A2"')], NOW)
    assert snap.malformed == 0 and snap.stats("deferred").messages == 2
    assert snap.stats("deferred").recipients == 2


@pytest.mark.parametrize("rcpts", [[5, "x", None], [{"address": 5}], "abc"])
def test_recipients_of_every_queue_are_validated(rcpts) -> None:
    """Before: an active message with recipients [5, "x", null] counted 3 recipients."""
    snap = parse_json_lines([_line(recipients=rcpts), _line(queue_id="A2")], NOW)
    assert snap.malformed == 1 and snap.stats("active").recipients == 1


def test_signal_killed_postqueue_is_named(tmp_path: Path) -> None:
    """Before: 'postqueue exited -13'."""
    pq = tmp_path / "postqueue"
    pq.write_text("#!/bin/sh\necho 'postqueue: warning: about to die' >&2\nkill -TERM $$\n")
    pq.chmod(0o755)
    with pytest.raises(Exception) as exc:
        read_queue(str(pq), None, 5, NOW)
    assert str(exc.value) == "postqueue was killed by SIGTERM: postqueue: warning: about to die"


# -- 12. reasons and the mail log -------------------------------------------------------------

def test_normalize_is_linear_on_unclosed_angle_brackets() -> None:
    """Before: quadratic, 1.3 s for '<' + 16,000 '@'."""
    started = time.monotonic()
    assert reasons.normalize("<" + "@" * 100_000).startswith("<@@")
    assert time.monotonic() - started < 0.5
    assert reasons.normalize("rejected <a@b.example> and <x@y@z.example>") == \
        "rejected <ADDR> and <ADDR>"


def test_qmgr_expiry_with_a_sender_holding_a_comma_is_counted() -> None:
    """Before: the fast scan stopped at the sender's '>, ' and the expiry was not counted."""
    ts = time.strftime("%b %e %H:%M:%S", time.localtime(NOW - 60)).encode()
    lines = (ts + b' vm postfix/qmgr[2]: ABC123: from=<"a>, b"@x.example>, status=expired, '
             b"returned to sender\n"
             + ts + b" vm postfix/qmgr[2]: ABC124: from=<s@x.example>, status=expired, "
             b"returned to sender\n")
    tally = Tally()
    LineFeeder(tally, Clock(NOW), None).feed_block(lines)
    assert sum(b[2] for b in tally.buckets.values()) == 2
