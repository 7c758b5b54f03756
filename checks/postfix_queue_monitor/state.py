"""The one place that reads and writes state files: atomic, locked, versioned, private.

nagiosplugin's Cookie rewrites its file in place (a crash mid-write loses it); here every write
goes to a fresh temporary file that is fsynced and renamed over the old one, so a reader sees the
old state or the new one, never half of either. A per-file lock (flock on a sibling ``.lock``)
serialises read-modify-write across concurrent runs, with a deadline instead of a hang. Files are
0600 in a 0700 directory owned by the running user; symlinks are refused (O_NOFOLLOW).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator

from .errors import MonitorError

# typing is imported for type checkers only: at run time it cost ~3 ms of every check's start-up
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FORMAT_VERSION = 1
APP = "postfix-queue-monitor"


class StateError(MonitorError):
    """The state directory or a state file is unusable; the message names it and the fix."""


class StateBusy(StateError):
    """Another run held the state file's lock past the deadline."""


def default_state_dir() -> str:
    """A per-user directory: $XDG_STATE_HOME or ~/.local/state when the home is writable,
    else /var/tmp/postfix-queue-monitor-<uid> (daemon users often have no writable home)."""
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg and os.path.isabs(xdg):
        return os.path.join(xdg, APP)
    home = os.path.expanduser("~")
    if home and home != "~" and os.path.isdir(home) and os.access(home, os.W_OK):
        return os.path.join(home, ".local", "state", APP)
    return os.path.join("/var/tmp", f"{APP}-{os.geteuid()}")


