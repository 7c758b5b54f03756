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

from .. import state_schema
from ..deadline import Deadline
from ..errors import MonitorError
from ..state import StateBusy, StateDir, StateFile

DEFAULT_PORT = 10051
SPOOL_KIND = "zabbix-spool"
DEFAULT_SPOOL_MAX = 2880          # two days of one value a minute
LOCK_DEADLINE_S = 5.0
SIDE_LOCK_S = 1.0                 # the side spool's lock is held only for one read or write
CHUNK = 250                       # values per trapper request (zabbix_sender's and the library's)

EXIT_OK, EXIT_UNREACHABLE, EXIT_REJECTED, EXIT_SPOOL = 0, 1, 2, 3


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
            if not host:
                raise MonitorError(f"server {node!r}: no host name before the port")
            if port and not (port.isdigit() and 1 <= int(port) <= 65535):
                raise MonitorError(f"server {node!r}: the port must be a number from 1 to "
                                   f"65535")
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
    bad_spooled: int = 0           # malformed spool entries dropped (the good ones were sent)
    side_spooled: int = 0          # spool locked by another run: values left in the side spool
    spool_error: str | None = None  # the spool could not be read or written: why
    spool_dirty: bool = False      # the spool file holds values this run must rewrite


def spool_name(nodes: list[str]) -> str:
    digest = hashlib.sha256(";".join(nodes).encode()).hexdigest()[:12]
    return f"zabbix-spool-{digest}"


def side_spool_name(nodes: list[str]) -> str:
    """Where a run that cannot get the spool's lock leaves its values; the run holding the
    lock takes them over (the side spool's lock is only ever held for a read or a write)."""
    return spool_name(nodes) + "-side"


def _groups(values: list[Value]) -> list[list[Value]]:
    """Values grouped by (host, key), in first-seen order, clocks kept in order."""
    order: dict[tuple[str, str], list[Value]] = {}
    for v in values:
        order.setdefault((v.host, v.key), []).append(v)
    return list(order.values())


def _item_values(values: list[Value]):
    from zabbix_utils import ItemValue  # noqa: PLC0415 - import cost only where sending
    return [ItemValue(v.host, v.key, v.value, v.clock, v.ns) for v in values]


class _DeadlineSocket:
    """A socket whose every send and receive is bounded by the run's Deadline.

    zabbix_utils' Sender sets one per-operation timeout on its socket: a server that trickles
    a byte every few seconds keeps each recv() under it and holds the run for minutes. Passed
    in as (part of) the ``socket_wrapper``, this shrinks the timeout before each operation to
    what is left of the run's ``-t`` (never above ``timeout``, ``--send-timeout``: a server
    that never answers must not use up the run the next server needs) and fails once none is
    left.
    """

    def __init__(self, sock: socket.socket, deadline: Deadline, timeout: float):
        self._sock = sock
        self._deadline = deadline
        self._timeout = timeout

    def _arm(self, slack: float = 0.0) -> None:
        left = self._deadline.remaining()
        if left <= slack:
            raise socket.timeout("the run's deadline (-t) passed while sending")
        self._sock.settimeout(min(self._timeout, left))

    def _timed_out(self) -> socket.timeout:
        """Why an operation timed out, for the one line: the run's deadline, or the server
        (bare "timed out" named neither)."""
        self._arm(0.05)          # raises, saying "deadline", when that is why
        return socket.timeout(f"no answer within --send-timeout ({self._timeout:g} s)")

    def sendall(self, data: bytes) -> None:
        self._arm()
        try:
            self._sock.sendall(data)
        except socket.timeout:
            raise self._timed_out() from None

    def recv(self, size: int) -> bytes:
        self._arm()
        try:
            return self._sock.recv(size)
        except socket.timeout:
            raise self._timed_out() from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def _read_spool(spool: StateFile, outcome: Outcome) -> list[Value]:
    """The valid values of a spool file; a bad entry is dropped alone (counted)."""
    stored = spool.read(SPOOL_KIND, state_schema.spool, "the unsent values") or {}
    out = []
    for entry in stored.get("values", []):
        try:
            out.append(Value.from_dict(state_schema.spool_entry(entry)))
        except ValueError:
            outcome.bad_spooled += 1
    return out


