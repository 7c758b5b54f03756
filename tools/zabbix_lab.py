"""A real, private Zabbix for tests and screenshots: its own PostgreSQL cluster, its own
zabbix_server and the Debian frontend under ``php -S``, all in one temporary directory.

    lab = ZabbixLab(); lab.start(); ...; lab.stop()       # or: with ZabbixLab() as lab: ...
    lab = ZabbixLab(dist=ZABBIX7, ...)                    # the private 7.0 tree instead
    python tools/zabbix_lab.py up|down [--dir DIR]        # for the Makefile (screenshot)

Two distributions: Debian 12's installed 6.0 (``ZABBIX6``) and 7.0 from bookworm-backports
unpacked by ``scripts/fetch-zabbix7.sh`` (``ZABBIX7``). Nothing of the system's is used but the
packages and, for 6.0 only, ``/etc/zabbix/zabbix.conf.php`` (Debian's frontend reads only that
path): it is backed up at start and restored at stop; the 7.0 tree has its own. Every daemon is
started by us and stopped by process group or pg_ctl. Needs root (the server runs as user
``zabbix``, PostgreSQL as ``postgres``). Admin login stays as shipped (Admin/zabbix); the stock
"Zabbix server" host is disabled (it would poll an agent on 10050).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import NamedTuple

import labproc
import postfix_lab

PG_BIN = Path("/usr/lib/postgresql/15/bin")


class Dist(NamedTuple):
    """Where one Zabbix version's server, schema and frontend are."""

    version: str
    root: Path                  # "/" for the installed packages
    frontend_conf: Path         # the path the frontend reads its DB settings from
    ports: tuple[int, int, int]  # PostgreSQL, zabbix_server, php -S: both labs can run at once

    @property
    def schema_dir(self) -> Path:
        return self.root / "usr/share/zabbix-server-pgsql"

    @property
    def frontend(self) -> Path:
        return self.root / "usr/share/zabbix"

    @property
    def server(self) -> str:
        return str(self.root / "usr/sbin/zabbix_server")

    @property
    def fetch_hint(self) -> str:
        return ("scripts/install-deps.sh installs it" if self.root == Path("/") else
                "scripts/fetch-zabbix7.sh unpacks it")


ZABBIX6 = Dist("6.0", Path("/"), Path("/etc/zabbix/zabbix.conf.php"), (55432, 10151, 18080))
_ROOT7 = Path(os.environ.get("ZABBIX7_ROOT", "/var/cache/postfix-queue-monitor/zabbix-7.0"))
ZABBIX7 = Dist("7.0", _ROOT7, _ROOT7 / "etc/zabbix.conf.php",   # see fetch-zabbix7.sh
               (55433, 10161, 18081))


