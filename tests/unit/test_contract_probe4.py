"""The shipped commands run the way an administrator runs them, on inputs written here (real
syslog variants, stand-in postqueue scripts): each test is a divergence from docs/reference.md
found that way by the session-6 contract probe, failing before its fix."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _run(prog: str, *argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / prog), *argv], capture_output=True, text=True, timeout=60,
                          cwd=cwd)


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(ts))


# -- RFC 5424 with the BOM before MSG ------------------------------------------------------

def test_rfc5424_message_with_a_bom_is_counted_not_a_silent_ok(tmp_path: Path) -> None:
    """RFC 5424 section 6.4: a UTF-8 MSG starts with the BOM (EF BB BF), as syslog-ng's
    syslog-protocol output and other RFC 5424 senders write it. Before: every Postfix line
    "matched no pattern" and the check said OK "too few deliveries to judge (0 < 10 ...)"."""
    now = time.time()
    lines = []
    for i in range(20):
        st, dsn, text = (("bounced", "5.1.1", "550 5.1.1 user unknown") if i % 4 == 0 else
                         ("sent", "2.0.0", "250 2.0.0 Ok"))
        lines.append(f"<22>1 {_rfc3339(now - 600 + i)} mx postfix/smtp {100 + i} - "
                     f"[meta sequenceId=\"{i + 1}\"] \ufeff{i + 0xA1000:X}: to=<u{i}@d.example>,"
                     f" relay=r.example[192.0.2.1]:25, delay=1, delays=0/0/0/1, dsn={dsn}, "
                     f"status={st} ({text})")
    log = tmp_path / "mail.log"
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = _run("check_postfix_bounce_rate", "--log-file", str(log), "--state-dir",
             str(tmp_path / "st"), "-w", "10", "-c", "50", cwd=tmp_path)
    assert r.stdout.startswith("POSTFIX BOUNCE RATE WARNING - bounce rate 25% (> 10; 5 of 20 "), \
        r.stdout
    assert "delivery_sent=15;" in r.stdout and "delivery_bounced=5;" in r.stdout
    assert (r.returncode, r.stderr) == (1, "")

