"""Real Nagios 4, Icinga 2 and NRPE daemons for tests (never shipped).

Everything lives in temp directories the ``nagios`` user can read (pytest's tmp_path under
/root is not); nothing under /etc is touched. Each daemon is started directly (no systemd),
runs as ``nagios`` and is stopped by its PID. The NRPE daemon runs in a private mount namespace
where /opt is a tmpfs holding ``/opt/postfix-queue-monitor`` → the test venv, so the shipped NRPE
snippet's absolute paths resolve as they are without touching the real /opt (other tests may
run concurrently).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shlex
import shutil
import ssl
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

import labproc
import postfix_lab

NAGIOS = "/usr/sbin/nagios4"
ICINGA2 = "/usr/sbin/icinga2"
NRPE = "/usr/sbin/nrpe"
CHECK_NRPE = "/usr/lib/nagios/plugins/check_nrpe"
SYSTEM_PLUGINS = Path("/usr/lib/nagios/plugins")
USER = "nagios"
PREFIX = "/opt/postfix-queue-monitor"


def available() -> str | None:
    """None when the labs can run here, else why not."""
    if os.geteuid() != 0:
        return "not root: the Nagios/Icinga/NRPE daemons need root to start as nagios"
    for prog in (NAGIOS, ICINGA2, NRPE, CHECK_NRPE, "/usr/bin/unshare"):
        if not os.path.exists(prog):
            return f"{prog} missing (make test installs it on Debian: scripts/install-deps.sh)"
    try:
        import pwd
        pwd.getpwnam(USER)
    except KeyError:
        return "no nagios user: nagios4-core / nagios-nrpe-server are not installed"
    return None


def public_tempdir(prefix: str) -> Path:
    """A fresh 0755 directory under /tmp (readable by nagios, unlike tmp_path under /root)."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(d, 0o755)
    return d


def chown_tree(path: Path, user: str = USER) -> None:
    shutil.chown(path, user, user)
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            p = os.path.join(root, n)
            if not os.path.islink(p):
                shutil.chown(p, user, user)


def build_venv(repo: Path, base: Path | None = None) -> Path:
    """``/usr/bin/python3 -m venv`` in a 0755 dir, the repo pip-installed (not editable)."""
    base = base or public_tempdir("pqm-venv-")
    venv = base / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    # build from a copy: an in-tree build would leave build/ behind in the worktree
    src = base / "src"
    shutil.copytree(repo, src, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache",
        "benchmarks"))
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                    str(src)], check=True, capture_output=True, text=True)
    shutil.rmtree(src)
    for root, dirs, _files in os.walk(base):
        for n in dirs:
            os.chmod(os.path.join(root, n), 0o755)
    return venv


def plugin_dir(venv: Path, base: Path) -> Path:
    """A ``$USER1$`` / ``PluginDir`` as docs/nagios.md lays it out: the check_postfix_* console
    scripts linked from the venv, beside the system's plugins (check_nrpe, check_dummy)."""
    d = base / "plugins"
    d.mkdir(exist_ok=True)
    os.chmod(d, 0o755)
    for script in sorted((venv / "bin").glob("check_postfix_*")):
        (d / script.name).symlink_to(script)
    for name in ("check_nrpe", "check_dummy"):
        (d / name).symlink_to(SYSTEM_PLUGINS / name)
    return d


def in_namespace(argv: list[str], links: Mapping[str, Path]) -> list[str]:
    """``argv`` in a private mount namespace where each ``links`` path is a symlink to its
    target: the parent directory of each (e.g. /opt, /var/log) becomes an empty tmpfs there, so
    the real one is neither needed nor touched (other tests may use it concurrently)."""
    if not links:
        return argv
    steps = []
    for parent in sorted({str(Path(p).parent) for p in links}):
        steps.append(f"mount -t tmpfs -o mode=0755 pqm-lab {shlex.quote(parent)}")
    for path, target in links.items():
        steps.append(f"ln -s {shlex.quote(str(target))} {shlex.quote(path)}")
    script = " && ".join([*steps, "exec " + shlex.join(argv)])
    return ["/usr/bin/unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
            script]


