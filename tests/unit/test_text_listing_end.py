"""``postqueue -p`` that exits 0 but ends without its summary line (``-- N Kbytes in M
Requests.`` / ``Mail queue is empty``, which real postqueue always prints): counted as read,
with a warning on the first line, in -v and in the Zabbix document's meta.error."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fakes import fake_postqueue
from postfix_queue_monitor.plugins import queue_size
from postfix_queue_monitor.queue import read_queue

NOW = 1795966800.0
WARNING = ("postqueue -p ended without its summary line ('-- N Kbytes in M Requests.' or "
           "'Mail queue is empty'): the listing may be incomplete, counted as read")


@pytest.fixture
def unended(tmp_path: Path, fixtures: Path) -> str:
    """The real -p capture of 5 messages, its summary line removed."""
    text = (fixtures / "mixed-long-ids-markers.txt").read_text("utf-8")
    assert "-- 8 Kbytes in 5 Requests.\n" in text
    listing = tmp_path / "unended-p.txt"
    listing.write_text(text.replace("-- 8 Kbytes in 5 Requests.\n", ""), "utf-8")
    return fake_postqueue(tmp_path, j_invalid=True, p=listing)


def test_listing_without_summary_warns(unended: str) -> None:
    snap = read_queue(unended, None, 10, NOW)
    assert snap.source == "text" and snap.stats("total").messages == 5
    assert snap.warnings == [WARNING]


@pytest.mark.parametrize("name", ["mixed-long-ids-markers.txt", "empty-p.txt"])
def test_complete_listing_has_no_warning(tmp_path: Path, fixtures: Path, name: str) -> None:
    pq = fake_postqueue(tmp_path, j_invalid=True, p=fixtures / name)
    assert read_queue(pq, None, 10, NOW).warnings == []


def test_check_says_it_on_the_first_line_and_in_verbose(unended: str, run_main) -> None:
    code, out = run_main(queue_size.main, ["--postqueue", unended, "-v"], NOW)
    first = out.splitlines()[0].split("|")[0]
    assert code == 0 and first.startswith("POSTFIX QUEUE OK - 5 messages queued"), out
    assert WARNING in first
    assert WARNING in out.split("\n", 1)[1]              # -v repeats the listing's notes


def test_zabbix_document_says_it_in_meta_error(unended: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "checks")}
    out = subprocess.run([sys.executable, "-m", "postfix_queue_monitor.zabbix.cli", "json",
                          "--postqueue", unended, "--state-dir", str(tmp_path / "state"),
                          "--log-file", os.devnull], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    doc = json.loads(out.stdout)
    assert WARNING in doc["meta"]["error"] and doc["queue"]["total"]["messages"] == 5
