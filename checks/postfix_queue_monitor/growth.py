"""Deferred-queue growth in messages per hour, shared by the growth check, Zabbix and Prometheus.

growth = (deferred_now − deferred_ref) / (t_now − t_ref) × 3600, where ref is the oldest stored
sample inside the window, or, when none is inside it, the newest older one (docs/reference.md).
Samples live per Postfix instance in the state dir; times keep sub-second resolution.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable

from . import state_schema
from .state import StateDir, instance_key

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .deadline import Deadline

KIND = "growth"
MAX_SAMPLES = 5000
Sample = tuple[float, int]


#: rate: messages per hour (None: no baseline yet); ref: the reference sample; note: why there
#: is no rate, or what was repaired. (collections' namedtuple: no dataclasses/typing import.)
Growth = namedtuple("Growth", "rate ref note", defaults=("",))


#: A consumer (a check or sender with its --window) not seen for this long no longer holds
#: samples back: its window stops counting for pruning.
STALE_CONSUMER = 2 * 86400.0


def state_name(config_dir: str | None) -> str:
    """The growth samples' file of one Postfix instance (state.STATE_PREFIXES holds its prefix)."""
    return f"growth-{instance_key(config_dir)}.json"


def min_interval(window: float) -> float:
    """The shortest time between the reference sample and now that gives a rate: a minute, or
    a quarter of a shorter window. Below it a difference of one message 0.2 s apart would read
    as +18,000/h (a Nagios check and the Zabbix sender sharing the state dir often run in the
    same second)."""
    return min(60.0, window / 4)


def compute_growth(samples: list[Sample], now: float, deferred: int, window: float,
                   previous: tuple[float, float] | None = None,
                   wall: float | None = None) -> Growth:
    """The growth against the reference sample of the window rule (pure).

    ``now`` is the time of this count (its listing's), ``wall`` the clock when judging
    (default ``now``). The reference is the oldest sample inside the window, or the newest
    older one when none is inside or the inside one is closer than :func:`min_interval`. When
    even that is too close, ``previous`` (time, rate) of this window is reused if it is inside
    the window, else there is no rate yet. Samples after ``now`` are no reference: those up to
    ``wall`` come from runs whose listing was newer (kept), those after it from a clock that
    went backwards (ignored here and dropped by ``prune``).
    """
    wall = now if wall is None else wall
    past = [s for s in samples if s[0] < now]
    dropped = sum(1 for s in samples if s[0] > wall)
    if not past:
        note = ("clock went backwards: new baseline" if dropped else "waiting for baseline")
        return Growth(None, None, note)
    start = now - window
    need = min_interval(window)
    inside = [s for s in past if s[0] >= start]
    older = [s for s in past if s[0] < start]
    ref = min(inside) if inside else max(past)
    if now - ref[0] < need and older:
        ref = max(older)
    gap = now - ref[0]
    if gap < need:
        if previous is not None and start <= previous[0] <= now:
            return Growth(previous[1], None, f"rate of {now - previous[0]:.0f} s ago: samples "
                                             f"only {gap:.1f} s apart")
        return Growth(None, None, f"waiting: samples only {gap:.1f} s apart, a rate needs "
                                  f"{need:g} s")
    rate = (deferred - ref[1]) / gap * 3600.0
    note = f"clock went backwards: {dropped} newer sample(s) dropped" if dropped else ""
    return Growth(rate, ref, note)


def prune(samples: list[Sample], now: float, window: float) -> list[Sample]:
    """Keep what a later run may need: samples inside the window plus the newest older one
    (``window``: the longest of the consumers sharing the file)."""
    past = sorted({s for s in samples if s[0] <= now})     # a reused listing's sample: once
    start = now - window
    older = [s for s in past if s[0] < start]
    kept = ([older[-1]] if older else []) + [s for s in past if s[0] >= start]
    return kept[-MAX_SAMPLES:]


def consumers(windows: dict[float, float], now: float, window: float) -> dict[float, float]:
    """The windows of the runs sharing this file, with when each was last used: this run's
    added, the ones unused for STALE_CONSUMER (and twice their window) dropped."""
    out = {w: t for w, t in windows.items()
           if t <= now and now - t <= max(STALE_CONSUMER, 2 * w)}
    out[window] = now
    return out


def measure_growth(state_dir: str | None, config_dir: str | None, deferred: int, taken: float,
                   clock: Callable[[], float], window: float,
                   lock_deadline: float = 3.0, record: bool = True) -> Growth:
    """Record this run's sample and return the growth (shared with the Zabbix sender).

    The sample is (``taken``, ``deferred``): the time of the listing the count comes from, so
    a listing shared with --listing-max-age (up to that old) counts at its own time, and every
    run that reuses it gives the lister's rate and adds no sample of its own. ``clock`` is read
    under the lock: a stored sample newer than ``taken`` but not than the clock is an
    overlapping run's (merged in order), one newer than the clock is from a clock that went
    backwards. Samples are kept for the longest window of any recent consumer (a 15-minute
    sender must not prune what a 1-hour check needs). ``record``: False for a cut listing,
    whose count is a lower bound and never a sample."""
    with StateDir(state_dir).locked(state_name(config_dir), lock_deadline) as sf:
        wall = clock()
        now = min(taken, wall)
        data = sf.read(KIND, state_schema.growth, "the growth samples") or {}
        samples = data.get("samples", [])
        rates = data.get("rates", {})
        growth = compute_growth(samples, now, deferred, window, rates.get(window), wall)
        if not record:
            return growth
        windows = consumers(data.get("windows", {}), wall, window)
        keep = max(windows)
        if growth.ref is not None:
            rates[window] = (now, growth.rate)
        rates = {w: r for w, r in rates.items() if w in windows and r[0] <= wall}
        sf.write(KIND, {
            "samples": [list(s) for s in prune([*samples, (now, deferred)], wall, keep)],
            "windows": {repr(w): t for w, t in windows.items()},
            "rates": {repr(w): list(r) for w, r in rates.items()}})
    return growth


def exposed_rate(state_dir: str | None, config_dir: str | None, deferred: int, taken: float,
                 clock: Callable[[], float], window: float, deadline: Deadline) -> float | None:
    """The growth a front end exposes (Zabbix document, Prometheus): rounded as the growth
    check's perfdata, None while there is no baseline; the lock may take a third of the run."""
    rate = measure_growth(state_dir, config_dir, deferred, taken, clock, window,
                          lock_deadline=deadline.lock_timeout(1 / 3)).rate
    return None if rate is None else round(float(rate), 2)
