"""The in-process harness: a check's (or the report's) ``main(argv, clock=)`` run in this
process with a fixed clock, its exit code and stdout returned, stderr required empty; and
file-system faults for the write-error tests: real tmpfs mounts, no mocks (root only; skipped
elsewhere, as a developer without root cannot mount)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
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



def _mount(target: Path, options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def _umount(target: Path) -> None:
    subprocess.run(["umount", str(target)], capture_output=True, check=False)


@pytest.fixture
def ro_dir(tmp_path: Path) -> Iterator[str]:
    """A state dir (0700, ours) on a file system remounted read-only: EROFS on every write."""
    mnt = tmp_path / "ro"
    _mount(mnt, "size=1m,mode=0700")
    try:
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        yield str(mnt)
    finally:
        _umount(mnt)


@pytest.fixture
def full_dir(tmp_path: Path) -> Iterator[str]:
    """A state dir on a 64 KiB tmpfs filled to the last byte: ENOSPC on every write."""
    mnt = tmp_path / "full"
    _mount(mnt, "size=64k,mode=0700")
    try:
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        yield str(mnt)
    finally:
        _umount(mnt)
