"""The journald reader against real journal files.

This machine runs no systemd-journald, so the journal is made the real way a journal is
imported: Journal Export Format fed to ``systemd-journal-remote --output=FILE.journal``
(package systemd-journal-remote), then read by the real ``journalctl --file``. A second import
appends to the same file, which is what the cursor must handle.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest

from postfix_queue_monitor import deliveries as D
from postfix_queue_monitor import reasons
from postfix_queue_monitor.errors import MonitorError

REMOTE = "/lib/systemd/systemd-journal-remote"
pytestmark = pytest.mark.skipif(
    not (os.path.exists(REMOTE) and shutil.which("journalctl")),
    reason="systemd-journal-remote or journalctl missing (scripts/install-deps.sh installs them)")

NOW = float(int(time.time()))


def _field(key: str, value: bytes | str) -> bytes:
    if isinstance(value, str):
        value = value.encode()
    if b"\n" in value or not value.isascii():
        return key.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"
    return key.encode() + b"=" + value + b"\n"


def export(entries: list[tuple[float, str, bytes | str]], seq: list[int]) -> bytes:
    out = b""
    for ts, ident, msg in entries:
        seq[0] += 1
        out += (_field("__REALTIME_TIMESTAMP", str(int(ts * 1e6)))
                + _field("__MONOTONIC_TIMESTAMP", str(seq[0]))
                + _field("_BOOT_ID", "1" * 32) + _field("_HOSTNAME", "vm")
                + _field("SYSLOG_IDENTIFIER", ident) + _field("MESSAGE", msg) + b"\n")
    return out


def status(qid: str, st: str, text: str = "250 2.0.0 Ok") -> str:
    return (f"{qid}: to=<u@d.example>, relay=127.0.0.1[127.0.0.1]:25, delay=0.1, "
            f"delays=0/0/0/0.1, dsn=2.0.0, status={st} ({text})")


def import_into(journal: Path, entries, seq) -> None:
    src = journal.with_suffix(".export")
    src.write_bytes(export(entries, seq))
    p = subprocess.run([REMOTE, f"--output={journal}", str(src)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


@pytest.fixture
def jdir():
    d = Path(tempfile.mkdtemp(prefix="pqm-journal-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d)


def measure(journal: Path, state: Path, now: float, syslog_name=None, window=3600):
    return D.measure_deliveries(None, True, syslog_name, window, str(state), now, 10,
                                journal_files=[str(journal)])


def test_journal_counts_window_cursor_and_filters(jdir):
    journal, state, seq = jdir / "t.journal", jdir / "state", [0]
    import_into(journal, [
        (NOW - 7200, "postfix/smtp", status("OLD1", "bounced", "550 5.1.1 unknown")),  # outside
        (NOW - 600, "postfix/smtp", status("A1", "sent")),
        (NOW - 590, "postfix/relay/smtp", status("A2", "sent")),
        (NOW - 580, "postfix/lmtp", status("A3", "bounced", "550 5.1.1 User unknown")),
        (NOW - 570, "postfix/error", status("A4", "deferred", "delivery temporarily suspended: "
                                                              "connect to x: Connection refused")),
        (NOW - 560, "postfix/qmgr", "A5: from=<s@x>, status=expired, returned to sender"),
        (NOW - 550, "postfix/smtp", status("A6", "undeliverable")),                   # probe
        (NOW - 540, "postfix-out/smtp", status("B1", "sent")),
        (NOW - 530, "amavis", status("C1", "sent")),                                  # not ours
        (NOW - 520, "postfix/smtp", b"A7: to=<\xff\xfe@d>, relay=x, dsn=5.0.0, status=bounced "
                                    b"(550 bad \xff bytes)"),                         # not UTF-8
        (NOW - 510, "postfix/smtpd", "a line no pattern knows"),
    ], seq)
    st = measure(journal, state, NOW)
    assert (st.sent, st.bounced, st.deferred, st.expired) == (3, 2, 1, 1)
    assert st.unmatched == 1 and "a line no pattern knows" in st.unmatched_samples[0]
    # the bad bytes are read as U+FFFD and the text classified as any other
    assert st.bounce_classes == Counter(
        [reasons.classify("550 5.1.1 User unknown"), reasons.classify("550 bad \ufffd bytes")])
    assert reasons.classify("550 5.1.1 User unknown") == "recipient_unknown"
    # the same again: the cursor says nothing is new
    st = measure(journal, state, NOW + 5)
    assert (st.sent, st.bounced, st.lines_read) == (3, 2, 0)
    # more entries appended to the same file: only those are read
    import_into(journal, [(NOW + 10, "postfix/smtp", status("D1", "sent")),
                          (NOW + 11, "postfix/bounce", "D1: sender non-delivery notification: X")],
                seq)
    st = measure(journal, state, NOW + 20)
    assert (st.sent, st.bounced, st.lines_read) == (4, 2, 2)
    # --syslog-name: only postfix-out/…
    st = measure(journal, jdir / "state2", NOW + 20, syslog_name="postfix-out")
    assert (st.sent, st.bounced) == (1, 0)


def test_journal_first_run_window_only(jdir):
    journal, seq = jdir / "t.journal", [0]
    import_into(journal, [(NOW - 86400 + i, "postfix/smtp", status(f"O{i}", "bounced"))
                          for i in range(200)] + [(NOW - 60, "postfix/smtp", status("N", "sent"))],
                seq)
    st = measure(journal, jdir / "state", NOW, window=900)
    assert (st.sent, st.bounced, st.lines_read) == (1, 0, 1)


def test_unknown_journal_unreadable_names_groups(jdir):
    journal, seq = jdir / "t.journal", [0]
    import_into(journal, [(NOW, "postfix/smtp", status("A", "sent"))], seq)
    os.chmod(journal, 0o600)
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from postfix_queue_monitor import deliveries as D;"
        "from postfix_queue_monitor.errors import MonitorError\n"
        "try:\n D.measure_deliveries(None, True, None, 3600, sys.argv[2], 0, 10,"
        " journal_files=[sys.argv[3]])\n"
        "except MonitorError as e: print(e)")
    checks = str(Path(D.__file__).resolve().parent.parent)
    os.chmod(jdir, 0o777)
    p = subprocess.run([sys.executable, "-c", code, checks, str(jdir / "st"), str(journal)],
                       capture_output=True, text=True, user="nobody", timeout=30)
    assert "may not read the system journal" in p.stdout, (p.stdout, p.stderr)
    assert "systemd-journal" in p.stdout and "adm" in p.stdout


def test_unknown_journalctl_missing(jdir):
    with pytest.raises(MonitorError, match="cannot read the journal: .*not found.*--log-file"):
        D.measure_deliveries(None, True, None, 3600, str(jdir / "s"), NOW, 5,
                             journalctl=str(jdir / "no-journalctl"))


def test_refused_cursor_falls_back_to_the_window(jdir):
    journal, state, seq = jdir / "t.journal", jdir / "state", [0]
    import_into(journal, [(NOW - 60, "postfix/smtp", status("A1", "sent"))], seq)
    assert measure(journal, state, NOW).sent == 1
    from postfix_queue_monitor.state import StateDir
    name = D.state_name("journal:" + str(journal), None, 3600)
    with StateDir(str(state)).locked(name, 1) as sf:
        data = sf.read(D.STATE_KIND)
        data["cursor"] = "garbage"
        sf.write(D.STATE_KIND, data)
    st = measure(journal, state, NOW + 1)
    assert st.sent == 1 and any("cursor was refused" in n for n in st.notes)