def missing(dist: Dist = ZABBIX6) -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (the server runs as user zabbix, PostgreSQL as postgres)"
    for path in (PG_BIN / "initdb", Path("/usr/bin/php")):
        if not path.exists():
            return f"{path} missing (scripts/install-deps.sh installs it)"
    for path in (Path(dist.server), dist.schema_dir / "data.sql.gz",
                 dist.frontend / "api_jsonrpc.php"):
        if not path.exists():
            return f"{path} missing ({dist.fetch_hint})"
    for user in ("postgres", "zabbix"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"user {user} missing"
    return None


def _as(user: str) -> dict:
    pw = pwd.getpwnam(user)

    def demote() -> None:
        os.setgid(pw.pw_gid)
        os.initgroups(user, pw.pw_gid)
        os.setuid(pw.pw_uid)
    return {"preexec_fn": demote, "env": {"PATH": "/usr/bin:/bin", "HOME": "/tmp",
                                          "LC_ALL": "C.UTF-8"}}


class ZabbixLab:
    def __init__(self, workdir: str | None = None, extra_conf: list[str] | None = None,
                 dist: Dist = ZABBIX6):
        """``extra_conf``: more zabbix_server.conf lines (e.g. TLSCAFile=…)."""
        self.dist = dist
        self.own_dir = workdir is None
        self.extra_conf = list(extra_conf or [])
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="zabbix-lab-"))
        self.pg_port, self.server_port, self.web_port = dist.ports
        self.server_addr = f"127.0.0.1:{self.server_port}"   # for -z / ServerActive
        self.url = f"http://127.0.0.1:{self.web_port}/"
        self.api_url = self.url + "api_jsonrpc.php"
        self.server: subprocess.Popen | None = None
        self.web: subprocess.Popen | None = None
        self.pg_started = False
        self.conf_backup: Path | None = None
        self.conf_written = False
        self.timings: dict[str, float] = {}
        self._token: str | None = None

    # -- paths -----------------------------------------------------------------------------
    @property
    def pgdata(self) -> Path:
        return self.dir / "pgdata"

    @property
    def zdir(self) -> Path:
        return self.dir / "zabbix"

    @property
    def server_conf(self) -> Path:
        return self.zdir / "zabbix_server.conf"

    @property
    def server_log(self) -> Path:
        return self.zdir / "zabbix_server.log"

    # -- bring-up --------------------------------------------------------------------------
    def start(self) -> ZabbixLab:
        t0 = time.monotonic()
        try:    # every way out of here stops what was started and removes our temp dir
            why = missing(self.dist)
            if why:
                raise RuntimeError(f"cannot start a Zabbix lab: {why}")
            for port in (self.pg_port, self.server_port, self.web_port):
                if labproc.port_open(port):
                    raise RuntimeError(f"port {port} is already in use")
            os.chmod(self.dir, 0o755)
            self._postgres()
            self.timings["postgres"] = time.monotonic() - t0
            self._schema()
            self.timings["schema"] = time.monotonic() - t0
            self._frontend()
            self._server()
            self._wait_ready()
            self.timings["ready"] = time.monotonic() - t0
        except BaseException:
            self.stop()
            raise
        return self

    def _run(self, argv: list[str], user: str | None = None, **kw) -> str:
        extra = _as(user) if user else {}
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120,  # noqa: S603
                              **extra, **kw)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: exit {proc.returncode}: "
                               f"{(proc.stderr or proc.stdout).strip()[-500:]}")
        return proc.stdout

    def _postgres(self) -> None:
        pg = pwd.getpwnam("postgres")
        self.pgdata.mkdir()
        os.chown(self.pgdata, pg.pw_uid, pg.pw_gid)
        sock = self.dir / "pgsock"
        sock.mkdir()
        os.chown(sock, pg.pw_uid, pg.pw_gid)
        self._run([str(PG_BIN / "initdb"), "-D", str(self.pgdata), "-A", "trust", "-U",
                   "postgres", "-E", "UTF8", "--no-sync"], user="postgres")
        opts = (f"-p {self.pg_port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c synchronous_commit=off -c full_page_writes=off -c max_connections=60")
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-l",
                   str(sock / "postgres.log"), "-o", opts, "-w", "start"], user="postgres")
        self.pg_started = True

    def psql(self, sql: str, db: str = "zabbix", user: str = "zabbix") -> str:
        return self._run([str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.pg_port),
                          "-U", user, "-d", db, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
                         user="postgres")

    def _schema(self) -> None:
        self.psql("CREATE ROLE zabbix LOGIN", db="postgres", user="postgres")
        self.psql("CREATE DATABASE zabbix OWNER zabbix ENCODING 'UTF8' TEMPLATE template0",
                  db="postgres", user="postgres")
        for name in ("schema.sql.gz", "images.sql.gz", "data.sql.gz"):
            with gzip.open(self.dist.schema_dir / name, "rb") as fh:
                sql = fh.read()
            proc = subprocess.run(  # noqa: S603
                [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.pg_port), "-U",
                 "zabbix", "-d", "zabbix", "-v", "ON_ERROR_STOP=1", "-q", "-1"],
                input=b"SET synchronous_commit=off;\n" + sql, capture_output=True,
                timeout=300, **_as("postgres"))
            if proc.returncode != 0:
                raise RuntimeError(f"schema {name}: {proc.stderr.decode()[-500:]}")
        # the stock host polls an agent on 10050: disabled before the server reads it
        self.psql("UPDATE hosts SET status=1 WHERE host='Zabbix server'")
        self.analyze()

    def analyze(self) -> None:
        """Planner statistics: without them the frontend's trigger-dependency check during an
        import can pick a plan that runs for minutes (measured: > 90 s instead of 3 s)."""
        self.psql("ANALYZE")

    def _frontend(self) -> None:
        conf = self.dist.frontend_conf
        if conf.exists() or conf.is_symlink():
            self.conf_backup = self.dir / "zabbix.conf.php.orig"
            shutil.copy2(conf, self.conf_backup, follow_symlinks=False)
        conf.write_text(f"""<?php
// written by tools/zabbix_lab.py for a test run; the original is restored at its end
$DB['TYPE'] = 'POSTGRESQL';
$DB['SERVER'] = '127.0.0.1';
$DB['PORT'] = '{self.pg_port}';
$DB['DATABASE'] = 'zabbix';
$DB['USER'] = 'zabbix';
$DB['PASSWORD'] = '';
$DB['SCHEMA'] = '';
$DB['ENCRYPTION'] = false;
$DB['KEY_FILE'] = '';
$DB['CERT_FILE'] = '';
$DB['CA_FILE'] = '';
$DB['VERIFY_HOST'] = false;
$DB['CIPHER_LIST'] = '';
$DB['VAULT_URL'] = '';
$DB['VAULT_DB_PATH'] = '';
$DB['VAULT_TOKEN'] = '';
$DB['DOUBLE_IEEE754'] = true;
$ZBX_SERVER = '127.0.0.1';
$ZBX_SERVER_PORT = '{self.server_port}';
$ZBX_SERVER_NAME = 'zabbix-lab';
$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;
""")
        os.chmod(conf, 0o644)
        self.conf_written = True
        log = open(self.dir / "php.log", "wb")  # noqa: SIM115 - kept open for the child
        self.web = subprocess.Popen(  # noqa: S603
            ["php", "-d", "memory_limit=512M", "-d", "max_execution_time=300",
             "-d", "post_max_size=32M", "-d", "upload_max_filesize=32M",
             "-S", f"127.0.0.1:{self.web_port}", "-t", str(self.dist.frontend)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env={"PATH": "/usr/bin:/bin", "PHP_CLI_SERVER_WORKERS": "4"})

    def _server(self) -> None:
        zbx = pwd.getpwnam("zabbix")
        self.zdir.mkdir()
        os.chown(self.zdir, zbx.pw_uid, zbx.pw_gid)
        self.server_conf.write_text("\n".join([
            f"ListenPort={self.server_port}", "ListenIP=127.0.0.1",
            "DBHost=127.0.0.1", f"DBPort={self.pg_port}", "DBName=zabbix", "DBUser=zabbix",
            f"PidFile={self.zdir / 'zabbix_server.pid'}", f"LogFile={self.server_log}",
            "LogFileSize=0", "DebugLevel=3", f"SocketDir={self.zdir}", "User=zabbix",
            "CacheUpdateFrequency=2", "StartPollers=2", "StartPollersUnreachable=1",
            "StartTrappers=3", "StartPingers=0", "StartDiscoverers=0", "StartHTTPPollers=0",
            "StartTimers=1", "StartEscalators=1", "StartAlerters=1", "StartPreprocessors=2",
            "StartLLDProcessors=1", "StartHistoryPollers=1", "StartDBSyncers=2",
            "StartProxyPollers=0", "HousekeepingFrequency=0", "Timeout=10",
            "UnavailableDelay=10", "UnreachableDelay=5", "UnreachablePeriod=10",
            *self.extra_conf, ""]))
        os.chmod(self.server_conf, 0o644)
        log = open(self.zdir / "stdout.log", "wb")  # noqa: SIM115
        self.server = subprocess.Popen(  # noqa: S603 - root: the server drops to User=zabbix
            [self.dist.server, "-f", "-c", str(self.server_conf)], stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={"PATH": "/usr/sbin:/usr/bin:/bin"})

    def _wait_ready(self, timeout: float = 90) -> None:
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            if self.server is not None and self.server.poll() is not None:
                raise RuntimeError(f"zabbix_server exited: {self.log_tail()}")
            if labproc.port_open(self.server_port):
                try:
                    self.api("apiinfo.version", {}, auth=False)
                    self.login()
                    return
                except (OSError, RuntimeError):
                    pass
            time.sleep(0.3)
        raise RuntimeError(f"Zabbix not ready after {timeout} s: {self.log_tail()}")

    def log_tail(self, n: int = 15) -> str:
        try:
            return " | ".join(self.server_log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no server log)"

    # -- API -------------------------------------------------------------------------------
    def api(self, method: str, params, auth: bool = True):
        body = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
        headers = {"Content-Type": "application/json-rpc"}
        if auth:
            if self._token is None:
                self.login()
            body["auth"] = self._token
        req = urllib.request.Request(self.api_url, json.dumps(body).encode(), headers)
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - 127.0.0.1
            answer = json.load(resp)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer["result"]

    def login(self) -> str:
        self._token = self.api("user.login", {"username": "Admin", "password": "zabbix"},
                               auth=False)
        return self._token

    def reload_config(self) -> None:
        """Ask the server to reload its configuration cache (asynchronous)."""
        subprocess.run([self.dist.server, "-c", str(self.server_conf), "-R",  # noqa: S603
                        "config_cache_reload"], capture_output=True, timeout=20)

    # -- stop ------------------------------------------------------------------------------
    def stop_server(self) -> None:
        labproc.stop_group(self.server, timeout=30)
        self.server = None

    def start_server(self) -> None:
        """Start the server again (after :meth:`stop_server`) and wait until it listens."""
        self._server_restart()
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up and not labproc.port_open(self.server_port):
            if self.server is not None and self.server.poll() is not None:
                raise RuntimeError(f"zabbix_server exited: {self.log_tail()}")
            time.sleep(0.2)

    def _server_restart(self) -> None:
        log = open(self.zdir / "stdout.log", "ab")  # noqa: SIM115
        self.server = subprocess.Popen(  # noqa: S603
            [self.dist.server, "-f", "-c", str(self.server_conf)], stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={"PATH": "/usr/sbin:/usr/bin:/bin"})

    def stop(self) -> None:
        self.stop_server()
        labproc.stop_group(self.web)      # php -S workers keep the port otherwise
        self.web = None
        if self.pg_started:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-m", "immediate",
                           "-w", "stop"], user="postgres")
            self.pg_started = False
        if self.conf_written:
            if self.conf_backup is not None:
                shutil.copy2(self.conf_backup, self.dist.frontend_conf, follow_symlinks=False)
            else:
                with contextlib.suppress(FileNotFoundError):
                    self.dist.frontend_conf.unlink()
            self.conf_written = False
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> ZabbixLab:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
DRIVER_PORT = 10155
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"


