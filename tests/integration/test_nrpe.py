"""nagios_configs/nrpe.cfg in a real NRPE daemon (as nagios, 127.0.0.1:15666): every command
round-trips through check_nrpe with its output bytes and exit code unchanged, against a real
Postfix queue; the output rules (short first line, perfdata on one line, nothing on stderr,
non-ASCII addresses intact) hold on the wire."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import nagios_lab
from postfix_queue_monitor import nagios_gen

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = ROOT / "nagios_configs" / "nrpe.cfg"
NRPE_PORT = 15666
SPARE_PORT = 15667
CHECKS, _MISSING = nagios_gen.load_checks()

reason = nagios_lab.available()
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")


def snippet_commands() -> dict[str, str]:
    return dict(re.findall(r"^command\[([^\]]+)\]=(.*)$", SNIPPET.read_text(), re.M))


def mask_ages(text: bytes) -> bytes:
    """Ages move between two runs; the oldest-message check is compared with numbers masked."""
    return re.sub(rb"\d+(\.\d+)?", b"N", text)


def mask_reuse(text: bytes) -> bytes:
    """The shipped commands share one listing (--listing-max-age): how long ago it was taken
    differs between two runs."""
    return re.sub(rb"taken \d+\.\d s ago", b"taken N s ago", text)


def test_ok_snippet_names_every_check_under_its_prefix():
    cmds = snippet_commands()
    assert sorted(cmds) == sorted(c.command for c in CHECKS)
    assert f"Install prefix: {nagios_gen.PREFIX}" in SNIPPET.read_text()
    for name, line in cmds.items():
        assert line.startswith(f"{nagios_gen.PREFIX}/bin/{name} -w ")
        assert "$ARG" not in line      # Debian's NRPE passes no arguments


def test_ok_every_nrpe_command_round_trips_unchanged(base, venv, postfix):
    direct_state, nrpe_state = base / "direct-state", base / "nrpe-state"
    for d in (direct_state, nrpe_state):
        d.mkdir()
    nagios_lab.chown_tree(base)
    env = {"MAIL_CONFIG": str(postfix.config_dir)}
    links = {nagios_lab.MAIL_LOG: postfix.log_file}     # the bounce check's default log
    lab = nagios_lab.NrpeLab(base / "nrpe", SNIPPET, venv, NRPE_PORT,
                             keep_env={**env, "XDG_STATE_HOME": str(nrpe_state)}, links=links)
    (base / "nrpe").mkdir()
    lab.write()
    cmds = snippet_commands()
    direct, remote, remote_v2 = {}, {}, {}
    try:
        lab.start()
        assert nagios_lab.proc_user(lab.proc.pid) == "nagios"     # NRPE refuses root anyway
        for name, line in cmds.items():
            # the very same command line, as nagios, seeing the same /opt and /var/log
            direct[name] = nagios_lab.run_as_nagios(
                line.split(), env={**env, "XDG_STATE_HOME": str(direct_state)},
                links={**links, nagios_gen.PREFIX: venv})
            remote[name] = lab.check_nrpe(name)
            remote_v2[name] = lab.check_nrpe(name, "-2")
    finally:
        lab.stop()
    for name in cmds:
        d, r, r2 = direct[name], remote[name], remote_v2[name]
        assert d.stderr == b"" and r.stderr == b"", (d.stderr, r.stderr)
        assert r.returncode == d.returncode == 0, r.stdout
        if name == "check_postfix_oldest_message":
            assert mask_ages(r.stdout) == mask_ages(d.stdout)
        else:
            assert mask_reuse(r.stdout) == mask_reuse(d.stdout)
        lines = r.stdout.decode("utf-8").splitlines()
        first = lines[0]
        assert len(first.encode()) <= 1024 and "|" not in first
        assert first.startswith("POSTFIX ") and " OK - " in first
        perf_lines = [x for x in lines if "|" in x]
        assert perf_lines == [lines[-1]] and lines[-1].startswith("| ")
        if name != "check_postfix_bounce_rate":
            assert nagios_lab.NON_ASCII_DOMAIN.encode() in r.stdout    # UTF-8 bytes, intact
        # an old (v2 packet) client: 1 KB at most, the first line intact
        # (a second run: the growth check has its baseline now, the ages have moved)
        first2 = r2.stdout.split(b"\n", 1)[0]
        assert r2.returncode == d.returncode
        assert len(r2.stdout) <= 1024 and b"|" not in first2
        if name == "check_postfix_deferred_growth":
            assert first2.startswith(b"POSTFIX GROWTH OK - ")
        else:
            assert mask_ages(first2) == mask_ages(first.encode())


def test_unknown_passes_through_nrpe_when_postqueue_fails(base, venv):
    """postqueue refuses a Postfix instance the default main.cf does not name
    (docs/reference.md): the check's one UNKNOWN line and exit 3 come through NRPE as they are."""
    bogus = str(base / "no-such-instance")
    lab = nagios_lab.NrpeLab(base, SNIPPET, venv, SPARE_PORT,
                             keep_env={"MAIL_CONFIG": bogus,
                                       "XDG_STATE_HOME": str(base)}).write()
    try:
        lab.start()
        r = lab.check_nrpe("check_postfix_queue")
    finally:
        lab.stop()
    assert r.returncode == 3, r.stdout
    assert r.stdout.startswith(b"POSTFIX QUEUE UNKNOWN - ")
    assert r.stdout.count(b"\n") == 1 and r.stderr == b""
    assert b"alternate_config_directories" in r.stdout, r.stdout
