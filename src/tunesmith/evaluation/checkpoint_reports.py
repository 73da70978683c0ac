"""The reports a function trial made up to its checkpoint, kept in the checkpoint folder beside its state.

The coordinator holds intermediate reports up to 0.1 s before the store writes them (storage/held_reports.py), so
a coordinator killed in that time loses the last ones. A trial that starts over re-runs those steps; one that
continues from its checkpoint (saved before its report, as PBT wants) starts past them, and they were lost for
good: the latest attempt's curve, which the schedulers and ``trials --json`` read, had a gap. So a checkpoint
carries the curve it stands for: ``save_checkpoint`` writes the trial's reports so far into ``REPORTS_FILE`` in the
new checkpoint folder, each report made while that checkpoint is the trial's latest is appended to it, and a new
attempt that loads the checkpoint restates them (evaluation/context.py).

The file is JSON lines, one ``[step, value]`` each (never pickle: it is read back), appended with one ``write``
call a line, so a process killed mid-way leaves at most a last line cut short, which reading skips. A later line
at a step not above the ones before it is a later attempt's, which went on from that checkpoint and reported that
step again: it replaces the curve from that step on, as ``continued_curve`` does across attempts.
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Sequence
from pathlib import Path

from tunesmith.records import Report

REPORTS_FILE = ".tunesmith-reports.jsonl"
"""tunesmith's own file in a checkpoint folder (a dot file: a folder checkpoint's ``*.pt`` globs pass it by)."""


def write_reports(folder: Path, reports: Sequence[Report], same_as: Path | None = None) -> None:
    """The curve a checkpoint being saved in ``folder`` (not swapped in yet) stands for.

    Args:
        reports: the curve, written whole...
        same_as: ...unless this file (the latest checkpoint's, which has had every report appended) holds it
            already: it is linked instead. Rewritten whole at each save, the curve of a trial saving before each of
            20,000 reports would be written 20,000 times; where the filesystem has no links, it still is.
    """
    target = folder / REPORTS_FILE
    target.unlink(missing_ok=True)  # a copied folder's own (a checkpoint folder passed back in, a parent's copy)
    if same_as is not None:
        try:
            os.link(same_as, target)  # appended to from now on: the old checkpoint goes once this one is in
            return
        except OSError:
            pass
    target.write_text("".join(_line(r) for r in reports))


def read_reports(folder: Path) -> tuple[Report, ...]:
    """The curve the checkpoint in ``folder`` stands for; none when it has no such file (saved by a tunesmith before
    it, or a PBT parent's copy, which is never read for the child's own curve)."""
    try:
        text = (folder / REPORTS_FILE).read_text()
    except OSError:
        return ()
    curve: list[Report] = []
    for line in text.splitlines():
        try:
            step, value = json.loads(line)
            report = Report(int(step), float(value))
        except (ValueError, TypeError):
            continue  # a line cut short by a kill mid-write
        while curve and curve[-1].step >= report.step:
            curve.pop()
        curve.append(report)
    return tuple(curve)


class ReportsAppender:
    """Appends reports to the reports file of the checkpoint in ``folder``, the trial's latest.

    Args:
        folder: the checkpoint folder; the file is opened on the first report, so a checkpoint that is loaded and
            never reported after costs nothing.

    The file is closed by ``close`` (the attempt's end), or else when the appender is dropped: a TrialContext made
    by hand (an objective's unit test) never reaches the attempt's end, and leaked one descriptor each.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._fd: int | None = None
        self._closer: weakref.finalize[[int], ReportsAppender] | None = None

    @property
    def path(self) -> Path:
        return self.folder / REPORTS_FILE

    def append(self, report: Report) -> None:
        line = _line(report).encode()
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            self._closer = weakref.finalize(self, os.close, self._fd)
            size = os.fstat(self._fd).st_size
            if size and os.pread(self._fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # after a line an earlier attempt's kill cut short, not onto it
        os.write(self._fd, line)  # one call: a kill leaves no half line but the last

    def close(self) -> None:
        if self._closer is not None:
            self._closer()  # closes the file once: the finalizer is spent
            self._fd = self._closer = None


def _line(report: Report) -> str:
    return json.dumps([report.step, report.value]) + "\n"  # NaN, Infinity: as json.loads reads them back
