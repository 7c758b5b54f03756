"""Push values to Zabbix trappers like ``zabbix_sender`` does, and lose none.

- Destinations: ``--zabbix-server HOST[:PORT]`` or the agent config's ``ServerActive``; as in the
  agent, ``,`` separates independent servers (each gets every value) and ``;`` separates the
  nodes of one HA cluster (the first that answers takes the values).
- TLS: ``zabbix_utils`` does none; :func:`tls_wrapper` turns the config's ``TLS*`` settings into
  the ``socket_wrapper`` it calls (certificates with the standard ``ssl`` module; PSK needs
  Python >= 3.13 or the ``sslpsk3`` module).
- Rejections: the server's ``failed`` count is checked per (host, key) group, so the report says
  which values were refused. Refused values are not kept (resending cannot fix them).
- Spool: values that could not be delivered to a destination stay in a state file of their own
  (bounded, oldest dropped first) with their original clock and are sent first next time.
"""

from __future__ import annotations

import glob
import hashlib
import os
import socket
import ssl
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import MonitorError
from ..state import StateDir

DEFAULT_PORT = 10051
SPOOL_KIND = "zabbix-spool"
DEFAULT_SPOOL_MAX = 2880          # two days of one value a minute
LOCK_DEADLINE_S = 5.0

EXIT_OK, EXIT_UNREACHABLE, EXIT_REJECTED = 0, 1, 2


# -- configuration --------------------------------------------------------------------------

def read_agent_config(path: str, _depth: int = 0) -> dict[str, str]:
    """``Key=Value`` settings of a zabbix_agentd.conf, following ``Include`` (files,
    directories and globs); keys lower-cased, the last one wins as in the agent."""
    if _depth > 8:
        raise MonitorError(f"{path}: Include nested too deeply")
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError as exc:
        raise MonitorError(f"cannot read Zabbix agent config {path}: {exc.strerror} "
                           f"(pass --config FILE or --zabbix-server HOST)") from None
    out: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = (part.strip() for part in line.split("=", 1))
        if key.lower() == "include":
            pattern = value
            if os.path.isdir(pattern):
                pattern = os.path.join(pattern, "*")
            for inc in sorted(glob.glob(pattern)):
                if os.path.isfile(inc):
                    out.update(read_agent_config(inc, _depth + 1))
            continue
        out[key.lower()] = value
    return out


def parse_servers(text: str) -> list[list[str]]:
    """``a:1;b:2,c`` → ``[["a:1", "b:2"], ["c:10051"]]``: independent servers, each a list of
    HA nodes, every node as ``host:port``."""
    clusters: list[list[str]] = []
    for cluster in text.split(","):
        nodes = []
        for node in cluster.split(";"):
            node = node.strip()
            if not node:
                continue
            if node.startswith("[") or node.count(":") > 1:
                raise MonitorError(f"server {node!r}: IPv6 addresses are not supported by "
                                   f"zabbix_utils' sender: use a host name")
            host, _, port = node.partition(":")
            if port and not port.isdigit():
                raise MonitorError(f"server {node!r}: the port must be a number")
            nodes.append(f"{host}:{port or DEFAULT_PORT}")
        if nodes:
            clusters.append(nodes)
    if not clusters:
        raise MonitorError(f"no Zabbix server in {text!r}: give HOST[:PORT]")
    return clusters


# -- TLS ------------------------------------------------------------------------------------

_RDN_SHORT = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
              "countryName": "C", "localityName": "L", "stateOrProvinceName": "ST",
              "domainComponent": "DC", "emailAddress": "emailAddress"}


def rfc4514(name: Iterable[Iterable[tuple[str, str]]]) -> str:
    """``ssl.getpeercert()``'s subject/issuer in Zabbix's RFC 4514 form (last RDN first)."""
    rdns = ["+".join(f"{_RDN_SHORT.get(k, k)}={v}" for k, v in rdn) for rdn in name]
    return ",".join(reversed(rdns))


