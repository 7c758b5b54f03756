"""The mail log, read: timestamps, the named regex table, the per-minute tally, the line feeder,
the rotation-aware file reader and the journald reader. The windowed measurement built on them
is ``postfix_queue_monitor.deliveries``.

Parsing is pure (bytes in, events out, time passed in); the readers remember where they
stopped.
"""

from __future__ import annotations

from .feeder import LineFeeder
from .journal import JournalReader
from .patterns import DELIVERY_AGENTS, UNMATCHED, Event, parse_line, parse_message, program_matcher
from .reader import FileReader, Position, rotated_candidates, rotation_rank
from .tally import Tally
from .timestamps import Clock, minute

__all__ = [
    "DELIVERY_AGENTS", "UNMATCHED", "Clock", "Event", "FileReader", "JournalReader", "LineFeeder",
    "Position", "Tally", "minute", "parse_line", "parse_message", "program_matcher",
    "rotated_candidates", "rotation_rank",
]
