"""What every check shares: the argument parser factory, thresholds and durations parsed at
argparse time, the UNKNOWN plumbing, and running a nagiosplugin Check.

argparse exits 2 on a bad option, which Nagios shows as CRITICAL; here every parser error is
UNKNOWN (3) with one line on stdout.
"""

from __future__ import annotations

import argparse
import functools
import logging
import math
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence

import nagiosplugin
from nagiosplugin.output import Output
from nagiosplugin.runtime import Runtime

from . import __version__, bounds, check_registry
from .errors import MonitorError

# typing is imported for type checkers only: at run time it cost ~3 ms of every check's start-up
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn

MAX_DURATION = 3650 * 86400.0
MAX_TIMEOUT = 86400
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*([smhdw]?)\s*$")

def parse_duration(text: str) -> float:
    """``900``, ``15m``, ``1.5h``, ``2d`` → seconds (> 0)."""
    m = _NUMBER.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (e.g. 900, 15m, 1h, 2d)")
    value = float(m[1]) * UNITS[m[2] or "s"]
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a duration must be above 0")
    if not value <= MAX_DURATION:       # also inf: 400 digits overflow a float
        raise argparse.ArgumentTypeError(f"{text!r}: a duration must be at most 3650d")
    return value


def parse_timeout(text: str) -> float:
    """``-t``: a duration of at most a day (the alarm and the child timers take no more:
    2**31 s overflowed signal.alarm, 1e11 s threading's timer)."""
    value = parse_duration(text)
    if value > MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"{text!r}: a timeout must be at most "
                                         f"{MAX_TIMEOUT} s (a day)")
    return value


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r}: must be at least {minimum}")
        return value
    return parse


def _number(text: str, durations: bool) -> str:
    m = _NUMBER.match(text)
    if not m or (m[2] and not durations):
        kind = "a number or a duration (30m, 1h, 2d)" if durations else "a number"
        raise ValueError(f"{text!r} is not {kind}")
    value = float(m[1]) * UNITS[m[2] or "s"]
    return str(int(value)) if value == int(value) else repr(value)


def parse_range(text: str, *, durations: bool = False, plain_is_upper: bool = False
                ) -> nagiosplugin.Range:
    """A Nagios range (``10``, ``10:``, ``~:10``, ``10:20``, ``@10:20``) as nagiosplugin.Range.

    ``durations`` lets each endpoint carry s/m/h/d. ``plain_is_upper`` reads a bare ``N`` as
    ``~:N``: for a rate that may be negative (a shrinking queue), "alert above N" is what is
    meant, not Nagios' "alert outside 0..N".
    """
    spec = text.strip()
    invert = spec.startswith("@")
    body = spec[1:] if invert else spec
    try:
        if body.count(":") > 1 or body == "":
            raise ValueError(f"{text!r} is not a range")
        if ":" in body:
            start, end = body.split(":")
            if start.startswith("/"):
                # bash (RHEL's /bin/sh) expands an unquoted ~:10 to /home/nagios:10
                raise ValueError(f"{start!r} is not a number (a shell expanded '~': quote "
                                 f"the range ('{spec[:1] if invert else ''}~:{end}'))")
            start = start if start in ("", "~") else _number(start, durations)
            end = end if end == "" else _number(end, durations)
            body = f"{start}:{end}"
        else:
            body = _number(body, durations)
            if plain_is_upper and not invert:
                body = f"~:{body}"
        return nagiosplugin.Range(("@" if invert else "") + body)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad threshold: {exc}") from None


