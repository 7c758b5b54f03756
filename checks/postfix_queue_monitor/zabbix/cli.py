"""``postfix_queue_zabbix {send,json,discover,deploy}``.

- ``json``: print the document (for ``UserParameter=postfix.metrics``).
- ``discover``: print the LLD list of Postfix instances from ``postmulti -l``.
- ``send``: push the document to the trapper item ``postfix.metrics`` (and, with
  ``--instances``, the instance discovery and each instance's document); exit 0 when every
  value was processed, 2 when the server rejected some (the line says which), 1 when a server
  could not be reached (the values wait in the state dir, with their clock, for the next run).
- ``deploy``: import the templates and create/link the host through the API (pyzabbix).

Failures are one line on stdout and exit 3 (bad options, a failed measurement) — no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import sys
import time
from collections.abc import Sequence

from .. import __version__, check_registry
from ..cli import (
    Parser,
    entry_point,
    measuring_options,
    parse_duration,
    parse_timeout,
    run_command,
    whole_number,
)
from ..deadline import Deadline
from ..errors import MonitorError
from ..proc import Child, postfix_program
from ..state import StateDir
from . import document, sender, template

EXIT_ERROR = 3


BOUNCE = check_registry.BY_KEY["bounce"]
TIMEOUT = check_registry.BY_KEY["queue"].timeout


def _measuring(p: argparse.ArgumentParser) -> None:
    measuring_options(p, TIMEOUT, "growth, log position and unsent values")
    p.add_argument("--bounce-window", metavar="DURATION", type=parse_duration,
                   default=BOUNCE.window, help="delivery count / bounce rate window (default "
                   f"{check_registry.duration_text(BOUNCE.window)})")
    p.add_argument("--postmulti", metavar="PATH",
                   help="the postmulti program, for --instances and discover (default: "
                        "postmulti on PATH, else /usr/sbin/postmulti)")


def parser() -> Parser:
    p = Parser(prog="postfix_queue_zabbix",
               description="Postfix queue metrics for Zabbix: send, json, discover, deploy.")
    p.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="{send,json,discover,deploy}",
                           parser_class=Parser)
    sub.required = True

    js = sub.add_parser("json", help="print the document of every metric")
    _measuring(js)

    disc = sub.add_parser("discover", help="print the Postfix instances as Zabbix LLD JSON")
    disc.add_argument("-t", "--timeout", type=parse_timeout, default=TIMEOUT)
    disc.add_argument("--postmulti", metavar="PATH",
                      help="the postmulti program (default: postmulti on PATH, else "
                           "/usr/sbin/postmulti)")

    snd = sub.add_parser("send", help="push the document to a Zabbix trapper")
    _measuring(snd)
    dest = snd.add_mutually_exclusive_group(required=True)
    dest.add_argument("-z", "--zabbix-server", metavar="HOST[:PORT]",
                      help="server or proxy (',' several servers, ';' nodes of one HA "
                           "cluster); default port 10051")
    dest.add_argument("-c", "--config", metavar="FILE",
                      help="zabbix_agentd.conf: ServerActive, Hostname, SourceIP, TLS*")
    snd.add_argument("-s", "--host", metavar="NAME",
                     help="host name in Zabbix (default: the config's Hostname, else this "
                          "machine's name)")
    snd.add_argument("--instances", action="store_true",
                     help="also discover the other Postfix instances (postmulti -l) and send "
                          "each one's document")
    snd.add_argument("--spool-max", metavar="N", type=whole_number(1),
                     default=sender.DEFAULT_SPOOL_MAX,
                     help=f"values kept per server when it is unreachable, oldest dropped "
                          f"first (default {sender.DEFAULT_SPOOL_MAX})")
    snd.add_argument("--send-timeout", metavar="SECONDS", type=parse_duration, default=10.0,
                     help="per-connection network timeout (default 10)")

    dep = sub.add_parser("deploy", help="import the templates, create and link the host")
    dep.add_argument("--url", required=True, help="frontend URL (…/api_jsonrpc.php is added)")
    dep.add_argument("--user", default=os.environ.get("ZABBIX_USER"),
                     help="API user (or $ZABBIX_USER)")
    dep.add_argument("--password", default=os.environ.get("ZABBIX_PASSWORD"),
                     help="API password (or $ZABBIX_PASSWORD, which keeps it out of ps)")
    dep.add_argument("--token-file", metavar="FILE",
                     help="read the API token from FILE (first line), instead of user/password")
    dep.add_argument("--token", help="API token on the command line: visible to every user in "
                                     "ps, prefer --token-file or $ZABBIX_API_TOKEN")
    dep.add_argument("--insecure-http", action="store_true",
                     help="allow a plain http:// URL to a remote host (the token or password "
                          "travels in clear)")
    dep.add_argument("--host", required=True, help="the host to create or update")
    dep.add_argument("--group", action="append", metavar="NAME",
                     help="host group, repeatable (a new host's default: 'Postfix servers'; "
                          "an existing host keeps its groups and gets these added)")
    dep.add_argument("--agent", action="store_true",
                     help="link the agent template (default: the trapper template)")
    dep.add_argument("--agent-address", metavar="HOST[:PORT]",
                     help="the agent interface for --agent (default 127.0.0.1:10050)")
    dep.add_argument("--templates-dir", metavar="DIR",
                     help="import these *.yaml files instead of the built-in templates")
    dep.add_argument("--macro", action="append", metavar="{$NAME}=VALUE", default=[],
                     help="set a host macro, repeatable (e.g. '{$POSTFIX.QUEUE.SIZE.WARN}=800')")
    return p


# -- instances ------------------------------------------------------------------------------

#: one ``postmulti -l`` row: name, group, enabled (y/n), config directory (absolute)
_POSTMULTI_ROW = re.compile(r"^(\S+)\s+(\S+)\s+([yn])\s+(/\S*)\s*$")


def parse_postmulti(text: str) -> list[dict[str, str]]:
    """``postmulti -l`` → instances other than the default one, as LLD rows.

    Every row must read as one (postmulti always lists at least the default instance, ``-``):
    output not understood is an error, never an empty discovery (which would make Zabbix drop
    every instance it found before)."""
    rows = []
    seen = 0
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _POSTMULTI_ROW.match(line)
        if not m:
            raise MonitorError(f"postmulti -l printed a line that is not an instance (name, "
                               f"group, y/n, config directory): {line.strip()[:80]!r}")
        seen += 1
        if m[1] != "-":
            rows.append({"{#INSTANCE}": m[1], "{#CONFIG_DIR}": m[4]})
    if not seen:
        raise MonitorError("postmulti -l listed no instance, not even the default one: run it "
                           "by hand")
    return rows


def list_instances(postmulti: str | None, deadline: Deadline) -> list[dict[str, str]]:
    postmulti = postmulti or postfix_program("postmulti")
    with Child([postmulti, "-l"], deadline.child_timeout(),
               missing="install Postfix or pass --postmulti PATH") as child:
        out = b"".join(child.lines()).decode("utf-8", "replace")
        rc, err = child.finish()
    if rc != 0:
        last = err.strip().splitlines()[-1] if err.strip() else "no message"
        raise MonitorError(f"postmulti -l exited {rc}: {last}")
    return parse_postmulti(out)


def _instance_opts(opts: argparse.Namespace, config_dir: str) -> argparse.Namespace:
    inst = argparse.Namespace(**vars(opts))
    inst.config_dir = config_dir
    return inst


# -- commands -------------------------------------------------------------------------------

def cmd_json(opts: argparse.Namespace) -> int:
    print(document.measure(opts).text())
    return 0


def cmd_discover(opts: argparse.Namespace) -> int:
    print(json.dumps(list_instances(opts.postmulti, Deadline(opts.timeout))))
    return 0


def _destinations(opts: argparse.Namespace) -> tuple[list[list[str]], dict[str, str]]:
    if opts.zabbix_server is not None:          # "" too: parse_servers says it names none
        return sender.parse_servers(opts.zabbix_server), {}
    conf = sender.read_agent_config(opts.config)
    servers = conf.get("serveractive") or ""
    if not servers:
        raise MonitorError(f"{opts.config} has no ServerActive: set it or pass --zabbix-server")
    return sender.parse_servers(servers), conf


def cmd_send(opts: argparse.Namespace) -> int:
    deadline = Deadline(opts.timeout)      # the whole run: every measurement, spool, sending
    clusters, conf = _destinations(opts)
    wrapper = sender.tls_wrapper(conf)
    host = opts.host or conf.get("hostname") or socket.gethostname()
    values: list[sender.Value] = []
    problem = None
    try:
        m = document.measure(opts, deadline=deadline)
        values += [sender.Value.at(host, template.MASTER_KEY, text, when)
                   for when, text in m.stamped()]
        if opts.instances:
            rows = list_instances(opts.postmulti, deadline)
            values.append(sender.Value.at(host, template.DISCOVERY_KEY, json.dumps(rows),
                                          time.time()))
            for row in rows:
                im = document.measure(_instance_opts(opts, row["{#CONFIG_DIR}"]),
                                      deadline=deadline)
                key = template.instance_key("postfix.instance.metrics", row["{#INSTANCE}"])
                values += [sender.Value.at(host, key, text, when) for when, text in im.stamped()]
    except MonitorError as exc:
        problem = str(exc)       # still deliver what the spool holds and what was measured
    state = StateDir(opts.state_dir)
    outcomes = [sender.send_to(nodes, values, state, timeout=opts.send_timeout,
                               wrapper=wrapper, spool_max=opts.spool_max,
                               source_ip=conf.get("sourceip"), deadline=deadline)
                for nodes in clusters]
    code, line = sender.summarize(outcomes)
    if problem is not None:
        print(f"measuring failed: {problem} ({line})")
        return EXIT_ERROR
    print(f"host {host}: {line}")
    return code


def _macros(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        if not eq or not (name.startswith("{$") and name.endswith("}")):
            raise MonitorError(f"--macro {pair!r}: expected {{$NAME}}=VALUE")
        out[name] = value
    return out


def cmd_deploy(opts: argparse.Namespace) -> int:
    from . import deploy  # noqa: PLC0415 - pyzabbix/requests only for this command

    token = deploy_token(opts)
    if not token and not (opts.user and opts.password is not None):
        raise MonitorError("deploy needs --token-file FILE or $ZABBIX_API_TOKEN, or --user and "
                           "--password (or $ZABBIX_USER and $ZABBIX_PASSWORD)")
    check_url(opts.url, opts.insecure_http)
    api = deploy.connect(opts.url, opts.user, opts.password, token)
    result = deploy.deploy(api, opts.host, opts.group,
                           kind="agent" if opts.agent else "trapper",
                           templates_dir=opts.templates_dir, agent_address=opts.agent_address,
                           macros=_macros(opts.macro))
    print(f"deployed: {'; '.join(result.actions)} (hostid {result.hostid})")
    return 0


def deploy_token(opts: argparse.Namespace) -> str | None:
    """The API token: --token-file, else $ZABBIX_API_TOKEN (or the older $ZABBIX_TOKEN), else
    --token, which every user sees in ps: it still works, with a warning on stderr."""
    if opts.token_file:
        try:
            with open(opts.token_file, encoding="utf-8") as fh:
                token = fh.readline().strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise MonitorError(f"cannot read the token file {opts.token_file}: {why}") from None
        if not token:
            raise MonitorError(f"the token file {opts.token_file} is empty")
        return token
    env = os.environ.get("ZABBIX_API_TOKEN") or os.environ.get("ZABBIX_TOKEN")
    if env:
        return env
    if opts.token:
        print("warning: --token is visible to every user in ps: use --token-file FILE or "
              "$ZABBIX_API_TOKEN", file=sys.stderr)
    return opts.token


def check_url(url: str, insecure_http: bool) -> None:
    """Refuse sending credentials in clear: http:// only to this machine (the loopback never
    leaves it) or with --insecure-http."""
    from urllib.parse import urlsplit  # noqa: PLC0415

    parts = urlsplit(url)
    if parts.scheme.lower() == "https":
        return
    if parts.scheme.lower() != "http":
        raise MonitorError(f"--url {url}: expected an https:// URL")
    host = (parts.hostname or "").lower()
    if insecure_http or host == "localhost" or host == "::1" or host.startswith("127."):
        return
    raise MonitorError(f"--url {url}: plain http sends the API token or password in clear: use "
                       f"https://, or pass --insecure-http if you accept that")


COMMANDS = {"json": cmd_json, "discover": cmd_discover, "send": cmd_send,
            "deploy": cmd_deploy}


@entry_point
def main(argv: Sequence[str] | None = None) -> int:
    opts = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    return run_command(COMMANDS, opts, EXIT_ERROR)


if __name__ == "__main__":
    sys.exit(main())
