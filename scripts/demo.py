#!/usr/bin/env python3
"""make demo: the checks and the Zabbix document against a real Postfix with a stuck queue.

Where the system's Postfix runs, it is only read (no mail is injected into a Postfix that was
already there). Otherwise a private instance is started with a stuck queue: mail for six domains
whose relay refuses connections, some of it on hold, plus a few real deliveries through
smtp-sink listeners on 127.0.0.1 (accepted, hard-rejected, greylisted) so the mail log has sent,
bounced and deferred lines. The listeners are stopped once the mail has been tried; the
instance is shown, and stopped again (``--keep`` leaves it running).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from postfix_lab import Lab, Sinks, available, system_postfix_running  # noqa: E402

BIN = Path(sys.executable).parent
SINK_PORTS = {"ok": 25261, "hard": 25262, "soft": 25263}


def show(argv: list[str]) -> None:
    exe = BIN / argv[0]
    cmd = [str(exe) if exe.exists() else argv[0], *argv[1:]]
    print(f"$ {shlex.join(argv)}")
    res = subprocess.run(cmd, capture_output=True, text=True)
    print((res.stdout + res.stderr).rstrip())
    print(f"[exit {res.returncode}]\n")


def run_all(config: list[str], log: list[str], state: str) -> None:
    show(["check_postfix_queue", *config, "-w", "500", "-c", "2000"])
    show(["check_postfix_queue", *config, "--queue", "deferred", "--queue", "hold", "-w", "100",
          "-c", "1000", "-v"])
    show(["check_postfix_oldest_message", *config, "-w", "1h", "-c", "1d"])
    show(["check_postfix_oldest_message", *config, "-w", "1s", "-c", "1d"])
    show(["check_postfix_deferred_growth", *config, "--state-dir", state, "-w", "100", "-c",
          "500"])
    time.sleep(1.5)
    show(["check_postfix_deferred_growth", *config, "--state-dir", state, "-w", "100", "-c",
          "500"])
    if (BIN / "check_postfix_bounce_rate").exists() and log:
        show(["check_postfix_bounce_rate", *log, "--state-dir", state, "-w", "5", "-c", "15"])
    if (BIN / "postfix_queue_report").exists():
        show(["postfix_queue_report", *config])
    if (BIN / "postfix_queue_zabbix").exists():
        show(["postfix_queue_zabbix", "json", *config, *log, "--state-dir", state])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keep", action="store_true", help="leave the private instance running")
    args = ap.parse_args()
    state = tempfile.mkdtemp(prefix="pqm-demo-state-")
    if system_postfix_running():
        print("The system's Postfix is running: reading its queue (nothing is injected).\n")
        run_all([], [], state)
        return 0
    reason = available()
    if reason:
        print(f"demo: cannot start a private Postfix instance: {reason}")
        return 1
    lab = Lab("demo")
    sinks = Sinks(SINK_PORTS)
    lab.extra["transport_maps"] = sinks.transport_map(lab.base)
    lab.setup().start()
    print(f"No Postfix runs here: started a private instance in {lab.base} "
          f"(config {lab.config_dir}); mail to 127.0.0.1:{lab.relay_port} is refused, so it "
          f"sticks.\n")
    try:
        sinks.start()
        try:
            lab.inject(300, domains=6)
            lab.inject(40, domains=3, sender="newsletter@src.example", recipients_per_message=3)
            for i in range(60):
                lab.sendmail("shop@src.example", [f"customer{i}@ok.example"])
            for i in range(6):
                lab.sendmail("shop@src.example", [f"gone{i}@hard.example"])
            for i in range(12):
                lab.sendmail("shop@src.example", [f"new{i}@soft.example"])
            lab.wait_settled(352)       # stuck: 340 refused + 12 greylisted
        finally:
            sinks.stop()
        ids = sorted(m["queue_id"] for m in lab.postqueue_json()
                     if m["recipients"][0]["address"].endswith(".example")
                     and "@d0" in m["recipients"][0]["address"])[:25]
        lab.hold(ids)
        lab.wait_settled(352)
        print(f"Queue files in the spool: {lab.spool_counts()}\n")
        run_all(["--config-dir", str(lab.config_dir)], ["--log-file", str(lab.log_file)], state)
    finally:
        if args.keep:
            print(f"Left running: stop it with  postfix -c {lab.config_dir} stop")
        else:
            lab.destroy()
            print("Private instance stopped and removed.")
        if os.path.isdir(state):
            subprocess.run(["rm", "-rf", state])
    return 0


if __name__ == "__main__":
    sys.exit(main())