def tls_wrapper(tls: dict[str, str]) -> Callable[[socket.socket, dict], socket.socket] | None:
    """A ``socket_wrapper`` for zabbix_utils from the agent config's TLS settings (lower-case
    keys: tlsconnect, tlscafile, tlscertfile, tlskeyfile, tlscrlfile, tlsservercertissuer,
    tlsservercertsubject, tlspskidentity, tlspskfile), or None for unencrypted."""
    mode = tls.get("tlsconnect", "unencrypted").strip().lower()
    if mode == "unencrypted":
        return None
    if mode == "cert":
        for need in ("tlscafile", "tlscertfile", "tlskeyfile"):
            if not tls.get(need):
                raise MonitorError(f"TLSConnect=cert needs {need_name(need)} in the agent config")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False            # Zabbix checks issuer/subject, not host names
        ctx.verify_mode = ssl.CERT_REQUIRED
        try:
            ctx.load_verify_locations(tls["tlscafile"])
            ctx.load_cert_chain(tls["tlscertfile"], tls["tlskeyfile"])
            if tls.get("tlscrlfile"):
                ctx.load_verify_locations(tls["tlscrlfile"])
                ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
        except (OSError, ssl.SSLError) as exc:
            raise MonitorError(f"TLS certificate settings unusable: {exc}") from None
        issuer = tls.get("tlsservercertissuer")
        subject = tls.get("tlsservercertsubject")

        def wrap_cert(conn: socket.socket, _tls: dict) -> socket.socket:
            sock = ctx.wrap_socket(conn)
            cert: dict[str, Any] = sock.getpeercert() or {}
            if issuer and rfc4514(cert.get("issuer", ())) != issuer:
                sock.close()
                raise ssl.SSLError(f"server certificate issuer is not {issuer!r}")
            if subject and rfc4514(cert.get("subject", ())) != subject:
                sock.close()
                raise ssl.SSLError(f"server certificate subject is not {subject!r}")
            return sock
        return wrap_cert
    if mode == "psk":
        identity = tls.get("tlspskidentity")
        keyfile = tls.get("tlspskfile")
        if not identity or not keyfile:
            raise MonitorError("TLSConnect=psk needs TLSPSKIdentity and TLSPSKFile")
        try:
            with open(keyfile, encoding="ascii") as fh:
                key = bytes.fromhex(fh.read().strip())
        except (OSError, ValueError) as exc:
            raise MonitorError(f"cannot read the PSK from {keyfile}: {exc}") from None
        return _psk_wrapper(identity, key)
    raise MonitorError(f"TLSConnect={mode}: expected unencrypted, psk or cert")


def need_name(key: str) -> str:
    return {"tlscafile": "TLSCAFile", "tlscertfile": "TLSCertFile",
            "tlskeyfile": "TLSKeyFile"}.get(key, key)


def _psk_wrapper(identity: str, key: bytes) -> Callable[[socket.socket, dict], socket.socket]:
    if sys.version_info >= (3, 13):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2   # Zabbix's PSK ciphersuites
        ctx.set_ciphers("PSK")
        ctx.set_psk_client_callback(lambda _hint: (identity, key))  # type: ignore[attr-defined]
        return lambda conn, _tls: ctx.wrap_socket(conn)
    try:
        import sslpsk3  # noqa: PLC0415
    except ImportError:
        raise MonitorError("TLSConnect=psk needs Python >= 3.13 or the sslpsk3 module "
                           "(pip install sslpsk3)") from None
    return lambda conn, _tls: sslpsk3.wrap_socket(
        conn, ssl_version=ssl.PROTOCOL_TLSv1_2, ciphers="PSK", psk=(key, identity.encode()))


# -- sending --------------------------------------------------------------------------------

