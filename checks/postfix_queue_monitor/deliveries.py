"""The delivery measurement behind ``check_postfix_bounce_rate`` and the Zabbix document:
windowed recipient counts from the mail log (or the journal), kept with the read position.

Position and counts live in ONE state file, written once after the result is computed, so they
always agree. Definitions (docs/reference.md): the unit is the recipient. ``sent``/``bounced``/
``deferred`` are delivery status lines (``<QID>: to=<…>, … status=<s> (…)``) from any delivery
agent; ``expired`` are qmgr ``status=expired|force-expired`` lines; address-verification probes
(``deliverable``/``undeliverable``) count nowhere.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

from . import state_schema
from .deadline import Deadline
from .errors import MonitorError
from .maillog.feeder import MAX_NAMES, LineFeeder
from .maillog.journal import JournalReader
from .maillog.reader import FileReader, Position
from .maillog.tally import Tally
from .maillog.timestamps import Clock, minute
from .state import StateDir, instance_key

DEFAULT_LOGS: tuple[str, ...] = ("/var/log/mail.log", "/var/log/maillog", "/var/log/postfix.log")
STATE_KIND = "bounce-rate"


@dataclass
class DeliveryStats:
    """Recipients in the window, the two rates, and what the bounces and deferrals say."""
    sent: int
    bounced: int
    expired: int
    deferred: int
    bounce_rate: float
    deferral_rate: float
    window: float
    source: str
    bounce_classes: Counter[str] = field(default_factory=Counter)
    deferral_classes: Counter[str] = field(default_factory=Counter)
    bounce_texts: dict[str, str] = field(default_factory=dict)
    deferral_texts: dict[str, str] = field(default_factory=dict)
    lines_read: int = 0
    unmatched: int = 0
    unmatched_samples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    first_run: bool = False
    stopped_at_deadline: bool = False  # the log was read in part: the rest is read next run
    unreadable: int = 0                # Postfix lines whose timestamp no style reads (window)
    unreadable_status: int = 0         # of which delivery status or expiry lines
    unreadable_sample: str = ""

    def format_problem(self) -> Optional[str]:
        """Why the counts cannot be trusted, or None: Postfix lines in a format not understood
        while nothing was counted, or status lines lost beyond 5 % of those counted. Below that
        the odd lines are a ``-v`` note (format_note)."""
        counted = self.sent + self.bounced + self.expired + self.deferred
        lost = self.unreadable_status
        if self.unreadable and (counted == 0 or lost * 20 > counted + lost):
            return (f"{self.unreadable} Postfix log line(s) ({lost} delivery status) are in a "
                    f"format this check cannot read (timestamp not understood), e.g. "
                    f"'{self.unreadable_sample[:60]}…' ({counted} status line(s) read): see "
                    f"docs/log-formats.md")
        return None

    def format_note(self) -> Optional[str]:
        if not self.unreadable:
            return None
        return (f"{self.unreadable} Postfix line(s) ({self.unreadable_status} delivery status) "
                f"with a timestamp format not understood, not counted, e.g. "
                f"{self.unreadable_sample}")

    @property
    def deliveries(self) -> int:
        """What --min-deliveries compares against: sent + bounced + expired."""
        return self.sent + self.bounced + self.expired

    def top_bounce_class(self) -> Optional[tuple[str, int]]:
        if self.bounce_classes:
            return self.bounce_classes.most_common(1)[0]
        return None


def rates(sent: int, bounced: int, expired: int, deferred: int) -> tuple[float, float]:
    """bounce_rate = 100 (bounced + expired) / (sent + bounced + expired);
    deferral_rate = 100 deferred / (sent + bounced + deferred); 0 with nothing to divide by."""
    den_b = sent + bounced + expired
    den_d = sent + bounced + deferred
    br = 100.0 * (bounced + expired) / den_b if den_b else 0.0
    dr = 100.0 * deferred / den_d if den_d else 0.0
    return round(br, 3), round(dr, 3)


def stats_of(tally: Tally, since: int, window: float, source: str) -> DeliveryStats:
    counts = [0, 0, 0, 0]
    bc: Counter[str] = Counter()
    dc: Counter[str] = Counter()
    for mi, b in tally.buckets.items():
        if mi < since:
            continue
        for i in range(4):
            counts[i] += b[i]
        bc.update(b[4])
        dc.update(b[5])
    sent, bounced, expired, deferred = counts
    br, dr = rates(sent, bounced, expired, deferred)
    bt = {k[2:]: v[0] for k, v in tally.texts.items() if k.startswith("b:") and v[1] >= since}
    dt = {k[2:]: v[0] for k, v in tally.texts.items() if k.startswith("d:") and v[1] >= since}
    return DeliveryStats(sent, bounced, expired, deferred, br, dr, window, source, bc, dc, bt, dt,
                         tally.lines, tally.unmatched, list(tally.unmatched_samples),
                         list(tally.notes), unreadable=tally.odd[0],
                         unreadable_status=tally.odd[1], unreadable_sample=tally.odd[2])


def default_log() -> Optional[str]:
    """The first of /var/log/mail.log, /var/log/maillog, /var/log/postfix.log that exists."""
    for path in DEFAULT_LOGS:
        if os.path.exists(path):
            return path
    return None


def state_name(source: str, syslog_name: Optional[str], window: float) -> str:
    """One state file per log (or journal) × syslog name × window."""
    key = instance_key(f"{source}|{syslog_name or 'postfix*'}|{window:g}")
    return f"bounce-{key}.json"


def _not_regular(mode: int) -> str:
    """'' for a regular file, else what it is ("a FIFO", "a character device", …)."""
    if stat.S_ISREG(mode):
        return ""
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a directory")):
        if test(mode):
            return name
    return "not a file"


def resolve_source(log_file: Optional[str], journal: bool,
                   journal_files: Sequence[str] = ()) -> tuple[bool, str]:
    """(read the journal?, the source's name: an absolute log path or ``journal[:files]``);
    a log file that is missing or unreadable is a MonitorError saying what to fix."""
    use_journal = journal or bool(journal_files)
    if not use_journal and log_file is None:
        log_file = default_log()
        use_journal = log_file is None
    if use_journal:
        return True, "journal:" + ",".join(journal_files) if journal_files else "journal"
    assert log_file is not None
    source = os.path.abspath(log_file)
    try:
        kind = _not_regular(os.stat(source).st_mode)
        if kind and source != os.devnull:      # /dev/null: no log, nothing to count
            # a FIFO would block the open until a writer comes (the check then died at -t
            # with no name and no cause); /dev/zero never ends
            raise MonitorError(f"log file {log_file} is {kind}, not a regular file: pass the "
                               f"mail log itself (--log-file PATH), or --journal")
        readable = os.access(source, os.R_OK)
    except FileNotFoundError:
        raise MonitorError(f"log file {log_file} does not exist (pass --log-file PATH, "
                           f"or --journal)") from None
    except PermissionError:
        readable = False
    if not readable:
        raise MonitorError(f"log file {log_file} is not readable by this user (uid "
                           f"{os.geteuid()}): add the user to group adm (usermod -aG adm "
                           f"USER) or pass a readable --log-file")
    return False, source


def measure_deliveries(log_file: Optional[str], journal: bool, syslog_name: Optional[str],
                       window: float, state_dir: Optional[str], now: float, timeout: float,
                       *, journal_files: Sequence[str] = (),
                       journalctl: str = "journalctl") -> DeliveryStats:
    """Read what is new in the log (or the journal), update the windowed counts and return the
    window's DeliveryStats. Position and counts are written together, once, after the result is
    computed, under the state lock (concurrent runs wait for each other). Postfix lines in a
    timestamp format not understood raise MonitorError (DeliveryStats.format_problem) unless
    they are a small share."""
    use_journal, source = resolve_source(log_file, journal, journal_files)
    since = minute(now - window)
    deadline = Deadline(timeout)
    with StateDir(state_dir).locked(state_name(source, syslog_name, window),
                                    deadline.lock_timeout(0.5)) as sf:
        data = sf.read(STATE_KIND, state_schema.bounce,
                       "the log position and the window's delivery counts")
        tally = Tally.load(data) if data else Tally()
        tally.prune(since)
        clock = Clock(now)
        feeder = LineFeeder(tally, clock, syslog_name,
                            name_seen=data.get("name_seen") if data else None)
        left = max(0.5, deadline.remaining())
        new_state: dict[str, Any]
        if use_journal:
            reader = JournalReader(feeder, syslog_name, left, journal_files, journalctl)
            cursor = data.get("cursor") if data else None
            if data and not isinstance(cursor, (str, type(None))):
                raise MonitorError("bounce-rate state holds a malformed journal cursor: delete "
                                   "the state file or pass another --state-dir")
            cursor = reader.read(cursor, since)
            new_state = {"source": source, "cursor": cursor}
        else:
            freader = FileReader(source, feeder, deadline)
            if data and data.get("position"):
                pos = freader.incremental(Position.load(data["position"]), since)
            else:
                pos = freader.first_run(since)
            tally.notes.extend(freader.notes())
            new_state = {"source": source, "position": pos.dump()}
        stats = stats_of(tally, since, window, source)
        stats.first_run = data is None
        stats.stopped_at_deadline = not use_journal and freader.stopped_at is not None
        new_state.update(tally.dump())
        new_state["updated"] = now
        problem = name_problem(syslog_name, source, feeder, data, new_state)
        sf.write(STATE_KIND, new_state)
    # after the write: the odd lines stay in the state for the window, so the next run (which
    # may read nothing new) says the same, never a silent OK
    problem = problem or stats.format_problem()
    if problem:
        raise MonitorError(problem)
    return stats


def name_problem(syslog_name: Optional[str], source: str, feeder: LineFeeder,
                 data: Optional[dict[str, Any]], state: dict[str, Any]) -> Optional[str]:
    """A --syslog-name no line read so far carries, while other Postfix names are read: a
    mistyped name, which would otherwise be "too few deliveries to judge" forever. Once seen
    (any line of it: an idle instance stays OK) ``name_seen`` stays in the state; until then
    the other names stay there too, so a run that reads nothing new says the same."""
    if not syslog_name:
        return None
    state["name_seen"] = feeder.name_seen          # (which started from the state's)
    if feeder.name_seen:
        return None
    others = sorted(set(data.get("other_names", ()) if data else ()) | feeder.other_names)
    if not others:
        return None           # no Postfix line at all yet: nothing says the name is wrong
    state["other_names"] = others[:MAX_NAMES]
    return (f"no line of syslog name '{syslog_name}' in {source} (Postfix names seen: "
            f"{', '.join(others[:MAX_NAMES])}): check --syslog-name")


def read_counts(lines: Iterable[bytes], now: float, window: float,
                syslog_name: Optional[str] = None) -> DeliveryStats:
    """Stateless: the window's counts of some lines (tests, the benchmark, a one-off)."""
    since = minute(now - window)
    tally = Tally(since=since)
    feeder = LineFeeder(tally, Clock(now), syslog_name)
    for line in lines:
        feeder.feed_line(line)
    return stats_of(tally, since, window, "lines")
