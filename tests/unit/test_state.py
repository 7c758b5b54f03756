"""The state store: atomic, locked, versioned, private, no symlinks — and 32 concurrent runs."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat

import pytest

from postfix_queue_monitor.errors import MonitorError
from postfix_queue_monitor.state import StateDir, StateError, instance_key


def test_created_private(tmp_path):
    d = StateDir(str(tmp_path / "a" / "state"))
    with d.locked("x.json", 1) as sf:
        sf.write("k", {"n": 1})
    assert stat.S_IMODE(os.stat(d.path).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(d.file("x.json")).st_mode) == 0o600
    with d.locked("x.json", 1) as sf:
        assert sf.read("k") == {"n": 1}


def test_loose_mode_is_tightened(tmp_path):
    p = tmp_path / "s"
    p.mkdir(mode=0o755)
    os.chmod(p, 0o777)
    StateDir(str(p)).ensure()
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o700


def test_symlinked_dir_refused(tmp_path):
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "link")
    with pytest.raises(StateError, match="symlink"):
        StateDir(str(tmp_path / "link")).ensure()


def test_symlinked_file_not_followed(tmp_path):
    d = StateDir(str(tmp_path / "s"))
    d.ensure()
    victim = tmp_path / "victim"
    victim.write_text("precious")
    os.symlink(victim, d.file("x.json"))
    with d.locked("x.json", 1) as sf, pytest.raises(StateError, match="symlink"):
        sf.read("k")
    with d.locked("x.json", 1) as sf:
        sf.write("k", {"n": 2})
    assert victim.read_text() == "precious"
    assert not os.path.islink(d.file("x.json"))


@pytest.mark.parametrize("content", [b"{not json", b'{"kind":"other","version":1,"data":{}}',
                                     b'{"kind":"k","version":99,"data":{}}', b""])
def test_corrupt_file_named_once_then_fresh(tmp_path, content):
    d = StateDir(str(tmp_path / "s"))
    d.ensure()
    with open(d.file("x.json"), "wb") as fh:
        fh.write(content)
    with d.locked("x.json", 1) as sf, pytest.raises(StateError, match="x.json is corrupt"):
        sf.read("k")
    with d.locked("x.json", 1) as sf:
        assert sf.read("k") is None          # a fresh baseline
    assert any(n.startswith("x.json.corrupt-") for n in os.listdir(d.path))


def test_lock_deadline(tmp_path):
    d = StateDir(str(tmp_path / "s"))
    with d.locked("x.json", 1):
        pid = os.fork()
        if pid == 0:  # another run: must give up with a StateError, not hang
            try:
                with StateDir(d.path).locked("x.json", 0.3):
                    os._exit(1)
            except MonitorError as exc:
                os._exit(0 if "locked by another run" in str(exc) else 2)
            os._exit(3)
        _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0


def _increment(path: str) -> None:
    d = StateDir(path)
    with d.locked("c.json", 30) as sf:
        data = sf.read("counter") or {"n": 0, "seen": []}
        data["n"] += 1
        data["seen"].append(os.getpid())
        sf.write("counter", data)


def test_32_concurrent_runs_leave_a_valid_state(tmp_path):
    path = str(tmp_path / "s")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_increment, args=(path,)) for _ in range(32)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    doc = json.loads(open(os.path.join(path, "c.json")).read())
    assert doc["data"]["n"] == 32 and len(set(doc["data"]["seen"])) == 32
    assert not [n for n in os.listdir(path) if n.endswith(".tmp")]


def test_instance_keys_differ_per_config_dir():
    assert instance_key(None) == "default"
    a, b = instance_key("/etc/postfix-out"), instance_key("/etc/postfix-out/")
    assert a != b and "/" not in a and a.startswith("postfix_out-")