class WebDriver:
    """Just enough of the W3C WebDriver HTTP protocol (chromedriver) to log in and take a
    screenshot: no selenium needed."""

    def __init__(self, profile: str, width: int = 1600, height: int = 2000,
                 port: int = DRIVER_PORT):
        self.base = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(  # noqa: S603
            ["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        give_up = time.monotonic() + 20
        while not labproc.port_open(port):
            if time.monotonic() > give_up:
                self.close()
                raise RuntimeError("chromedriver did not start")
            time.sleep(0.1)
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [*CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                     f"--window-size={width},{height}"]}}}}
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _call(self, method: str, path: str, body: dict | None = None):
        data = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:  # noqa: S310 - 127.0.0.1
            return json.load(resp)["value"]

    def go(self, url: str) -> None:
        self._call("POST", f"/session/{self.session}/url", {"url": url})

    def find(self, css: str) -> str:
        return self._call("POST", f"/session/{self.session}/element",
                          {"using": "css selector", "value": css})[ELEMENT]

    def type(self, css: str, text: str) -> None:
        self._call("POST", f"/session/{self.session}/element/{self.find(css)}/value",
                   {"text": text})

    def click(self, css: str) -> None:
        self._call("POST", f"/session/{self.session}/element/{self.find(css)}/click", {})

    def screenshot(self) -> bytes:
        import base64
        return base64.b64decode(self._call("GET", f"/session/{self.session}/screenshot"))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._call("DELETE", f"/session/{self.session}")
        labproc.stop_group(self.proc)


