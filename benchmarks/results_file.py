"""benchmarks/RESULTS.md: one section per benchmark, each between its own marker comments, each saying on what
machine, with which versions and at which commit its numbers were taken."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def environment(dists: Sequence[str]) -> dict[str, str]:
    """Where and with what a benchmark ran: code (commit, dirty src/), machine, python, versions, load, date."""
    return {
        "code": _git_state(),
        "machine": f"{os.cpu_count()} CPUs ({_proc_field('/proc/cpuinfo', 'model name') or platform.machine()}), "
                   f"{_ram()} RAM, {platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "versions": ", ".join(f"{d} {_version(d)}" for d in dists),
        "load": " / ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?",
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def _proc_field(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _ram() -> str:
    total = _proc_field("/proc/meminfo", "MemTotal")
    return f"{int(total.split()[0]) / 2**20:.1f} GiB" if total else "?"


def _git_state() -> str:
    """The commit measured, and whether src/ had uncommitted changes (the numbers then describe those too)."""
    def git(*a: str) -> str:
        out = subprocess.run(["git", *a], capture_output=True, text=True, cwd=REPO, check=False)
        return out.stdout.strip() if out.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "not a git checkout"
    dirty = git("status", "--porcelain", "--", "src")
    return f"commit {head}" + (f" plus uncommitted changes in {len(dirty.splitlines())} file(s) under src/"
                               if dirty else "")


def write_section(path: Path, section: str, start: str, end: str) -> None:
    """Replace the section between ``start`` and ``end`` in ``path`` (``section`` includes both markers), append
    it when the file has none, or create the file."""
    if path.exists():
        text = path.read_text(encoding="utf-8")
        i, j = text.find(start), text.find(end)
        if i != -1 and j != -1:
            text = text[:i] + section.rstrip("\n") + text[j + len(end):]
        else:
            text = text.rstrip("\n") + "\n\n" + section
    else:
        text = "# tunesmith benchmarks\n\n" + section
    path.write_text(text, encoding="utf-8")
