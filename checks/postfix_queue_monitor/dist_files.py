"""The configuration files the Debian package installs, from the same generators as
``nagios_configs/`` and ``zabbix_templates/``, with the package's paths.

    python -m postfix_queue_monitor.dist_files SOURCE_TREE DESTDIR

writes, under DESTDIR, every path of :func:`render` (debian/rules runs it into the package's
staging tree). The Nagios/NRPE/Icinga files come from :mod:`nagios_gen` with
:data:`nagios_gen.DEBIAN`; ``zabbix_templates/`` of SOURCE_TREE is shipped as committed (its
templates are drift-tested against their generator), its static files (UserParameters, systemd
units, cron line) relocated by :data:`RELOCATE`, whose
every replacement must match (a changed static file fails the build and the unit test instead
of shipping a stale path).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from . import nagios_gen

NAME = "postfix-queue-monitor"
SHARE = f"usr/share/{NAME}"
#: Debian's Nagios loads every file here (nagios.cfg: cfg_dir=/etc/nagios-plugins/config).
NAGIOS_COMMANDS = f"etc/nagios-plugins/config/{NAME}.cfg"
#: Debian's ITL: plugins-contrib does include_recursive "plugins-contrib.d".
ICINGA_COMMANDS = f"usr/share/icinga2/include/plugins-contrib.d/{NAME}.conf"
SYSTEMD = "lib/systemd/system"

_VENV_BIN = f"{nagios_gen.PREFIX}/bin/"
_PKG_BIN = nagios_gen.DEBIAN.bin + "/"
#: static file → its path in the package and the (old, new) replacements that relocate it.
RELOCATE: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "userparameter_postfix_queue.conf": (f"{SHARE}/zabbix/userparameter_postfix_queue.conf", (
        ("# Adjust the path of postfix_queue_zabbix (pip install postfix-queue-monitor; a venv's "
         "bin/ works).\n",
         "# Installed by the Debian package postfix-queue-monitor: "
         f"ln -s /{SHARE}/zabbix/userparameter_postfix_queue.conf /etc/zabbix/zabbix_agentd.d/\n"),
        (_VENV_BIN, _PKG_BIN))),
    "postfix-queue-zabbix.service": (f"{SYSTEMD}/postfix-queue-zabbix.service", (
        ("# Copy both units to /etc/systemd/system, then: ",
         "# Installed (not enabled) by the Debian package; configure, then: "),
        (_VENV_BIN, _PKG_BIN))),
    "postfix-queue-zabbix.timer": (f"{SYSTEMD}/postfix-queue-zabbix.timer", ()),
    "postfix-queue-zabbix.cron": (f"{SHARE}/zabbix/postfix-queue-zabbix.cron", (
        (_VENV_BIN, _PKG_BIN),)),
}


def relocate(name: str, text: str) -> str:
    """``text`` of the static file ``name`` with the package's paths."""
    for old, new in RELOCATE[name][1]:
        if old not in text:
            raise ValueError(f"zabbix_templates/{name} no longer contains {old!r}: "
                             "update dist_files.RELOCATE")
        text = text.replace(old, new)
    return text


def render(source: Path) -> dict[str, str]:
    """Package path (relative to /) → content."""
    checks, missing = nagios_gen.load_checks()
    if missing:
        raise RuntimeError(f"check modules missing: {', '.join(missing)}")
    layout = nagios_gen.DEBIAN
    files = {
        NAGIOS_COMMANDS: nagios_gen.nagios_commands(checks, layout),
        ICINGA_COMMANDS: nagios_gen.icinga_plugins_contrib(checks),
        f"{SHARE}/nagios/services.cfg": nagios_gen.nagios_services(checks),
        f"{SHARE}/nrpe/{NAME}.cfg": nagios_gen.nrpe_snippet(checks, layout),
        f"{SHARE}/icinga2/services.conf":
            f"/* Example Icinga 2 services for postfix-queue-monitor; {nagios_gen.HEADER}. */\n"
            + nagios_gen.icinga_services(checks),
    }
    # zabbix_templates/ as committed: the templates are drift-tested against their generator
    # (tests/unit/test_zabbix_template.py), the rest is relocated
    for path in sorted((source / "zabbix_templates").iterdir()):
        if path.name in RELOCATE:
            dest = RELOCATE[path.name][0]
            files[dest] = relocate(path.name, path.read_text())
        elif path.is_file():
            files[f"{SHARE}/zabbix/{path.name}"] = path.read_text()
    return files


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m postfix_queue_monitor.dist_files SOURCE_TREE DESTDIR",
              file=sys.stderr)
        return 2
    source, dest = Path(args[0]), Path(args[1])
    for rel, text in render(source).items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
