"""The only module that spawns processes (postqueue, journalctl).

Every child runs in its own session with a deadline; when the deadline passes, or the caller
leaves the ``with`` block early (nagiosplugin's timeout, an exception), the child's whole process
group is killed and reaped, so no check leaves an orphan behind. Never through a shell.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence

from .errors import MonitorError
from .linebound import bounded_lines


class ChildTimeout(MonitorError):
    """The child did not finish before its deadline and was killed."""


class Child:
    """A running program whose stdout is read line by line (bytes), never buffered whole."""

    def __init__(self, argv: Sequence[str], timeout: float, env: dict[str, str] | None = None):
        self.argv = list(argv)
        self.timeout = timeout
        self.expired = False
        self._stderr = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                start_new_session=True,
                close_fds=True,
                env=env,
            )
        except FileNotFoundError:
            self._stderr.close()
            raise MonitorError(f"{self.argv[0]} not found") from None
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

    def lines(self, on_long: Callable[[bytes], None] | None = None) -> Iterator[bytes]:
        """The child's stdout, one line at a time, as it arrives; with ``on_long``, lines
        longer than linebound.MAX_LINE are skipped and passed (their head) to it instead."""
        assert self.proc.stdout is not None
        if on_long is None:
            yield from self.proc.stdout
        else:
            yield from bounded_lines(self.proc.stdout, on_long)
        if self.expired:
            raise ChildTimeout(self._timeout_message())

    def finish(self) -> tuple[int, str]:
        """Wait for the child; return its exit code and its stderr as text."""
        assert self.proc.stdout is not None
        # drain anything the caller did not read, so the child cannot block on a full pipe
        for _ in self.proc.stdout:
            pass
        rc = self.proc.wait()
        self._timer.cancel()
        if self.expired:
            raise ChildTimeout(self._timeout_message())
        self._stderr.seek(0)
        err = self._stderr.read(65536).decode("utf-8", "replace")
        return rc, err

    def _timeout_message(self) -> str:
        name = os.path.basename(self.argv[0])
        return (f"{name} did not finish within {self.timeout:g} s and was killed "
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
