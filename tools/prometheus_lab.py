"""Real Prometheus programs for the tests: node_exporter with only its textfile collector, a
Prometheus server with one scrape job, promtool. Each daemon listens on 127.0.0.1 on a free
port, in its own process group and temp dir; ``stop()`` ends the group and removes the dir.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from labproc import free_port, stop_group, wait_until

PROMETHEUS = "/usr/bin/prometheus"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
PROMTOOL = "/usr/bin/promtool"


def available(*programs: str) -> str | None:
    """Why the tests cannot run (None: they can)."""
    for prog in programs:
        if not Path(prog).is_file():
            return f"{prog} missing: install Debian's prometheus and prometheus-node-exporter " \
                   f"(scripts/install-deps.sh)"
    return None


def http_get(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - 127.0.0.1 only
        return r.read().decode()


def wait_http(url: str, timeout: float = 30) -> str:
    def get() -> str | None:
        try:
            return http_get(url) or " "
        except OSError:
            return None
    return wait_until(get, timeout, url)


class Daemon:
    """One program started by PID in its own session, with a private temp dir."""

    def __init__(self, name: str):
        self.dir = Path(tempfile.mkdtemp(prefix=f"pqm-{name}-"))
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = self.dir / "daemon.log"

    def start(self, argv: list[str]) -> None:
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,  # noqa: S603
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         cwd=self.dir)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        stop_group(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class NodeExporter(Daemon):
    """node_exporter with the textfile collector alone, reading ``textfile_dir``."""

    def __init__(self, textfile_dir: Path):
        super().__init__("node-exporter")
        self.textfile_dir = textfile_dir

    def __enter__(self) -> NodeExporter:
        try:
            self.start([NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{self.port}",
                        "--collector.disable-defaults", "--collector.textfile",
                        f"--collector.textfile.directory={self.textfile_dir}"])
            wait_http(self.url)
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"


class PrometheusServer(Daemon):
    """A Prometheus server scraping ``target`` every second as job ``job``, with rule files."""

    def __init__(self, target: str, job: str, rule_files: list[Path]):
        super().__init__("prometheus")
        self.target, self.job, self.rule_files = target, job, rule_files

    def __enter__(self) -> PrometheusServer:
        try:
            config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                      "rule_files": [str(p) for p in self.rule_files],
                      "scrape_configs": [{"job_name": self.job, "scrape_timeout": "1s",
                                          "static_configs": [{"targets": [self.target]}]}]}
            (self.dir / "prometheus.yml").write_text(json.dumps(config))    # JSON is YAML
            self.start([PROMETHEUS, f"--config.file={self.dir / 'prometheus.yml'}",
                        f"--storage.tsdb.path={self.dir / 'data'}",
                        f"--web.listen-address=127.0.0.1:{self.port}"])
            wait_http(f"http://127.0.0.1:{self.port}/-/ready", timeout=60)
        except BaseException:
            self.stop()
            raise
        return self

    def api(self, path: str, **params: str) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        doc = json.loads(http_get(url))
        if doc.get("status") != "success":
            raise RuntimeError(f"{url}: {doc}")
        return doc["data"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr, time=f"{time.time():.3f}")["result"]
