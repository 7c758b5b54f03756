"""A real systemd, for the tests of the shipped service and timer on a machine that has no
systemd running (containers, CI): ``/lib/systemd/systemd --system`` as PID 1 of its own PID,
mount, UTS and IPC namespaces, seeing only the units of one directory.

    with SystemdLab(unit_dir) as sd:
        sd.systemctl("start", "x.timer"); sd.show("x.service", "Result")

The manager shares the machine's file systems and network (the units under test read the real
queue and talk to a server on 127.0.0.1), but nothing else: it gets a private tmpfs on /run
(its sockets never replace a host's), ``container=`` set (so it behaves as in a container:
``OnBootSec=`` counts from its own start), and ``SYSTEMD_UNIT_PATH`` names only the test's
directory, so no unit of the machine's is started; stub targets stand in for the ones the units'
default dependencies name. Stopping kills the namespace's PID 1 (``unshare --kill-child``),
which takes every process in it; the cgroups it made (``init.scope``, ``system.slice`` and
below, in the machine's hierarchies) are removed. Needs root, and refuses a machine that runs
systemd itself: there the cgroup hierarchy is that systemd's, and the units are better tested
with it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import labproc
import postfix_lab

SYSTEMD = Path("/lib/systemd/systemd")
# what a service's and a timer's default dependencies name (systemd.service(5), .timer(5))
STUB_TARGETS = ("sysinit.target", "basic.target", "shutdown.target", "timers.target",
                "pqm-test.target")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (systemd as PID 1 of its own namespaces)"
    if Path("/run/systemd/system").exists():
        return ("this machine runs systemd: install the units there (zabbix_templates/README.md)"
                "; the lab is for machines without it")
    for path in (SYSTEMD, Path("/usr/bin/unshare"), Path("/usr/bin/nsenter"),
                 Path("/usr/bin/systemctl")):
        if not path.exists():
            return f"{path} missing (scripts/install-deps.sh installs systemd and util-linux)"
    return None


#: the top-level cgroups a system manager makes for itself and its services
OWN_CGROUPS = ("init.scope", "system.slice")


def _cgroups() -> set[Path]:
    """Every cgroup at or below OWN_CGROUPS in every hierarchy."""
    found: set[Path] = set()
    for top in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else ():
        for name in OWN_CGROUPS:
            for root, dirs, _ in os.walk(top / name):
                found.add(Path(root))
                found.update(Path(root) / d for d in dirs)
    return found


class SystemdLab:
    def __init__(self, unit_dir: Path):
        self.unit_dir = Path(unit_dir)
        self.proc: subprocess.Popen | None = None
        self.pid1 = 0
        self.log = self.unit_dir.parent / "systemd.log"
        self._cgroups_before: set[Path] = set()

    def start(self, timeout: float = 30) -> SystemdLab:
        why = missing()
        if why:
            raise RuntimeError(f"cannot start systemd: {why}")
        for name in STUB_TARGETS:
            stub = self.unit_dir / name
            if not stub.exists():
                stub.write_text(f"[Unit]\nDescription=stub {name} (tools/systemd_lab.py)\n"
                                "DefaultDependencies=no\n")
        self._cgroups_before = _cgroups()
        log = open(self.log, "wb")  # noqa: SIM115 - kept open for the child
        self.proc = subprocess.Popen(  # noqa: S603
            ["/usr/bin/unshare", "--pid", "--fork", "--kill-child=SIGKILL", "--mount",
             "--mount-proc", "--uts", "--ipc", "/bin/sh", "-c",
             'mount -t tmpfs -o mode=0755 pqm-run /run && exec "$0" "$@"', str(SYSTEMD),
             "--system", "--unit=pqm-test.target", "--log-target=console",
             "--log-level=info"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_UNIT_PATH": str(self.unit_dir),
                 "LANG": "C.UTF-8", "container": "pqm-systemd-lab"})
        try:
            self.pid1 = labproc.wait_until(self._find_pid1, timeout, "systemd to start")
            labproc.wait_until(
                lambda: self.systemctl("is-system-running", check=False).stdout.strip()
                in ("running", "degraded"), timeout, "systemd to finish starting", step=0.2)
        except BaseException:
            self.stop()
            raise
        return self

    def _find_pid1(self) -> int:
        """The manager's PID outside its namespace: unshare's only child."""
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"systemd exited: {self.log.read_text(errors='replace')[-500:]}")
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        pids = children.read_text().split() if children.exists() else []
        return int(pids[0]) if pids else 0

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        out = subprocess.run(  # noqa: S603
            ["/usr/bin/nsenter", "-t", str(self.pid1), "-m", "-p", "/usr/bin/systemctl",
             "--no-pager", *args], capture_output=True, text=True, timeout=60)
        if check and out.returncode != 0:
            raise RuntimeError(f"systemctl {' '.join(args)}: exit {out.returncode}: "
                               f"{(out.stderr or out.stdout).strip()[-300:]}")
        return out

    def show(self, unit: str, *props: str) -> dict[str, str]:
        """Properties of ``unit``; timestamps as '@<unix seconds>', '' when never."""
        out = self.systemctl("show", "--timestamp=unix", unit,
                             *(f"--property={p}" for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def stop(self) -> None:
        if self.proc is not None:
            labproc.stop_group(self.proc)     # unshare --kill-child: PID 1 and all in it
            self.proc = None
        # the cgroups systemd made for its units (the hierarchy is the machine's), deepest first
        for path in sorted(_cgroups() - self._cgroups_before, key=lambda p: -len(p.parts)):
            for _ in range(10):     # a cgroup goes only once its last process has been reaped
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.2)

    def __enter__(self) -> SystemdLab:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def unit_queue(stack: contextlib.ExitStack, base: Path, name: str, relay_port: int,
               messages: int) -> postfix_lab.Lab:
    """A private Postfix instance under ``base``/postfix (not /tmp, which PrivateTmp= hides from
    the units) with ``messages`` deferred messages (nothing listens on ``relay_port``), its log
    0640 root:adm as rsyslog leaves a mail log, listable by any user; ``stack`` removes it."""
    (base / "postfix").mkdir()
    lab = postfix_lab.Lab(name=name, base=base / "postfix", relay_port=relay_port)
    stack.callback(lab.destroy)
    lab.setup().start()
    lab.inject(messages, domains=2)
    lab.wait_settled(messages, timeout=60)
    os.chmod(lab.log_file, 0o640)
    shutil.chown(lab.log_file, group="adm")
    stack.enter_context(lab.allow_unprivileged_listing())
    return lab


def install_units(units: Path, shipped: Path, names: tuple[str, ...],
                  exec_starts: dict[str, str], extra: dict[str, str] | None = None) -> None:
    """Copy the shipped units byte for byte into ``units`` and give each unit named in
    ``exec_starts`` a drop-in, as an administrator would write one, that replaces ExecStart=
    (plus ``extra`` lines of its own)."""
    units.mkdir()
    for name in names:
        shutil.copyfile(shipped / name, units / name)
    for unit, line in exec_starts.items():
        (units / f"{unit}.d").mkdir()
        (units / f"{unit}.d" / "test.conf").write_text(
            f"[Service]\nExecStart=\n{line}\n{(extra or {}).get(unit, '')}")
