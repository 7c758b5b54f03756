"""The sender under faults (issue 16, items 1, 2, 6, 7, 8, 10), against a real local TCP trapper
speaking the Zabbix protocol: a server that trickles its answer, one that drops the connection
after some chunks, a spool held by another run, a malformed or unwritable spool."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fakes import fake_postqueue
from postfix_queue_monitor.deadline import Deadline
from postfix_queue_monitor.state import StateDir
from postfix_queue_monitor.zabbix import sender
from postfix_queue_monitor.zabbix.cli import main

HEADER = struct.Struct("<4sBII")


class Trapper:
    """A trapper on 127.0.0.1 that answers ``sender data`` like a Zabbix server.

    ``answer_first``: how many requests get an answer before every later connection is
    closed unanswered; ``trickle``: seconds between the bytes of each answer; ``silent``:
    read the request, then hold the connection open and never answer (a black hole)."""

    def __init__(self, answer_first: int | None = None, trickle: float | None = None,
                 silent: bool = False):
        self.answer_first = answer_first
        self.trickle = trickle
        self.silent = silent
        self.received: list[list[dict]] = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def node(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            with conn:
                conn.settimeout(5)
                try:
                    self._one(conn)
                except OSError:
                    pass

    def _one(self, conn: socket.socket) -> None:
        head = b""
        while len(head) < HEADER.size:
            got = conn.recv(HEADER.size - len(head))
            if not got:
                return
            head += got
        _, _, size, _ = HEADER.unpack(head)
        body = b""
        while len(body) < size:
            body += conn.recv(size - len(body))
        data = json.loads(body)["data"]
        if self.silent:
            self.stop.wait()                         # until the test ends
            return
        if self.answer_first is not None and len(self.received) >= self.answer_first:
            return                                   # dropped: no answer
        self.received.append(data)
        info = (f"processed: {len(data)}; failed: 0; total: {len(data)}; "
                f"seconds spent: 0.000100")
        answer = json.dumps({"response": "success", "info": info}).encode()
        packet = HEADER.pack(b"ZBXD", 1, len(answer), 0) + answer
        if self.trickle is None:
            conn.sendall(packet)
            return
        for i in range(len(packet)):
            if self.stop.wait(self.trickle):
                return
            conn.sendall(packet[i:i + 1])

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def trapper_factory():
    made: list[Trapper] = []

    def make(**kw) -> Trapper:
        t = Trapper(**kw)
        made.append(t)
        return t
    yield make
    for t in made:
        t.close()


def _values(n: int, key: str = "postfix.metrics") -> list[sender.Value]:
    return [sender.Value.at("mail1", key, f"v{i}", 1_800_000_000 + i) for i in range(n)]


def _spool(state: StateDir, nodes: list[str], name: str | None = None) -> list[dict]:
    with state.locked(name or sender.spool_name(nodes), 1) as sf:
        return (sf.read(sender.SPOOL_KIND) or {}).get("values", [])


def _seed(state: StateDir, nodes: list[str], values: list) -> None:
    with state.locked(sender.spool_name(nodes), 1) as sf:
        sf.write(sender.SPOOL_KIND, {"values": values})


# -- 6. one deadline for the whole run --------------------------------------------------------

def test_trickling_server_is_bounded_by_the_runs_deadline(tmp_path, trapper_factory) -> None:
    """Before: a byte every 2 s kept each recv() under --send-timeout and held the run for
    minutes. Now the run's deadline bounds it, and the value waits in the spool."""
    trap = trapper_factory(trickle=0.5)
    state = StateDir(str(tmp_path / "s"))
    started = time.monotonic()
    out = sender.send_to([trap.node], _values(1), state, timeout=3,
                         deadline=Deadline(1.5))
    took = time.monotonic() - started
    assert took < 2.5, took
    assert out.unreachable is not None and out.spooled == 1
    assert [v["value"] for v in _spool(state, [trap.node])] == ["v0"]


