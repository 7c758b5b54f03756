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
from collections.abc import Iterator

from .errors import MonitorError

# typing is imported for type checkers only: at run time it cost ~3 ms of every check's start-up
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

FORMAT_VERSION = 1
APP = "postfix-queue-monitor"


class StateError(MonitorError):
    """The state directory or a state file is unusable; the message names it and the fix."""


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


def instance_key(config_dir: str | None) -> str:
    """A file-name-safe key per Postfix instance (the config dir as given, or 'default')."""
    if config_dir is None:
        return "default"
    digest = hashlib.sha256(config_dir.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    tail = "".join(c if c.isalnum() else "_" for c in config_dir.rstrip("/").split("/")[-1])
    return f"{tail[:24] or 'root'}-{digest}"


class StateDir:
    """A private directory of JSON state files."""

    def __init__(self, path: str | None = None):
        self.path = os.path.abspath(path or default_state_dir())

    def ensure(self) -> None:
        """Create the directory 0700 (and missing parents) or check the existing one is ours,
        private and not a symlink."""
        try:
            os.makedirs(self.path, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create state dir {self.path}: {exc.strerror} "
                             f"(pass --state-dir DIR writable by this user)") from None
        st = os.lstat(self.path)
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise StateError(f"state dir {self.path} is a symlink or not a directory: "
                             f"remove it or pass another --state-dir")
        if st.st_uid != os.geteuid():
            raise StateError(f"state dir {self.path} belongs to uid {st.st_uid}, not to this user "
                             f"({os.geteuid()}): pass a --state-dir of its own")
        if st.st_mode & 0o077:
            try:
                os.chmod(self.path, 0o700)
            except OSError as exc:
                raise StateError(f"state dir {self.path} is not private and cannot be made so: "
                                 f"{exc.strerror}") from None

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
            raise StateError(f"cannot open lock file {lock_path}: {exc.strerror}") from None
        try:
            give_up = time.monotonic() + deadline_s
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= give_up:
                        raise StateError(
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

    def read(self, kind: str) -> dict[str, Any] | None:
        """The stored data, or None when there is none yet.

        A corrupt or foreign file is moved aside (so the next run starts a fresh baseline) and
        reported once as a StateError naming it.
        """
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                self._discard()
                raise StateError(f"state file {self.path} was a symlink: removed it; the next "
                                 f"run starts afresh") from None
            raise StateError(f"cannot read state file {self.path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as fh:
            raw = fh.read(64 * 1024 * 1024)
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("kind") != kind:
                raise ValueError("not a state file of this kind")
            if doc.get("version") != FORMAT_VERSION:
                raise ValueError(f"format version {doc.get('version')!r}")
            data = doc["data"]
            if not isinstance(data, dict):
                raise ValueError("no data")
        except (ValueError, KeyError) as exc:
            aside = self._discard()
            raise StateError(f"state file {self.path} is corrupt ({exc}): moved to {aside}; "
                             f"the next run starts a fresh baseline") from None
        return data

    def write(self, kind: str, data: dict[str, Any]) -> None:
        """Replace the file: temp file, fsync, rename, fsync the directory."""
        payload = json.dumps({"kind": kind, "version": FORMAT_VERSION, "data": data},
                             separators=(",", ":")).encode()
        fd, tmp = tempfile.mkstemp(prefix=f".{self.name}.", suffix=".tmp", dir=self.dir.path)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
                fh.flush()
                os.fsync(fh.fileno())
            os.rename(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dfd = os.open(self.dir.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _discard(self) -> str:
        aside = f"{self.path}.corrupt-{int(time.time())}"
        try:
            os.rename(self.path, aside)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            return "(removed)"
        return aside
