"""The only module that spawns processes (postqueue, journalctl).

Every child runs in its own process group with a deadline; when the deadline passes, or the
caller leaves the ``with`` block early (nagiosplugin's timeout, an exception), the child's whole
process group is killed and reaped. The child also gets a parent-death signal (SIGKILL): when
NRPE or Icinga kill the check on their own timeout (SIGKILL to the check's process group, which
the child is not in), the child dies with the check instead of living on with PPID 1. It stays
in the check's session (no ``setsid``), so a terminal hangup reaches it too. Never through a
shell.

Lines are read with a length bound (:data:`MAX_LINE`): a longer line is skipped in chunks and
counted, so a child printing an endless line costs bounded memory and still ends at the deadline.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence

from . import linebound
from .errors import MonitorError

# typing is imported for type checkers only: at run time it cost ~3 ms of every check's start-up
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: The longest line a reader keeps (bytes, newline included); longer lines are skipped and
#: counted in ``Child.long_lines``. postqueue -j's longest real lines (a message with a thousand
#: recipients and their delay reasons) stay far below it.
MAX_LINE = linebound.MAX_LINE

PR_SET_PDEATHSIG = 1
_prctl: Any = None         # libc's prctl once loaded; False where there is none


def _libc_prctl() -> Any:
    """libc's prctl, loaded in the parent (not between fork and exec); None off Linux."""
    global _prctl
    if _prctl is None:
        try:
            import ctypes  # noqa: PLC0415 - only where a child is spawned
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
        except (OSError, AttributeError):  # pragma: no cover - not Linux
            _prctl = False
    return _prctl or None


def _own_group_dying_with(parent: int) -> Callable[[], None]:
    """A preexec_fn: a process group of the child's own (Popen's process_group needs Python
    3.11), and SIGKILL when the check dies (Linux PR_SET_PDEATHSIG, where libc has prctl)."""
    prctl = _libc_prctl()

    def setup() -> None:
        os.setpgid(0, 0)
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:  # the check died before the line above: follow it now
                os.kill(os.getpid(), signal.SIGKILL)
    return setup


def postfix_program(name: str) -> str:
    """A Postfix program (postqueue, postmulti) on PATH, else in /usr/sbin where Debian puts it:
    the PATH of nagios, NRPE and cron (/usr/bin:/bin) often lacks /usr/sbin."""
    return shutil.which(name) or f"/usr/sbin/{name}"


class ChildTimeout(MonitorError):
    """The child did not finish before its deadline and was killed."""


class Child:
    """A running program whose stdout is read line by line (bytes), never buffered whole."""

    def __init__(self, argv: Sequence[str], timeout: float, env: dict[str, str] | None = None,
                 missing: str = ""):
        """``missing``: what to do when the program is not found (said after "not found: ")."""
        self.argv = list(argv)
        self.timeout = timeout
        self.expired = False
        self.long_lines = 0          # lines over MAX_LINE, skipped
        self._stderr = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                preexec_fn=_own_group_dying_with(os.getpid()),
                close_fds=True,
                env=env,
            )
        except FileNotFoundError:
            self._stderr.close()
            raise MonitorError(f"{self.argv[0]} not found" + (f": {missing}" if missing
                                                               else "")) from None
        except PermissionError:
            self._stderr.close()
            raise MonitorError(f"{self.argv[0]} is not executable") from None
        except OSError as exc:
            self._stderr.close()
            raise MonitorError(f"cannot run {self.argv[0]}: {exc.strerror}") from None
        self._timer = threading.Timer(timeout, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.expired = True
        self.kill()

    def kill(self) -> None:
        """Kill the child's process group (postqueue may not fork, journalctl may page)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def lines(self, max_line: int = MAX_LINE, cut_ok: bool = False,
              on_long: Callable[[bytes], None] | None = None) -> Iterator[bytes]:
        """The child's stdout, one line at a time, as it arrives; lines longer than
        ``max_line`` are skipped and counted (``on_long`` gets each one's first ``max_line``
        bytes). At the deadline: ChildTimeout, or with ``cut_ok`` the lines end there (the last
        one dropped when the kill cut it in half) and the caller finds ``expired`` set."""
        assert self.proc.stdout is not None
        readline = self.proc.stdout.readline
        while True:
            line = readline(max_line)
            if not line:
                break
            if line[-1:] != b"\n":
                if len(line) >= max_line:       # too long: read on to its end, in chunks
                    self.long_lines += 1
                    if on_long is not None:
                        on_long(line)
                    while True:
                        rest = readline(max_line)
                        if not rest or rest[-1:] == b"\n":
                            break
                    continue
                if self.expired:                # half a line, cut by the kill
                    break
            yield line
        if self.expired and not cut_ok:
            raise ChildTimeout(self._timeout_message())

    def finish(self, cut_ok: bool = False) -> tuple[int, str]:
        """Wait for the child; return its exit code and its stderr as text (ChildTimeout at
        the deadline, unless ``cut_ok``: then the caller judges what it read)."""
        assert self.proc.stdout is not None
        # drain anything the caller did not read, so the child cannot block on a full pipe
        while self.proc.stdout.read(MAX_LINE):     # in chunks: a line may be endless
            pass
        rc = self.proc.wait()
        self._timer.cancel()
        if self.expired and not cut_ok:
            raise ChildTimeout(self._timeout_message())
        self._stderr.seek(0)
        err = self._stderr.read(65536).decode("utf-8", "replace")
        return rc, err

    def _timeout_message(self) -> str:
        name = os.path.basename(self.argv[0])
        return (f"{name} did not finish within {self.timeout:.1f} s and was killed "
                f"(raise -t, or look at why it hangs)")

    def close(self) -> None:
        self._timer.cancel()
        self.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL was sent
            pass
        self._stderr.close()

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