class FakeClock:
    """A monotonic clock far from time.monotonic()'s: code that reads the real clock instead
    of asking the run's Deadline sees a budget of days where the Deadline has none left."""

    def __init__(self) -> None:
        self.now = 1e12

    def __call__(self) -> float:
        return self.now


def test_sending_asks_the_runs_deadline_not_the_wall(tmp_path, trapper_factory) -> None:
    """The budget is the Deadline's (its own clock), not a float end time of the caller's."""
    trap = trapper_factory()
    clock = FakeClock()
    deadline = Deadline(2, clock=clock)
    clock.now += 2                                 # spent by the measurements before
    state = StateDir(str(tmp_path / "s"))
    out = sender.send_to([trap.node], _values(1), state, timeout=1, deadline=deadline)
    assert trap.received == []
    assert out.unreachable == "the run's deadline (-t) passed before all values were sent"
    assert out.spooled == 1 and [v["value"] for v in _spool(state, [trap.node])] == ["v0"]


def test_deadline_socket_gives_each_operation_what_is_left() -> None:
    """What is left of the run, never more than the per-operation --send-timeout."""
    clock = FakeClock()
    a, b = socket.socketpair()
    with a, b:
        sock = sender._DeadlineSocket(a, Deadline(5, clock=clock), 2.5)
        sock.sendall(b"x")
        assert a.gettimeout() == 2.5 and b.recv(1) == b"x"
        clock.now += 3
        sock.sendall(b"x")
        assert a.gettimeout() == 2.0 and b.recv(1) == b"x"
        clock.now += 2
        with pytest.raises(socket.timeout, match="deadline"):
            sock.recv(1)


def test_silent_server_costs_send_timeout_not_the_whole_run(tmp_path, trapper_factory) -> None:
    """Before: each receive waited for all that was left of -t, not --send-timeout, so a server
    that took the request and never answered used up the run and the next server (``a,b``:
    each gets every value) got nothing. Now it costs one --send-timeout (0.5 s of the 10)."""
    hole, good = trapper_factory(silent=True), trapper_factory()
    state = StateDir(str(tmp_path / "s"))
    deadline = Deadline(10)
    first = sender.send_to([hole.node], _values(1), state, timeout=0.5, deadline=deadline)
    second = sender.send_to([good.node], _values(1), state, timeout=0.5, deadline=deadline)
    assert first.unreachable == "no answer within --send-timeout (0.5 s)", first.unreachable
    assert first.spooled == 1
    assert second.sent == 1 and [[v["value"] for v in r] for r in good.received] == [["v0"]]
    assert deadline.remaining() > 5, deadline


def test_send_cli_trickle_ends_within_t(tmp_path, fixtures, trapper_factory) -> None:
    trap = trapper_factory(trickle=0.5)
    pq = fake_postqueue(tmp_path, j=fixtures / "deferred-50-four-reasons.jsonl")
    log = tmp_path / "mail.log"
    log.write_text("")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "postfix_queue_monitor.zabbix.cli", "send",
                           "--postqueue", pq, "--log-file", str(log),
                           "--state-dir", str(tmp_path / "s"), "-z", trap.node,
                           "--host", "mail1", "--send-timeout", "3", "-t", "2"],
                          capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    assert took < 3 + 1.5, took                  # -t + 1 s, plus the interpreter's start
    assert proc.returncode == 1 and "deadline" in proc.stdout, proc.stdout
    assert proc.stderr == ""


