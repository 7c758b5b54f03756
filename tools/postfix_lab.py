"""A private Postfix instance for tests, the demo and benchmarks (never shipped).

It touches nothing of the system's Postfix but one line, and only on request: to let an
unprivileged user (nagios, zabbix) list the private instance, the default main.cf must name it in
``alternate_config_directories`` (docs/reference.md); ``Lab.allow_unprivileged_listing`` adds it
and puts the file back as it was. The instance has no inet listener unless ``smtpd_port`` is
given, relays everything to ``relay_port`` on 127.0.0.1 (nothing listens there by default, so
mail defers at once), logs to its own ``maillog_file`` and keeps retries far away so the queue
stays put.

Run as root. Everything it starts is stopped by ``stop()`` (``postfix -c DIR stop``, then the
master's PID is waited for).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from labproc import alive, port_open, processes, stop_group, wait_until

QUEUE_DIRS = ("maildrop", "incoming", "active", "deferred", "hold")
DEFAULT_MAIN_CF = Path("/etc/postfix/main.cf")


def available() -> str | None:
    """None when a lab can run here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "not root: a private Postfix instance needs root (run make test as root)"
    for prog in ("/usr/sbin/postfix", "/usr/sbin/postqueue", "/usr/sbin/sendmail",
                 "/usr/sbin/postconf"):
        if not os.path.exists(prog):
            return f"{prog} missing: Postfix is not installed (make test installs it on Debian)"
    try:
        pwd.getpwnam("postfix")
    except KeyError:
        return "no postfix user: Postfix is not installed"
    return None


