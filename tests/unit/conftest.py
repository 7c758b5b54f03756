"""The in-process harness: a check's (or the report's) ``main(argv, clock=)`` run in this
process with a fixed clock, its exit code and stdout returned, stderr required empty."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import pytest

#: One perfdata item: label=value[uom];warn;crit;min;max
PERF = re.compile(r"(\S+)=([-\d.]+)(\w*|%);?([^;\s]*);?([^;\s]*);?([^;\s]*);?([^;\s]*)")


class Run(NamedTuple):
    """What one run printed: unpacks as ``code, out``."""
    code: int
    out: str

    @property
    def first(self) -> str:
        return self.out.splitlines()[0] if self.out else ""

    @property
    def perfdata(self) -> dict[str, tuple[float, str, str, str]]:
        return parse_perfdata(self.out)


Main = Callable[..., Any]


@pytest.fixture
def run_main(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """``run_main(main, argv, NOW)``: a check's main exits (SystemExit), the report's
    returns its code; either way no traceback and nothing on stderr."""
    def run(main: Main, argv: Sequence[str], clock: float) -> Run:
        kw = {"clock": lambda: clock}
        try:
            code = main(list(argv), **kw)
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        assert err == "", f"stderr must stay empty, got {err!r}"
        assert "Traceback" not in out, out
        return Run(int(code or 0), out)
    return run


def parse_perfdata(out: str) -> dict[str, tuple[float, str, str, str]]:
    """label → (value, uom, warn, crit), from every line's perfdata part."""
    perf = " ".join(line.split("|", 1)[1] for line in out.splitlines() if "|" in line)
    return {m[1]: (float(m[2]), m[3], m[4], m[5]) for m in PERF.finditer(perf)}


@pytest.fixture
def perfdata() -> Callable[[str], dict[str, tuple[float, str, str, str]]]:
    """``perfdata(out)``: a run's perfdata by label."""
    return parse_perfdata