def test_send_instances_share_one_deadline(tmp_path, fixtures, trapper_factory, capsys) -> None:
    """Before: each instance's measurement (and postmulti -l) had a -t of its own, so -t 2 with
    two more instances ran past 4 s (two listings cut at 2 s each) and left the sending no
    time. Now every part shares the run's -t: the first instance's listing is cut at it, the
    line says so (exit 3), what was measured is sent. The default instance lists at once and
    the instances' listings never end, so no figure depends on how loaded the machine is."""
    trap = trapper_factory()
    pq = tmp_path / "postqueue"
    pq.write_text(f"#!/bin/sh\n[ \"$1\" = -c ] && exec sleep 30\n"
                  f"exec cat {fixtures / 'deferred-50-four-reasons.jsonl'}\n")
    pq.chmod(0o755)
    pm = tmp_path / "postmulti"
    pm.write_text("#!/bin/sh\necho '-  -  y  /etc/postfix'\n"
                  "echo 'postfix-out  mta  y  /etc/postfix-out'\n"
                  "echo 'postfix-in  mta  y  /etc/postfix-in'\n")
    pm.chmod(0o755)
    log = tmp_path / "mail.log"
    log.write_text("")
    started = time.monotonic()
    code = main(["send", "--postqueue", str(pq), "--postmulti", str(pm), "--instances",
                 "--log-file", str(log), "--state-dir", str(tmp_path / "s"), "-z", trap.node,
                 "--host", "mail1", "-t", "2"])
    took = time.monotonic() - started
    out = capsys.readouterr().out
    assert took < 3.9, took                      # a -t per instance: over 4 s
    assert code == 3 and out.startswith("measuring failed: postqueue did not finish"), out
    # the default instance's document and the discovery reached the server
    assert [[v["key"] for v in r] for r in trap.received] == [["postfix.metrics"],
                                                               ["postfix.instances"]]


def test_locked_spool_goes_to_the_side_spool_then_is_sent(tmp_path, trapper_factory) -> None:
    """Before: a run blocked on the spool lock exited 3 after 5 s and its value was lost."""
    trap = trapper_factory()
    state = StateDir(str(tmp_path / "s"))
    nodes = [trap.node]
    with state.locked(sender.spool_name(nodes), 1):          # another run, sending
        started = time.monotonic()
        out = sender.send_to(nodes, _values(1), state, timeout=1,
                             deadline=Deadline(1.0))
        assert time.monotonic() - started < 1.5
    assert out.side_spooled == 1 and out.sent == 0
    code, line = sender.summarize([out])
    assert code == 1 and "SPOOL BUSY" in line and "1 values left in the side spool" in line
    assert [v["value"] for v in _spool(state, nodes, sender.side_spool_name(nodes))] == ["v0"]
    later = sender.send_to(nodes, [sender.Value.at("mail1", "postfix.metrics", "new", 2e9)],
                           state, timeout=1)
    assert later.sent == 2 and later.from_spool == 1
    assert [v["value"] for v in trap.received[0]] == ["v0", "new"]
    assert not os.path.exists(state.file(sender.side_spool_name(nodes)))
    assert _spool(state, nodes) == []


# -- 7. acknowledged chunks leave the spool at once ------------------------------------------

def test_partial_chunk_failure_keeps_only_the_unacknowledged(tmp_path, trapper_factory) -> None:
    """Before: 600 spooled, 2 chunks acknowledged, then a drop → 601 kept (500 sent twice)."""
    trap = trapper_factory(answer_first=2)
    state = StateDir(str(tmp_path / "s"))
    nodes = [trap.node]
    _seed(state, nodes, [v.to_dict() for v in _values(600)])
    out = sender.send_to(nodes, [sender.Value.at("mail1", "postfix.metrics", "new", 2e9)],
                         state, timeout=2)
    assert out.sent == 500 and out.unreachable is not None
    kept = _spool(state, nodes)
    assert len(kept) == 101 and out.spooled == 101
    assert kept[0]["value"] == "v500" and kept[-1]["value"] == "new"


# -- 1. a bad spool entry costs only itself --------------------------------------------------