def screenshot(out: str, rounds: int = 14, interval: float = 10.0) -> None:
    """A real dashboard: lab Zabbix + a private Postfix whose queue grows while the sender runs
    every ``interval`` s, then the host's template dashboard in headless Chromium."""
    for prog in ("chromium", "chromedriver"):
        if not shutil.which(prog):
            raise RuntimeError(f"{prog} missing: apt-get install --no-install-recommends "
                               f"chromium chromium-driver")
    root = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(root / "checks"))
    sys.path.insert(0, str(root / "tools"))

    prog = [sys.executable, "-m", "postfix_queue_monitor.zabbix.cli"]
    env = {**os.environ, "PYTHONPATH": str(root / "checks")}
    host = "mail1.example.org"
    work = Path(tempfile.mkdtemp(prefix="zabbix-shot-"))
    with ZabbixLab() as lab, postfix_lab.Lab(name="shot", relay_port=10159) as mq:
        subprocess.run([*prog, "deploy", "--url", lab.url, "--user", "Admin", "--password",
                        "zabbix", "--host", host, "--macro", "{$POSTFIX.TRIGGER.PERIOD}=#2",
                        "--macro", "{$POSTFIX.QUEUE.SIZE.WARN}=60"], check=True, env=env,
                       capture_output=True, timeout=300)
        time.sleep(3)
        state = str(work / "state")
        for i in range(rounds):
            mq.inject(4 + 3 * i, domains=5)
            mq.wait_settled(timeout=60)
            if i == rounds // 2:
                mq.hold([r["queue_id"] for r in mq.postqueue_json()[:8]])
            subprocess.run([*prog, "send", "-z", f"127.0.0.1:{lab.server_port}", "--host", host,
                            "--config-dir", str(mq.config_dir), "--state-dir", state,
                            "--log-file", str(mq.log_file), "--growth-window", "1m"],
                           env=env, capture_output=True, timeout=60)
            time.sleep(interval)
        hostid = lab.api("host.get", {"filter": {"host": [host]}})[0]["hostid"]
        # Admin's language en_US needs the en_US locale on the system (often absent: an error
        # banner on every widget); en_GB is the frontend's own, untranslated language, which
        # it never complains about (the API refuses to set it without the locale: the DB does)
        lab.psql("UPDATE users SET lang='en_GB' WHERE username='Admin'")
        driver = WebDriver(str(work / "chromium-profile"))
        try:
            driver.go(lab.url + "index.php")
            driver.type("#name", "Admin")
            driver.type("#password", "zabbix")
            driver.click("#enter")
            time.sleep(2)
            driver.go(f"{lab.url}zabbix.php?action=host.dashboard.view&hostid={hostid}"
                      f"&from=now-{int(rounds * interval / 60) + 1}m&to=now")
            time.sleep(8)
            png = driver.screenshot()
        finally:
            driver.close()
    shutil.rmtree(work, ignore_errors=True)
    Path(out).write_bytes(png)
    print(f"{out}: {len(png)} bytes")


