"""``postfix_queue_prometheus {textfile,serve}``.

- ``textfile PATH``: measure once and write the exposition for node_exporter's textfile
  collector, atomically (a temporary file in PATH's directory, renamed over PATH), mode 0644,
  without timestamps. Exit 0; 3 with one line when measuring failed (the file then says
  ``postfix_up 0``) or failed in part (``postfix_queue_monitor_errors`` > 0). ``-`` is
  standard output (no file, nothing atomic; the one line then goes to stderr).
- ``serve --listen ADDR:PORT``: an HTTP ``/metrics`` endpoint (prometheus_client's server)
  that measures on each scrape within ``--timeout``; a failed measurement is ``postfix_up 0``
  and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, generate_latest, start_http_server

from .. import __version__
from ..cli import Parser, entry_point, measuring_options, run_command, whole_number
from ..errors import MonitorError
from .exposition import PostfixCollector

EXIT_ERROR = 3
DEFAULT_LISTEN = "127.0.0.1:9154"      # postfix_exporter's port
DEFAULT_TOP = 10


def _measuring(p: argparse.ArgumentParser, timeout: float) -> None:
    measuring_options(p, timeout, "growth samples, delivery counter totals and log position")
    p.add_argument("--no-deliveries", dest="deliveries", action="store_false",
                   help="no delivery counters (do not read the mail log)")
    p.add_argument("--top-destinations", metavar="N", type=whole_number(0), default=DEFAULT_TOP,
                   help=f"series for the N deferred destination domains with the most "
                        f"recipients (default {DEFAULT_TOP}; 0: none)")


def parser() -> Parser:
    p = Parser(prog="postfix_queue_prometheus",
               description="Postfix queue metrics for Prometheus: a textfile for "
                           "node_exporter, or a /metrics endpoint.")
    p.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="{textfile,serve}", parser_class=Parser)
    sub.required = True
    tf = sub.add_parser("textfile", help="write the metrics for node_exporter's textfile "
                                         "collector")
    tf.add_argument("path", metavar="PATH", help="the .prom file (in the collector's "
                                                 "--collector.textfile.directory); - for "
                                                 "standard output")
    _measuring(tf, 20.0)
    srv = sub.add_parser("serve", help="serve /metrics, measuring on each scrape")
    srv.add_argument("--listen", metavar="ADDR:PORT", default=DEFAULT_LISTEN,
                     help=f"address and port to listen on (default {DEFAULT_LISTEN})")
    _measuring(srv, 8.0)
    return p


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise MonitorError(f"--listen {text!r}: expected ADDR:PORT, e.g. {DEFAULT_LISTEN}")
    return host, int(port)


def check_target(path: str) -> None:
    """PATH must be a regular file or not exist yet: the rename would replace a symlink (as
    root, ``textfile /dev/stdout`` turned the system's /dev/stdout link into a file), and a
    FIFO, device or directory is not a file node_exporter reads."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise MonitorError(f"cannot use {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        what = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a regular file"
        raise MonitorError(f"{path} is {what}: textfile writes a regular file (a new one, "
                           f"renamed over PATH); give a path in node_exporter's textfile "
                           f"directory")


def write_atomic(path: str, data: bytes) -> None:
    """Replace ``path`` with ``data``: a fresh temporary file in the same directory (not
    ``*.prom``, which the collector would read half-written), fsynced, mode 0644, renamed.

    Not prometheus_client's write_to_textfile: it leaves the mode to the umask (a unit's
    UMask=0077 makes the file unreadable to node_exporter's user) and opens a predictable
    temporary name that follows symlinks."""
    check_target(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp",
                                   dir=directory)
    except OSError as exc:
        raise MonitorError(f"cannot write in {directory}: {exc.strerror} (the directory must "
                           f"exist and be writable by this user)") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), 0o644)
            os.fsync(fh.fileno())
        os.rename(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise MonitorError(f"cannot write {path}: {exc.strerror}") from None


def cmd_textfile(opts: argparse.Namespace) -> int:
    stdout = opts.path == "-"              # the usual meaning; the line then goes to stderr,
    where = "the output" if stdout else opts.path     # so that stdout stays an exposition
    if not stdout:
        check_target(opts.path)            # before measuring: a bad PATH costs no listing
    collector = PostfixCollector(opts, log=lambda line: None)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    data = generate_latest(registry)
    if stdout:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        write_atomic(opts.path, data)
    line = sys.stderr if stdout else sys.stdout
    if collector.last_problem:
        print(f"measuring failed: {collector.last_problem} ({where} says postfix_up 0)",
              file=line)
        return EXIT_ERROR
    if collector.last is not None and collector.last.errors:
        print(f"partly measured: {'; '.join(collector.last.errors)} (wrote {where})", file=line)
        return EXIT_ERROR
    return 0


def cmd_serve(opts: argparse.Namespace) -> int:
    host, port = parse_listen(opts.listen)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PostfixCollector(opts))
    try:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise MonitorError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"serving /metrics on {host}:{port}", file=sys.stderr, flush=True)
    while not stop.wait(1.0):
        pass
    server.shutdown()
    return 0


COMMANDS = {"textfile": cmd_textfile, "serve": cmd_serve}


@entry_point
def main(argv: Sequence[str] | None = None) -> int:
    opts = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    return run_command(COMMANDS, opts, EXIT_ERROR)


if __name__ == "__main__":
    sys.exit(main())
