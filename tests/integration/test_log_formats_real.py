"""The real logs of tests/fixtures/realworld-logs through the real journald tools.

Each log is imported into a journal file the way a journal is imported on a machine without
journald (Journal Export Format into ``systemd-journal-remote --output=FILE.journal``), then:

- the real ``journalctl -o short|short-iso|short-iso-precise|short-precise|short-full|
  short-unix`` output is what tests/logstyles.py writes for those styles, byte for byte (so the
  unit tests that count those styles count what journalctl really prints);
- ``--journal`` (the check's own ``journalctl -o json`` reading) counts exactly what the
  independent counter counts in the log;
- each journalctl output, written to a file, is counted exactly by ``--log-file``.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

import logcount
import logstyles
from postfix_queue_monitor import deliveries as D

REMOTE = "/lib/systemd/systemd-journal-remote"
pytestmark = pytest.mark.skipif(
    not (os.path.exists(REMOTE) and shutil.which("journalctl")),
    reason="systemd-journal-remote or journalctl missing (scripts/install-deps.sh installs them)")

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "realworld-logs"

#: AGPL-3.0-only test data is left out of the MIT sdist (MANIFEST.in); from git it is always here
if not (REAL / "lightmeter-mail.log.1.gz").exists():
    pytest.skip("the AGPL-3.0-only real logs are not in the sdist (MANIFEST.in): run these "
                "tests from a git checkout", allow_module_level=True)
ZONE = "Europe/Berlin"
LOGS = {"lightmeter-mail.log.1.gz": 2021, "infohtreasure-maillog.gz": 2022}
#: journalctl -o MODE -> the tests/logstyles.py style that writes the same
MODES = {"short": "classic-zero", "short-iso": "short-iso",
         "short-iso-precise": "short-iso-precise", "short-precise": "short-precise",
         "short-full": "short-full", "short-unix": "short-unix"}


def _field(key: str, value: str) -> bytes:
    raw = value.encode("utf-8", "surrogateescape")
    assert b"\n" not in raw
    return key.encode() + b"=" + raw + b"\n"


@pytest.fixture(scope="module")
def journals():
    """log name -> (journal file, its records); one import per log for the whole module."""
    d = Path(tempfile.mkdtemp(prefix="pqm-realjournal-"))
    os.chmod(d, 0o755)
    out = {}
    for name, year in LOGS.items():
        with gzip.open(REAL / name, "rt", encoding="utf-8", errors="surrogateescape") as fh:
            lines = [line.rstrip("\n") for line in fh]
        recs = [r for r in logstyles.records(lines, year, ZONE) if not isinstance(r, str)]
        export = b"".join(
            _field("__REALTIME_TIMESTAMP", str(round(r.epoch * 1e6)))
            + _field("__MONOTONIC_TIMESTAMP", str(i + 1)) + _field("_BOOT_ID", "1" * 32)
            + _field("_HOSTNAME", r.host) + _field("SYSLOG_IDENTIFIER", r.prog)
            + (_field("_PID", r.pid) if r.pid else b"") + _field("MESSAGE", r.msg) + b"\n"
            for i, r in enumerate(recs))
        src = d / f"{name}.export"
        src.write_bytes(export)
        journal = d / f"{name}.journal"
        p = subprocess.run([REMOTE, f"--output={journal}", str(src)], capture_output=True,
                           text=True)
        assert p.returncode == 0, p.stderr
        out[name] = (journal, recs)
    yield d, out
    shutil.rmtree(d)


def _journalctl(journal: Path, mode: str) -> bytes:
    p = subprocess.run(["journalctl", "--no-pager", f"--file={journal}", "-o", mode],
                       capture_output=True, env={**os.environ, "TZ": ZONE}, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.mark.parametrize("name", sorted(LOGS))
@pytest.mark.parametrize("mode", sorted(MODES))
def test_journalctl_output_is_the_generated_style_and_is_counted_exactly(journals, name, mode,
                                                                         berlin):
    d, out = journals
    journal, recs = out[name]
    real = _journalctl(journal, mode)
    generated = "".join(line + "\n" for line in logstyles.render(recs, MODES[mode]))
    assert real == generated.encode("utf-8", "surrogateescape")
    log = d / f"{name}.{mode}.log"
    log.write_bytes(real)
    now = max(r.epoch for r in recs) + 600
    window = now - min(r.epoch for r in recs) + 300
    st = D.measure_deliveries(str(log), False, None, window, str(d / f"state-{name}-{mode}"),
                              now, 30)
    expected = logcount.count_file(str(log))
    assert expected == logcount.count_file(str(REAL / name))
    assert {"sent": st.sent, "bounced": st.bounced, "deferred": st.deferred,
            "expired": st.expired} == expected
    assert st.unreadable == 0


@pytest.mark.parametrize("name", sorted(LOGS))
def test_journal_reading_counts_the_real_log_exactly(journals, name):
    d, out = journals
    journal, recs = out[name]
    now = max(r.epoch for r in recs) + 600
    window = now - min(r.epoch for r in recs) + 300
    st = D.measure_deliveries(None, True, None, window, str(d / f"jstate-{name}"), now, 60,
                              journal_files=[str(journal)])
    expected = logcount.count_file(str(REAL / name))
    assert {"sent": st.sent, "bounced": st.bounced, "deferred": st.deferred,
            "expired": st.expired} == expected
    assert st.unreadable == 0
