"""What every lab shares for the daemons it starts (never shipped): stop a process group and
wait until all of it is gone, poll for a condition, probe a local port, list processes.

Each daemon is started with ``start_new_session=True`` so that its process group is its own and
can be stopped whole, by its id, without touching anyone else's processes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple


def free_port() -> int:
    """A port no one listens on now, from the kernel's ephemeral range: labs that pick their
    ports this way do not collide with a left-over or parallel lab on a fixed one."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def stop_group(proc: subprocess.Popen | None, timeout: float = 10) -> None:
    """Stop a daemon started with ``start_new_session=True``: SIGTERM to its process group,
    SIGKILL after ``timeout``, and wait until the whole group is gone.

    The leader's exit is not the group's: icinga2 and zabbix_server fork workers that may still
    hold a port, and the next daemon's client would then talk to the old one (seen as a
    certificate signature failure).
    """
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    deadline = time.monotonic() + timeout
    killed = False
    while group_alive(proc.pid):
        if time.monotonic() > deadline:
            if killed:      # only zombies left (reaped by init, not us): nothing holds a port
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            killed, deadline = True, time.monotonic() + 5
        time.sleep(0.05)


def group_alive(pgid: int) -> bool:
    return alive(pgid, os.killpg)


def wait_until(cond, timeout: float, what: str, step: float = 0.1):
    """Poll ``cond`` until it returns something true (returned), or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


def alive(pid: int, send=os.kill) -> bool:
    """Whether the process (or, with ``send=os.killpg``, the group) still exists."""
    try:
        send(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:     # alive, but not ours
        return True
    return True


class Process(NamedTuple):
    pid: int
    ppid: int
    name: str
    argv: list[str]
    cpu: float          #: user + system seconds
    #: user + system seconds of the children it has waited for (a Postfix master's reaped
    #: smtp, showq, … processes)
    reaped_cpu: float = 0.0


def processes() -> Iterator[Process]:
    """Every process now, from /proc (one that exits while being read is left out)."""
    tck = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        # fields[1] is the ppid; 11..14 are utime, stime, cutime, cstime (proc(5): 14..17)
        yield Process(int(entry), int(fields[1]), name, argv.split("\0"),
                      (int(fields[11]) + int(fields[12])) / tck,
                      (int(fields[13]) + int(fields[14])) / tck)
