"""A trial folder that stops taking writes mid-run: a full disk, a quota reached, a filesystem gone read-only.

Making the folder takes no data blocks, so a full disk let it be made (``make_trial_folder``), and the attempt's
first write to its log failed instead: the worker died of it (its stdout and stderr were that log, so nothing said
why), the trial read ``crashed: worker process exited with code 1``, and its retries met the same disk, spending
the budget. The attempt's writes to its log now say what the disk said, and the run stops as when the folder could
not be made (a ``WorkdirError``: exit 1, the running trials recorded interrupted, ``resume`` once there is room).
An attempt that had already ended (its function returned) when only its log's last flush failed is kept: its
outcome is recorded, noting that its log was cut short, and then the run stops (it was thrown away, to run again).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace

from tunesmith.errors import WorkdirError
from tunesmith.records import Outcome

REFUSED = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})
"""What the disk answers a write that no retry on it can get through (another error is the trial's own, or a bug)."""


class FolderUnwritable(Exception):
    """The trial's folder refused a write of the attempt (``reason``: the OS's words and the path): not the trial's
    failure. Raised where the attempt runs; its executor, in the coordinator, stops the run (``workdir_error``),
    first recording ``outcome`` where there is one: the attempt's, which ended before its log's last write failed."""

    def __init__(self, reason: str, outcome: Outcome | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.outcome = outcome


@dataclass
class AttemptEnding:
    """Where an executor puts the attempt's outcome as soon as it has one, inside ``refused_writes``."""

    outcome: Outcome | None = None


@contextlib.contextmanager
def refused_writes(log_path: str) -> Iterator[AttemptEnding]:
    """Turns the OSError of a write the disk refused (``REFUSED``) into FolderUnwritable; others pass as they are.

    Yields:
        where the caller puts the attempt's outcome once it has one: a write refused after that (the log's last
        flush, its close) keeps the outcome, noted, unless it is a failure (which may be the full disk's doing).

    Raises:
        FolderUnwritable: with the OS's words and the file (the log, where the OS names none: a buffered write to
            stdout, which is the log, names none), and the kept outcome.
    """
    ending = AttemptEnding()
    try:
        yield ending
    except OSError as e:
        if e.errno not in REFUSED:
            raise
        reason = f"{e.strerror or e} (writing {e.filename or log_path})"
        ended = ending.outcome
        kept = (replace(ended, notes=(*ended.notes, f"its log was cut short: {reason}"))
                if ended is not None and ended.failure is None else None)
        raise FolderUnwritable(reason, kept) from None


def workdir_error(number: int, trial_dir: str, reason: str) -> WorkdirError:
    """The error that stops the run: trial ``number``'s folder ``trial_dir`` refused a write (``reason``)."""
    workdir = os.path.dirname(os.path.normpath(trial_dir))
    return WorkdirError(f"trial {number}'s log could not be written in workdir {workdir}: {reason}; the run stopped; "
                        "its running trials are recorded interrupted: make the workdir take writes again (free "
                        "space, or fix its permissions), then resume the experiment")
