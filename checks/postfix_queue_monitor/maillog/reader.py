"""The rotation-aware log file reader: where the last run stopped, and finding the rest after
a rename, a compression or a copytruncate."""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from typing import Any, BinaryIO, Optional

from ..errors import MonitorError
from .feeder import LineFeeder

CHUNK = 1024 * 1024
FP_LEN = 1024            # bytes of a log's head that identify it across renames


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


class FileReader:
    """Reads new complete lines of a log file into a LineFeeder, across rotations."""

    def __init__(self, path: str, feeder: LineFeeder):
        self.path = path
        self.feeder = feeder

    def _read_from(self, fh: BinaryIO, offset: int, final: bool) -> int:
        """Feed complete lines from ``offset``; return the offset after the last one fed.
        ``final``: a rotated file no one writes to any more — its unterminated tail counts."""
        if isinstance(fh, gzip.GzipFile):
            remaining = offset
            while remaining > 0:
                got = fh.read(min(CHUNK, remaining))
                if not got:
                    break
                remaining -= len(got)
        else:
            fh.seek(offset)
        pos = offset
        rest = b""
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                break
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            if cut:
                self.feeder.feed_block(data[:cut])
                pos += cut
                rest = data[cut:]
            else:
                rest = data
        if rest and final:
            self.feeder.feed_block(rest)
            pos += len(rest)
        return pos

    def _window_offset(self, fh: BinaryIO, size: int, since: float) -> int:
        """Binary search for the first line at or after ``since`` (lines in order of time);
        lands on a line start at most one probe block before it."""
        clock = self.feeder.clock
        lo, hi = 0, size
        while hi - lo > 65536:
            mid = (lo + hi) // 2
            fh.seek(mid)
            fh.readline()
            ts = None
            for _ in range(50):
                line = fh.readline()
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
        fh.readline()
        return fh.tell()

    def _first_ts(self, path: str) -> Optional[float]:
        try:
            with _open_log(path) as fh:
                for _ in range(50):
                    line = fh.readline()
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
            return self._position(fh, st, end)

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
