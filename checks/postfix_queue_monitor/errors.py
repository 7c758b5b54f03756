"""The one exception the checks turn into UNKNOWN with its message as the status line."""

from __future__ import annotations


class MonitorError(Exception):
    """A failure the administrator can fix; the message says how, in one line."""
