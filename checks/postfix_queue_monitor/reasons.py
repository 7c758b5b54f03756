"""Deferral reason classes (CONTRACT.md): every delay text falls in exactly one class.

Placeholder table: the full data-driven classifier replaces it (issue 6); the interface
(``CLASSES``, ``classify``) stays.
"""

from __future__ import annotations

import re
from functools import lru_cache

CLASSES: tuple[str, ...] = (
    "loop", "tls", "auth", "dns", "rate_limited", "greylisted", "mailbox_full",
    "recipient_unknown", "refused", "timeout", "lost_connection", "policy", "transport", "other",
)

_SUSPENDED = re.compile(r"^\s*delivery temporarily suspended:\s*", re.I)
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("loop", re.compile(r"loops back to myself|mail forwarding loop|too many hops", re.I)),
    ("tls", re.compile(r"TLS is required|Cannot start TLS|STARTTLS command first|"
                       r"certificate verification failed", re.I)),
    ("auth", re.compile(r"SASL authentication failed|authentication required|5\.7\.8", re.I)),
    ("dns", re.compile(r"Host or domain name not found|Name service error", re.I)),
    ("rate_limited", re.compile(r"rate limit|too many (connections|messages)|server busy", re.I)),
    ("greylisted", re.compile(r"greylist|graylist|try again later", re.I)),
    ("mailbox_full", re.compile(r"mailbox full|quota exceeded|[45]\.2\.2", re.I)),
    ("recipient_unknown", re.compile(r"user unknown|no such user|[45]\.1\.1\b", re.I)),
    ("refused", re.compile(r"Connection refused|No route to host|Network is unreachable", re.I)),
    ("timeout", re.compile(r"timed out", re.I)),
    ("lost_connection", re.compile(r"lost connection with", re.I)),
    ("policy", re.compile(r"5\.7\.\d|4\.7\.1|blocked|blacklist|spam|relay access denied", re.I)),
    ("transport", re.compile(r"mail transport unavailable|unknown mail transport error", re.I)),
)


@lru_cache(maxsize=4096)
def classify(text: str) -> str:
    """The class of one delay or bounce text (cached: queues repeat a few texts many times)."""
    text = _SUSPENDED.sub("", text or "")
    for name, pattern in _PATTERNS:
        if pattern.search(text):
            return name
    return "other"