# -- Nagios 4 ----------------------------------------------------------------------------------

LAB_OBJECTS = """\
define timeperiod {
    timeperiod_name         lab-24x7
    alias                   always
    sunday                  00:00-24:00
    monday                  00:00-24:00
    tuesday                 00:00-24:00
    wednesday               00:00-24:00
    thursday                00:00-24:00
    friday                  00:00-24:00
    saturday                00:00-24:00
}

define command {
    command_name            lab-noop
    command_line            /bin/true
}

define contact {
    contact_name                    lab
    service_notification_period     lab-24x7
    host_notification_period        lab-24x7
    service_notification_options    n
    host_notification_options       n
    service_notification_commands   lab-noop
    host_notification_commands      lab-noop
}
"""


def nagios_host(name: str, hostgroup: str | None = None, address: str = "127.0.0.1",
                custom: Mapping[str, str] | None = None, use: str | None = None) -> str:
    extra = "".join(f"    _{k:<22} {v}\n" for k, v in (custom or {}).items())
    extra += f"    use                     {use}\n" if use else ""
    extra += f"    hostgroups              {hostgroup}\n" if hostgroup else ""
    return (f"define host {{\n    host_name               {name}\n"
            f"    address                 {address}\n"
            "    max_check_attempts      1\n    check_command           lab-noop\n"
            "    check_period            lab-24x7\n    contacts                lab\n"
            f"{extra}}}\n")


class NagiosLab:
    """A nagios.cfg in ``base`` that loads ``cfg_files`` as they are, plus the lab's own
    timeperiod, contact and hosts (``extra_objects``)."""

    def __init__(self, base: Path, cfg_files: Iterable[Path], user1: Path,
                 extra_objects: str = "", env: Mapping[str, str] | None = None,
                 links: Mapping[str, Path] | None = None):
        self.links = dict(links or {})   # paths the daemon sees (mount namespace), see in_namespace
        self.base = base
        self.cfg_files = [Path(f) for f in cfg_files]
        self.user1 = user1
        self.extra_objects = extra_objects
        self.env = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.main_cfg = base / "nagios.cfg"
        self.status_file = base / "status.dat"

    def write(self) -> NagiosLab:
        b = self.base
        (b / "checkresults").mkdir(exist_ok=True)
        (b / "lab-objects.cfg").write_text(LAB_OBJECTS + self.extra_objects)
        (b / "resource.cfg").write_text(f"$USER1$={self.user1}\n")
        lines = [f"cfg_file={f}" for f in (*self.cfg_files, b / "lab-objects.cfg")]
        lines += [
            f"resource_file={b}/resource.cfg", f"log_file={b}/nagios.log",
            f"check_result_path={b}/checkresults", f"status_file={self.status_file}",
            f"lock_file={b}/nagios.lock", f"temp_file={b}/nagios.tmp", f"temp_path={b}",
            f"state_retention_file={b}/retention.dat", f"object_cache_file={b}/objects.cache",
            f"precached_object_file={b}/objects.precache", f"command_file={b}/nagios.cmd",
            "retain_state_information=0", "check_external_commands=0",
            f"nagios_user={USER}", f"nagios_group={USER}",
            "service_inter_check_delay_method=n", "host_inter_check_delay_method=n",
            "max_concurrent_checks=0", "enable_notifications=0", "status_update_interval=1",
            "check_result_reaper_frequency=1", "use_syslog=0", "enable_flap_detection=0",
            "illegal_macro_output_chars=`~$&|'\"<>",
        ]
        self.main_cfg.write_text("\n".join(lines) + "\n")
        chown_tree(b)
        return self

    def verify(self) -> subprocess.CompletedProcess:
        return subprocess.run([NAGIOS, "-v", str(self.main_cfg)], capture_output=True, text=True,
                              timeout=30)

    def start(self) -> NagiosLab:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **self.env}
        self.proc = subprocess.Popen(in_namespace([NAGIOS, str(self.main_cfg)], self.links),
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True, env=env)
        return self

    def stop(self) -> None:
        labproc.stop_group(self.proc)
        self.proc = None

    def services(self) -> list[dict[str, str]]:
        try:
            text = self.status_file.read_text(errors="surrogateescape")
        except FileNotFoundError:
            return []
        return [b for kind, b in parse_status(text) if kind == "servicestatus"]

    def wait_checked(self, count: int, timeout: float = 30) -> list[dict[str, str]]:
        def done():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"nagios exited {self.proc.returncode}: {self.log()[-2000:]}")
            svcs = [s for s in self.services() if s.get("has_been_checked") == "1"]
            return svcs if len(svcs) >= count else None
        return labproc.wait_until(done, timeout,
                                      f"{count} checked services in {self.status_file}")

    def log(self) -> str:
        p = self.base / "nagios.log"
        return p.read_text(errors="replace") if p.exists() else ""


