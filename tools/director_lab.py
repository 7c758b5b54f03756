"""A real, private Icinga Director (Debian's icingaweb2-module-director) for tests: its own
PostgreSQL cluster and its own Icinga Web 2 configuration directory (``ICINGAWEB_CONFIGDIR``),
both in one temporary directory; Director's schema applied by ``icingacli director migration
run``. Nothing of the system's configuration is read or written; PostgreSQL is started by us
(as ``postgres``) on a free port (two labs at once do not collide) and stopped with pg_ctl.

    with DirectorLab() as lab:
        lab.cli("director", "basket", "restore", stdin=text)
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from labproc import free_port

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ICINGACLI = "/usr/bin/icingacli"
MODULES = Path("/usr/share/icingaweb2/modules")
#: Director 1.10 and the modules it requires (icinga-php-library is a library, not a module)
ENABLED = ("director", "incubator", "reactbundle")


def missing() -> str | None:
    for path in (PG_BIN / "initdb", Path(ICINGACLI), MODULES / "director"):
        if not path.exists():
            return f"{path} missing (make deps installs icingaweb2-module-director, icingacli)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "user postgres missing"
    return None


class DirectorLab:
    def __init__(self, port: int | None = None):
        self.port = port or free_port()   # not a fixed one: a left-over or parallel lab has it
        self.dir = Path(tempfile.mkdtemp(prefix="pqm-director-"))
        self.dir.chmod(0o755)                 # postgres must reach its data directory
        self.pgdata = self.dir / "pg"
        self.etc = self.dir / "etc"
        self.pg_started = False

    def _as_postgres(self, argv: list[str]) -> None:
        pg = pwd.getpwnam("postgres")
        res = subprocess.run(argv, capture_output=True, text=True, timeout=120, user=pg.pw_uid,
                             group=pg.pw_gid, extra_groups=[], cwd="/",
                             env={"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8"})
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: exit {res.returncode}: "
                               f"{(res.stderr or res.stdout).strip()[-800:]}")

    def start(self) -> DirectorLab:
        try:
            self._postgres()
            self._config()
            self.cli("director", "migration", "run")
            pending = self.cli("director", "migration", "pending", check=False)
            if pending.returncode == 0:           # exit 0: there still are pending migrations
                raise RuntimeError(f"Director schema not applied: {pending.stdout.strip()}")
        except BaseException:
            self.stop()
            raise
        return self

    def _postgres(self) -> None:
        pg = pwd.getpwnam("postgres")
        sock = self.dir / "sock"
        for d in (self.pgdata, sock):
            d.mkdir()
            os.chown(d, pg.pw_uid, pg.pw_gid)
        self._as_postgres([str(PG_BIN / "initdb"), "-D", str(self.pgdata), "-A", "trust",
                           "-U", "postgres", "-E", "UTF8", "--no-sync"])
        self._as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-l",
                           str(sock / "postgres.log"), "-o",
                           f"-p {self.port} -k {sock} -c listen_addresses=127.0.0.1 "
                           "-c fsync=off", "-w", "start"])
        self.pg_started = True
        self.psql("CREATE ROLE director LOGIN PASSWORD 'director'", db="postgres")
        self.psql("CREATE DATABASE director OWNER director ENCODING 'UTF8' "
                  "TEMPLATE template0", db="postgres")

    def _config(self) -> None:
        (self.etc / "modules/director").mkdir(parents=True)
        (self.etc / "enabledModules").mkdir()
        for m in ENABLED:
            (self.etc / "enabledModules" / m).symlink_to(MODULES / m)
        (self.etc / "resources.ini").write_text(
            '[director_db]\ntype = "db"\ndb = "pgsql"\nhost = "127.0.0.1"\n'
            f'port = "{self.port}"\ndbname = "director"\nusername = "director"\n'
            'password = "director"\ncharset = "utf8"\n')
        (self.etc / "modules/director/config.ini").write_text(
            '[db]\nresource = "director_db"\n')

    def psql(self, sql: str, db: str = "director") -> str:
        user = "postgres" if db == "postgres" else "director"
        res = subprocess.run([str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port),
                              "-U", user, "-d", db, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
                             capture_output=True, text=True, timeout=60, check=True,
                             env={"PATH": "/usr/bin:/bin", "PGPASSWORD": "director"})
        return res.stdout

    def cli(self, *argv: str, stdin: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
        """``icingacli`` with this lab's configuration directory."""
        res = subprocess.run([ICINGACLI, *argv], input=stdin, capture_output=True, text=True,
                             timeout=120, cwd="/",
                             env={"PATH": "/usr/bin:/bin", "ICINGAWEB_CONFIGDIR": str(self.etc)})
        if check and res.returncode != 0:
            raise RuntimeError(f"icingacli {' '.join(argv)}: exit {res.returncode}: "
                               f"{(res.stderr or res.stdout).strip()[-800:]}")
        return res

    def stop(self) -> None:
        if self.pg_started:
            with contextlib.suppress(subprocess.SubprocessError, RuntimeError):
                self._as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.pgdata), "-m",
                                   "immediate", "-w", "stop"])
            self.pg_started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> DirectorLab:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