def _run(argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


class Lab:
    """One private Postfix instance under ``base`` (a fresh temp dir by default)."""

    def __init__(self, name: str = "lab", base: str | Path | None = None, relay_port: int = 25259,
                 smtpd_port: int | None = None, main_cf: dict[str, str] | None = None):
        self.name = name
        self.base = Path(base) if base else Path(tempfile.mkdtemp(prefix=f"pqm-{name}-"))
        self.config_dir = self.base / "etc"
        self.queue_dir = self.base / "spool"
        self.data_dir = self.base / "data"
        self.log_file = self.base / "log" / "postfix.log"
        self.relay_port = relay_port
        self.smtpd_port = smtpd_port
        self.extra = dict(main_cf or {})
        self.started = False

    # -- life cycle --
    def setup(self) -> Lab:
        os.chmod(self.base, 0o755)   # postfix daemons must reach the queue below it
        for d in (self.config_dir, self.queue_dir, self.data_dir, self.log_file.parent):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o755)
        shutil.chown(self.data_dir, "postfix")
        shutil.copy("/etc/postfix/master.cf", self.config_dir / "master.cf")
        settings = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "myhostname": f"{self.name}.lab.invalid",
            "mydomain": "lab.invalid",
            "myorigin": "$myhostname",
            "mydestination": "",
            "local_transport": "error:local delivery is disabled in the lab",
            "alias_maps": "",
            "alias_database": "",
            "relayhost": f"[127.0.0.1]:{self.relay_port}",
            "inet_protocols": "ipv4",
            "inet_interfaces": "loopback-only",
            "maillog_file": str(self.log_file),
            "maillog_file_prefixes": str(self.base),
            "syslog_name": f"postfix-{self.name}",
            "smtp_connect_timeout": "2s",
            "queue_run_delay": "3600s",
            "minimal_backoff_time": "3600s",
            "maximal_backoff_time": "7200s",
            "maximal_queue_lifetime": "5d",
            "bounce_queue_lifetime": "5d",
            "smtpd_relay_restrictions": "permit_mynetworks, reject",
            "mynetworks": "127.0.0.0/8",
        }
        if self.smtpd_port is None:
            settings["master_service_disable"] = "inet"
        settings.update(self.extra)
        (self.config_dir / "main.cf").write_text(
            "".join(f"{k} = {v}\n" for k, v in settings.items()))
        # no chroot: the lab's queue has none of the files a chroot needs
        _run(["postconf", "-c", str(self.config_dir), "-F", "*/*/chroot = n"])
        if self.smtpd_port is not None:
            _run(["postconf", "-c", str(self.config_dir), "-M#", "smtp/inet"])
            _run(["postconf", "-c", str(self.config_dir), "-M",
                  f"127.0.0.1:{self.smtpd_port}/inet = 127.0.0.1:{self.smtpd_port} inet n - n - - "
                  f"smtpd"])
        return self

    def start(self) -> Lab:
        _run(["postfix", "-c", str(self.config_dir), "start"])
        self.started = True
        self._wait_for(lambda: (self.queue_dir / "public" / "showq").exists(), 15,
                       "showq socket")
        return self

    def master_pid(self) -> int | None:
        try:
            return int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        if not self.started:
            return
        pid = self.master_pid()
        subprocess.run(["postfix", "-c", str(self.config_dir), "stop"], capture_output=True)
        if pid:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and alive(pid):
                time.sleep(0.1)
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
        self.started = False

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> Lab:
        return self.setup().start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    # -- mail --
    def sendmail(self, sender: str, recipients: Iterable[str], body: str = "lab message\n",
                 subject: str = "lab") -> None:
        rcpts = list(recipients)
        msg = f"From: {sender}\nTo: {', '.join(rcpts)}\nSubject: {subject}\n\n{body}"
        _run(["/usr/sbin/sendmail", "-C", str(self.config_dir), "-f", sender, "--", *rcpts],
             input=msg)

    def inject(self, count: int, domains: int = 10, sender: str = "sender@src.example",
               recipients_per_message: int = 1, parallel: int = 4) -> None:
        """``count`` messages to users spread over ``domains`` domains, via sendmail."""
        procs: list[subprocess.Popen] = []
        for i in range(count):
            rcpts = [f"u{i}.{r}@d{(i + r) % domains:02d}.example"
                     for r in range(recipients_per_message)]
            msg = f"From: {sender}\nTo: {', '.join(rcpts)}\nSubject: lab {i}\n\nmessage {i}\n"
            p = subprocess.Popen(["/usr/sbin/sendmail", "-C", str(self.config_dir), "-f", sender,
                                  "--", *rcpts], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, text=True)
            assert p.stdin is not None
            p.stdin.write(msg)
            p.stdin.close()
            procs.append(p)
            if len(procs) >= parallel:
                _reap(procs.pop(0))
        for p in procs:
            _reap(p)

    def smtp_source(self, count: int, to: str, sessions: int = 20, size: int = 1000,
                    sender: str = "sender@src.example") -> None:
        """Fast injection through the lab's smtpd (needs ``smtpd_port``): ~700 messages/s."""
        assert self.smtpd_port, "smtp_source needs a lab started with smtpd_port"
        _run(["smtp-source", "-s", str(sessions), "-m", str(count), "-l", str(size), "-f", sender,
              "-t", to, f"127.0.0.1:{self.smtpd_port}"], timeout=600)

    def clone_deferred(self, count: int, prefix: str = "F") -> int:
        """Add ``count`` deferred messages fast (~30,000/s): copies of the first deferred queue
        file (and its defer log, so each has a delay reason) under new short queue IDs
        ``<prefix><10 hex digits>``, same owner, mode and mtime (a retry time in the future,
        so qmgr leaves them alone). showq lists them like any other: it takes the queue ID
        from the file name and hashes the directory from its first character
        (hash_queue_depth 1). smtp-source needs ~140 s for 100,000; this, ~4 s."""
        deferred = self.queue_dir / "deferred"
        src = next(Path(r) / f for r, _d, fs in os.walk(deferred) for f in sorted(fs))
        log = self.queue_dir / "defer" / src.parent.name / src.name
        st = os.stat(src)
        data = src.read_bytes()
        reason = log.read_bytes() if log.exists() else None
        targets = [(deferred, data)] + ([(self.queue_dir / "defer", reason)] if reason else [])
        for base, _ in targets:
            sub = base / prefix[0]
            sub.mkdir(exist_ok=True)
            os.chown(sub, st.st_uid, st.st_gid)
            os.chmod(sub, 0o700)
        for i in range(count):
            qid = f"{prefix}{i:010X}"
            for base, content in targets:
                path = base / prefix[0] / qid
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o700)
                try:
                    os.write(fd, content)
                    os.fchown(fd, st.st_uid, st.st_gid)
                finally:
                    os.close(fd)
                os.utime(path, (st.st_atime, st.st_mtime))
        return count

    # -- looking at the queue --
    def spool_counts(self) -> dict[str, int]:
        """Queue files per queue, counted in the spool itself (root only)."""
        counts = {}
        for q in QUEUE_DIRS:
            n = 0
            for _root, _dirs, files in os.walk(self.queue_dir / q):
                n += len(files)
            counts[q] = n
        return counts

    def wait_settled(self, expect_total: int | None = None, timeout: float = 120) -> dict[str, int]:
        """Wait until nothing is in maildrop/incoming/active (and the total is reached)."""
        def settled() -> bool:
            c = self.spool_counts()
            moving = c["maildrop"] + c["incoming"] + c["active"]
            return moving == 0 and (expect_total is None or sum(c.values()) >= expect_total)
        self._wait_for(settled, timeout, f"queue to settle ({self.spool_counts()})")
        return self.spool_counts()

    def postqueue_json(self) -> list[dict]:
        import json
        out = _run(["postqueue", "-c", str(self.config_dir), "-j"]).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def hold(self, queue_ids: Iterable[str]) -> None:
        """Put messages on hold (tests only: the shipped code never runs postsuper)."""
        ids = "\n".join(queue_ids) + "\n"
        _run(["postsuper", "-c", str(self.config_dir), "-h", "-"], input=ids)

    # -- entries in the default main.cf --
    @contextlib.contextmanager
    def allow_unprivileged_listing(self) -> Iterator[None]:
        """Name this instance in the default main.cf's alternate_config_directories for the
        duration (so an unprivileged ``postqueue -c`` may list it), then take it out again."""
        with _listed_in_default("alternate_config_directories", str(self.config_dir)):
            yield

    @contextlib.contextmanager
    def as_postmulti_instance(self, group: str = "mta") -> Iterator[str]:
        """Make this instance ``postfix-<name>-<suffix>`` of the default Postfix for the
        duration (the name it yields): its main.cf gets the multi_instance_* names and the
        default main.cf lists it in multi_instance_directories, so the real ``postmulti -l``
        shows it (postmulti accepts no other configuration directory: "fatal: Non-default
        configuration directory"). The suffix is a digest of the lab's own directory, so two
        suites on one machine never register the same name (postmulti requires the ``postfix-``
        start)."""
        name = f"postfix-{self.name}-{hashlib.sha256(bytes(self.base)).hexdigest()[:8]}"
        _run(["postconf", "-c", str(self.config_dir), "-e", f"multi_instance_name = {name}",
              f"multi_instance_group = {group}", "multi_instance_enable = yes"])
        with _listed_in_default("multi_instance_directories", str(self.config_dir)):
            yield name

    # -- helpers --
    @staticmethod
    def _wait_for(cond, timeout: float, what: str) -> None:
        wait_until(cond, timeout, what)