@dataclass
class Value:
    host: str
    key: str
    value: str
    clock: int
    ns: int

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "key": self.key, "value": self.value,
                "clock": self.clock, "ns": self.ns}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Value:
        return cls(str(d["host"]), str(d["key"]), str(d["value"]), int(d["clock"]), int(d["ns"]))

    @classmethod
    def at(cls, host: str, key: str, value: str, when: float) -> Value:
        ns_total = int(round(when * 1e9))
        return cls(host, key, value, ns_total // 1_000_000_000, ns_total % 1_000_000_000)


@dataclass
class Outcome:
    """What happened to the values of one run at one destination."""

    destination: str
    sent: int = 0
    from_spool: int = 0
    rejected: list[tuple[str, str, int]] = field(default_factory=list)  # host, key, count
    unreachable: str | None = None
    spooled: int = 0
    dropped: int = 0


def spool_name(nodes: list[str]) -> str:
    digest = hashlib.sha256(";".join(nodes).encode()).hexdigest()[:12]
    return f"zabbix-spool-{digest}"


def _groups(values: list[Value]) -> list[list[Value]]:
    """Values grouped by (host, key), in first-seen order, clocks kept in order."""
    order: dict[tuple[str, str], list[Value]] = {}
    for v in values:
        order.setdefault((v.host, v.key), []).append(v)
    return list(order.values())


def _item_values(values: list[Value]):
    from zabbix_utils import ItemValue  # noqa: PLC0415 - import cost only where sending
    return [ItemValue(v.host, v.key, v.value, v.clock, v.ns) for v in values]


def send_to(nodes: list[str], values: list[Value], state: StateDir, *, timeout: float,
            wrapper=None, spool_max: int = DEFAULT_SPOOL_MAX, source_ip: str | None = None
            ) -> Outcome:
    """Send the spool of this destination, then ``values``; keep what was not delivered."""
    from zabbix_utils import Sender  # noqa: PLC0415
    from zabbix_utils.exceptions import ProcessingError  # noqa: PLC0415

    outcome = Outcome(destination=";".join(nodes))
    with state.locked(spool_name(nodes), LOCK_DEADLINE_S) as spool:
        stored = spool.read(SPOOL_KIND) or {}
        pending = [Value.from_dict(d) for d in stored.get("values", [])]
        outcome.from_spool = len(pending)
        batch = pending + values
        sender = Sender(clusters=[list(nodes)], timeout=max(1, int(round(timeout))),
                        socket_wrapper=wrapper, source_ip=source_ip)
        undelivered: list[Value] = []
        groups = _groups(batch)
        for i, group in enumerate(groups):
            try:
                response = sender.send(_item_values(group))
            except (ProcessingError, OSError, ssl.SSLError, ValueError) as exc:
                # OSError covers refused, reset, timeouts; ValueError a garbled answer
                outcome.unreachable = _why(exc)
                for rest in groups[i:]:
                    undelivered.extend(rest)
                break
            failed = int(response.failed)
            outcome.sent += int(response.processed)
            if failed:
                outcome.rejected.append((group[0].host, group[0].key, failed))
        if len(undelivered) > spool_max:
            outcome.dropped = len(undelivered) - spool_max
            undelivered = undelivered[-spool_max:]
        outcome.spooled = len(undelivered)
        if undelivered or pending:
            spool.write(SPOOL_KIND, {"values": [v.to_dict() for v in undelivered]})
    return outcome


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def summarize(outcomes: list[Outcome]) -> tuple[int, str]:
    """Exit code and the one line to print (zabbix_sender's meaning: 0 all processed,
    2 some rejected, 1 a destination unreachable — values kept for the next run)."""
    parts = []
    code = EXIT_OK
    for o in outcomes:
        bits = [f"{o.sent} processed"]
        if o.from_spool:
            bits.append(f"{o.from_spool} from the spool")
        if o.rejected:
            which = ", ".join(f"{n} for {h}:{k}" for h, k, n in o.rejected)
            bits.append(f"REJECTED {which} (is host {o.rejected[0][0]!r} in Zabbix with the "
                        f"template linked, and the item's type right?)")
            code = max(code, EXIT_REJECTED) if code != EXIT_UNREACHABLE else code
        if o.unreachable is not None:
            bits.append(f"UNREACHABLE ({o.unreachable}): {o.spooled} values kept in the spool"
                        + (f", {o.dropped} oldest dropped" if o.dropped else ""))
            code = EXIT_UNREACHABLE
        parts.append(f"{o.destination}: " + ", ".join(bits))
    return code, "; ".join(parts)