class Parser(argparse.ArgumentParser):
    """argparse with errors as UNKNOWN on stdout, exit 3."""

    RANGE_OPTIONS = ("-w", "--warning", "-c", "--critical")

    def parse_args(self, args: Sequence[str] | None = None,  # type: ignore[override]
                   namespace: argparse.Namespace | None = None) -> argparse.Namespace:
        # Nagios ranges may start with "-" ("-c -100:"), which argparse takes for an option:
        # glue a range option to its value first, as the C plugins accept it.
        argv = list(sys.argv[1:] if args is None else args)
        glued: list[str] = []
        i = 0
        while i < len(argv):
            if argv[i] in self.RANGE_OPTIONS and i + 1 < len(argv):
                glued.append(f"{argv[i]}={argv[i + 1]}" if argv[i].startswith("--")
                             else f"{argv[i]}{argv[i + 1]}")
                i += 2
                continue
            glued.append(argv[i])
            i += 1
        return super().parse_args(glued, namespace)

    def error(self, message: str) -> NoReturn:
        # a check's status line starts with its name, as every other line of it does
        name = next((f"{c.status} " for c in check_registry.CHECKS if c.program == self.prog), "")
        # "|" would start Nagios' perfdata (VisiblePipeOutput does the same for the checks)
        message = message.replace("|", "\u00a6")
        print(f"{name}UNKNOWN - {self.prog}: {message} (see {self.prog} --help)")
        sys.exit(3)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            print(message.rstrip("\n"))
        sys.exit(status)


def check_parser(prog: str, description: str, *, durations: bool = False,
                 plain_is_upper: bool = False, state: bool = False,
                 queue: bool = True, timeout: float = 8.0) -> Parser:
    """The reserved options every check takes (docs/reference.md), ranges parsed at argparse
    time. ``queue=False`` (the bounce check reads the log, not the queue): the queue options
    are accepted and checked, so one command line serves every check, but left out of --help
    and of the generated configs (nagios_gen skips SUPPRESS)."""
    p = Parser(prog=prog, description=description)

    def rng(text: str) -> nagiosplugin.Range:
        return parse_range(text, durations=durations, plain_is_upper=plain_is_upper)

    unit = " (seconds, or with s/m/h/d)" if durations else ""
    p.add_argument("-w", "--warning", metavar="RANGE", type=rng,
                   help=f"warning range{unit}; without -w/-c nothing is judged")
    p.add_argument("-c", "--critical", metavar="RANGE", type=rng, help=f"critical range{unit}")
    p.add_argument("-t", "--timeout", metavar="SECONDS", type=parse_timeout, default=timeout,
                   help=f"whole-run limit (default {timeout:g}): then UNKNOWN, children killed")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more detail after the first line (repeatable)")
    p.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    instance_options(p, hidden=not queue)
    if state or queue:
        p.add_argument("--state-dir", metavar="DIR", default=None,
                       help="where state lives (default: a per-user directory, created 0700)")
    add_listing_option(p, hidden=not queue)
    return p


def instance_options(p: argparse.ArgumentParser, hidden: bool = False) -> None:
    """``--postqueue`` and ``--config-dir``: which Postfix instance every queue consumer lists
    (``hidden``: accepted, out of --help)."""
    p.add_argument("--postqueue", metavar="PATH", default=None,
                   help=argparse.SUPPRESS if hidden else
                   "the postqueue program (default: postqueue on PATH, else /usr/sbin/postqueue)")
    p.add_argument("--config-dir", metavar="DIR", default=None,
                   help=argparse.SUPPRESS if hidden else
                   "Postfix instance, passed to postqueue -c as it is")


def add_listing_option(p: argparse.ArgumentParser, hidden: bool = False) -> None:
    """``--listing-max-age``: every queue consumer's option to share one listing (``hidden``:
    accepted, out of --help)."""
    p.add_argument("--listing-max-age", metavar="SECONDS", type=parse_duration, default=None,
                   help=argparse.SUPPRESS if hidden else
                   "reuse a complete queue listing of this instance not older than this, "
                   "taken by another run of this user (kept in --state-dir); runs "
                   "starting together list once between them (default: always list)")


# -- running a check ------------------------------------------------------------------------

class ErrorContext(nagiosplugin.Context):
    """Turns a measuring failure into UNKNOWN with its message as the hint."""

    def __init__(self) -> None:
        super().__init__("error")

    def evaluate(self, metric: nagiosplugin.Metric, resource: Any) -> nagiosplugin.Result:
        return nagiosplugin.Result(nagiosplugin.Unknown, str(metric.value), metric)

    def performance(self, metric: nagiosplugin.Metric, resource: Any) -> None:
        return None


