"""benchmarks/RESULTS.md holds one section per benchmark, each between its own marker comments."""

from __future__ import annotations

from pathlib import Path


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