def parse_status(text: str) -> list[tuple[str, dict[str, str]]]:
    """status.dat → [(block kind, {key: value})]; values as Nagios wrote them."""
    out: list[tuple[str, dict[str, str]]] = []
    current: dict[str, str] | None = None
    kind = ""
    for line in text.splitlines():
        s = line.strip()
        if current is None:
            if s.endswith("{"):
                kind, current = s[:-1].strip(), {}
            continue
        if s == "}":
            out.append((kind, current))
            current = None
        elif "=" in s:
            k, v = s.split("=", 1)
            current[k] = v
    return out


# -- Icinga 2 -----------------------------------------------------------------------------------

class IcingaLab:
    """A self-contained icinga2.conf in ``base``: the ITL, ``PluginDir``, the files under test
    included as they are, and the lab's own objects (hosts, API listener, zone).

    With ``parent`` the node is an agent: its zone's parent is that zone, its API accepts
    commands from it, and its certificate is signed by ``ca_lab``'s CA (``make_certs``)."""

    NODE = "lab.icinga.invalid"

    def __init__(self, base: Path, conf_files: Iterable[Path], plugin_dir: Path,
                 extra: str = "", api_port: int | None = None,
                 api_password: str = "lab-secret", in_zone: bool = False,
                 node: str | None = None, parent: str | None = None):
        self.in_zone = in_zone   # load conf_files as zones.d/<our zone>/, as a master does
        self.base = base
        self.conf_files = [Path(f) for f in conf_files]
        self.plugin_dir = plugin_dir
        self.extra = extra
        self.api_port = api_port
        self.api_password = api_password
        self.node = node or self.NODE
        self.parent = parent
        self.proc: subprocess.Popen | None = None
        self.conf = base / "icinga2.conf"

    def defines(self) -> list[str]:
        b = self.base
        d = {"DataDir": b / "data", "LogDir": b / "log", "CacheDir": b / "cache",
             "SpoolDir": b / "spool", "InitRunDir": b / "run", "ConfigDir": b,
             "RunAsUser": USER, "RunAsGroup": USER}
        return [f"-DConfiguration.{k}={v}" for k, v in d.items()]

    def write(self) -> IcingaLab:
        for sub in ("data", "log", "cache", "spool", "run"):
            (self.base / sub).mkdir(exist_ok=True)
        # the whole ITL, as Debian's icinga2.conf includes it: our names must clash with none
        parts = [f'const PluginDir = "{self.plugin_dir}"',
                 'const PluginContribDir = "/usr/lib/nagios/plugins"',
                 'const ManubulonPluginDir = "/usr/lib/nagios/plugins"',
                 "include <itl>", "include <plugins>", "include <plugins-contrib>",
                 "include <manubulon>", "include <windows-plugins>", "include <nscp>",
                 f'const NodeName = "{self.node}"', "const ZoneName = NodeName"]
        if self.in_zone:
            zdir = self.base / "zones.d" / self.node
            zdir.mkdir(parents=True, exist_ok=True)
            for f in self.conf_files:
                (zdir / f.name).symlink_to(f)
            parts.append(f'include_zones "lab", "{self.base / "zones.d"}"')
        else:
            parts += [f'include "{f}"' for f in self.conf_files]
        if self.api_port:
            zone_parent = f'; parent = "{self.parent}"' if self.parent else ""
            listener = "  accept_commands = true\n" if self.parent else ""
            parts.append(f"""
object Endpoint NodeName {{ }}
object Zone ZoneName {{ endpoints = [ NodeName ]{zone_parent} }}
object ApiListener "api" {{
  bind_host = "127.0.0.1"
  bind_port = {self.api_port}
{listener}}}
object ApiUser "lab" {{
  password = "{self.api_password}"
  permissions = [ "objects/query/*", "actions/reschedule-check" ]
}}
object CheckerComponent "checker" {{ }}
""")
        parts.append(self.extra)
        self.conf.write_text("\n".join(parts) + "\n")
        chown_tree(self.base)
        return self

    def validate(self) -> subprocess.CompletedProcess:
        return subprocess.run([ICINGA2, "daemon", "-C", "-c", str(self.conf), *self.defines()],
                              capture_output=True, text=True, timeout=60)

    def make_certs(self, pki: Pki | None = None) -> None:
        """This node's key and certificate from ``pki`` (default: a new CA of its own), with
        ``icinga2 pki``, in ``DataDir/certs`` where the ApiListener looks for them."""
        pki = pki or Pki(self.base / "pki")
        key, crt = pki.issue(self.node)
        certs = self.base / "data" / "certs"
        certs.mkdir(parents=True, exist_ok=True)
        for src in (key, crt, pki.ca_crt):
            shutil.copy(src, certs / src.name)
        chown_tree(self.base / "data")

    def start(self, pki: Pki | None = None) -> IcingaLab:
        if not (self.base / "data" / "certs" / f"{self.node}.crt").exists():
            self.make_certs(pki)
        self.proc = subprocess.Popen([ICINGA2, "daemon", "-c", str(self.conf), *self.defines()],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        labproc.wait_until(lambda: self._ping(), 30, "the Icinga 2 API")
        return self

    def stop(self) -> None:
        labproc.stop_group(self.proc, timeout=20)
        self.proc = None

    def _ping(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"icinga2 exited {self.proc.returncode}")
        try:
            self.api("GET", "/v1/")
            return True
        except OSError:
            return False

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        ctx = ssl.create_default_context(cafile=str(self.base / "data" / "certs" / "ca.crt"))
        ctx.check_hostname = False    # the cert names the node, we connect to 127.0.0.1
        token = base64.b64encode(f"lab:{self.api_password}".encode()).decode()
        req = urllib.request.Request(
            f"https://127.0.0.1:{self.api_port}{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Basic {token}", "Accept": "application/json",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return json.load(resp)

    def reschedule_all(self) -> None:
        self.api("POST", "/v1/actions/reschedule-check",
                 {"type": "Service", "filter": "true", "force": True})

    def services(self) -> list[dict]:
        return self.api("GET", "/v1/objects/services?attrs=last_check_result&attrs=state"
                        "&attrs=host_name&attrs=check_command")["results"]

    def endpoint_connected(self, name: str) -> bool:
        res = self.api("GET", f"/v1/objects/endpoints/{name}?attrs=connected")["results"]
        return bool(res and res[0]["attrs"]["connected"])

    def wait_checked(self, count: int, timeout: float = 30) -> list[dict]:
        def done():
            res = [s for s in self.services() if s["attrs"]["last_check_result"]]
            return res if len(res) >= count else None
        return labproc.wait_until(done, timeout, f"{count} Icinga 2 check results", step=0.2)


def icinga_mail_host(postfix, state: Path, name: str = "mail1") -> str:
    """An Icinga 2 Host that gets every example service, pointed at the lab's Postfix instance,
    its log and a state directory."""
    return f"""
object Host "{name}" {{
  check_command = "dummy"
  address = "127.0.0.1"
  vars.postfix_queue_monitor = true
  vars.postfix_queue_config_dir = "{postfix.config_dir}"
  vars.postfix_queue_state_dir = "{state}"
  vars.postfix_queue_bounce_log_file = "{postfix.log_file}"
}}
"""


class Pki:
    """A CA made with ``icinga2 pki new-ca`` and the node certificates it signed, each made
    once (RSA 4096 keys take a second or more each; a test session shares one Pki)."""

    def __init__(self, base: Path):
        self.base = base
        self.lab = IcingaLab(base, [], SYSTEM_PLUGINS)
        self.ca_crt = base / "data" / "ca" / "ca.crt"
        self.issued = base / "issued"

    def _run(self, *argv: str) -> None:
        subprocess.run([ICINGA2, "pki", *argv, *self.lab.defines()], check=True,
                       capture_output=True, timeout=60)

    def issue(self, node: str) -> tuple[Path, Path]:
        key, csr, crt = (self.issued / f"{node}.{x}" for x in ("key", "csr", "crt"))
        if crt.exists():
            return key, crt
        self.issued.mkdir(parents=True, exist_ok=True)
        for sub in ("data", "log", "cache", "spool", "run"):
            (self.base / sub).mkdir(exist_ok=True)
        chown_tree(self.base)
        if not self.ca_crt.exists():
            self._run("new-ca")
        self._run("new-cert", "--cn", node, "--key", str(key), "--csr", str(csr))
        self._run("sign-csr", "--csr", str(csr), "--cert", str(crt))
        return key, crt


# -- NRPE ----------------------------------------------------------------------------------------

class NrpeLab:
    """An NRPE daemon on 127.0.0.1:``port`` as nagios, including ``snippet`` as it is, with
    ``/opt/postfix-queue-monitor`` → ``venv`` inside its own mount namespace."""

    def __init__(self, base: Path, snippet: Path, venv: Path, port: int,
                 keep_env: Mapping[str, str] | None = None,
                 links: Mapping[str, Path] | None = None):
        self.links = {PREFIX: venv, **(links or {})}
        self.base = base
        self.snippet = snippet
        self.venv = venv
        self.port = port
        self.keep_env = dict(keep_env or {})
        self.proc: subprocess.Popen | None = None
        self.cfg = base / "nrpe.cfg"

    def write(self) -> NrpeLab:
        lines = [f"pid_file={self.base}/nrpe.pid", f"server_port={self.port}",
                 "server_address=127.0.0.1", f"nrpe_user={USER}", f"nrpe_group={USER}",
                 "allowed_hosts=127.0.0.1", "dont_blame_nrpe=0", "command_timeout=30",
                 "connection_timeout=30", "disable_syslog=1", f"log_file={self.base}/nrpe.log",
                 f"include={self.snippet}"]
        if self.keep_env:
            lines.insert(-1, f"keep_env_vars={','.join(self.keep_env)}")
        self.cfg.write_text("\n".join(lines) + "\n")
        chown_tree(self.base)
        return self

    def start(self) -> NrpeLab:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **self.keep_env}
        self.proc = subprocess.Popen(in_namespace([NRPE, "-c", str(self.cfg), "-f"], self.links),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=True, env=env)
        labproc.wait_until(lambda: self._listening(), 15, f"nrpe on port {self.port}")
        return self

    def _listening(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"nrpe exited {self.proc.returncode}: {self.log()}")
        return f"port {self.port}" in self.log()

    def log(self) -> str:
        p = self.base / "nrpe.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def stop(self) -> None:
        labproc.stop_group(self.proc)
        self.proc = None

    def check_nrpe(self, command: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([CHECK_NRPE, "-H", "127.0.0.1", "-p", str(self.port), "-t", "30",
                               "-c", command, *extra], capture_output=True, timeout=40)


def run_as_nagios(argv: list[str], env: Mapping[str, str] | None = None,
                  links: Mapping[str, Path] | None = None,
                  timeout: float = 30) -> subprocess.CompletedProcess:
    """``argv`` as the nagios user (bytes out), seeing ``links`` as a daemon started with them
    does, for comparing with what the daemons saw."""
    import pwd
    pw = pwd.getpwnam(USER)
    full_env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": pw.pw_dir, **(env or {})}
    drop = ["/usr/bin/setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
            "--clear-groups", "--"]
    return subprocess.run(in_namespace([*drop, *argv], links or {}), capture_output=True,
                          timeout=timeout, env=full_env, cwd="/")


# -- one venv and one Postfix queue per test session ------------------------------------------

_SHARED: dict[str, object] = {}
#: Recipients of the lab queue: 5 on each of 4 ASCII domains, 6 on an IDN one (non-ASCII
#: addresses must come through every program intact; the most common domain is that one).
NON_ASCII_DOMAIN = "bücher.example"
NON_ASCII_RCPT = f"jörg@{NON_ASCII_DOMAIN}"
LAB_MESSAGES = 26
#: Where the daemons under test see the lab's log: the bounce-rate check's default log.
MAIL_LOG = "/var/log/mail.log"


def shared_venv(config, repo: Path) -> Path:
    """The session's venv (built once; removed when pytest ends via ``config.add_cleanup``).

    Under /var/lib, not /tmp: the shipped systemd service has PrivateTmp=yes, and its test
    runs this venv's sender through it (tests/integration/test_systemd_units.py)."""
    if "venv" not in _SHARED:
        base = Path(tempfile.mkdtemp(prefix="pqm-venv-", dir="/var/lib"))
        config.add_cleanup(lambda: shutil.rmtree(base, ignore_errors=True))
        os.chmod(base, 0o755)
        _SHARED["venv"] = build_venv(repo, base)
    return _SHARED["venv"]  # type: ignore[return-value]


def shared_pki(config) -> Pki:
    """The session's Icinga 2 CA and node certificates."""
    if "pki" not in _SHARED:
        base = public_tempdir("pqm-icinga-pki-")
        _SHARED["pki"] = Pki(base)
        config.add_cleanup(lambda: shutil.rmtree(base, ignore_errors=True))
    return _SHARED["pki"]  # type: ignore[return-value]


def shared_postfix(config):
    """A private Postfix instance with a stuck queue of ``LAB_MESSAGES`` deferred messages that
    the nagios user may list (alternate_config_directories, restored at the end)."""
    if "postfix" not in _SHARED:
        stack = contextlib.ExitStack()
        try:
            lab = postfix_lab.Lab(name="nagios").setup()
            stack.callback(lab.destroy)
            lab.start()
            lab.inject(LAB_MESSAGES - 6, domains=4)
            for i in range(6):
                lab.sendmail("sender@src.example", [NON_ASCII_RCPT], subject=f"idn {i}")
            lab.wait_settled(expect_total=LAB_MESSAGES, timeout=60)
            # the bounce-rate check reads this log as nagios, as /var/log/mail.log (MAIL_LOG)
            lab.log_file.touch()
            os.chmod(lab.log_file, 0o644)
            stack.enter_context(lab.allow_unprivileged_listing())
        except BaseException:
            stack.close()
            raise
        _SHARED["postfix"] = lab
        config.add_cleanup(stack.close)
    return _SHARED["postfix"]


def proc_user(pid: int) -> str:
    """The user a process runs as (effective uid, as ps shows it), from /proc. NRPE 4.1 keeps
    its real uid 0 in the listener but runs every command fully as nrpe_user."""
    import pwd
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return pwd.getpwuid(int(line.split()[2])).pw_name
    raise LookupError(pid)
