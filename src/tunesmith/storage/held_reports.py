"""Intermediate reports the store holds before writing them, many in one statement.

A transaction per report cost more than the training step it reported (a commit, and on SQLite the write lock): a
trial reporting every batch waited on the store tens of thousands of times, and that wait went into its
``duration_s`` and cost. The store holds reports here and writes them together: when REPORTS_HELD are held, when the
oldest has waited REPORTS_HELD_S (a timer, so a trial's last report before a long silence is not held through it),
before any other transaction of the store (so what is read or written after a report sees it, and a trial's final
state is never recorded before its reports) and as the store closes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

REPORTS_HELD = 200
"""Reports held at most: the one whose add makes this many is written with them, in the trial's own time (a trial
reporting faster than the store writes waits for it, instead of holding more and more)."""
REPORTS_HELD_S = 0.1
"""The longest a report is held (monotonic seconds) before a timer writes it: what a live reader (`show`, the
dashboard) lags behind, and what a coordinator killed with reports held loses (of attempts re-run anyway; one that
continues from a function trial's checkpoint restates them: evaluation/checkpoint_reports.py)."""


class HeldReports:
    """The report rows (statement parameters) added and not yet written, oldest first.

    Args:
        write_due: writes the held rows; called from a timer thread once the oldest has waited ``longest_s``.
        most: how many rows make a write due at once (:meth:`add` says so).
        longest_s: how long the oldest row waits for the timer.

    ``writing`` is held by whoever writes from :meth:`take` until the rows are committed or :meth:`put_back`:
    taking it first, a transaction waits for rows a thread is writing before it reads or writes itself.
    """

    def __init__(self, write_due: Callable[[], None], most: int = REPORTS_HELD,
                 longest_s: float = REPORTS_HELD_S) -> None:
        self.write_due = write_due
        self.most = most
        self.longest_s = longest_s
        self.writing = threading.Lock()
        self._rows: list[dict[str, Any]] = []
        self._oldest_at = 0.0  # when the oldest held row was added (time.monotonic)
        self._lock = threading.Lock()  # the rows: added by the loop's thread, taken by any transaction's
        self._timer: threading.Timer | None = None

    def add(self, row: dict[str, Any]) -> bool:
        """Hold ``row``; whether the held rows are due to be written now (``most`` held, or the oldest has waited
        ``longest_s`` while the timer's thread was kept from running)."""
        now = time.monotonic()
        with self._lock:
            if not self._rows:
                self._oldest_at = now
            self._rows.append(row)
            self._start_timer()
            return len(self._rows) >= self.most or now - self._oldest_at >= self.longest_s

    def take(self) -> list[dict[str, Any]]:
        """The held rows, to write (held by ``writing``); none held after."""
        with self._lock:
            rows, self._rows = self._rows, []
            return rows

    def put_back(self, rows: list[dict[str, Any]]) -> None:
        """Hold again ``rows`` a write failed to store, before those added since: written next, in order."""
        if rows:
            with self._lock:
                self._rows[:0] = rows
                self._oldest_at = time.monotonic()
                self._start_timer()  # the next write: by the timer, or the next transaction, whichever comes first

    def cancel_timer(self) -> None:
        """No timer left to write after this (the store closes: it writes what is held itself)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _start_timer(self) -> None:
        if self._timer is None:
            self._timer = threading.Timer(self.longest_s, self._due)
            self._timer.daemon = True  # never keeps a process from exiting (the store's close writes what is held)
            self._timer.start()

    def _due(self) -> None:
        with self._lock:
            self._timer = None
        self.write_due()
