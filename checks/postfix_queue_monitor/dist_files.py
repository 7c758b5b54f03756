"""The configuration files the Debian package installs, from the same generators as
``nagios_configs/`` and ``zabbix_templates/``, with the package's paths.

    python -m postfix_queue_monitor.dist_files SOURCE_TREE DESTDIR

writes, under DESTDIR, every path of :func:`render` (debian/rules runs it into the package's
staging tree). The Nagios/NRPE/Icinga files come from :mod:`nagios_gen` with
:data:`nagios_gen.DEBIAN`; the directories of :data:`STATIC_DIRS` in SOURCE_TREE
(``zabbix_templates/``, ``prometheus/``) are shipped as committed (their generated files are
drift-tested against their generators), systemd units to /lib/systemd/system, every file with
the package's paths (:func:`relocate`; the replacements of :data:`RELOCATE` must all match, so
a changed static file fails the build and the unit test instead of shipping stale text).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

from . import director_basket, nagios_gen

NAME = "postfix-queue-monitor"
SHARE = f"usr/share/{NAME}"
#: Debian's Nagios loads every file here (nagios.cfg: cfg_dir=/etc/nagios-plugins/config).
NAGIOS_COMMANDS = f"etc/nagios-plugins/config/{NAME}.cfg"
#: Debian's ITL: plugins-contrib does include_recursive "plugins-contrib.d".
ICINGA_COMMANDS = f"usr/share/icinga2/include/plugins-contrib.d/{NAME}.conf"
SYSTEMD = "lib/systemd/system"

_VENV_BIN = f"{nagios_gen.PREFIX}/bin/"
_PKG_BIN = nagios_gen.DEBIAN.bin + "/"
_UNIT_NOTE = "# Installed (not enabled) by the Debian package; configure, then:"
#: Directories of static files shipped as they are committed (generated ones are drift-tested
#: by their own generators' tests), source directory → directory under SHARE. systemd units
#: go to SYSTEMD instead; every file gets the package's paths (:func:`relocate`).
STATIC_DIRS = {"zabbix_templates": "zabbix", "prometheus": "prometheus"}
#: Replacements beyond the paths, per static file; each must match (a changed file fails the
#: build and the unit test instead of shipping stale text).
RELOCATE: dict[str, tuple[tuple[str, str], ...]] = {
    "userparameter_postfix_queue.conf": (
        ("# Adjust the path of postfix_queue_zabbix (pip install postfix-queue-monitor; a venv's "
         "bin/ works).\n",
         "# Installed by the Debian package postfix-queue-monitor: "
         f"ln -s /{SHARE}/zabbix/userparameter_postfix_queue.conf /etc/zabbix/zabbix_agentd.d/\n"),
    ),
}
#: The source files' "copy the unit to /etc/systemd/system" notes (the package installs them).
_COPY_UNITS = re.compile(r"# ?(.*?)Copy (?:both units |the units |)to /etc/systemd/system, then:")


def is_unit(name: str) -> bool:
    return name.endswith((".service", ".timer", ".socket"))


def relocate(name: str, text: str) -> str:
    """``text`` of the static file ``name`` with the package's paths."""
    for old, new in RELOCATE.get(name, ()):
        if old not in text:
            raise ValueError(f"{name} no longer contains {old!r}: update dist_files.RELOCATE")
        text = text.replace(old, new)
    if is_unit(name):
        text = _COPY_UNITS.sub(lambda m: f"# {m[1]}" + _UNIT_NOTE[2:] if m[1] else _UNIT_NOTE,
                               text)
    return text.replace(_VENV_BIN, _PKG_BIN)


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
        f"{SHARE}/icinga2/director-basket.json": director_basket.render(checks),
    }
    for src, sub in STATIC_DIRS.items():
        for path in sorted(p for p in (source / src).iterdir() if p.is_file()):
            dest = f"{SYSTEMD}/{path.name}" if is_unit(path.name) else f"{SHARE}/{sub}/{path.name}"
            files[dest] = relocate(path.name, path.read_text())
    return files


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m postfix_queue_monitor.dist_files SOURCE_TREE DESTDIR",
              file=sys.stderr)
        return 2
    source, dest = Path(args[0]), Path(args[1])
    return nagios_gen.write_or_check({dest / rel: t for rel, t in render(source).items()}, False)


if __name__ == "__main__":
    sys.exit(main())
