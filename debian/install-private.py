#!/usr/bin/python3
"""Stage the package: this project and the libraries Debian 12 lacks in a private directory,
the console scripts as wrappers, the configuration files from the generators.

    debian/install-private.py DESTDIR

Run by debian/rules (override_dh_auto_install) from the source tree; needs PyPI for the wheels
of the private libraries (docs/packaging.md says why they are private). Every step checks
itself: a dependency that is not pure Python, one that debian/copyright does not name, or a
requirement of a private library that neither the private directory nor Debian's python3
packages (Build-Depends = Depends) satisfy stops the build.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.requirements import Requirement

PRIVATE = "/usr/lib/postfix-queue-monitor"
PLUGINS = "/usr/lib/nagios/plugins"
BIN = "/usr/bin"
#: Requirements left out of the private directory, and why. orjson is compiled (the package
#: would stop being Architecture: all) and optional: queue.py falls back to the stdlib's json.
LEFT_OUT = {"orjson": "compiled, optional (queue.py falls back to json)"}
WRAPPER = """\
#!/usr/bin/python3 -I
# {name}: the console script of the Debian package postfix-queue-monitor (generated at build
# time from the entry point {value}); the private libraries come first on the path.
import sys

sys.path.insert(0, "{private}")
from {module} import {func}  # noqa: E402

sys.exit({func}())
"""


def pip(*args: str) -> None:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, env=env)


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main(dest: Path) -> int:
    src = Path.cwd()
    private = dest / PRIVATE.lstrip("/")
    with tempfile.TemporaryDirectory(prefix="pqm-wheels-") as tmp:
        # this project: a wheel built from the tree (its build requirements from PyPI)
        pip("wheel", "--no-deps", "-q", "-w", tmp, str(src))
        ours = next(Path(tmp).glob("postfix_queue_monitor-*.whl"))
        reqs = [Requirement(r) for r in md.Distribution.at(_unpack_metadata(ours, tmp))
                .requires or []]
        direct = [r for r in reqs if r.marker is None and normal(r.name) not in LEFT_OUT]
        pip("install", "-q", "--no-deps", "--no-compile", "--only-binary", ":all:",
            "--target", str(private), str(ours), *(str(r) for r in direct))
    (private / "bin").exists() and _rmtree(private / "bin")   # pip's scripts: build paths
    for f in private.glob("*.dist-info/direct_url.json"):  # the build's file:// URL
        f.unlink()
    copyright_text = (src / "debian" / "copyright").read_text()
    dists = list(md.distributions(path=[str(private)]))
    for d in dists:
        name = d.metadata["Name"]
        wheel = (Path(d._path) / "WHEEL").read_text()  # type: ignore[attr-defined]
        if "Root-Is-Purelib: true" not in wheel:
            sys.exit(f"{name} is not pure Python: the package would not be Architecture: all")
        if normal(name) != "postfix-queue-monitor" and \
                f"Comment: {normal(name)} " not in copyright_text:
            sys.exit(f"debian/copyright has no stanza for the private library {name}")
    _check_closure(dists, private)
    _wrappers(dest, private)
    _manpages(dest, private)
    subprocess.run([sys.executable, "-m", "postfix_queue_monitor.dist_files", str(src),
                    str(dest)], check=True, env={**os.environ, "PYTHONPATH": str(private)},
                   stdout=subprocess.DEVNULL)
    return 0


def _unpack_metadata(wheel: Path, tmp: str) -> Path:
    import zipfile
    out = Path(tmp) / "meta"
    with zipfile.ZipFile(wheel) as z:
        for n in z.namelist():
            if n.endswith(".dist-info/METADATA"):
                z.extract(n, out)
                return out / n.rsplit("/", 1)[0]
    sys.exit(f"{wheel}: no METADATA")


def _rmtree(path: Path) -> None:
    import shutil
    shutil.rmtree(path)


def _check_closure(dists: list[md.Distribution], private: Path) -> None:
    """Every requirement of what is private is met, privately or by Debian's python3-*."""
    have = {normal(d.metadata["Name"]): d.version for d in dists}
    for d in dists:
        for text in d.requires or []:
            r = Requirement(text)
            if r.marker is not None and not r.marker.evaluate({"extra": ""}):
                continue
            n = normal(r.name)
            if n in LEFT_OUT:
                continue
            version = have.get(n)
            if version is None:
                try:
                    version = md.version(r.name)     # the build's system python3 packages
                except md.PackageNotFoundError:
                    sys.exit(f"{d.metadata['Name']} needs {r}: neither private nor a python3-* "
                             "package of the build (add it to Build-Depends and Depends)")
            if not r.specifier.contains(version, prereleases=True):
                sys.exit(f"{d.metadata['Name']} needs {r}, found {version}")


def _wrappers(dest: Path, private: Path) -> None:
    ours = md.Distribution.at(next(private.glob("postfix_queue_monitor-*.dist-info")))
    scripts = [e for e in ours.entry_points if e.group == "console_scripts"]
    if not scripts:
        sys.exit("no console scripts in the wheel's entry points")
    for e in scripts:
        module, _, func = e.value.partition(":")
        where = PLUGINS if e.name.startswith("check_") else BIN
        path = dest / where.lstrip("/") / e.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(WRAPPER.format(name=e.name, value=e.value, private=PRIVATE,
                                       module=module, func=func))
        path.chmod(0o755)


def _manpages(dest: Path, private: Path) -> None:
    """A man page per tool on PATH, from its --help by help2man (the checks, in the plugin
    directory, are documented by their --help like Debian's other plugins)."""
    ours = md.Distribution.at(next(private.glob("postfix_queue_monitor-*.dist-info")))
    man1 = dest / "usr/share/man/man1"
    man1.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pqm-man-") as tmp:
        for e in ours.entry_points:
            if e.group != "console_scripts" or e.name.startswith("check_"):
                continue
            module, _, func = e.value.partition(":")
            shim = Path(tmp) / e.name
            shim.write_text(
                f"#!/bin/sh\nPYTHONPATH={private} exec {sys.executable} -c 'import sys; "
                f"sys.argv[0] = \"{e.name}\"; from {module} import {func}; "
                f"sys.exit({func}())' \"$@\"\n")
            shim.chmod(0o755)
            usage = subprocess.run([str(shim), "--help"], capture_output=True, text=True,
                                   check=True).stdout
            paragraphs = usage.split("\n\n")
            summary = re.split(r"[:.]", " ".join(paragraphs[1].split()))[0]
            subprocess.run(["help2man", "--no-info", "--no-discard-stderr",
                            "--version-string", ours.version, "--name", summary,
                            "--output", str(man1 / f"{e.name}.1"), str(shim)], check=True)


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve()))
