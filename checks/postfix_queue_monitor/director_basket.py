"""Generate the Icinga Director basket (``icinga_director/postfix-queue-monitor.json``) from the
checks' own argument parsers, like ``nagios_configs/`` (:mod:`nagios_gen`):

    python -m postfix_queue_monitor.director_basket [--check] [FILE]

One Command per check (the CheckCommand of ``nagios_configs/postfix-queue.conf``: same name,
arguments, custom variables and default thresholds), a Data Field per custom variable linked to
the Commands that use it (so Director's service form offers every option), and one Service
Template per check. The Commands are *external* objects: Director does not deploy them but
expects them from the ITL, where the Debian package puts them (``plugins-contrib.d``); deployed
ones would clash with those on every node that has the package. Import it with
``icingacli director basket restore < FILE`` or in Director's web UI (Icinga Director →
Configuration Baskets → Upload); docs/packaging.md.

The shape is that of Director 1.10's basket snapshots (``BasketSnapshot``: Datafield entries keyed
by their original id, objects referring to them by ``datafield_id``; Director booleans as
"y"/"n"); tests/integration/test_director_basket_real.py restores it into a real Director.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from . import nagios_gen
from .nagios_gen import Check, Option

DEFAULT_FILE = "icinga_director/postfix-queue-monitor.json"
_TYPES = "Icinga\\Module\\Director\\DataType\\DataType"
#: Director data type per option kind: flags and -v are switches (set_if), repeatable options
#: arrays (repeat_key), the rest strings (ranges, durations, paths are text to the check).
DATATYPE = {"flag": "Boolean", "count": "Boolean", "append": "Array", "value": "String"}


def _caption(check: Check, opt: Option) -> str:
    scope = "Postfix checks" if opt.shared else check.prog
    return f"{scope}: {opt.long}"


def _argument(check: Check, opt: Option, order: int) -> dict:
    var = f"${check.var(opt)}$"
    arg: dict = {"description": opt.help, "order": str(order), "required": "n"}
    if opt.kind in ("flag", "count"):
        arg["set_if"] = var
        arg["set_if_format"] = "string"
    else:
        arg["value"] = var
    if opt.kind == "append":
        arg["repeat_key"] = "y"
    return arg


def basket(checks: list[Check]) -> dict:
    """The basket as Director's JSON: Datafield, Command, ServiceTemplate."""
    fields: dict[str, dict] = {}
    ids: dict[str, int] = {}
    for c in checks:
        for o in c.options:
            var = c.var(o)
            if var in ids:
                continue
            ids[var] = len(ids) + 1
            fields[str(ids[var])] = {
                "varname": var,
                "caption": _caption(c, o),
                "description": o.help,
                "datatype": _TYPES + DATATYPE[o.kind],
                "format": None,
                "category": None,
                "originalId": str(ids[var]),
                "settings": {"visibility": "visible"} if o.kind == "value" else {},
            }
    commands, templates = {}, {}
    for c in checks:
        w, cr = c.thresholds
        commands[c.icinga] = {
            "object_name": c.icinga,
            "object_type": "external_object",
            "methods_execute": "PluginCheck",
            "command": c.prog,              # relative: Director renders PluginDir + "/<prog>"
            "disabled": False,
            "is_string": None,
            "timeout": None,
            "zone": None,
            "imports": [],
            "arguments": {o.long: _argument(c, o, i) for i, o in enumerate(c.options, 1)},
            "vars": {c.var(nagios_gen._find(c, "warning")): w,
                     c.var(nagios_gen._find(c, "critical")): cr},
            "fields": [{"datafield_id": ids[v], "is_required": "n", "var_filter": None}
                       for v in sorted({c.var(o) for o in c.options})],
        }
        templates[c.spec.service] = {
            "object_name": c.spec.service,
            "object_type": "template",
            "check_command": c.icinga,
            "disabled": False,
            "imports": [],
            "vars": {f"{nagios_gen.VAR_PREFIX}verbose": True},
            "fields": [],
        }
    return {"Datafield": fields, "Command": commands, "ServiceTemplate": templates}


def render(checks: list[Check] | None = None) -> str:
    if checks is None:
        checks, _missing = nagios_gen.load_checks()
    return json.dumps(basket(checks), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m postfix_queue_monitor.director_basket",
                                 description="Generate the Icinga Director basket.")
    ap.add_argument("file", nargs="?", type=Path, default=None,
                    help=f"output file (default: {DEFAULT_FILE} of the source tree)")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 when the file differs from the generator's output")
    args = ap.parse_args(argv)
    out = args.file or nagios_gen.source_path(DEFAULT_FILE)
    if out is None:
        ap.error("not running from a source tree: name the output file")
    return nagios_gen.write_or_check({out: render()}, args.check)


if __name__ == "__main__":
    sys.exit(main())
