"""The rotation-aware log file reader: where the last run stopped, and finding the rest after
a rename, a compression or a copytruncate."""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from typing import Any, BinaryIO, Optional

from .. import linebound
from ..deadline import Deadline
from ..errors import MonitorError
from .feeder import LineFeeder

CHUNK = 1024 * 1024
FP_LEN = 1024            # bytes of a log's head that identify it across renames
#: a first run that met no line of --syslog-name in the window looks this far back before it
NAME_LOOKBACK = 512 * 1024 * 1024


@dataclass
class Position:
    """Where the last run stopped in a log file: its identity and the offset after the last
    complete line, plus a fingerprint of its first bytes (to recognise it after a rename or a
    compression, and to notice copytruncate)."""
    path: str
    dev: int
    ino: int
    offset: int
    fp: str
    fp_len: int

    def dump(self) -> dict[str, Any]:
        return {"path": self.path, "dev": self.dev, "ino": self.ino, "offset": self.offset,
                "fp": self.fp, "fp_len": self.fp_len}

    @classmethod
    def load(cls, d: dict[str, Any]) -> Position:
        try:
            return cls(str(d["path"]), int(d["dev"]), int(d["ino"]), int(d["offset"]),
                       str(d["fp"]), int(d["fp_len"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise MonitorError(f"bounce-rate state holds a malformed log position ({exc}): "
                               f"delete the state file or pass another --state-dir") from None


def _open_log(path: str) -> BinaryIO:
    try:
        if path.endswith(".gz"):
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise MonitorError(f"log file {path} does not exist (pass --log-file PATH, or "
                           f"--journal)") from None
    except PermissionError:
        raise MonitorError(f"log file {path} is not readable by this user (uid "
                           f"{os.geteuid()}): add the user to group adm (usermod -aG adm USER) "
                           f"or pass a readable --log-file") from None
    except IsADirectoryError:
        raise MonitorError(f"log file {path} is a directory: pass the log file itself") from None
    except OSError as exc:
        raise MonitorError(f"cannot open log file {path}: {exc.strerror}") from None


def _fingerprint(fh: BinaryIO, length: int) -> str:
    fh.seek(0)
    head = fh.read(length)
    if len(head) < length:
        return ""
    return hashlib.sha256(head).hexdigest()[:32]


def _head_fp(path: str, length: int) -> str:
    try:
        with _open_log(path) as fh:
            return _fingerprint(fh, length)
    except (MonitorError, OSError, EOFError, gzip.BadGzipFile):
        return ""


def rotated_candidates(path: str) -> list[str]:
    """Files a rotation may have made of ``path``: ``path.1``, ``path.1.gz``, ``path.0``,
    ``path-20261129``, ``path-20261129.gz`` …, newest first (by mtime)."""
    directory, base = os.path.split(os.path.abspath(path))
    out = []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    for name in names:
        if name != base and (name.startswith(base + ".") or name.startswith(base + "-")):
            full = os.path.join(directory, name)
            try:
                st = os.stat(full)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                out.append((st.st_mtime, full))
    out.sort(reverse=True)
    return [p for _, p in out[:20]]


_NUMBERED = re.compile(r"\.(\d+)(?:\.gz)?")
_DATED = re.compile(r"-(\d{8,})(?:\.gz)?")


def rotation_rank(path: str, base: str) -> tuple[str, float]:
    """How new a rotated file is, comparable within one naming scheme: ``.1`` is newer than
    ``.2``, ``-20261130`` newer than ``-20261129``; other names go by mtime."""
    suffix = os.path.basename(path)[len(os.path.basename(base)):]
    m = _NUMBERED.fullmatch(suffix)
    if m:
        return ("numbered", -int(m[1]))
    m = _DATED.fullmatch(suffix)
    if m:
        return ("dated", float(m[1]))
    try:
        return ("mtime", os.stat(path).st_mtime)
    except OSError:
        return ("mtime", 0.0)


def _denul(data: bytes) -> bytes:
    # translate, not replace: 0.35 ms per MiB of NULs against 11 ms
    return data.translate(None, b"\0") if b"\0" in data else data


def _past_hole(fh: BinaryIO, pos: int) -> int:
    """After a block of NULs: jump to the next data if the file has a hole here (a crash's
    NUL run is usually sparse: 3 GB crossed without reading it). Where the file system
    cannot say (or for gzip), ``pos`` as it is."""
    if isinstance(fh, gzip.GzipFile) or not hasattr(os, "SEEK_DATA"):
        return pos
    try:
        nxt = os.lseek(fh.fileno(), pos, os.SEEK_DATA)
    except OSError as exc:
        if exc.errno != errno.ENXIO:      # SEEK_DATA unsupported here: read on
            return pos
        nxt = os.fstat(fh.fileno()).st_size       # a hole up to the end
    if nxt > pos:
        fh.seek(nxt)
        return nxt
    return pos


class FileReader:
    """Reads new complete lines of a log file into a LineFeeder, across rotations."""

    def __init__(self, path: str, feeder: LineFeeder, deadline: Optional[Deadline] = None):
        self.path = path
        self.feeder = feeder
        self.deadline = deadline
        self.long_lines = 0               # lines longer than MAX_LINE, skipped
        self.long_head = b""              # the first one's head
        self.stopped_at: Optional[int] = None   # the deadline stopped reading at this offset

    def notes(self) -> list[str]:
        """What the reading skipped or left for the next run, for the check's long output."""
        out = []
        if self.long_lines:
            sample = self.long_head[:60].decode("utf-8", "replace").replace("\0", "")
            out.append(f"skipped {self.long_lines} line(s) longer than "
                       f"{linebound.MAX_LINE // 1024} KiB (first begins {sample!r})")
        if self.stopped_at is not None:
            out.append(f"stopped reading {self.path} at the deadline (offset "
                       f"{self.stopped_at}): the rest is read next run")
        return out

    def _read_from(self, fh: BinaryIO, offset: int, final: bool) -> int:
        """Feed complete lines from ``offset``; return the offset after the last one fed.
        ``final``: a rotated file no one writes to any more — its unterminated tail counts.

        Bounded (linebound.MAX_LINE): a longer line is skipped and counted, NUL bytes (the
        hole a crash leaves) are dropped, and reading stops at the deadline. The offset moves
        past NULs and past a line being skipped even when the run ends inside them, so a
        200 MB hole is crossed over a few runs instead of timing out every one."""
        if isinstance(fh, gzip.GzipFile):
            remaining = offset
            while remaining > 0:
                got = fh.read(min(CHUNK, remaining))
                if not got:
                    break
                remaining -= len(got)
        else:
            fh.seek(offset)
        pos = offset              # after the last byte accounted for
        rest = b""                # the partial line so far, without NULs
        pending = 0               # raw bytes read into it (or into the line being skipped)
        skipping = False
        while True:
            if self.deadline is not None and self.deadline.expired():
                self.stopped_at = pos
                break
            chunk = fh.read(CHUNK)
            if not chunk:
                break
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                head = chunk[:nl + 1]
                if skipping:      # the skipped line ends here
                    block = _denul(head[head.find(b"\n") + 1:])
                else:
                    block = rest + _denul(head)
                self.feeder.feed_block(self._cut_long(block))
                pos += pending + len(head)
                chunk, rest, pending, skipping = chunk[nl + 1:], b"", 0, False
            pending += len(chunk)
            if not skipping:
                rest += _denul(chunk)
                if len(rest) > linebound.MAX_LINE:
                    self._long_line(rest[:linebound.HEAD])
                    rest, skipping = b"", True
            if not rest:          # only NULs, or a line being skipped: nothing to lose
                pos += pending
                pending = 0
                if not skipping and not chunk.strip(b"\0"):
                    pos = _past_hole(fh, pos)
        if final and rest:
            self.feeder.feed_block(self._cut_long(rest))
            pos += pending
        return pos

    def _long_line(self, head: bytes) -> None:
        self.long_lines += 1
        self.long_head = self.long_head or head

    def _cut_long(self, block: bytes) -> bytes:
        """``block`` (complete lines) without its lines longer than MAX_LINE, found cheaply:
        a line that long covers a whole probe window of MAX_LINE / 2 without a newline."""
        limit = linebound.MAX_LINE
        if len(block) <= limit:
            return block
        step = limit // 2
        parts = []
        start = k = 0
        n = len(block)
        while k + step <= n:
            if block.find(b"\n", k, k + step) >= 0:
                k += step
                continue
            ls = block.rfind(b"\n", 0, k) + 1
            le = block.find(b"\n", k + step)
            le = n - 1 if le < 0 else le
            if le + 1 - ls > limit + 1:
                parts.append(block[start:ls])
                self._long_line(block[ls:ls + linebound.HEAD])
                start = le + 1
            k = le + 1
        if start == 0:
            return block
        parts.append(block[start:])
        return b"".join(parts)

    def _window_offset(self, fh: BinaryIO, size: int, since: float) -> int:
        """Binary search for the first line at or after ``since`` (lines in order of time);
        lands on a line start at most one probe block before it."""
        clock = self.feeder.clock
        lo, hi = 0, size
        while hi - lo > 65536:
            mid = (lo + hi) // 2
            fh.seek(mid)
            fh.readline(linebound.MAX_LINE)
            ts = None
            for _ in range(50):
                line = fh.readline(linebound.MAX_LINE)
                if not line:
                    break
                ts = clock.parse(line)           # any timestamp style
                if ts is not None:
                    break
            if ts is None or ts >= since:
                hi = mid
            else:
                lo = mid
        if lo == 0:
            return 0
        fh.seek(lo)
        fh.readline(linebound.MAX_LINE)
        return fh.tell()

    def _first_ts(self, path: str) -> Optional[float]:
        try:
            with _open_log(path) as fh:
                for _ in range(50):
                    line = fh.readline(linebound.MAX_LINE)
                    if not line:
                        return None
                    ts = self.feeder.clock.parse(line)
                    if ts is not None:
                        return ts
        except (MonitorError, OSError, EOFError, gzip.BadGzipFile):
            return None
        return None

    def first_run(self, since: float) -> Position:
        """No position yet: read only the window — the tail of the newest rotated file when
        the window reaches back before the current file, then the current file from the
        window's start (found by binary search, not by reading the whole file)."""
        with _open_log(self.path) as fh:
            st = os.fstat(fh.fileno())
            first = self._first_ts(self.path)
            if first is None or first > since:
                older = rotated_candidates(self.path)
                if older:
                    with _open_log(older[0]) as ofh:
                        if isinstance(ofh, gzip.GzipFile):
                            self._read_from(ofh, 0, final=True)
                        else:
                            size = os.fstat(ofh.fileno()).st_size
                            self._read_from(ofh, self._window_offset(ofh, size, since), True)
                    self.feeder.tally.notes.append(f"first run also read {older[0]}")
            start = self._window_offset(fh, st.st_size, since)
            end = self._read_from(fh, start, final=False)
            if not self.feeder.name_seen and not isinstance(fh, gzip.GzipFile):
                self._name_before(fh, start)
            if not self.feeder.name_seen:
                self._name_in_rotated(since)
            return self._position(fh, st, end)

    def _name_in_rotated(self, since: float) -> None:
        """The look-back of _name_before in the newest rotated file (not compressed) before
        the window: a first run soon after a rotation finds an idle instance there."""
        older = rotated_candidates(self.path)
        if not older:
            return
        with _open_log(older[0]) as ofh:
            if not isinstance(ofh, gzip.GzipFile):
                self._name_before(ofh, self._window_offset(ofh, os.fstat(ofh.fileno()).st_size,
                                                           since))

    def _name_before(self, fh: BinaryIO, start: int) -> None:
        """A first run (or the first on a state written before the search existed) that read no
        line of --syslog-name: look for the name in the file before what it read (up to
        NAME_LOOKBACK, within the deadline), so that an instance idle since is not taken for a
        mistyped name. Nothing there is counted."""
        pos = max(0, start - NAME_LOOKBACK)
        fh.seek(pos)
        carry = b""
        while pos < start and not self.feeder.name_seen:
            if self.deadline is not None and self.deadline.expired():
                break
            chunk = fh.read(min(CHUNK, start - pos))
            if not chunk:
                break
            pos += len(chunk)
            # a tag split between two chunks is whole in the carried tail
            self.feeder.look_for_name(carry + chunk)
            carry = chunk[-256:]

    def _position(self, fh: BinaryIO, st: os.stat_result, offset: int) -> Position:
        fp_len = min(offset, FP_LEN)
        return Position(self.path, st.st_dev, st.st_ino, offset, _fingerprint(fh, fp_len),
                        fp_len)

    def _find_old(self, pos: Position, current_ino: tuple[int, int]) -> Optional[str]:
        """The rotated file that was ``pos`` when we last read it: same inode (a rename, maybe
        with late writes), else same first bytes (compressed, or copytruncate's copy)."""
        candidates = rotated_candidates(self.path)
        for cand in candidates:
            if cand.endswith(".gz"):
                continue
            try:
                st = os.stat(cand)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (pos.dev, pos.ino) and (st.st_dev, st.st_ino) != \
                    current_ino:
                return cand
        if pos.fp_len == 0:
            return None
        for cand in candidates:
            if _head_fp(cand, pos.fp_len) == pos.fp:
                return cand
        return None

    def incremental(self, pos: Position, since: float) -> Position:
        with _open_log(self.path) as fh:
            st = os.fstat(fh.fileno())
            same_file = (st.st_dev, st.st_ino) == (pos.dev, pos.ino)
            if (same_file and st.st_size >= pos.offset
                    and _fingerprint(fh, pos.fp_len) == pos.fp):
                end = self._read_from(fh, pos.offset, final=False)
                if self.feeder.look_back and not self.feeder.name_seen:
                    self._name_before(fh, pos.offset)      # a state from before the search
                return self._position(fh, st, end)
            # rotated (rename: new inode) or truncated in place (copytruncate)
            how = "renamed" if not same_file else "truncated (copytruncate)"
            old = self._find_old(pos, (st.st_dev, st.st_ino))
            tally = self.feeder.tally
            if old is None:
                tally.notes.append(f"{self.path} was {how} and the old file was not found "
                                   f"next to it: lines written to it after the last run are "
                                   f"not counted")
            else:
                with _open_log(old) as ofh:
                    self._read_from(ofh, pos.offset, final=True)
                tally.notes.append(f"{self.path} was {how}: finished {old} from offset "
                                   f"{pos.offset}")
                # rotations since then (newer names in the same scheme): whole, oldest first
                kind, rank = rotation_rank(old, self.path)
                newer = []
                for cand in rotated_candidates(self.path):
                    ck, cr = rotation_rank(cand, self.path)
                    if cand != old and ck == kind and cr > rank:
                        newer.append((cr, cand))
                for _, cand in sorted(newer):
                    with _open_log(cand) as cfh:
                        self._read_from(cfh, 0, final=True)
                    tally.notes.append(f"read rotated {cand} whole")
            end = self._read_from(fh, 0, final=False)
            return self._position(fh, st, end)