def write_fix(exc: OSError, directory: str) -> str:
    """What to do about a failed write or create in ``directory``, by errno."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"free space on the file system of {directory} or raise the user's quota"
    if exc.errno == errno.EROFS:
        return (f"{directory} is on a read-only file system: pass --state-dir DIR on a "
                f"writable one")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (f"make {directory} writable by uid {os.geteuid()} or pass --state-dir DIR "
                f"writable by this user")
    return "pass --state-dir DIR writable by this user"


def instance_key(config_dir: str | None) -> str:
    """A file-name-safe key per Postfix instance (the config dir as given, or 'default')."""
    if config_dir is None:
        return "default"
    digest = hashlib.sha256(config_dir.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    tail = "".join(c if c.isalnum() else "_" for c in config_dir.rstrip("/").split("/")[-1])
    return f"{tail[:24] or 'root'}-{digest}"


#: The names of the files the programs keep in a state dir start with one of these
#: (docs/reference.md, State files); locks, temporary files (".name.XXXX.tmp") and moved-aside
#: copies (".corrupt-<time>") keep the prefix.
STATE_PREFIXES = ("growth-", "bounce-", "zabbix-spool-", "counters-", "listing-")


class StateDir:
    """A private directory of JSON state files."""

    def __init__(self, path: str | None = None):
        self.path = os.path.abspath(path or default_state_dir())

    def ensure(self) -> None:
        """Create the directory 0700 (and missing parents 0755, whatever the umask: makedirs
        would make them 0777 under umask 000) or check the existing one is ours, private and
        not a symlink."""
        missing = []
        head = self.path
        while head and not os.path.lexists(head):
            missing.append(head)
            head = os.path.dirname(head)
        try:
            for i, d in enumerate(reversed(missing)):
                last = i == len(missing) - 1
                try:
                    os.mkdir(d, 0o700 if last else 0o755)   # the umask can only narrow it
                except FileExistsError:
                    continue          # a concurrent run made it
        except OSError as exc:
            raise StateError(f"cannot create state dir {self.path}: {exc.strerror} "
                             f"({write_fix(exc, self.path)})") from None
        st = os.lstat(self.path)
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise StateError(f"state dir {self.path} is a symlink or not a directory: "
                             f"remove it or pass another --state-dir")
        if st.st_uid != os.geteuid():
            raise StateError(f"state dir {self.path} belongs to uid {st.st_uid}, not to this user "
                             f"({os.geteuid()}): pass a --state-dir of its own")
        if st.st_mode & 0o077:
            other = self._foreign_entry()
            if other is not None:
                # a shared directory (--state-dir /tmp, /var/lib as root): chmod 0700 would
                # lock every other user and daemon out of it
                raise StateError(f"state dir {self.path} is not private (mode "
                                 f"{stat.S_IMODE(st.st_mode):04o}) and holds files that are not "
                                 f"this program's ({other!r}), so it is left as it is: pass a "
                                 f"--state-dir of its own (e.g. "
                                 f"{os.path.join(self.path, 'postfix-queue-monitor')})")
            try:
                os.chmod(self.path, 0o700)
            except OSError as exc:
                raise StateError(f"state dir {self.path} is not private and cannot be made so: "
                                 f"{exc.strerror}") from None

    def _foreign_entry(self) -> str | None:
        """The first entry that is not one of our state files (or their locks, temporary and
        moved-aside copies), or None: only a directory of our own may be made private."""
        try:
            names = os.listdir(self.path)
        except OSError:
            return None
        for name in sorted(names):
            if not name.lstrip(".").startswith(STATE_PREFIXES):
                return name
        return None

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @contextlib.contextmanager
    def locked(self, name: str, deadline_s: float) -> Iterator[StateFile]:
        """Hold the lock of state file ``name`` (waiting at most ``deadline_s``)."""
        self.ensure()
        lock_path = self.file(name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StateError(f"lock file {lock_path} is a symlink: remove it") from None
            raise StateError(f"cannot open lock file {lock_path}: {exc.strerror} "
                             f"({write_fix(exc, self.path)})") from None
        try:
            give_up = time.monotonic() + deadline_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= give_up:
                        raise StateBusy(
                            f"state file {self.file(name)} is locked by another run for over "
                            f"{deadline_s:g} s: is a run hung? (lock {lock_path})") from None
                    time.sleep(0.02)
            yield StateFile(self, name)
        finally:
            os.close(fd)   # releases the lock


class StateFile:
    """One versioned JSON document, read and replaced atomically (hold its lock first)."""

    def __init__(self, directory: StateDir, name: str):
        self.dir = directory
        self.name = name
        self.path = directory.file(name)

    def read(self, kind: str,
             validate: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
             lost: str = "its contents") -> dict[str, Any] | None:
        """The stored data (passed through ``validate``, see state_schema), or None when there
        is none yet.

        A corrupt, foreign or wrongly typed file is moved aside (so the next run starts
        afresh) and reported once as a StateError naming it and what was ``lost``.
        """
        try:
            # O_NONBLOCK: a FIFO planted here must not hang the run
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                aside = self._discard()
                raise StateError(f"state file {self.path} was a symlink (not followed): "
                                 f"{aside}; the next run starts afresh") from None
            raise StateError(f"cannot read state file {self.path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                aside = self._discard()
                raise StateError(f"state file {self.path} is not a regular file: {aside}; "
                                 f"the next run starts afresh")
            try:
                raw = fh.read(64 * 1024 * 1024)
            except OSError as exc:
                raise StateError(f"cannot read state file {self.path}: {exc.strerror}") from None
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("kind") != kind:
                raise ValueError("not a state file of this kind")
            if doc.get("version") != FORMAT_VERSION:
                raise ValueError(f"format version {doc.get('version')!r}")
            data = doc["data"]
            if not isinstance(data, dict):
                raise ValueError("no data")
            if validate is not None:
                data = validate(data)
        except (ValueError, KeyError, RecursionError) as exc:
            # RecursionError: JSON nested thousands deep; ValueError also covers bad UTF-8
            # and integers too long to convert
            why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
            # the reason may quote the file (a key holding a line break): one line, always
            why = "".join(c if c.isprintable() else repr(c)[1:-1] for c in why)
            aside = self._discard()
            raise StateError(f"state file {self.path} is corrupt ({why}): {aside}; {lost} "
                             f"lost, the next run starts afresh") from None
        return data

    def write(self, kind: str, data: dict[str, Any]) -> None:
        """Replace the file: temp file, fsync, rename, fsync the directory."""
        payload = json.dumps({"kind": kind, "version": FORMAT_VERSION, "data": data},
                             separators=(",", ":")).encode()
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.name}.", suffix=".tmp",
                                       dir=self.dir.path)
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.rename(tmp, self.path)
            tmp = None
            dfd = os.open(self.dir.path, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as exc:
            # read-only file system, full disk, quota, lost permission: one line with the fix
            raise StateError(f"cannot write state file {self.path}: {exc.strerror} "
                             f"({write_fix(exc, self.dir.path)})") from None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def _discard(self) -> str:
        """Move the file aside (kept for a post-mortem); say where, for the one-line message."""
        aside = base = f"{self.path}.corrupt-{int(time.time())}"
        n = 1
        while os.path.lexists(aside):     # a second one within the second: keep both
            n += 1
            aside = f"{base}.{n}"
        try:
            os.rename(self.path, aside)
        except OSError as exc:
            try:
                os.unlink(self.path)
            except OSError:
                return f"cannot move it aside ({exc.strerror}): remove it by hand"
            return "removed it"
        return f"moved it to {aside}"
