"""File-system faults for the write-error tests: real mounts, no mocks (root only; skipped
elsewhere, as a developer without root cannot mount)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(target: Path, options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def _umount(target: Path) -> None:
    subprocess.run(["umount", str(target)], capture_output=True, check=False)


@pytest.fixture
def ro_dir(tmp_path: Path) -> Iterator[str]:
    """A state dir (0700, ours) on a file system remounted read-only: EROFS on every write."""
    mnt = tmp_path / "ro"
    _mount(mnt, "size=1m,mode=0700")
    try:
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        yield str(mnt)
    finally:
        _umount(mnt)


@pytest.fixture
def full_dir(tmp_path: Path) -> Iterator[str]:
    """A state dir on a 64 KiB tmpfs filled to the last byte: ENOSPC on every write."""
    mnt = tmp_path / "full"
    _mount(mnt, "size=64k,mode=0700")
    try:
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        yield str(mnt)
    finally:
        _umount(mnt)