def test_bad_spool_entries_dropped_alone_good_ones_delivered(tmp_path, trapper_factory) -> None:
    """Before: one entry without ``value`` raised KeyError on every send (nothing delivered,
    each new value lost)."""
    trap = trapper_factory()
    state = StateDir(str(tmp_path / "s"))
    nodes = [trap.node]
    good = [v.to_dict() for v in _values(2)]
    _seed(state, nodes, [good[0], {"host": "mail1", "key": "k", "clock": 1, "ns": 0},
                         {"host": "h", "key": "k", "value": "x", "clock": -1, "ns": 0},
                         [1, 2], "junk", good[1]])
    out = sender.send_to(nodes, _values(1, key="other"), state, timeout=1)
    assert out.bad_spooled == 4 and out.sent == 3 and out.unreachable is None
    assert sorted(v["value"] for req in trap.received for v in req) == ["v0", "v0", "v1"]
    code, line = sender.summarize([out])
    assert code == 0 and "4 malformed spooled values dropped" in line
    assert _spool(state, nodes) == []


def test_corrupt_spool_moved_aside_and_this_runs_value_still_sent(tmp_path,
                                                                   trapper_factory) -> None:
    trap = trapper_factory()
    state = StateDir(str(tmp_path / "s"))
    nodes = [trap.node]
    state.ensure()
    Path(state.file(sender.spool_name(nodes))).write_text(
        '{"kind":"zabbix-spool","version":1,"data":{"values":5}}')
    out = sender.send_to(nodes, _values(1), state, timeout=1)
    assert out.sent == 1
    code, line = sender.summarize([out])
    assert code == 3 and "is corrupt (values is int, not a list)" in line
    assert "the unsent values lost, the next run starts afresh" in line
    assert "baseline" not in line


# -- 8. --spool-max ---------------------------------------------------------------------------

@pytest.mark.parametrize("bad", ["0", "-2", "x"])
def test_spool_max_must_be_at_least_1(bad, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["send", "-z", "127.0.0.1:1", "--spool-max", bad])
    assert exc.value.code == 3
    assert "--spool-max" in capsys.readouterr().out


# -- 2. an unwritable spool still delivers ---------------------------------------------------

def test_unwritable_state_dir_still_sends(tmp_path, trapper_factory, ro_dir) -> None:
    trap = trapper_factory()
    state = StateDir(ro_dir)
    out = sender.send_to([trap.node], _values(1), state, timeout=1)
    assert out.sent == 1 and out.spool_error is not None
    code, line = sender.summarize([out])
    assert code == 3 and "Read-only file system" in line and "--state-dir" in line


# -- 10. deploy's token ------------------------------------------------------------------------

def test_deploy_token_from_file_env_and_warned_on_command_line(tmp_path, monkeypatch,
                                                                capsys) -> None:
    from postfix_queue_monitor.zabbix.cli import deploy_token, parser

    monkeypatch.delenv("ZABBIX_API_TOKEN", raising=False)
    monkeypatch.delenv("ZABBIX_TOKEN", raising=False)
    tok = tmp_path / "token"
    tok.write_text("secret-from-file\n")
    base = ["deploy", "--url", "https://z.example/", "--host", "h"]
    assert deploy_token(parser().parse_args([*base, "--token-file", str(tok)])) \
        == "secret-from-file"
    monkeypatch.setenv("ZABBIX_API_TOKEN", "secret-from-env")
    assert deploy_token(parser().parse_args(base)) == "secret-from-env"
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("ZABBIX_API_TOKEN")
    assert deploy_token(parser().parse_args([*base, "--token", "visible"])) == "visible"
    assert "visible to every user in ps" in capsys.readouterr().err


def test_deploy_refuses_plain_http_to_a_remote_host(capsys) -> None:
    code = main(["deploy", "--url", "http://zabbix.example/", "--host", "h",
                 "--user", "u", "--password", "p"])
    out = capsys.readouterr().out
    assert code == 3 and "plain http" in out and "--insecure-http" in out
    assert out.count("\n") == 1


def test_deploy_http_allowed_with_insecure_http_or_loopback() -> None:
    from postfix_queue_monitor.zabbix.cli import check_url

    check_url("http://zabbix.example/", True)
    check_url("http://127.0.0.1:8080/", False)
    check_url("https://zabbix.example/", False)