class GuardedResource(nagiosplugin.Resource):
    """A Resource whose MonitorError becomes one UNKNOWN result, not a traceback."""

    def measure(self) -> Iterable[nagiosplugin.Metric]:  # pragma: no cover - abstract
        raise NotImplementedError

    def probe(self) -> list[nagiosplugin.Metric]:
        try:
            return list(self.measure())
        except MonitorError as exc:
            return [nagiosplugin.Metric("error", str(exc), context="error")]


def error_hint(results: nagiosplugin.Results) -> str | None:
    for r in results:
        if r.metric is not None and r.metric.name == "error":
            return str(r.hint)
    return None


def violation(value: float, rng: nagiosplugin.Range,
              fmt: Callable[[float], str] | None = None) -> str:
    """Why ``value`` breaks ``rng``, as a user reads it: ``> 500``, ``< 10``, ``inside @10:20``."""
    fmt = fmt or fmt_number
    if rng.invert:
        return f"inside {rng}"
    if value < rng.start:
        return f"< {fmt(rng.start)}"
    return f"> {fmt(rng.end)}"


def fmt_number(value: float) -> str:
    if value == int(value):
        return str(int(value))
    return f"{value:.1f}"


def fmt_age(seconds: float) -> str:
    """``3d 2h``, ``5h 10m``, ``12m 3s``, ``40s``: two units at most."""
    s = int(round(seconds))
    for unit, size, sub, subsize in (("d", 86400, "h", 3600), ("h", 3600, "m", 60),
                                     ("m", 60, "s", 1)):
        if s >= size:
            major, rest = divmod(s, size)
            minor = rest // subsize
            return f"{major}{unit} {minor}{sub}" if minor else f"{major}{unit}"
    return f"{s}s"


class Threshold(nagiosplugin.ScalarContext):
    """ScalarContext where a missing threshold judges nothing.

    nagiosplugin reads a missing range as ``0:inf``, so without ``-w`` a negative value (a
    shrinking queue's growth) would turn WARNING; here it matches everything (``~:``) and stays
    empty in the perfdata.
    """

    def __init__(self, name: str, warning: nagiosplugin.Range | None = None,
                 critical: nagiosplugin.Range | None = None):
        super().__init__(name, warning or "~:", critical or "~:")
        self.given = (warning is not None, critical is not None)

    def evaluate(self, metric: nagiosplugin.Metric, resource: Any) -> nagiosplugin.Result:
        if is_cut(resource):            # a lower bound: a state only where it proves one
            return bounds.evaluate(self, metric)
        return super().evaluate(metric, resource)

    def ranges(self) -> str:
        """The given ranges as options (``-w 500 -c 2000``), for a line that names them."""
        given = [f"-w {self.warning}"] if self.given[0] else []
        return " ".join(given + ([f"-c {self.critical}"] if self.given[1] else []))

    def performance(self, metric: nagiosplugin.Metric, resource: Any
                    ) -> nagiosplugin.Performance | None:
        # a cut listing's lower bounds are left out of the perfdata: graphed as values they
        # would draw a false dip just when the queue is at its largest
        if is_cut(resource):
            return None
        return nagiosplugin.Performance(
            metric.name, metric.value, metric.uom,
            self.warning if self.given[0] else None, self.critical if self.given[1] else None,
            metric.min, metric.max)


def is_cut(resource: Any) -> bool:
    """Whether ``resource`` measured a listing cut by the deadline (its values: lower bounds)."""
    return bool(getattr(getattr(resource, "snapshot", None), "cut", False))


def judged_context(name: str, args: argparse.Namespace, judged: bool) -> Threshold:
    if judged:
        return Threshold(name, args.warning, args.critical)
    return Threshold(name)


class VisiblePipeOutput(Output):
    """nagiosplugin's Output, but a "|" in a text (a quoted log line: ``docker compose logs``
    writes ``postfix-1  | …``) becomes "\u00a6" instead of vanishing with an extra line "warning:
    removed illegal characters" (the library's way). "|" starts Nagios' perfdata, so it cannot
    stay; the perfdata's own "| " is added after this screening."""

    def _screen_chars(self, text: str, where: str) -> str:
        return str(text).rstrip("\n").replace("|", "\u00a6")