def _take_side_spool(state: StateDir, nodes: list[str], spool: StateFile,
                     pending: list[Value], outcome: Outcome) -> list[Value]:
    """Add the values other runs left while this destination's spool was locked: written
    into the spool first, then the side spool is removed (nothing is lost in between)."""
    name = side_spool_name(nodes)
    if not os.path.lexists(state.file(name)):
        return pending
    try:
        with state.locked(name, SIDE_LOCK_S) as side:
            taken = _read_spool(side, outcome)
            if taken:
                pending = pending + taken
                spool.write(SPOOL_KIND, {"values": [v.to_dict() for v in pending]})
                outcome.spool_dirty = True
            os.unlink(side.path)
    except (MonitorError, OSError) as exc:
        outcome.spool_error = str(exc)
    return pending


def _to_side_spool(state: StateDir, nodes: list[str], values: list[Value], spool_max: int,
                   outcome: Outcome, deadline: Deadline) -> None:
    """The spool is locked by another run: append this run's values to the side spool."""
    left = max(0.05, min(SIDE_LOCK_S, deadline.remaining()))
    try:
        with state.locked(side_spool_name(nodes), left) as side:
            kept = _read_spool(side, outcome) + values
            if len(kept) > spool_max:
                outcome.dropped = len(kept) - spool_max
                kept = kept[-spool_max:]
            side.write(SPOOL_KIND, {"values": [v.to_dict() for v in kept]})
    except MonitorError as exc:
        outcome.spool_error = str(exc)
        return
    outcome.side_spooled = len(values)


def send_to(nodes: list[str], values: list[Value], state: StateDir, *, timeout: float,
            wrapper=None, spool_max: int = DEFAULT_SPOOL_MAX, source_ip: str | None = None,
            deadline: Deadline | None = None) -> Outcome:
    """Send the spool of this destination, then ``values``; keep what was not delivered.

    ``timeout`` bounds each network operation, ``deadline`` (the run's Deadline) the whole
    call: waiting for the spool's lock, connecting, sending, receiving. A run that cannot get
    the lock in time leaves its values in the side spool; one whose spool cannot be read or
    written still sends what it measured. After each acknowledged chunk the spool is rewritten
    without it, so a later failure never re-sends what the server already took.
    """
    if deadline is None:
        deadline = Deadline(LOCK_DEADLINE_S + 2 * timeout)
    outcome = Outcome(destination=";".join(nodes))
    lock_wait = max(0.05, min(LOCK_DEADLINE_S, deadline.remaining() / 2))
    try:
        with state.locked(spool_name(nodes), lock_wait) as spool:
            _send_spooled(nodes, values, state, spool, outcome, timeout=timeout,
                          wrapper=wrapper, spool_max=spool_max, source_ip=source_ip,
                          deadline=deadline)
    except StateBusy:
        _to_side_spool(state, nodes, values, spool_max, outcome, deadline)
    except MonitorError as exc:
        if outcome.sent or outcome.unreachable is not None:
            outcome.spool_error = str(exc)     # the spool's final write failed
            return outcome
        # the spool is unusable (read-only, full, not ours): still deliver this run's values
        outcome.spool_error = str(exc)
        _send(nodes, values, outcome, None, timeout=timeout, wrapper=wrapper,
              source_ip=source_ip, deadline=deadline)
    return outcome


def _send_spooled(nodes: list[str], values: list[Value], state: StateDir, spool: StateFile,
                  outcome: Outcome, **kw: Any) -> None:
    try:
        pending = _read_spool(spool, outcome)
    except MonitorError as exc:           # a corrupt spool: moved aside, said once
        outcome.spool_error = str(exc)
        pending = []
    outcome.spool_dirty = bool(pending or outcome.bad_spooled)
    pending = _take_side_spool(state, nodes, spool, pending, outcome)
    outcome.from_spool = len(pending)
    spool_max = kw.pop("spool_max")
    undelivered = _send(nodes, pending + values, outcome, spool, **kw)
    if len(undelivered) > spool_max:
        outcome.dropped += len(undelivered) - spool_max
        undelivered = undelivered[-spool_max:]
    outcome.spooled = len(undelivered)
    if undelivered or outcome.spool_dirty:
        spool.write(SPOOL_KIND, {"values": [v.to_dict() for v in undelivered]})


