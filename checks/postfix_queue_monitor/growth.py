"""Deferred-queue growth in messages per hour, shared by the growth check and the Zabbix sender.

growth = (deferred_now − deferred_ref) / (t_now − t_ref) × 3600, where ref is the oldest stored
sample inside the window, or, when none is inside it, the newest older one (docs/reference.md).
Samples live per Postfix instance in the state dir; times keep sub-second resolution.
"""

from __future__ import annotations

from collections import namedtuple

from .state import StateDir, instance_key

KIND = "growth"
MAX_SAMPLES = 5000
Sample = tuple[float, int]


#: rate: messages per hour (None: no baseline yet); ref: the reference sample; note: why there
#: is no rate, or what was repaired. (collections' namedtuple: no dataclasses/typing import.)
Growth = namedtuple("Growth", "rate ref note", defaults=("",))


def compute_growth(samples: list[Sample], now: float, deferred: int, window: float) -> Growth:
    """The growth against the reference sample of the contract's window rule (pure).

    Samples from the future (the clock went backwards) cannot be a reference: they are ignored
    here and dropped by ``prune``.
    """
    past = [s for s in samples if s[0] < now]
    dropped = len(samples) - len(past)
    if not past:
        note = ("clock went backwards: new baseline" if dropped else "waiting for baseline")
        return Growth(None, None, note)
    start = now - window
    inside = [s for s in past if s[0] >= start]
    ref = min(inside) if inside else max(past)
    rate = (deferred - ref[1]) / (now - ref[0]) * 3600.0
    note = f"clock went backwards: {dropped} newer sample(s) dropped" if dropped else ""
    return Growth(rate, ref, note)


def prune(samples: list[Sample], now: float, window: float) -> list[Sample]:
    """Keep what a later run may need: samples inside the window plus the newest older one."""
    past = sorted(s for s in samples if s[0] <= now)
    start = now - window
    older = [s for s in past if s[0] < start]
    kept = ([older[-1]] if older else []) + [s for s in past if s[0] >= start]
    return kept[-MAX_SAMPLES:]


def _valid(sample: object) -> bool:
    return (isinstance(sample, list) and len(sample) == 2
            and isinstance(sample[0], (int, float)) and isinstance(sample[1], int))


def measure_growth(state_dir: str | None, config_dir: str | None, deferred: int, now: float,
                   window: float, lock_deadline: float = 3.0, record: bool = True) -> Growth:
    """Record this run's sample and return the growth (shared with the Zabbix sender)."""
    name = f"growth-{instance_key(config_dir)}.json"
    with StateDir(state_dir).locked(name, lock_deadline) as sf:
        data = sf.read(KIND) or {}
        samples = [(float(s[0]), int(s[1])) for s in data.get("samples", []) if _valid(s)]
        growth = compute_growth(samples, now, deferred, window)
        if not record:       # a cut listing's count is a lower bound: never a sample
            return growth
        sf.write(KIND, {"samples": [list(s) for s in prune([*samples, (now, deferred)], now,
                                                             window)]})
    return growth
