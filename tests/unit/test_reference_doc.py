"""docs/reference.md names what users see, from the code's own registries, and the repository
stands on its own: no file points at documents outside it."""

from __future__ import annotations

import importlib
import re
import subprocess
from pathlib import Path

import pytest

from postfix_queue_monitor import check_registry, metrics, reasons
from postfix_queue_monitor.zabbix import cli as zabbix_cli
from postfix_queue_monitor.zabbix import document, sender, template

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = (ROOT / "docs" / "reference.md").read_text()
#: Documents that live outside the repository; built from parts so this file does not name them.
OUTSIDE = [name + ".md" for name in ("CONTRACT", "FACTS", "DESIGN")] + ["../" + "shared",
                                                                         "/work/" + "shared"]


def mentions_option(flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", REFERENCE) is not None


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                          "--exclude-standard"], capture_output=True,
                         check=True).stdout
    return [ROOT / name for name in out.decode().split("\0") if name]


@pytest.mark.skipif(not (ROOT / ".git").exists(),
                    reason="not a git checkout (an unpacked sdist): git ls-files has nothing")
def test_no_file_points_outside_the_repository() -> None:
    files = tracked_files()
    assert any(f.name == "reference.md" for f in files)
    found = []
    for path in files:
        if not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", "replace")
        found += [f"{path.relative_to(ROOT)}: {name}" for name in OUTSIDE if name in text]
    assert found == [], "point at docs/ instead"


@pytest.mark.parametrize("check", check_registry.CHECKS, ids=lambda c: c.key)
def test_every_check_its_names_options_and_labels(check) -> None:
    assert f"`{check.program}`" in REFERENCE
    assert f"`{check.status}`" in REFERENCE
    assert f"`{check_registry.icinga_command(check)}`" in REFERENCE
    assert f"| {check.service} |" in REFERENCE
    parser = importlib.import_module(f"postfix_queue_monitor.plugins.{check.module}").parser()
    for action in parser._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert mentions_option(flag), (check.program, flag)
    for m in metrics.for_check(check.key):
        assert f"`{m.label}`" in REFERENCE, m.label


def test_every_zabbix_key_macro_and_sender_option() -> None:
    for m in document.ALL:
        base, _, params = m.key.partition("[")
        assert f"`{base}" in REFERENCE, m.key
        assert m.path.split(".")[1] in REFERENCE, m.path
    for macro, default, _ in template.MACROS:
        assert f"`{macro}`" in REFERENCE, macro
        assert default in REFERENCE
    for action in zabbix_cli.parser()._subparsers._group_actions[0].choices["send"]._actions:
        for flag in action.option_strings:
            if flag.startswith("--") and flag != "--help":
                assert mentions_option(flag), flag


def test_every_reason_class_in_priority_order() -> None:
    rows = [line.split("|")[1].strip().strip("`") for line in REFERENCE.splitlines()
            if line.startswith("| `") and line.count("|") == 3]
    assert set(reasons.CLASSES) <= set(rows)
    order = REFERENCE[REFERENCE.index("the first in this order wins:"):]
    positions = [order.index(f"`{c}`") for c in reasons.CLASSES]
    assert positions == sorted(positions)


def test_state_files_and_exit_codes() -> None:
    for prefix in ("growth-", "bounce-", "zabbix-spool-"):
        assert f"`{prefix}" in REFERENCE
    # the spool files by the names the sender gives them (no .json: a user clears them by name)
    key = sender.spool_name(["mx:10051"]).removeprefix("zabbix-spool-")
    for real in (sender.spool_name(["mx:10051"]), sender.side_spool_name(["mx:10051"])):
        assert f"`{real.replace(key, '<key>')}`" in REFERENCE, real
    for code, state in ((0, "OK"), (1, "WARNING"), (2, "CRITICAL"), (3, "UNKNOWN")):
        assert f"| {code} | {state} |" in REFERENCE


def test_every_docs_page_is_named_here_and_every_named_page_exists() -> None:
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"reference.md"}
    assert "reliability.md" in pages
    assert {p for p in pages if f"docs/{p}" not in REFERENCE} == set()
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"docs/([\w-]+\.md)", readme + REFERENCE))
    assert named - pages - {"reference.md"} == set()