@contextlib.contextmanager
def _listed_in_default(param: str, value: str) -> Iterator[None]:
    """Add ``value`` to the list parameter ``param`` of the default main.cf for the duration.

    Several suites may do this at once on one machine, so each edit is a read-modify-write
    under an exclusive lock that adds or removes only this value; when no lab is left, the
    parameter is removed if a lab added it (a mark file in /run remembers), leaving the file as
    it was.
    """
    mark = Path(f"/run/pqm-lab-added-{param}")
    with _main_cf_lock():
        if not _has_param(param):
            mark.write_text("1")
        # a lab directory left by a killed run would break postmulti (and Debian's instance
        # generator at boot): entries of labs that no longer exist go
        kept = [d for d in _list(param) if os.path.isdir(d) or not _is_lab_dir(d)]
        _set_list(param, [*kept, value])
    try:
        yield
    finally:
        with _main_cf_lock():
            left = [d for d in _list(param) if d != value]
            if left:
                _set_list(param, left)
            elif mark.exists():
                _run(["postconf", "-X", param])
                mark.unlink()
            else:
                _set_list(param, [])


def _is_lab_dir(path: str) -> bool:
    """A config directory of a lab (``pqm-<name>-…/etc`` under a temp or /var/lib dir)."""
    parent = Path(path).parent
    return Path(path).name == "etc" and (parent.name.startswith("pqm-")
                                         or parent.parent.name.startswith("pqm-"))