def _cli(argv: list[str]) -> int:
    """``up DIR``: start and leave running (state in DIR/lab.json); ``down DIR``: stop;
    ``screenshot OUT.png``: the dashboard of a lab fed by a growing real queue."""
    if len(argv) != 2 or argv[0] not in ("up", "down", "screenshot"):
        print("usage: zabbix_lab.py up|down DIR  |  zabbix_lab.py screenshot OUT.png")
        return 2
    action, workdir = argv
    if action == "screenshot":
        screenshot(workdir)
        return 0
    state = Path(workdir) / "lab.json"
    if action == "up":
        Path(workdir).mkdir(parents=True, exist_ok=True)
        lab = ZabbixLab(workdir)
        lab.start()
        state.write_text(json.dumps({
            "server_pid": lab.server.pid, "web_pid": lab.web.pid,
            "backup": str(lab.conf_backup) if lab.conf_backup else None,
            "url": lab.url, "timings": lab.timings}))
        print(json.dumps({"url": lab.url, "timings": lab.timings}))
        return 0
    info = json.loads(state.read_text())
    lab = ZabbixLab(workdir)
    lab.own_dir = False
    for pid in (info["server_pid"], info["web_pid"]):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    time.sleep(2)
    for pid in (info["server_pid"], info["web_pid"]):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    lab.pg_started = True
    lab.conf_written = True
    lab.conf_backup = Path(info["backup"]) if info["backup"] else None
    lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_cli(sys.argv[1:]))