def run(check: nagiosplugin.Check, args: argparse.Namespace) -> NoReturn:
    """Run ``check`` under nagiosplugin with the check's ``-v`` and ``-t``."""
    # nagiosplugin keeps one Runtime per process and appends to its output; tests (and any
    # caller) may call main() several times in one process, so start each run afresh.
    Runtime.instance = None
    runtime = Runtime()
    runtime.output = VisiblePipeOutput(runtime.logchan)
    root = logging.getLogger("nagiosplugin")
    for handler in list(root.handlers):
        root.removeHandler(handler)
    # nagiosplugin's alarm takes whole seconds: round up, never down to "no timeout".
    if not isinstance(check.results, bounds.LowerBoundResults):
        check.results = bounds.LowerBoundResults()
    check.main(verbose=args.verbose, timeout=math.ceil(args.timeout))
    raise AssertionError("unreachable")  # pragma: no cover - check.main exits



def run_command(commands: Mapping[str, Callable[[argparse.Namespace], int]],
                opts: argparse.Namespace, exit_error: int = 3) -> int:
    """Run a sub-command of a non-Nagios front end (``postfix_queue_zabbix``,
    ``postfix_queue_prometheus``): a MonitorError or any other exception is one line on stdout
    and ``exit_error``, never a traceback."""
    try:
        code = commands[opts.command](opts)
    except BrokenPipeError:
        raise                             # entry_point's: the reader went away
    except MonitorError as exc:
        print(str(exc))
        code = exit_error
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        print(f"internal error: {type(exc).__name__}: {exc}".splitlines()[0][:300])
        code = exit_error
    return code


def entry_point(main: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a program's ``main`` (every console script: the four checks around nagiosplugin's
    ``guarded``, the report, the Zabbix and Prometheus front ends) so that a reader that closes
    stdout (``… | head``) ends it with exit 3 and no BrokenPipeError traceback, whichever
    print met the closed pipe: a usage line, nagiosplugin's output, a document."""
    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            try:
                return main(*args, **kwargs)
            finally:
                sys.stdout.flush()        # here, not in the interpreter's flush at exit
        except BrokenPipeError:
            stdout_gone()
            raise SystemExit(3) from None
    return wrapper


def stdout_gone() -> None:
    """The reader of stdout went away (``… | head``): send what is left to /dev/null, so
    neither a later write nor the interpreter's flush at exit prints a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def measuring_options(p: argparse.ArgumentParser, timeout: float, state_help: str) -> None:
    """The options every non-Nagios front end measures with: ``-t``, the Postfix instance, the
    mail log or journal, the state dir, the shared listing, the growth window."""
    p.add_argument("-t", "--timeout", metavar="SECONDS", type=parse_timeout, default=timeout,
                   help=f"whole-run limit (default {timeout:g}): measuring, and for a sender "
                        f"also waiting for its spool and sending")
    # deliveries (and the maillog package) here only: these front ends measure deliveries
    # anyway, the Nagios checks' start-up does not load them
    from .deliveries import DEFAULT_LOGS
    instance_options(p)
    p.add_argument("--log-file", metavar="PATH", default=None,
                   help="mail log for the delivery counts (default: the first of "
                        f"{', '.join(DEFAULT_LOGS)}, else the journal)")
    p.add_argument("--journal", action="store_true", help="read the delivery counts from "
                                                          "journald")
    p.add_argument("--syslog-name", metavar="NAME", default=None,
                   help="only this Postfix instance's log lines")
    p.add_argument("--state-dir", metavar="DIR", default=None,
                   help=f"{state_help} (default: a per-user directory, created 0700)")
    add_listing_option(p)
    window = check_registry.BY_KEY["growth"].window
    p.add_argument("--growth-window", metavar="DURATION", type=parse_duration, default=window,
                   help=f"deferred growth window (default "
                        f"{check_registry.duration_text(window)})")