@contextlib.contextmanager
def _main_cf_lock() -> Iterator[None]:
    import fcntl
    with open("/run/pqm-lab-main-cf.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _has_param(name: str) -> bool:
    return _run(["postconf", "-n", name]).stdout.strip() != ""


def _list(param: str) -> list[str]:
    value = _run(["postconf", "-h", param]).stdout
    return [d for d in value.replace(",", " ").split() if d]


def _set_list(param: str, values: list[str]) -> None:
    _run(["postconf", "-e", f"{param} = {', '.join(values)}"])


#: smtp-sink behaviours by name: accept everything, hard-reject or soft-reject every RCPT.
SINK_ARGS = {
    "ok": [],
    "hard": ["-f", "RCPT", "-B", "550 5.1.1 Recipient address rejected: User unknown"],
    "soft": ["-r", "RCPT", "-b",
             "450 4.2.0 Recipient address rejected: Greylisted, try again later"],
}


class Sinks:
    """smtp-sink listeners on 127.0.0.1 (``{behaviour: port}``, behaviours from SINK_ARGS), so
    a lab's deliveries really are sent, bounced or deferred. Stopped by process group."""

    def __init__(self, ports: dict[str, int]):
        self.ports = dict(ports)
        self.procs: list[subprocess.Popen] = []

    def start(self) -> Sinks:
        for name, port in self.ports.items():
            if port_open(port):
                raise RuntimeError(f"port {port} is taken: someone else listens there")
            self.procs.append(subprocess.Popen(
                ["smtp-sink", "-u", "nobody", *SINK_ARGS[name], f"127.0.0.1:{port}", "64"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
        wait_until(lambda: all(port_open(p) for p in self.ports.values()), 10,
                   "smtp-sink to listen", step=0.05)
        return self

    def stop(self) -> None:
        for p in self.procs:
            stop_group(p)
        self.procs.clear()

    def transport_map(self, base: Path) -> str:
        """A texthash transport map routing ``<behaviour>.example`` to each sink."""
        path = base / "transport"
        path.write_text("".join(f"{name}.example smtp:[127.0.0.1]:{port}\n"
                                for name, port in self.ports.items()))
        return f"texthash:{path}"


def showq_cpu(master: int | None) -> float:
    """CPU seconds of the showq processes under ``master`` (alive: showq stays for reuse)."""
    return sum(p.cpu for p in processes() if p.name == "showq" and p.ppid == master)


def _reap(p: subprocess.Popen) -> None:
    if p.wait(timeout=60) != 0:
        raise RuntimeError(f"sendmail exited {p.returncode}")


def system_postfix_running() -> bool:
    """True when the system's own Postfix (default instance) runs: then it is only read."""
    if not os.path.exists("/usr/sbin/postfix"):
        return False
    return subprocess.run(["/usr/sbin/postfix", "status"], capture_output=True).returncode == 0
