"""One time budget per run: the ``-t`` seconds, counted on the monotonic clock from the start,
and the shares of it a child process or a lock wait may take.

Every part that waits (a postqueue or journalctl child, a state lock) asks the run's Deadline
for its timeout instead of computing its own share of ``-t``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: The least a child is given, even when the budget is spent (it then fails fast and says so).
MIN_CHILD = 0.2
#: The least a lock wait is given.
MIN_LOCK = 0.5


class Deadline:
    """``seconds`` from now on ``clock`` (monotonic; injectable for tests)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self.end = clock() + seconds

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.end - self._clock())

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def child_timeout(self) -> float:
        """A child's timeout: what is left minus a reserve (a fifth, at most a second) so the
        check can still name the hung part before nagiosplugin's own alarm at ``-t``."""
        left = self.remaining()
        return max(MIN_CHILD, left - min(1.0, left * 0.2))

    def lock_timeout(self, share: float = 0.5) -> float:
        """How long a state lock may be waited for: ``share`` of what is left."""
        return max(MIN_LOCK, self.remaining() * share)

    def __repr__(self) -> str:
        return f"Deadline({self.seconds:g}s, {self.remaining():.3f}s left)"