def _send(nodes: list[str], batch: list[Value], outcome: Outcome, spool: StateFile | None, *,
          timeout: float, wrapper: Any, source_ip: str | None,
          deadline: Deadline) -> list[Value]:
    """Send ``batch`` in chunks of CHUNK values of one (host, key); return what was not
    delivered. With a ``spool``, each acknowledged chunk is removed from it at once."""
    from zabbix_utils import Sender  # noqa: PLC0415
    from zabbix_utils.exceptions import ProcessingError  # noqa: PLC0415

    def wrap(conn: socket.socket, tls: dict) -> Any:
        if wrapper is not None:
            conn = wrapper(conn, tls)
        return _DeadlineSocket(conn, deadline, timeout)

    chunks = [g[i:i + CHUNK] for g in _groups(batch) for i in range(0, len(g), CHUNK)]
    sender = Sender(clusters=[list(nodes)], timeout=timeout, socket_wrapper=wrap,
                    source_ip=source_ip, chunk_size=CHUNK)
    for i, chunk in enumerate(chunks):
        left = deadline.remaining()
        if left <= 0.05:
            outcome.unreachable = "the run's deadline (-t) passed before all values were sent"
            return [v for c in chunks[i:] for v in c]
        # each node of an HA cluster may be tried in turn: share what is left between them
        sender.timeout = max(0.05, min(timeout, left / len(nodes)))
        try:
            response = sender.send(_item_values(chunk))
        except (ProcessingError, OSError, ssl.SSLError, ValueError) as exc:
            # OSError covers refused, reset, timeouts; ValueError a garbled answer
            outcome.unreachable = _why(exc)
            return [v for c in chunks[i:] for v in c]
        failed = int(response.failed)
        outcome.sent += int(response.processed)
        if failed:
            host, key = chunk[0].host, chunk[0].key
            if outcome.rejected and outcome.rejected[-1][:2] == (host, key):
                failed += outcome.rejected.pop()[2]
            outcome.rejected.append((host, key, failed))
        if spool is not None and i + 1 < len(chunks):
            rest = [v for c in chunks[i + 1:] for v in c]
            spool.write(SPOOL_KIND, {"values": [v.to_dict() for v in rest]})
            outcome.spool_dirty = True
    return []


def _why(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _worse(a: int, b: int) -> int:
    rank = (EXIT_OK, EXIT_REJECTED, EXIT_UNREACHABLE, EXIT_SPOOL)
    return max(a, b, key=rank.index)


def summarize(outcomes: list[Outcome]) -> tuple[int, str]:
    """Exit code and the one line to print (zabbix_sender's meaning: 0 all processed,
    2 some rejected, 1 a destination unreachable or the spool busy — values kept for the next
    run; and 3 when the spool itself is unusable or was corrupt: the line says what to fix)."""
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
            code = _worse(code, EXIT_REJECTED)
        if o.unreachable is not None:
            bits.append(f"UNREACHABLE ({o.unreachable}): {o.spooled} values kept in the spool"
                        + (f", {o.dropped} oldest dropped" if o.dropped else ""))
            code = _worse(code, EXIT_UNREACHABLE)
        if o.side_spooled:
            bits.append(f"SPOOL BUSY (another run holds it): {o.side_spooled} values left in "
                        f"the side spool for the next run"
                        + (f", {o.dropped} oldest dropped" if o.dropped else ""))
            code = _worse(code, EXIT_UNREACHABLE)
        if o.bad_spooled:
            bits.append(f"{o.bad_spooled} malformed spooled values dropped")
        if o.spool_error is not None:
            bits.append(f"SPOOL: {o.spool_error}")
            code = _worse(code, EXIT_SPOOL)
        parts.append(f"{o.destination}: " + ", ".join(bits))
    return code, "; ".join(parts)
