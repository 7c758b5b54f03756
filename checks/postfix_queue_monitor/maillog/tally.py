"""Per-minute delivery counts and the reasons behind them, kept across runs in the state file."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import reasons
from ..errors import MonitorError
from ..metrics import DELIVERY_COUNTS
from .patterns import Event

MAX_SAMPLES = 5          # unmatched Postfix lines kept for -v
SAMPLE_LEN = 100         # bytes of an unreadable line kept as its example
TEXT_CHARS = 300         # characters of a reason text kept as its class's example (-v)


@dataclass
class Tally:
    """Per-minute buckets: ``{minute: [sent, bounced, expired, deferred, {bounce class: n},
    {deferral class: n}]}``, plus the last reason text per class and this run's parse notes."""
    buckets: dict[int, list[Any]] = field(default_factory=dict)
    texts: dict[str, list[Any]] = field(default_factory=dict)    # "b:class" -> [text, minute]
    since: int = 0                # nothing older than this minute is kept
    lines: int = 0                # lines read this run
    events: int = 0
    unmatched: int = 0
    unmatched_samples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Postfix lines whose timestamp no style reads, kept in the state while the window lasts
    #: (their own time is unknown: the minute they were read in stands for it):
    #: [lines, of which status lines, an example line, minute last seen]
    odd: list[Any] = field(default_factory=lambda: [0, 0, "", 0])

    #: bucket position of each count (the registry's order)
    INDEX = {name: i for i, name in enumerate(DELIVERY_COUNTS)}

    def add(self, ev: Event) -> None:
        idx = self.INDEX.get(ev.kind)
        if idx is None:           # probes and unknown statuses count nowhere
            return
        self.count(int(ev.ts // 60 * 60), idx, ev.text)

    def count(self, mi: int, idx: int, text: str) -> None:
        """One recipient (or expired message) in minute ``mi``: idx 0 sent, 1 bounced,
        2 expired, 3 deferred."""
        if mi < self.since:
            return
        b = self.buckets.get(mi)
        if b is None:
            b = self.buckets[mi] = [0, 0, 0, 0, {}, {}]
        b[idx] += 1
        self.events += 1
        if idx in (1, 3):
            cls = reasons.classify(text)
            classes = b[4 if idx == 1 else 5]
            classes[cls] = classes.get(cls, 0) + 1
            key = f"{'b' if idx == 1 else 'd'}:{cls}"
            old = self.texts.get(key)
            if old is None or old[1] <= mi:
                self.texts[key] = [example(text), mi]

    def unmatched_line(self, line: bytes) -> None:
        self.unmatched += 1
        if len(self.unmatched_samples) < MAX_SAMPLES:
            self.unmatched_samples.append(line.rstrip(b"\r\n")[:200].decode("utf-8", "replace"))

    def unreadable_line(self, line: bytes, status: bool, now: float) -> None:
        """A Postfix line whose timestamp is in no style the Clock reads (``status``: it was a
        delivery status or expiry line, a count lost)."""
        odd = self.odd
        odd[0] += 1
        odd[1] += 1 if status else 0
        if not odd[2]:
            odd[2] = line.rstrip(b"\r\n")[:SAMPLE_LEN].decode("utf-8", "replace")
        odd[3] = int(now // 60 * 60)

    def prune(self, since: int) -> None:
        self.since = since
        if self.odd[0] and self.odd[3] < since:
            self.odd = [0, 0, "", 0]
        for mi in [m for m in self.buckets if m < since]:
            del self.buckets[mi]
        for key in [k for k, v in self.texts.items() if v[1] < since]:
            del self.texts[key]

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {"buckets": {str(k): v for k, v in sorted(self.buckets.items())},
                               "texts": self.texts}
        if self.odd[0]:
            out["unreadable"] = self.odd
        return out

    @classmethod
    def load(cls, data: dict[str, Any]) -> Tally:
        t = cls()
        try:
            for k, v in data.get("buckets", {}).items():
                if not (isinstance(v, list) and len(v) == 6):
                    raise ValueError(k)
                t.buckets[int(k)] = [int(v[0]), int(v[1]), int(v[2]), int(v[3]),
                                     dict(v[4]), dict(v[5])]
            t.texts = {str(k): [str(v[0]), int(v[1])]
                       for k, v in data.get("texts", {}).items()}
            odd = data.get("unreadable")
            if odd is not None:
                t.odd = [int(odd[0]), int(odd[1]), str(odd[2]), int(odd[3])]
        except (TypeError, ValueError, IndexError, AttributeError) as exc:
            raise MonitorError(f"bounce-rate state holds malformed counts ({exc}): delete the "
                               f"state file or pass another --state-dir") from None
        return t


def example(text: str) -> str:
    """A reason text as kept for -v: at most TEXT_CHARS characters, ending in "…" when it was
    shortened (reasons.classify bounds its own cost: it reads a long text's head and tail)."""
    return text if len(text) <= TEXT_CHARS else text[:TEXT_CHARS - 1] + "…"
